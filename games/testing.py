"""`api_test(game)`: the contract every game must keep, checked on seeded random playthroughs.

Like PettingZoo's api_test and OpenSpiel's random_sim_test: call it on any Game (native,
adapted from OpenSpiel or PettingZoo, or your own) and it raises ApiTestError naming the
first broken rule and the history where it broke.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, State


class ApiTestError(AssertionError):
    pass


def _fail(game: Game, state: State | None, what: str) -> ApiTestError:
    where = f" after history {state.history()}" if state is not None else ""
    return ApiTestError(f"{game!r}: {what}{where}")


def _new_state(game: Game, seed: int) -> State:
    return game.new_initial_state(seed=seed) if game.info.sampled_chance else game.new_initial_state()


def _check_info(game: Game) -> None:
    info = game.info
    if info.num_players < 1:
        raise _fail(game, None, "num_players must be >= 1")
    if info.min_utility > info.max_utility:
        raise _fail(game, None, f"min_utility {info.min_utility} > max_utility {info.max_utility}")
    if info.action_type == "discrete" and not info.num_distinct_actions:
        raise _fail(game, None, "discrete games must declare num_distinct_actions")


def _check_node(game: Game, state: State, seen_keys: dict[tuple[int, Hashable], Any], obs_shape: tuple) -> None:
    info = game.info
    cur = state.current_player()
    if cur not in (CHANCE, SIMULTANEOUS, TERMINAL) and not 0 <= cur < info.num_players:
        raise _fail(game, state, f"current_player() returned {cur}")
    if state.is_terminal() != (cur == TERMINAL):
        raise _fail(game, state, "is_terminal() disagrees with current_player() == TERMINAL")
    returns = np.asarray(state.returns(), dtype=np.float64)
    if returns.shape != (info.num_players,):
        raise _fail(game, state, f"returns() has shape {returns.shape}, expected ({info.num_players},)")
    if not state.is_terminal():
        if info.reward_model == "terminal" and np.any(returns != 0):
            raise _fail(game, state, f"non-zero returns {returns} before the end of a terminal-reward game")
    for p in range(info.num_players):
        obs = np.asarray(state.observation(p))
        if obs.shape != obs_shape:
            raise _fail(game, state, f"observation({p}) has shape {obs.shape}, expected {obs_shape}")
        if not np.all(np.isfinite(obs)):
            raise _fail(game, state, f"observation({p}) has non-finite entries")
    if cur == CHANCE:
        outcomes = state.chance_outcomes()
        probs = np.array([p for _, p in outcomes], dtype=np.float64)
        if len(outcomes) == 0 or np.any(probs <= 0) or abs(probs.sum() - 1.0) > 1e-9:
            raise _fail(game, state, f"chance probabilities must be positive and sum to 1, got {probs.tolist()}")
        if len({a for a, _ in outcomes}) != len(outcomes):
            raise _fail(game, state, "chance outcomes repeat")
        return
    movers = range(info.num_players) if cur == SIMULTANEOUS else ([cur] if cur >= 0 else [])
    if cur == SIMULTANEOUS and not any(state.legal_actions(p) for p in movers):
        raise _fail(game, state, "a simultaneous node where no player has a legal action")
    for p in range(info.num_players):
        legal = state.legal_actions(p)
        if cur == TERMINAL or p not in movers:
            if legal:
                raise _fail(game, state, f"player {p} has legal actions {legal} but is not to move")
            continue
        if not legal and cur == SIMULTANEOUS:
            continue  # a player who sits this step out (an inactive agent of a Markov game) passes None
        if not legal:
            raise _fail(game, state, f"player {p} is to move but has no legal actions")
        if len(set(map(_hashable, legal))) != len(legal):
            raise _fail(game, state, f"legal actions of player {p} repeat: {legal}")
        if info.action_type == "discrete":
            bad = [a for a in legal if not (isinstance(a, (int, np.integer)) and 0 <= a < info.num_distinct_actions)]
            if bad:
                raise _fail(game, state, f"legal actions {bad} of player {p} are outside [0, num_distinct_actions)")
        key = state.information_state_key(p)
        try:
            hash(key)
        except TypeError:
            raise _fail(game, state, f"information_state_key({p}) is not hashable") from None
        if state.information_state_key(p) != key:
            raise _fail(game, state, f"information_state_key({p}) is not deterministic")
        if not info.sampled_chance:  # keyed histories of Markov games include the seed; nothing to compare
            known = seen_keys.setdefault((p, key), [_hashable(a) for a in legal])
            if known != [_hashable(a) for a in legal]:
                raise _fail(game, state, f"information state {key!r} of player {p} has different legal actions "
                                         f"at different histories ({known} vs {legal})")


def _hashable(a: Any) -> Any:
    return int(a) if isinstance(a, (int, np.integer)) else a


def _pick(state: State, rng: np.random.Generator) -> Any:
    cur = state.current_player()
    if cur == CHANCE:
        outcomes = state.chance_outcomes()
        i = rng.choice(len(outcomes), p=np.array([p for _, p in outcomes]) / sum(p for _, p in outcomes))
        return outcomes[int(i)][0]
    if cur == SIMULTANEOUS:
        joint = []
        for p in range(len(state.returns())):
            legal = state.legal_actions(p)
            joint.append(legal[int(rng.integers(len(legal)))] if legal else None)
        return joint
    legal = state.legal_actions(cur)
    return legal[int(rng.integers(len(legal)))]


def _apply(state: State, move: Any) -> None:
    if state.current_player() == SIMULTANEOUS:
        state.apply_actions(move)
    else:
        state.apply_action(move)


def _play(game: Game, seed: int, seen_keys: dict, obs_shape: tuple, max_steps: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = _new_state(game, seed)
    steps = moves = 0
    while True:
        _check_node(game, state, seen_keys, obs_shape)
        if state.is_terminal():
            break
        if steps >= max_steps:
            raise _fail(game, state, f"no terminal state after {max_steps} steps")
        move = _pick(state, rng)
        if state.current_player() != CHANCE:
            moves += 1
        # clone independence: acting on a clone leaves the original untouched
        before_hist = list(state.history())
        keys_before = [state.information_state_key(p) for p in range(game.num_players)]
        twin = state.clone()
        _apply(twin, move)
        if state.history() != before_hist or [state.information_state_key(p) for p in range(game.num_players)] != keys_before:
            raise _fail(game, state, "applying an action to a clone changed the original state")
        _apply(state, move)
        if state.history() != twin.history():
            raise _fail(game, state, "a clone and its original diverged under the same action")
        steps += 1
    returns = np.asarray(state.returns(), dtype=np.float64)
    info = game.info
    if moves > info.max_game_length and info.dynamics == "sequential":
        raise _fail(game, state, f"{moves} moves exceed max_game_length {info.max_game_length}")
    if np.any(returns < info.min_utility - 1e-9) or np.any(returns > info.max_utility + 1e-9):
        raise _fail(game, state, f"returns {returns} outside [{info.min_utility}, {info.max_utility}]")
    if info.utility in ("zero_sum", "constant_sum") and info.utility_sum is not None:
        if abs(returns.sum() - info.utility_sum) > 1e-9:
            raise _fail(game, state, f"returns sum to {returns.sum()}, not {info.utility_sum} ({info.utility})")
    if info.utility == "identical" and not np.allclose(returns, returns[0]):
        raise _fail(game, state, f"identical-interest game has unequal returns {returns}")
    return state.history(), returns


def api_test(game: Game, num_games: int = 20, seed: int = 0, max_steps: int = 100_000) -> None:
    """Play `num_games` seeded random games and check the Game/State contract at every node.
    Raises ApiTestError on the first violation."""
    _check_info(game)
    obs_shape = tuple(np.asarray(_new_state(game, seed).observation(0)).shape)
    seen_keys: dict = {}
    for g in range(num_games):
        hist, ret = _play(game, seed + g, seen_keys, obs_shape, max_steps)
        hist2, ret2 = _play(game, seed + g, seen_keys, obs_shape, max_steps)
        if hist != hist2 or not np.array_equal(ret, ret2):
            raise _fail(game, None, f"the same seed ({seed + g}) gave two different games")


# ----------------------------------------------------------------------------- Markov games
def _random_actions(sim: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A uniformly random legal action for every slot (inactive ones included: they must be ignored)."""
    out = {}
    for name, mask in sim.action_mask().items():
        u = rng.random(mask.shape) * mask
        out[name] = np.argmax(u, axis=-1).astype(np.int64)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


