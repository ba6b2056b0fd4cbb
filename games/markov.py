"""Batched Markov games: many environments stepped as arrays, plus the derived single-State view.

A `BatchedMarkovGame` implements `_reset_envs` and `_step` on arrays of shape
[num_envs, num_agents, ...]. Everything else (the `reset`/`step` API with auto-reset,
the `State` view used by api_test, tournaments and the PettingZoo adapter) is derived here
once, so no environment is written twice.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from equilibria.games.core import SIMULTANEOUS, TERMINAL, Game, State


@dataclass
class StepResult:
    obs: np.ndarray  # [E, N, obs_dim] observation after the step (reset obs where an episode ended)
    rewards: np.ndarray  # [E, N]
    terminated: np.ndarray  # [E] bool: the episode reached a terminal state
    truncated: np.ndarray  # [E] bool: the episode hit the step limit
    final_obs: np.ndarray | None = None  # [E, N, obs_dim] terminal observations where done, else None
    final_state: np.ndarray | None = None  # [E, state_dim] terminal global states where done, else None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


class BatchedMarkovGame(Game):
    """Base class. Subclasses set `info`, `num_agents`, `obs_dim`, `num_actions`, `max_steps`,
    `state_keys` (names of the array attributes that make up the simulator state) and implement
    `_reset_envs(idx)`, `_step(actions)`, `_observe()`."""

    num_agents: int
    obs_dim: int
    num_actions: int
    max_steps: int
    state_keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.num_envs = 0
        self.t = np.zeros(0, dtype=np.int64)
        self.rng = np.random.default_rng(0)

    # -- subclass hooks ---------------------------------------------------------
    @abc.abstractmethod
    def _allocate(self, num_envs: int) -> None:
        """Create the state arrays for `num_envs` environments."""

    @abc.abstractmethod
    def _reset_envs(self, idx: np.ndarray) -> None:
        """Draw fresh initial states for the environments in `idx` from self.rng."""

    @abc.abstractmethod
    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance every environment; return (rewards [E, N], terminated [E])."""

    @abc.abstractmethod
    def _observe(self) -> np.ndarray:
        """Observations [E, N, obs_dim] (float32)."""

    def global_state(self) -> np.ndarray:
        """State for centralized critics [E, state_dim]; default: all observations concatenated."""
        obs = self._observe()
        return obs.reshape(obs.shape[0], -1)

    def action_mask(self) -> np.ndarray:
        """Legal actions [E, N, num_actions]; default: all legal."""
        return np.ones((self.num_envs, self.num_agents, self.num_actions), dtype=bool)

    # -- batched API ------------------------------------------------------------
    def reset(self, num_envs: int = 1, seed: int | None = None) -> np.ndarray:
        """Start `num_envs` episodes; returns observations [E, N, obs_dim]."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.rng = np.random.default_rng(seed)
        self.num_envs = num_envs
        self._allocate(num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self._reset_envs(np.arange(num_envs))
        return self._observe()

    def step(self, actions: np.ndarray, autoreset: bool = True) -> StepResult:
        """Step every environment with `actions` [E, N] (ints). Finished episodes are reset when
        `autoreset`; their terminal observations are kept in `final_obs`, never silently lost."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.num_agents):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_agents)}, got {actions.shape}")
        if np.any(actions < 0) or np.any(actions >= self.num_actions):
            raise ValueError(f"actions must lie in [0, {self.num_actions})")
        rewards, terminated = self._step(actions.astype(np.int64))
        self.t += 1
        truncated = (self.t >= self.max_steps) & ~terminated
        obs = self._observe()
        done = terminated | truncated
        final_obs = final_state = None
        if autoreset and done.any():
            final_obs = obs.copy()
            final_state = self.global_state().copy()
            idx = np.flatnonzero(done)
            self.t[idx] = 0
            self._reset_envs(idx)
            obs = self._observe()
        return StepResult(obs, rewards, terminated, truncated, final_obs, final_state)

    def get_state(self) -> dict[str, np.ndarray]:
        """Copy of the simulator state (for clone / checkpoints)."""
        out = {k: getattr(self, k).copy() for k in self.state_keys}
        out["t"] = self.t.copy()
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for k in self.state_keys:
            setattr(self, k, state[k].copy())
        self.t = state["t"].copy()
        self.num_envs = len(self.t)

    @abc.abstractmethod
    def spawn(self) -> BatchedMarkovGame:
        """A fresh simulator with the same parameters (each State view owns one)."""

    # -- single-State view ------------------------------------------------------
    def new_initial_state(self, seed: int | None = 0) -> MarkovState:
        return MarkovState(self, seed)

    def observation_shape(self) -> tuple[int, ...]:
        return (self.obs_dim,)


class MarkovState(State):
    """One environment of a batched game viewed as a `State` (simultaneous moves each step)."""

    def __init__(self, game: BatchedMarkovGame, seed: int | None, _sim: BatchedMarkovGame | None = None):
        self.game = game
        self.seed = seed
        self.sim = _sim if _sim is not None else game.spawn()
        if _sim is None:
            self.sim.reset(1, seed)
        self._returns = np.zeros(game.num_agents)
        self._rewards = np.zeros(game.num_agents)
        self._done = False
        self.truncated = False
        self._hist: list[int] = []
        self._last_obs = self.sim._observe()[0]

    def current_player(self) -> int:
        return TERMINAL if self._done else SIMULTANEOUS

    def is_terminal(self) -> bool:
        return self._done

    def legal_actions(self, player: int | None = None) -> list[int]:
        if self._done or player is None or player < 0:
            return []
        return [int(a) for a in np.flatnonzero(self.sim.action_mask()[0, player])]

    def apply_action(self, action: int) -> None:
        raise ValueError("Markov games move simultaneously: use apply_actions(joint)")

    def apply_actions(self, actions: Sequence[int]) -> None:
        if self._done:
            raise ValueError("apply_actions on a terminal state")
        res = self.sim.step(np.asarray(actions, dtype=np.int64)[None, :], autoreset=False)
        self._rewards = res.rewards[0].astype(np.float64)
        self._returns = self._returns + self._rewards
        self._done = bool(res.done[0])
        self.truncated = bool(res.truncated[0])
        self._hist.extend(int(a) for a in actions)
        self._last_obs = res.obs[0]

    def returns(self) -> np.ndarray:
        return self._returns.copy()

    def rewards(self) -> np.ndarray:
        return self._rewards.copy()

    def information_state_key(self, player: int) -> str:
        # Markov games are fully described by the seed and the joint-action history.
        return f"p{player}|seed {self.seed}|" + " ".join(map(str, self._hist))

    def observation(self, player: int) -> np.ndarray:
        return self._last_obs[player].astype(np.float32)

    def clone(self) -> MarkovState:
        sim = self.game.spawn()
        sim.rng = np.random.default_rng()
        sim.rng.bit_generator.state = self.sim.rng.bit_generator.state
        sim.set_state(self.sim.get_state())
        new = MarkovState(self.game, self.seed, _sim=sim)
        new._returns, new._rewards, new._done = self._returns.copy(), self._rewards.copy(), self._done
        new.truncated = self.truncated
        new._hist, new._last_obs = list(self._hist), self._last_obs.copy()
        return new

    def history(self) -> list[int]:
        return list(self._hist)

