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
    for p in range(info.num_players):
        legal = state.legal_actions(p)
        if cur == TERMINAL or p not in movers:
            if legal:
                raise _fail(game, state, f"player {p} has legal actions {legal} but is not to move")
            continue
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
        return [state.legal_actions(p)[int(rng.integers(len(state.legal_actions(p))))]
                for p in range(len(state.returns()))]
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
