"""The shared game abstraction: GameInfo, Game, State, Policy.

Every problem in equilibria is a game. This module is the one contract that solvers,
learners, tournaments and adapters rely on. It follows OpenSpiel's Game/State split
(sequential and simultaneous moves, explicit chance, information states) and keeps the
player-id constants numerically equal to OpenSpiel's, so adapters never translate them.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

CHANCE = -1
SIMULTANEOUS = -2
TERMINAL = -4

Action = Any  # an int id for finite games; a str where GameInfo.action_type == "text"

Dynamics = Literal["sequential", "simultaneous"]
Information = Literal["perfect", "imperfect"]
Utility = Literal["zero_sum", "constant_sum", "general", "identical"]
ActionType = Literal["discrete", "text"]
RewardModel = Literal["terminal", "step"]


@dataclasses.dataclass(frozen=True)
class GameInfo:
    """What a game is, declared once; solvers and tests read it to decide what applies."""

    name: str
    num_players: int
    dynamics: Dynamics = "sequential"
    chance: bool = False
    information: Information = "imperfect"
    utility: Utility = "zero_sum"
    min_utility: float = -1.0
    max_utility: float = 1.0
    max_game_length: int = 1
    num_distinct_actions: int | None = None  # None: unbounded (text actions)
    action_type: ActionType = "discrete"
    utility_sum: float | None = 0.0  # sum of returns for zero/constant-sum games
    # Markov games draw continuous initial states from a seed instead of enumerable chance.
    sampled_chance: bool = False
    # "terminal": returns are 0 until the end (poker, matrix games); "step": rewards every step.
    reward_model: RewardModel = "terminal"
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_players < 1:
            raise ValueError(f"{self.name}: num_players must be >= 1, got {self.num_players}")
        if self.dynamics not in ("sequential", "simultaneous"):
            raise ValueError(f"{self.name}: unknown dynamics {self.dynamics!r}")
        if self.utility not in ("zero_sum", "constant_sum", "general", "identical"):
            raise ValueError(f"{self.name}: unknown utility {self.utility!r}")
        if self.action_type not in ("discrete", "text"):
            raise ValueError(f"{self.name}: unknown action_type {self.action_type!r}")

    @property
    def is_finite(self) -> bool:
        """True when every node has finitely many enumerable actions and outcomes."""
        return self.action_type == "discrete" and not self.sampled_chance

    @property
    def is_zero_sum(self) -> bool:
        return self.utility in ("zero_sum", "constant_sum")


@dataclasses.dataclass(frozen=True)
class SizeEstimate:
    """What a game takes, estimated from its parameters before it is built: `bytes` to build
    the game object itself (payoff tensors), `histories` in its game tree (None where the tree
    is not enumerable or the count is unknown) and `bytes_per_env` for one environment of a
    batched simulator. Loading, tree compilation and learners check these against the machine."""

    bytes: float = 0.0
    histories: float | None = None
    bytes_per_env: float = 0.0


class State(abc.ABC):
    """One history of a game. Mutable: apply_action changes it in place; clone() copies."""

    @abc.abstractmethod
    def current_player(self) -> int:
        """A player id in [0, n), or CHANCE, SIMULTANEOUS or TERMINAL."""

    @abc.abstractmethod
    def legal_actions(self, player: int | None = None) -> list[Action]:
        """Legal actions of `player` (default: the current player); [] where it cannot act."""

    def chance_outcomes(self) -> list[tuple[Action, float]]:
        """(outcome, probability) pairs at a chance node."""
        raise ValueError("chance_outcomes() called on a state that is not a chance node")

    @abc.abstractmethod
    def apply_action(self, action: Action) -> None:
        """Apply a chance outcome or the current player's action."""

    def apply_actions(self, actions: Sequence[Action]) -> None:
        """Apply one action per player at a simultaneous node (None for a player with no legal
        actions at this node, e.g. an inactive agent of a Markov game)."""
        raise ValueError("apply_actions() called on a state that is not simultaneous")

    @abc.abstractmethod
    def is_terminal(self) -> bool: ...

    @abc.abstractmethod
    def returns(self) -> np.ndarray:
        """Cumulative return of each player so far (final at terminal states)."""

    def rewards(self) -> np.ndarray:
        """Reward each player received on the last transition (terminal-reward games: 0 until the end)."""
        return self.returns() if self.is_terminal() else np.zeros(len(self.returns()))

    @abc.abstractmethod
    def information_state_key(self, player: int) -> Hashable:
        """Everything `player` knows here, as a hashable key; equal keys share a policy."""

    @abc.abstractmethod
    def observation(self, player: int) -> np.ndarray:
        """A numeric (float32) view of what `player` knows, for neural policies."""

    @abc.abstractmethod
    def clone(self) -> State: ...

    @abc.abstractmethod
    def history(self) -> list[Action]:
        """Every action applied so far (chance outcomes included), flattened for simultaneous moves."""

    # Convenience, derived from current_player().
    def is_chance_node(self) -> bool:
        return self.current_player() == CHANCE

    def is_simultaneous_node(self) -> bool:
        return self.current_player() == SIMULTANEOUS

    def child(self, action: Action) -> State:
        new = self.clone()
        new.apply_action(action)
        return new

    def action_to_string(self, player: int, action: Action) -> str:
        return str(action)

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.history())


