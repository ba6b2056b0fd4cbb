"""Markov games: an immutable description plus a stateful, batched simulator.

`MarkovGame` describes: its agent groups (games.spaces.Group: spaces, slots), the global state
critics read (`state_shape`), the horizon, its parameters. `game.simulator(num_envs, seed)`
returns a `Simulator`: E environments stepped as arrays, everything keyed by group:

    sim = game.simulator(64, seed=0)
    obs = sim.observe()                      # {group: [E, n, *obs] (or a dict of parts)}
    active = sim.active()                    # {group: bool [E, n]}: who acts this step
    mask = sim.action_mask()                 # {group: bool [E, n, A]}
    res = sim.step({group: actions [E, n]})  # StepResult; finished environments auto-reset

Agents come and go: a group has `size` slots and the active mask says which hold an agent that
acts (and is rewarded) at this step; an agent whose slot turns inactive has left (its own
trajectory ends), and each episode may draw its own population. Inactive agents' actions are
ignored by the simulator and their rewards are zero. Termination (the task ended) and
truncation (the horizon) are separate; a finished environment's last observation, active mask
and global state are kept in `final_*`, never lost to the auto-reset.

`ArraySimulator` implements the public API from a few array hooks for native games; wrappers
(PettingZoo environments, PSRO's game against a mixture) implement the API directly. The single
`State` view (`game.new_initial_state(seed)`), the PettingZoo and RLlib adapters are derived from
the simulator, not written twice.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from equilibria.common.limits import check_memory
from equilibria.games.core import SIMULTANEOUS, TERMINAL, Game, State
from equilibria.games.spaces import Composite, Group, index_obs

Batch = dict[str, Any]  # group name -> an array (or a dict of arrays for composite observations)


@dataclass
class StepResult:
    obs: Batch  # observations after the step (reset observations where an environment finished)
    rewards: dict[str, np.ndarray]  # [E, n]: what each agent that acted got (zero where inactive)
    active: dict[str, np.ndarray]  # [E, n] bool: who acts at the next step
    terminated: np.ndarray  # [E] bool: the episode reached a terminal state
    truncated: np.ndarray  # [E] bool: the episode hit the horizon
    final_obs: Batch | None = None  # where an environment finished: its last observations
    final_active: dict[str, np.ndarray] | None = None  # ... who was still present at its end
    final_state: np.ndarray | None = None  # ... its last global state [E, *state_shape]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


class Simulator(abc.ABC):
    """The stateful, batched part of a Markov game (see the module docstring)."""

    game: MarkovGame
    num_envs: int
    rng: np.random.Generator
    supports_state: bool = True  # get_state / set_state round-trip the simulator exactly

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Batch:
        """Restart every environment (re-seeding the simulator when `seed` is given)."""

    @abc.abstractmethod
    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult: ...

    @abc.abstractmethod
    def observe(self) -> Batch: ...

    @abc.abstractmethod
    def active(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def action_mask(self) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def global_state(self) -> np.ndarray:
        """[E, *state_shape] for centralised critics."""

    @abc.abstractmethod
    def get_state(self) -> dict[str, Any]:
        """A copy of the simulator's state (arrays and plain numbers), RNG included."""

    @abc.abstractmethod
    def set_state(self, state: dict[str, Any]) -> None: ...


class MarkovGame(Game):
    """An immutable Markov game. Subclasses set `info`, `groups`, `state_shape`, `max_steps` and
    implement `simulator`."""

    groups: tuple[Group, ...]
    state_shape: tuple[int, ...]
    max_steps: int
    # True when some action can be illegal (the simulator overrides action_mask); views that
    # sample actions (PettingZoo's {"observation", "action_mask"} dicts) read it
    masks_actions: bool = False
    # (name, factor): the score users of this game compare is factor x the mean return per agent
    # (lifelong MAPF's average throughput); evaluation reports and plots use it. None: the return
    report_metric: tuple[str, float] | None = None

    @abc.abstractmethod
    def simulator(self, num_envs: int = 1, seed: int | None = None) -> Simulator: ...

    def group(self, name: str | None = None) -> Group:
        """The named group (or the only one)."""
        if name is None:
            if len(self.groups) != 1:
                raise ValueError(f"{self.info.name} has groups {[g.name for g in self.groups]}; name one")
            return self.groups[0]
        for g in self.groups:
            if g.name == name:
                return g
        raise ValueError(f"{self.info.name} has no group {name!r} (groups: {[g.name for g in self.groups]})")

    @property
    def max_agents(self) -> int:
        return sum(g.size for g in self.groups)

    def seats(self) -> list[tuple[str, int]]:
        """(group, slot) of each player of the single-State view, in order."""
        return [(g.name, i) for g in self.groups for i in range(g.size)]

    def agent_names(self) -> list[str]:
        """`{group}_{slot}` for each seat: the agent names of the PettingZoo and RLlib views."""
        return [f"{g}_{i}" for g, i in self.seats()]

    def observation_shape(self) -> tuple[int, ...]:
        """The single-State view's observation: one agent's observation flattened (composite parts
        in order), zero-padded to the largest group's size."""
        return (max(_flat_size(g.observation) for g in self.groups),)

    def new_initial_state(self, seed: int | None = 0) -> MarkovState:
        return MarkovState(self, seed)