def markov_api_test(game: Any, num_envs: int = 4, steps: int | None = None, seed: int = 0) -> None:
    """Check a Markov game's simulator contract on seeded random rollouts: spaces, shapes and
    dtypes; masks respected (an illegal action of an active agent is refused, inactive agents'
    actions are ignored and their rewards are zero); auto-reset keeps the final observation,
    active mask and state; termination vs truncation; get_state/set_state round trip; the
    same seed gives the same trajectories; and the single-State view agrees with the batched
    API. Raises ApiTestError on the first violation."""
    from equilibria.games.markov import MarkovGame
    from equilibria.games.spaces import check_obs, index_obs

    if not isinstance(game, MarkovGame):
        raise _fail(game, None, "markov_api_test needs a MarkovGame")
    steps = steps or 2 * game.max_steps + 3
    names = [g.name for g in game.groups]
    if len(set(names)) != len(names):
        raise _fail(game, None, f"group names repeat: {names}")
    if game.info.num_players != game.max_agents:
        raise _fail(game, None, f"info.num_players {game.info.num_players} != slots over groups {game.max_agents}")

    def check_batch(sim: Any, where: str) -> None:
        obs, active, mask = sim.observe(), sim.active(), sim.action_mask()
        for g in game.groups:
            try:
                check_obs(g.observation, obs[g.name], (sim.num_envs, g.size), f"{where}: obs[{g.name!r}]")
            except (KeyError, ValueError) as err:
                raise _fail(game, None, str(err)) from None
            a, m = np.asarray(active[g.name]), np.asarray(mask[g.name])
            if a.shape != (sim.num_envs, g.size) or a.dtype != bool:
                raise _fail(game, None, f"{where}: active[{g.name!r}] must be bool {(sim.num_envs, g.size)}")
            if m.shape != (sim.num_envs, g.size, g.num_actions) or m.dtype != bool:
                raise _fail(game, None, f"{where}: action_mask[{g.name!r}] must be bool "
                                        f"{(sim.num_envs, g.size, g.num_actions)}")
            if np.any(a & ~m.any(-1)):
                raise _fail(game, None, f"{where}: an active agent of {g.name!r} has no legal action")
            if not game.masks_actions and not m.all():
                raise _fail(game, None, f"{where}: action_mask[{g.name!r}] masks actions out but "
                                        "masks_actions is False")
        state = np.asarray(sim.global_state())
        if state.shape != (sim.num_envs, *game.state_shape) or state.dtype != np.float32:
            raise _fail(game, None, f"{where}: global_state has {state.shape} {state.dtype}, expected "
                                    f"{(sim.num_envs, *game.state_shape)} float32")

    def rollout(sim: Any, rng: np.random.Generator, n: int) -> list[Any]:
        out = []
        for t in range(n):
            acts = _random_actions(sim, rng)
            acting = sim.active()
            res = sim.step(acts)
            check_batch(sim, f"step {t}")
            for g in game.groups:
                r = np.asarray(res.rewards[g.name])
                if r.shape != (sim.num_envs, g.size) or not np.all(np.isfinite(r)):
                    raise _fail(game, None, f"step {t}: rewards[{g.name!r}] must be finite {(sim.num_envs, g.size)}")
                if np.any(r[~acting[g.name]] != 0):
                    raise _fail(game, None, f"step {t}: an inactive {g.name!r} agent was rewarded")
            if np.any(res.terminated & res.truncated):
                raise _fail(game, None, f"step {t}: an environment both terminated and truncated")
            if res.done.any():
                if res.final_obs is None or res.final_active is None or res.final_state is None:
                    raise _fail(game, None, f"step {t}: a finished environment lost its final observation")
                for g in game.groups:
                    check_obs(g.observation, res.final_obs[g.name], (sim.num_envs, g.size), "final_obs")
            out.append((acts, res.obs, res.rewards, res.active, res.terminated, res.truncated))
        return out

    rng = np.random.default_rng(seed)
    sim = game.simulator(num_envs, seed)
    check_batch(sim, "reset")
    # an illegal action of an active agent is refused
    for g in game.groups:
        mask, active = sim.action_mask()[g.name], sim.active()[g.name]
        illegal = np.argwhere(active[..., None] & ~mask)
        if len(illegal):
            acts = _random_actions(sim, rng)
            e, i, a = illegal[0]
            acts[g.name][e, i] = a
            try:
                sim.step(acts)
            except ValueError:
                pass
            else:
                raise _fail(game, None, f"an illegal action of an active {g.name!r} agent was accepted")
            sim.reset(seed)
            break
    # truncation exactly at the horizon, never before and never later
    sim = game.simulator(num_envs, seed)
    age = np.zeros(num_envs, dtype=np.int64)
    for _ in range(2 * game.max_steps + 1):
        res = sim.step(_random_actions(sim, rng))
        age += 1
        if np.any(res.truncated & (age != game.max_steps)):
            raise _fail(game, None, f"truncated after {age[res.truncated].min()} steps, not at the horizon {game.max_steps}")
        if np.any(~res.done & (age >= game.max_steps)):
            raise _fail(game, None, f"environments still running after the horizon {game.max_steps}")
        age[res.done] = 0
    # same seed, same trajectories; inactive agents' actions are ignored
    a, b = game.simulator(num_envs, seed + 1), game.simulator(num_envs, seed + 1)
    ra, rb = rollout(a, np.random.default_rng(seed), steps), rollout(b, np.random.default_rng(seed), steps)
    for (_, *rest_a), (_, *rest_b) in zip(ra, rb):
        if not all(_same(x, y) for x, y in zip(rest_a, rest_b)):
            raise _fail(game, None, "the same seed and actions gave different trajectories")
    c = game.simulator(num_envs, seed + 1)
    for acts, obs, rewards, *_ in ra:
        active = c.active()
        noisy = {k: np.where(active[k], v, np.random.default_rng(0).integers(0, 10**6, v.shape)) for k, v in acts.items()}
        res = c.step(noisy)
        if not (_same(res.obs, obs) and _same(res.rewards, rewards)):
            raise _fail(game, None, "the actions of inactive agents changed the game")
    # get_state / set_state round trip
    if sim.supports_state:
        sim = game.simulator(num_envs, seed + 2)
        rollout(sim, rng, 3)
        saved = sim.get_state()
        r7 = np.random.default_rng(7)
        acts, first = [], []
        for _ in range(game.max_steps + 2):  # through an auto-reset, which draws from the RNG
            acts.append(_random_actions(sim, r7))
            first.append(sim.step(acts[-1]))
        sim.set_state(saved)
        again = [sim.step(x) for x in acts]
        for x, y in zip(first, again):
            if not (_same(x.obs, y.obs) and _same(x.rewards, y.rewards) and _same(x.active, y.active)):
                raise _fail(game, None, "set_state(get_state()) did not restore the simulator")
    # the single-State view agrees with a one-environment simulator
    sim = game.simulator(1, seed + 3)
    state = game.new_initial_state(seed + 3)
    seats = game.seats()
    for t in range(game.max_steps):
        acts = _random_actions(sim, rng)
        mask, active = sim.action_mask(), sim.active()
        for p, (g, i) in enumerate(seats):
            legal = list(np.flatnonzero(mask[g][0, i])) if active[g][0, i] else []
            if state.legal_actions(p) != legal:
                raise _fail(game, state, f"step {t}: the State view's legal actions of player {p} differ from the mask")
        res = sim.step(acts, autoreset=False)
        joint = [acts[g][0, i] for g, i in seats]
        if t == 1:
            twin = state.clone()
        state.apply_actions(joint)
        if t == 1:
            twin.apply_actions(joint)
            if not np.array_equal(twin.returns(), state.returns()) or not _same(
                    twin.agent_observation(0), state.agent_observation(0)):
                raise _fail(game, state, "a cloned State continued differently from the original")
        r = np.concatenate([res.rewards[g.name][0] for g in game.groups])
        if not np.allclose(state.rewards(), r):
            raise _fail(game, state, "the State view's rewards differ from the simulator's")
        for p, (g, i) in enumerate(seats):
            if not _same(state.agent_observation(p), index_obs(res.obs[g], (0, i))):
                raise _fail(game, state, f"step {t}: the State view's observation of player {p} differs")
        if state.is_terminal() != bool(res.done[0]):
            raise _fail(game, state, "the State view ended at a different step than the simulator")
        if state.is_terminal():
            break
