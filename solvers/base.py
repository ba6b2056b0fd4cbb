"""One solver interface, a registry of named solvers with typed configs, and array policies.

    solver = solvers.make("cfr+", games.load("leduc_poker"))
    for _ in range(100):
        solver.step()
    solvers.exploitability(game, solver.average_policy())

State is explicit: `state_dict()` returns plain arrays and numbers (saved with numpy, no
pickling) and `load_state_dict()` restores a solver exactly, RNG included.
"""

from __future__ import annotations

import abc
import dataclasses
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from equilibria.common.config import Config, ConfigError, FieldPath, Source, build, suggest
from equilibria.games.core import SIMULTANEOUS, Game, Policy, State
from equilibria.games.tree import CompiledTree, check_tree_size, compile_tree

# ----------------------------------------------------------------------------- compiled-tree cache
_TREES: weakref.WeakKeyDictionary[Game, CompiledTree] = weakref.WeakKeyDictionary()


def tree_of(game: Game) -> CompiledTree:
    """The game's compiled tree, built once per game object."""
    tree = _TREES.get(game)
    if tree is None:
        tree = compile_tree(game)
        _TREES[game] = tree
    return tree


def has_payoff_tensor(game: Game) -> bool:
    return callable(getattr(game, "payoff_tensor", None))


# ----------------------------------------------------------------------------- policies
class TreePolicy:
    """A behaviour policy stored as one probability per legal-action slot of a compiled tree."""

    def __init__(self, tree: CompiledTree, probs: np.ndarray):
        if probs.shape != (tree.num_slots,):
            raise ValueError(f"policy array must have {tree.num_slots} slots, got shape {probs.shape}")
        self.tree = tree
        self.probs = probs

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Any, float]:
        player = state.current_player() if player is None else player
        i = self.tree.infoset_index.get((player, state.information_state_key(player)))
        if i is None:
            actions = state.legal_actions(player)
            return {a: 1.0 / len(actions) for a in actions} if actions else {}
        off, k = int(self.tree.infoset_offset[i]), int(self.tree.infoset_num_actions[i])
        return {int(self.tree.slot_action[off + j]): float(self.probs[off + j]) for j in range(k)}

    @classmethod
    def from_mass(cls, tree: CompiledTree, mass: np.ndarray) -> TreePolicy:
        """Normalise accumulated per-slot mass (average-policy sums) infoset by infoset;
        uniform where nothing was accumulated."""
        from equilibria.solvers import kernels

        out = np.empty(tree.num_slots)
        kernels.normalize_per_infoset(mass, tree.infoset_offset, tree.infoset_num_actions, out)
        return cls(tree, out)

    def table(self) -> dict[Hashable, dict[int, float]]:
        return self.tree.array_to_table(self.probs)

    def to_openspiel(self) -> Any:
        """This policy as an OpenSpiel TabularPolicy (for games with an OpenSpiel equivalent)."""
        from equilibria.games.adapters.openspiel import to_openspiel_policy

        return to_openspiel_policy(self.tree.game, self)


class NormalFormPolicy:
    """One mixed strategy per player of a normal-form game."""

    def __init__(self, strategies: list[np.ndarray]):
        self.strategies = [np.asarray(s, dtype=np.float64) for s in strategies]

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Any, float]:
        if player is None or player < 0:
            if state.current_player() != SIMULTANEOUS:
                return {}
            raise ValueError("normal-form policies need the player at a simultaneous node")
        legal = state.legal_actions(player)
        return {a: float(self.strategies[player][a]) for a in legal}

    def to_openspiel(self) -> Any:  # pragma: no cover - convenience for matrix games
        raise ValueError("normal-form policies convert to OpenSpiel as plain arrays: use .strategies")


def policy_to_array(game: Game, policy: Policy) -> np.ndarray:
    """Any Policy on a finite game as flat slot probabilities of the game's compiled tree."""
    tree = tree_of(game)
    if isinstance(policy, TreePolicy) and policy.tree is tree:
        return policy.probs
    tree_array = getattr(policy, "tree_array", None)  # policies keyed by infoset (MCCFR's) map by key
    if callable(tree_array):
        return tree_array(tree)
    return tree.policy_to_array(policy)


def policy_to_strategies(game: Game, policy: Policy) -> list[np.ndarray]:
    """Any Policy on a normal-form game as one mixed strategy per player."""
    if isinstance(policy, NormalFormPolicy):
        return policy.strategies
    state = game.new_initial_state()
    out = []
    for p, n in enumerate(game.payoff_tensor().shape[1:]):
        probs = policy.action_probabilities(state, p)
        s = np.array([probs.get(a, 0.0) for a in range(n)], dtype=np.float64)
        if s.sum() <= 0:
            raise ValueError(f"policy gives player {p} no probability on any action")
        out.append(s / s.sum())
    return out