class Game(abc.ABC):
    """An immutable game: a factory for states plus its GameInfo."""

    info: GameInfo
    size_estimate: SizeEstimate | None = None  # set by games that can grow large

    @abc.abstractmethod
    def new_initial_state(self) -> State: ...

    @property
    def num_players(self) -> int:
        return self.info.num_players

    def observation_shape(self) -> tuple[int, ...]:
        return tuple(self.new_initial_state().observation(0).shape)

    def action_name(self, action: Action) -> str:
        """A readable name for an action id (finite games may override)."""
        return str(action)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.info.parameters.items())
        return f"{self.info.name}({params})"


@runtime_checkable
class Policy(Protocol):
    """Anything that can act: tabular, neural, scripted and LLM policies alike."""

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        """A distribution over `player`'s legal actions at `state` (default: the current player)."""
        ...


JointAction = tuple[Action, ...]  # one action per seat, None for a seat with no legal action


@runtime_checkable
class JointPolicy(Protocol):
    """A policy over joint actions at simultaneous nodes (its agents' actions may be correlated).
    The engine draws whole joint actions from it when it holds every seat that acts at a node,
    and uses its per-seat `action_probabilities` (its marginals) otherwise."""

    def joint_action_probabilities(self, state: State) -> dict[JointAction, float]: ...


def marginals(joint: Mapping[JointAction, float], player: int) -> dict[Action, float]:
    """One seat's marginal distribution of a joint-action distribution."""
    out: dict[Action, float] = {}
    for actions, p in joint.items():
        a = actions[player]
        if a is not None:
            out[a] = out.get(a, 0.0) + p
    return out


class CorrelatedPolicy(abc.ABC):
    """Base of a JointPolicy: per-seat action probabilities are the joint distribution's
    marginals, so a seat played on its own keeps its own distribution (not the correlation)."""

    @abc.abstractmethod
    def joint_action_probabilities(self, state: State) -> dict[JointAction, float]: ...

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        return marginals(self.joint_action_probabilities(state), player)


class UniformRandomPolicy:
    """Uniform over the legal actions; the usual baseline and default."""

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        actions = state.legal_actions(player)
        if not actions:
            return {}
        p = 1.0 / len(actions)
        return {a: p for a in actions}


class ScriptedPolicy:
    """A fixed rule over the legal actions: `random` (uniform), `first_action` or `last_action`
    (the baselines tournaments put in a lineup)."""

    KINDS = ("random", "first_action", "last_action")

    def __init__(self, kind: str):
        if kind not in self.KINDS:
            raise ValueError(f"scripted policy must be one of {', '.join(self.KINDS)}, got {kind!r}")
        self.kind = kind

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        legal = state.legal_actions(player)
        if self.kind == "random":
            return {a: 1.0 / len(legal) for a in legal}
        pick = legal[0] if self.kind == "first_action" else legal[-1]
        return {a: float(a == pick) for a in legal}


class TabularPolicy:
    """A policy stored per information-state key: {key: {action: prob}}.

    Keys missing from the table fall back to uniform over the legal actions, so a partial
    table is still a complete policy.
    """

    def __init__(self, table: Mapping[Hashable, Mapping[Action, float]] | None = None):
        self.table: dict[Hashable, dict[Action, float]] = {
            k: dict(v) for k, v in (table or {}).items()
        }

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        probs = self.table.get(state.information_state_key(player))
        if probs is None:
            return UniformRandomPolicy().action_probabilities(state, player)
        return dict(probs)

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"TabularPolicy({len(self.table)} information states)"


def sample_action(probs: Mapping[Action, float], rng: np.random.Generator) -> Action:
    """Draw one action from {action: prob} (probabilities renormalised against rounding).
    The same draw as rng.choice(n, p=p) (one uniform against the cumulative sums), without its
    per-call validation, which cost more than the rest of a Kuhn match."""
    actions = list(probs)
    cdf = np.cumsum(np.fromiter(probs.values(), dtype=np.float64, count=len(actions)))
    if not cdf[-1] > 0 or not np.isfinite(cdf[-1]):
        raise ValueError(f"probabilities must be finite with a positive sum, got {dict(probs)}")
    cdf /= cdf[-1]
    return actions[int(cdf.searchsorted(rng.random(), side="right"))]


def sample_chance(state: State, rng: np.random.Generator) -> Action:
    """Draw a chance outcome at a chance node."""
    outcomes = state.chance_outcomes()
    return sample_action(dict(outcomes), rng)