def _flat_size(observation: Any) -> int:
    if isinstance(observation, Composite):
        return sum(b.size for b in observation.parts.values())
    return observation.size


def flatten_obs(value: Any) -> np.ndarray:
    """One agent's observation (an array, or a dict of parts) as a flat float32 vector."""
    if isinstance(value, dict):
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in value.values()])
    return np.asarray(value, dtype=np.float32).ravel()


class ArraySimulator(Simulator):
    """The public Simulator API from array hooks; native games subclass it.

    Hooks: `_allocate()` creates the state arrays for `num_envs` environments (listed in
    `state_keys` for get/set_state), `_reset_envs(idx)` draws fresh episodes (and their
    populations) from `self.rng`, `_step(actions)` advances every environment and returns
    (rewards {group: [E, n]}, terminated [E]), `_observe()` the observations; `active()`,
    `action_mask()` and `global_state()` default to everyone present, everything legal and the
    observations concatenated."""

    state_keys: tuple[str, ...] = ()

    def __init__(self, game: MarkovGame, num_envs: int = 1, seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        est = getattr(game, "size_estimate", None)
        if est is not None and est.bytes_per_env:  # refused before allocating, whoever builds the simulator
            check_memory(f"{num_envs} environment(s) of {game!r}", num_envs * est.bytes_per_env)
        self.game, self.num_envs = game, num_envs
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(num_envs, dtype=np.int64)
        # a game without its own action_mask never forbids an action: skip the legality lookup
        self._every_action_legal = type(self).action_mask is ArraySimulator.action_mask
        self._allocate()
        self._reset_envs(np.arange(num_envs))

    # -- hooks ----------------------------------------------------------------------
    @abc.abstractmethod
    def _allocate(self) -> None: ...

    @abc.abstractmethod
    def _reset_envs(self, idx: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]: ...

    @abc.abstractmethod
    def _observe(self) -> Batch: ...

    def active(self) -> dict[str, np.ndarray]:
        return {g.name: np.ones((self.num_envs, g.size), dtype=bool) for g in self.game.groups}

    def action_mask(self) -> dict[str, np.ndarray]:
        return {g.name: np.ones((self.num_envs, g.size, g.num_actions), dtype=bool) for g in self.game.groups}

    def global_state(self) -> np.ndarray:
        parts = []
        for g in self.game.groups:
            obs = self._observe()[g.name]
            flat = np.concatenate([v.reshape(self.num_envs, -1) for v in obs.values()], axis=1) \
                if isinstance(obs, dict) else obs.reshape(self.num_envs, -1)
            parts.append(flat)
        return np.concatenate(parts, axis=1).astype(np.float32)

    # -- public API -------------------------------------------------------------------
    def observe(self) -> Batch:
        return self._observe()

    def reset(self, seed: int | None = None) -> Batch:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._allocate()
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self._reset_envs(np.arange(self.num_envs))
        return self._observe()

    def _check_actions(self, actions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict keyed by group ({[g.name for g in self.game.groups]})")
        out = {}
        active = self.active()
        mask = None if self._every_action_legal else self.action_mask()
        for g in self.game.groups:
            if g.name not in actions:
                raise ValueError(f"actions for group {g.name!r} are missing")
            a = np.asarray(actions[g.name])
            if a.shape != (self.num_envs, g.size):
                raise ValueError(f"actions[{g.name!r}] must have shape {(self.num_envs, g.size)}, got {a.shape}")
            a = a.astype(np.int64)
            acting = active[g.name]
            chosen = a[acting]
            if np.any(chosen < 0) or np.any(chosen >= g.num_actions):
                raise ValueError(f"actions[{g.name!r}] of active agents must lie in [0, {g.num_actions})")
            if self._every_action_legal:
                out[g.name] = np.where(acting, a, 0)
                continue
            legal = np.take_along_axis(mask[g.name], np.clip(a, 0, g.num_actions - 1)[..., None], -1)[..., 0]
            if not np.all(legal[acting]):
                e, i = np.argwhere(acting & ~legal)[0]
                raise ValueError(f"actions[{g.name!r}][{e}, {i}] = {a[e, i]} is masked out")
            out[g.name] = np.where(acting, a, 0)
        return out

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        acts = self._check_actions(actions)
        acting = self.active()
        rewards, terminated = self._step(acts)
        rewards = {k: np.where(acting[k], v, 0.0) for k, v in rewards.items()}
        self.t += 1
        truncated = (self.t >= self.game.max_steps) & ~terminated
        done = terminated | truncated
        res = StepResult(self._observe(), rewards, self.active(), terminated, truncated)
        if autoreset and done.any():
            res.final_obs = copy.deepcopy(res.obs)
            res.final_active = {k: v.copy() for k, v in res.active.items()}
            res.final_state = self.global_state().copy()
            idx = np.flatnonzero(done)
            self.t[idx] = 0
            self._reset_envs(idx)
            res.obs, res.active = self._observe(), self.active()
        return res

    def get_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: copy.deepcopy(getattr(self, k)) for k in self.state_keys}
        out["t"] = self.t.copy()
        out["rng"] = copy.deepcopy(self.rng.bit_generator.state)
        return out

    def set_state(self, state: dict[str, Any]) -> None:
        for k in self.state_keys:
            setattr(self, k, copy.deepcopy(state[k]))
        self.t = np.array(state["t"], dtype=np.int64)
        self.num_envs = len(self.t)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


# ----------------------------------------------------------------------------- single-State view
class MarkovState(State):
    """One environment of a Markov game as a `State` (simultaneous moves every step). Players are
    the game's slots in group order; an inactive slot has no legal actions and its observation is
    zeros; apply_actions takes one action per player (anything for an inactive one)."""

    def __init__(self, game: MarkovGame, seed: int | None, _sim: Simulator | None = None):
        self.game, self.seed = game, seed
        self.sim = _sim if _sim is not None else game.simulator(1, seed)
        n = game.max_agents
        self._returns = np.zeros(n)
        self._rewards = np.zeros(n)
        self._done = False
        self.truncated = False
        self._hist: list[int] = []
        self._joints: list[tuple[Any, ...]] = []
        self._obs = self.sim.observe()
        self._active = self.sim.active()
        self._seats = game.seats()

    def current_player(self) -> int:
        return TERMINAL if self._done else SIMULTANEOUS

    def is_terminal(self) -> bool:
        return self._done

    def legal_actions(self, player: int | None = None) -> list[int]:
        if self._done or player is None or player < 0:
            return []
        group, slot = self._seats[player]
        if not self._active[group][0, slot]:
            return []
        return [int(a) for a in np.flatnonzero(self.sim.action_mask()[group][0, slot])]

    def apply_action(self, action: int) -> None:
        raise ValueError("Markov games move simultaneously: use apply_actions(joint)")

    def apply_actions(self, actions: Sequence[Any]) -> None:
        if self._done:
            raise ValueError("apply_actions on a terminal state")
        joint = {g.name: np.zeros((1, g.size), dtype=np.int64) for g in self.game.groups}
        for p, a in enumerate(actions):
            group, slot = self._seats[p]
            joint[group][0, slot] = 0 if a is None else int(a)
        res = self.sim.step(joint, autoreset=False)
        self._rewards = np.concatenate([res.rewards[g.name][0] for g in self.game.groups]).astype(np.float64)
        self._returns = self._returns + self._rewards
        self._done = bool(res.done[0])
        self.truncated = bool(res.truncated[0])
        self._hist.extend(0 if a is None else int(a) for a in actions)
        self._joints.append(tuple(actions))
        self._obs, self._active = res.obs, res.active

    def returns(self) -> np.ndarray:
        return self._returns.copy()

    def rewards(self) -> np.ndarray:
        return self._rewards.copy()

    def information_state_key(self, player: int) -> str:
        # a Markov game's environment is fully described by the seed and the joint-action history
        return f"p{player}|seed {self.seed}|" + " ".join(map(str, self._hist))

    def agent_observation(self, player: int) -> Any:
        """The player's observation as its group declares it (an array or a dict of parts)."""
        group, slot = self._seats[player]
        return index_obs(self._obs[group], (0, slot))

    def is_active(self, player: int) -> bool:
        group, slot = self._seats[player]
        return bool(self._active[group][0, slot])

    def observation(self, player: int) -> np.ndarray:
        out = np.zeros(self.game.observation_shape(), dtype=np.float32)
        flat = flatten_obs(self.agent_observation(player))
        out[: len(flat)] = flat
        return out

    def clone(self) -> MarkovState:
        sim = self.game.simulator(1, self.seed)
        if not self.sim.supports_state:  # replay the joint actions from the seed instead
            new = MarkovState(self.game, self.seed, _sim=sim)
            for joint in self._joints:
                new.apply_actions(joint)
            return new
        sim.set_state(self.sim.get_state())
        new = MarkovState(self.game, self.seed, _sim=sim)
        new._returns, new._rewards, new._done = self._returns.copy(), self._rewards.copy(), self._done
        new.truncated, new._hist, new._joints = self.truncated, list(self._hist), list(self._joints)
        new._obs, new._active = copy.deepcopy(self._obs), copy.deepcopy(self._active)
        return new

    def history(self) -> list[int]:
        return list(self._hist)


__all__ = ["ArraySimulator", "Batch", "MarkovGame", "MarkovState", "Simulator", "StepResult", "flatten_obs"]