# ----------------------------------------------------------------------------- solver base
class Solver(abc.ABC):
    """Explicit state in, state out: step() advances one iteration."""

    name: str = ""
    config: Any

    def __init__(self, game: Game, config: Any):
        self.game = game
        self.config = config
        self.iteration = 0

    @abc.abstractmethod
    def step(self) -> None: ...

    @abc.abstractmethod
    def average_policy(self) -> Policy: ...

    @abc.abstractmethod
    def current_policy(self) -> Policy: ...

    @abc.abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The solver's mutable arrays, by name (modified in place by load_state_dict)."""

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: np.array(v, copy=True) for k, v in self._arrays().items()}
        out["iteration"] = self.iteration
        out["solver"] = self.name
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if str(state.get("solver", self.name)) != self.name:
            raise ValueError(f"checkpoint is for solver {state.get('solver')!r}, not {self.name!r}")
        arrays = self._arrays()
        for k, v in arrays.items():
            if k not in state:
                raise ValueError(f"checkpoint lacks array {k!r} for solver {self.name!r}")
            new = np.asarray(state[k])
            if new.shape != v.shape:
                raise ValueError(f"checkpoint array {k!r} has shape {new.shape}, expected {v.shape}")
            v[...] = new
        self.iteration = int(state["iteration"])

    def run(self, iterations: int) -> Solver:
        for _ in range(iterations):
            self.step()
        return self


@dataclasses.dataclass(frozen=True)
class SolverEntry:
    name: str
    cls: Callable[..., Solver]
    config_cls: type[Config]
    defaults: dict[str, Any]
    description: str
    requires_zero_sum: bool
    kind: str  # "tree" (compiled tree) | "sampled" (any finite game, no tree) | "normal_form" | "any"


_SOLVERS: dict[str, SolverEntry] = {}


def register_solver(name: str, config_cls: type[Config], *, description: str, kind: str,
                    requires_zero_sum: bool = False, **defaults: Any) -> Callable[[Callable[..., Solver]], Callable[..., Solver]]:
    """Register a solver class under `name`; `defaults` make named variants thin configurations
    of one class (cfr+ is cfr with regret_matching_plus and linear averaging)."""

    def _do(cls: Callable[..., Solver]) -> Callable[..., Solver]:
        if name in _SOLVERS:
            raise ValueError(f"solver {name!r} is registered twice")
        unknown = set(defaults) - set(config_cls.model_fields)
        if unknown:
            raise ValueError(f"solver {name!r}: defaults {sorted(unknown)} are not fields of {config_cls.__name__}")
        _SOLVERS[name] = SolverEntry(name, cls, config_cls, dict(defaults), description, requires_zero_sum, kind)
        return cls

    return _do


def registered() -> list[str]:
    return sorted(_SOLVERS)


def entry(name: str) -> SolverEntry:
    if name not in _SOLVERS:
        raise ConfigError(f"unknown solver {name!r}{suggest(name, _SOLVERS)} (solvers: {', '.join(registered())})")
    return _SOLVERS[name]


def build_config(name: str, config: Mapping[str, Any] | None = None, *, source: Source | str | None = None,
                 path: FieldPath = ()) -> Config:
    """The typed config of solver `name`: its registered defaults, overridden by `config`.
    Unknown keys, wrong types and out-of-range values raise ConfigError naming the field
    (`source` and `path` say where the config came from, e.g. a scenario file's solver.config)."""
    e = entry(name)
    return build(e.config_cls, {**e.defaults, **(config or {})}, source or f"solver {name!r}", path)


def make(name: str, game: Game, **config: Any) -> Solver:
    """Build solver `name` on `game`; config keys are checked against the solver's typed config."""
    e = entry(name)
    cfg = build_config(name, config)
    return make_with(e, game, cfg)


def make_with(e: SolverEntry, game: Game, cfg: Config) -> Solver:
    """Build the solver of registry entry `e` with an already checked config."""
    check_applicable(e, game)
    solver = e.cls(game, cfg)  # a Solver class, or a factory that picks one by the game's form
    solver.name = e.name
    return solver


def check_applicable(e: SolverEntry, game: Game) -> None:
    """ValueError when solver `e` does not apply to `game` (checked without building anything;
    a tree solver's game must also fit the compiled tree, by its size estimate)."""
    name = e.name
    info = game.info
    if e.requires_zero_sum and not (info.is_zero_sum and info.num_players == 2):
        raise ValueError(f"solver {name!r} needs a two-player zero-sum (or constant-sum) game; "
                         f"{info.name} is {info.num_players}-player {info.utility}")
    if e.kind in ("tree", "sampled") and not info.is_finite:
        raise ValueError(f"solver {name!r} needs a finite game with enumerable actions and chance; "
                         f"{info.name} has {'text actions' if info.action_type == 'text' else 'sampled chance'}")
    if e.kind == "normal_form" and not has_payoff_tensor(game):
        raise ValueError(f"solver {name!r} works on normal-form games (with payoff_tensor()); "
                         f"{info.name} is {info.dynamics} extensive-form -- try cfr+ or mmd")
    if e.kind == "any" and not (has_payoff_tensor(game) or info.is_finite):
        raise ValueError(f"solver {name!r} needs a normal-form or finite extensive-form game; {info.name} is neither")
    if e.kind == "tree" or (e.kind == "any" and not has_payoff_tensor(game)):
        check_tree_size(game)
