"""PettingZoo adapter: any equilibria Game as an AEC or Parallel env, and any PettingZoo
Parallel env as a Game.

- Sequential games become AEC envs (turn-based, observations {"observation", "action_mask"}).
- Simultaneous and Markov games become Parallel envs.
Chance nodes are resolved inside the env with its seeded RNG.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, GameInfo, State, sample_chance
from equilibria.games.markov import MarkovGame, MarkovState, Simulator, StepResult
from equilibria.games.spaces import Box, Discrete, Group


def _spaces():
    from gymnasium import spaces

    return spaces


def _agent(p: int) -> str:
    return f"player_{p}"


class _GameEnvMixin:
    """Shared spaces, chance resolution and observations for both env kinds."""

    game: Game
    masks: bool

    def _setup(self, game: Game, masks: bool) -> None:
        if game.info.action_type != "discrete" or not game.info.num_distinct_actions:
            raise ValueError(f"to_pettingzoo: {game.info.name} has no finite action space")
        self.game = game
        self.masks = masks
        self.possible_agents = game.agent_names() if isinstance(game, MarkovGame) else \
            [_agent(p) for p in range(game.num_players)]
        self.agent_to_player = {a: i for i, a in enumerate(self.possible_agents)}
        self._obs_shape = game.observation_shape()
        self._rng = np.random.default_rng()
        self.state: State | None = None

    @functools.cache  # noqa: B019 - PettingZoo requires the same space object per agent
    def observation_space(self, agent: str):
        spaces = _spaces()
        box = spaces.Box(low=-np.inf, high=np.inf, shape=self._obs_shape, dtype=np.float32)
        if not self.masks:
            return box
        n = self.game.info.num_distinct_actions
        return spaces.Dict({"observation": box, "action_mask": spaces.Box(0, 1, shape=(n,), dtype=np.int8)})

    @functools.cache  # noqa: B019
    def action_space(self, agent: str):
        return _spaces().Discrete(self.game.info.num_distinct_actions)

    def _new_state(self, seed: int | None) -> State:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if isinstance(self.game, MarkovGame):
            return self.game.new_initial_state(seed=int(self._rng.integers(2**31)))
        return self.game.new_initial_state()

    def _resolve_chance(self) -> None:
        while self.state.current_player() == CHANCE:
            self.state.apply_action(sample_chance(self.state, self._rng))

    def _live(self) -> list[str]:
        """Agents in play: every one, except the inactive seats of a Markov game."""
        if isinstance(self.state, MarkovState):
            return [a for a in self.possible_agents if self.state.is_active(self.agent_to_player[a])]
        return list(self.possible_agents)

    def _observe(self, player: int) -> Any:
        obs = np.asarray(self.state.observation(player), dtype=np.float32)
        if not self.masks:
            return obs
        mask = np.zeros(self.game.info.num_distinct_actions, dtype=np.int8)
        legal = self.state.legal_actions(player)
        mask[legal] = 1
        return {"observation": obs, "action_mask": mask}

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None


def _aec_base():
    from pettingzoo import AECEnv

    return AECEnv


def _parallel_base():
    from pettingzoo import ParallelEnv

    return ParallelEnv


@functools.cache
def _aec_class():
    class GameAECEnv(_GameEnvMixin, _aec_base()):
        """Turn-based view of a sequential Game."""

        metadata = {"render_modes": [], "name": "equilibria_aec", "is_parallelizable": False}

        def __init__(self, game: Game, masks: bool = True):
            super().__init__()
            self._setup(game, masks)
            self.metadata = {**self.metadata, "name": game.info.name}

        def reset(self, seed: int | None = None, options: dict | None = None) -> None:
            self.state = self._new_state(seed)
            self._resolve_chance()
            self.agents = list(self.possible_agents)
            self.rewards = {a: 0.0 for a in self.agents}
            self._cumulative_rewards = {a: 0.0 for a in self.agents}
            self.terminations = {a: False for a in self.agents}
            self.truncations = {a: False for a in self.agents}
            self.infos = {a: {} for a in self.agents}
            self._select()

        def _select(self) -> None:
            cur = self.state.current_player()
            if cur >= 0:
                self.agent_selection = _agent(cur)
            elif cur == TERMINAL:
                self.agent_selection = self.agents[0] if self.agents else self.possible_agents[0]
            else:
                raise ValueError(f"AEC env reached an unsupported node type {cur}")

        def observe(self, agent: str) -> Any:
            return self._observe(self.agent_to_player[agent])

        def step(self, action: Any) -> None:
            agent = self.agent_selection
            if self.terminations[agent] or self.truncations[agent]:
                self._was_dead_step(action)
                return
            player = self.agent_to_player[agent]
            legal = self.state.legal_actions(player)
            if action is None or int(action) not in legal:
                raise ValueError(f"{self.game.info.name}: illegal action {action!r} for {agent}; legal: {legal}")
            before = self.state.returns()
            self.state.apply_action(int(action))
            self._resolve_chance()
            gained = self.state.returns() - before
            self._cumulative_rewards[agent] = 0.0
            for a in self.agents:
                self.rewards[a] = float(gained[self.agent_to_player[a]])
            if self.state.is_terminal():
                for a in self.agents:
                    self.terminations[a] = True
            self._select()
            self._accumulate_rewards()

    return GameAECEnv


@functools.cache
def _parallel_class():
    class GameParallelEnv(_GameEnvMixin, _parallel_base()):
        """Simultaneous-move view of a simultaneous or Markov Game."""

        metadata = {"render_modes": [], "name": "equilibria_parallel"}

        def __init__(self, game: Game, masks: bool = True):
            self._setup(game, masks)
            self.metadata = {**self.metadata, "name": game.info.name}
            self.agents: list[str] = []

        def reset(self, seed: int | None = None, options: dict | None = None):
            self.state = self._new_state(seed)
            self._resolve_chance()
            self.agents = self._live()
            obs = {a: self._observe(self.agent_to_player[a]) for a in self.agents}
            return obs, {a: {} for a in self.agents}

        def step(self, actions: dict[str, Any]):
            if self.state is None or self.state.is_terminal():
                raise ValueError("step() called on a finished episode; call reset()")
            if self.state.current_player() != SIMULTANEOUS:
                raise ValueError("Parallel env reached a non-simultaneous node")
            joint: list[int | None] = [None] * len(self.possible_agents)
            for a in self.agents:
                if a not in actions:
                    raise ValueError(f"missing action for {a}")
                joint[self.agent_to_player[a]] = int(actions[a])
            before = self.state.returns()
            self.state.apply_actions(joint)
            self._resolve_chance()
            gained = self.state.returns() - before
            done = self.state.is_terminal()
            truncated = done and bool(getattr(self.state, "truncated", False))
            agents = self.agents
            live = set(self._live())
            obs = {a: self._observe(self.agent_to_player[a]) for a in agents}
            rew = {a: float(gained[self.agent_to_player[a]]) for a in agents}
            # an agent that left the game has reached its end
            term = {a: (done and not truncated) or a not in live for a in agents}
            trunc = {a: truncated and a in live for a in agents}
            infos = {a: {} for a in agents}
            self.agents = [] if done else [a for a in self.possible_agents if a in live]
            return obs, rew, term, trunc, infos

    return GameParallelEnv


def to_pettingzoo(game: Game, masks: bool | None = None) -> Any:
    """An AEC env for a sequential game, a Parallel env for simultaneous and Markov games.
    `masks` puts {"observation", "action_mask"} dicts in observations (default: on, except
    for Markov games whose actions are never restricted)."""
    if masks is None:
        masks = not isinstance(game, MarkovGame) or game.masks_actions
    if game.info.dynamics == "sequential":
        return _aec_class()(game, masks)
    return _parallel_class()(game, masks)


# ----------------------------------------------------------------------------- from PettingZoo
class PettingZooGame(Game):
    """A PettingZoo Parallel env as a Game. States replay (seed, joint actions) to clone, so the
    wrapped env must be deterministic given its seed (PettingZoo's seed_test property)."""

    def __init__(self, env_fn: Any, name: str = "pettingzoo", max_game_length: int = 1000):
        self.env_fn = env_fn
        from pettingzoo import AECEnv

        probe = env_fn()
        if isinstance(probe, AECEnv):
            raise ValueError("from_pettingzoo wraps Parallel envs; convert AEC envs with "
                             "pettingzoo.utils.aec_to_parallel first")
        if not hasattr(probe, "possible_agents") or not hasattr(probe, "step"):
            raise ValueError("from_pettingzoo needs a PettingZoo ParallelEnv (or a function returning one)")
        self.agents = list(probe.possible_agents)
        spaces = [probe.action_space(a) for a in self.agents]
        if not all(hasattr(s, "n") for s in spaces):
            raise ValueError("from_pettingzoo supports Discrete action spaces only")
        self.num_actions = [int(s.n) for s in spaces]
        obs_spaces = [probe.observation_space(a) for a in self.agents]
        self.obs_dims = [int(np.prod(s.shape)) for s in obs_spaces]
        probe.close()
        self.info = GameInfo(
            name=name, num_players=len(self.agents), dynamics="simultaneous", chance=True,
            information="imperfect", utility="general", min_utility=-np.inf, max_utility=np.inf,
            max_game_length=max_game_length, num_distinct_actions=max(self.num_actions), utility_sum=None,
            sampled_chance=True, reward_model="step", parameters={"env": name},
        )

    def new_initial_state(self, seed: int | None = 0) -> PettingZooState:
        return PettingZooState(self, seed)

    def observation_shape(self) -> tuple[int, ...]:
        return (max(self.obs_dims),)


class PettingZooState(State):
    def __init__(self, game: PettingZooGame, seed: int | None, _replay: Sequence[Sequence[int]] = ()):
        self.game = game
        self.seed = seed
        self.env = game.env_fn()
        obs, _ = self.env.reset(seed=seed)
        self._obs = obs
        self._joint: list[tuple[int, ...]] = []
        self._returns = np.zeros(game.num_players)
        self._rewards = np.zeros(game.num_players)
        self._done = False
        self.truncated = False
        for joint in _replay:
            self.apply_actions(joint)

    def current_player(self) -> int:
        return TERMINAL if self._done else SIMULTANEOUS

    def is_terminal(self) -> bool:
        return self._done

    def legal_actions(self, player: int | None = None) -> list[int]:
        if self._done or player is None or player < 0:
            return []
        return list(range(self.game.num_actions[player]))

    def apply_action(self, action: int) -> None:
        raise ValueError("PettingZoo Parallel games move simultaneously: use apply_actions(joint)")

    def apply_actions(self, actions: Sequence[int]) -> None:
        if self._done:
            raise ValueError("apply_actions on a terminal state")
        agents = self.game.agents
        obs, rew, term, trunc, _ = self.env.step({a: int(x) for a, x in zip(agents, actions)})
        self._obs = obs
        self._rewards = np.array([float(rew.get(a, 0.0)) for a in agents])
        self._returns = self._returns + self._rewards
        self._joint.append(tuple(int(x) for x in actions))
        if all(term.get(a, False) or trunc.get(a, False) for a in agents) or not self.env.agents:
            self._done = True
            self.truncated = not any(term.get(a, False) for a in agents)

    def returns(self) -> np.ndarray:
        return self._returns.copy()

    def rewards(self) -> np.ndarray:
        return self._rewards.copy()

    def information_state_key(self, player: int) -> str:
        return f"p{player}|seed {self.seed}|" + " ".join(",".join(map(str, j)) for j in self._joint)

    def observation(self, player: int) -> np.ndarray:
        obs = self._obs.get(self.game.agents[player])
        out = np.zeros(max(self.game.obs_dims), dtype=np.float32)
        if obs is not None:
            flat = np.asarray(obs, dtype=np.float32).ravel()
            out[: len(flat)] = flat
        return out

    def clone(self) -> PettingZooState:
        return PettingZooState(self.game, self.seed, _replay=self._joint)

    def history(self) -> list[int]:
        return [a for j in self._joint for a in j]


def from_pettingzoo(env: Any, name: str | None = None) -> PettingZooGame:
    """Wrap a PettingZoo ParallelEnv: an instance (deep-copied for each new state) or a
    zero-argument function that builds one."""
    if callable(env) and not hasattr(env, "step"):
        env_fn = env
    else:
        template = env

        def env_fn() -> Any:
            return copy.deepcopy(template)

    probe_name = name or getattr(env_fn(), "metadata", {}).get("name", "pettingzoo")
    return PettingZooGame(env_fn, name=probe_name)


# ----------------------------------------------------------------------------- batched PettingZoo
def _prefix(agent: str) -> str:
    return agent.rsplit("_", 1)[0] if "_" in agent else agent


class BatchedPettingZoo(MarkovGame):
    """E copies of a PettingZoo Parallel env stepped together, as a Markov game, so marl/ trains on
    real PettingZoo environments. Agents form groups by name prefix and spaces (`adversary_0`,
    `adversary_1` -> group `adversary`), each with its own observation and action space; agents
    the env has not (or no longer) in play are inactive. The global state is every agent's
    observation concatenated. Env internals cannot be copied generically, so the simulator has no
    get_state/set_state (supports_state is False: a resumed run re-seeds its environments, the
    single-State view clones by replaying)."""

    def __init__(self, env_fn: Any, name: str = "pettingzoo", max_steps: int = 1000):
        self.template = PettingZooGame(env_fn, name=name, max_game_length=max_steps)
        self.env_fn = env_fn
        self.max_steps = max_steps
        probe = env_fn()
        sizes = {a: int(np.prod(probe.observation_space(a).shape)) for a in self.template.agents}
        probe.close()
        keys: dict[tuple, list[str]] = {}
        for a, n in zip(self.template.agents, self.template.num_actions):
            keys.setdefault((_prefix(a), sizes[a], n), []).append(a)
        prefixes = [k[0] for k in keys]
        groups, self.members = [], {}
        for (prefix, size, n), agents in keys.items():
            gname = prefix if prefixes.count(prefix) == 1 else f"{prefix}_{size}x{n}"
            groups.append(Group(gname, len(agents), Box((size,)), Discrete(n)))
            self.members[gname] = agents
        self.groups = tuple(groups)
        self.state_shape = (sum(g.size * g.observation.size for g in groups),)
        self.info = dataclasses.replace(self.template.info, name=name)

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> PettingZooSimulator:
        return PettingZooSimulator(self, num_envs, seed)


class PettingZooSimulator(Simulator):
    supports_state = False

    def __init__(self, game: BatchedPettingZoo, num_envs: int = 1, seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.game, self.num_envs = game, num_envs
        self.envs = [game.env_fn() for _ in range(num_envs)]
        self.reset(seed)

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None or not hasattr(self, "rng"):
            self.rng = np.random.default_rng(seed)
        g = self.game
        self._obs = {grp.name: np.zeros((self.num_envs, grp.size, grp.observation.size), dtype=np.float32)
                     for grp in g.groups}
        self._active = {grp.name: np.zeros((self.num_envs, grp.size), dtype=bool) for grp in g.groups}
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        for e in range(self.num_envs):
            self._reset_env(e)
        return self.observe()

    def _reset_env(self, e: int) -> None:
        obs, _ = self.envs[e].reset(seed=int(self.rng.integers(2**31)))
        self.t[e] = 0
        self._write(e, obs)

    def _write(self, e: int, obs: dict) -> None:
        live = set(self.envs[e].agents)
        for gname, agents in self.game.members.items():
            self._obs[gname][e] = 0.0
            for i, a in enumerate(agents):
                self._active[gname][e, i] = a in live
                if a in obs:
                    self._obs[gname][e, i] = np.asarray(obs[a], dtype=np.float32).ravel()

    def observe(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._obs.items()}

    def active(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._active.items()}

    def action_mask(self) -> dict[str, np.ndarray]:
        return {g.name: np.ones((self.num_envs, g.size, g.num_actions), dtype=bool) for g in self.game.groups}

    def global_state(self) -> np.ndarray:
        return np.concatenate([self._obs[g.name].reshape(self.num_envs, -1) for g in self.game.groups], axis=1)

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        g = self.game
        rewards = {grp.name: np.zeros((self.num_envs, grp.size)) for grp in g.groups}
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for grp in g.groups:
            a = np.asarray(actions.get(grp.name)) if grp.name in actions else None
            if a is None or a.shape != (self.num_envs, grp.size):
                raise ValueError(f"actions[{grp.name!r}] must have shape {(self.num_envs, grp.size)}")
            bad = self._active[grp.name] & ((a < 0) | (a >= grp.num_actions))
            if bad.any():
                raise ValueError(f"actions[{grp.name!r}] of active agents must lie in [0, {grp.num_actions})")
        for e, env in enumerate(self.envs):
            live = set(env.agents)
            joint = {a: int(actions[gname][e, i]) for gname, agents in g.members.items()
                     for i, a in enumerate(agents) if a in live}
            obs, rew, term, trunc, _ = env.step(joint)
            self.t[e] += 1
            for gname, agents in g.members.items():
                for i, a in enumerate(agents):
                    rewards[gname][e, i] = float(rew.get(a, 0.0))
            self._write(e, obs)
            if not env.agents or all(term.get(a, False) or trunc.get(a, False) for a in live):
                # an env-side end is a termination unless every agent was truncated
                terminated[e] = not all(trunc.get(a, False) for a in live)
                truncated[e] = not terminated[e]
            elif self.t[e] >= g.max_steps:
                truncated[e] = True
        res = StepResult(self.observe(), rewards, self.active(), terminated, truncated)
        done = terminated | truncated
        if autoreset and done.any():
            res.final_obs, res.final_active, res.final_state = res.obs, res.active, self.global_state()
            for e in np.flatnonzero(done):
                self._reset_env(int(e))
            res.obs, res.active = self.observe(), self.active()
        return res

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError("PettingZoo envs cannot be copied generically (supports_state is False)")

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("PettingZoo envs cannot be copied generically (supports_state is False)")
