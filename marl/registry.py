"""The learner registry: every multi-agent learner under one name space, like solvers'.

A learner is a class with a typed config (common.config.Config, a docstring per field saying what
it is and its paper default) that trains on a Markov game (games.markov.MarkovGame) through the
`Learner` protocol below. Named variants are thin configurations of one class (ippo is mappo with
local critics). A learner may also define `extra_evaluation(episodes) -> {name: number}`: the
train kind logs those beside each evaluation (bnac: the return with its DAG's edges removed);
and `eval_deterministic = False` when its evaluations sample actions (MAMQL on Gems, as the paper
evaluates). `kind: train` picks a learner by its `algorithm:` name; `equilibria list learners`
and `equilibria explain NAME` show them with their fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from equilibria.common.config import Config, ConfigError, FieldPath, Source, build, suggest
from equilibria.games.core import Game, Policy


@runtime_checkable
class Learner(Protocol):
    """What the train kind, evaluation and checkpoints need from a learner."""

    env_steps: int

    def train_step(self) -> dict[str, float]:
        """One update; returns at least env_steps and episode_return (nan when no episode ended)."""

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        """Mean evaluation return per agent and its 95% CI half-width (greedy actions when
        `deterministic`)."""

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        """[episodes]: each evaluation episode's mean return per agent (marl.runtime.mean_over_present),
        the episodes stepped as one batch; `evaluate` is their mean and interval."""

    def policy(self, deterministic: bool = False) -> Policy: ...

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain numbers only (torch.load(weights_only=True) reads it back)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class LearnerEntry:
    name: str
    cls: Callable[..., Learner]
    config_cls: type[Config]
    defaults: dict[str, Any]
    description: str
    preflight: Callable[[Game, Config], None] | None  # ValueError when (game, config) cannot run


_LEARNERS: dict[str, LearnerEntry] = {}


def register_learner(name: str, config_cls: type[Config], *, description: str,
                     preflight: Callable[[Game, Config], None] | None = None,
                     **defaults: Any) -> Callable[[Callable[..., Learner]], Callable[..., Learner]]:
    """Register a learner class under `name`; `defaults` make named variants."""

    def _do(cls: Callable[..., Learner]) -> Callable[..., Learner]:
        if name in _LEARNERS:
            raise ValueError(f"learner {name!r} is registered twice")
        unknown = set(defaults) - set(config_cls.model_fields)
        if unknown:
            raise ValueError(f"learner {name!r}: defaults {sorted(unknown)} are not fields of {config_cls.__name__}")
        _LEARNERS[name] = LearnerEntry(name, cls, config_cls, dict(defaults), description, preflight)
        return cls

    return _do


def _load_builtin() -> None:
    from equilibria.marl import bnac, dqn, mamql, mappo, mappo_pis, mra, ospo  # noqa: F401  (register bnac, ..., dqn, dqn_offline, mamql, ..., mappo, ippo, mappo_pis, mappo_sem, mappo_merge, mra, mra_unimodal, ospo, grpo, dispatch_ppo)
    from equilibria.marl.mapf import follower  # noqa: F401  (registers follower)


def registered() -> list[str]:
    _load_builtin()
    return sorted(_LEARNERS)


def entry(name: str) -> LearnerEntry:
    _load_builtin()
    if name not in _LEARNERS:
        raise ConfigError(f"unknown learner {name!r}{suggest(name, _LEARNERS)} (learners: {', '.join(registered())})")
    return _LEARNERS[name]


def build_config(name: str, config: Mapping[str, Any] | None = None, *, source: Source | str | None = None,
                 path: FieldPath = ()) -> Config:
    """The typed config of learner `name`: its registered defaults overridden by `config`
    (ConfigError naming the field on unknown keys, wrong types, out-of-range values)."""
    e = entry(name)
    return build(e.config_cls, {**e.defaults, **(config or {})}, source or f"learner {name!r}", path)


def check_applicable(e: LearnerEntry, game: Game, config: Config) -> None:
    """ValueError when learner `e` cannot train on `game` with `config` (nothing is built)."""
    from equilibria.games.markov import MarkovGame

    if not isinstance(game, MarkovGame):
        raise ValueError(f"learner {e.name!r} trains on Markov games (e.g. cooperative_navigation); "
                         f"{game.info.name} is not one")
    if e.preflight is not None:
        e.preflight(game, config)


def make_with(e: LearnerEntry, game: Game, config: Config, seed: int = 0) -> Learner:
    check_applicable(e, game, config)
    learner = e.cls(game, config, seed)
    learner.name = e.name
    return learner


def make(name: str, game: Game, seed: int = 0, **config: Any) -> Learner:
    """Build learner `name` on `game`; config keys are checked against its typed config."""
    return make_with(entry(name), game, build_config(name, config), seed)


__all__ = ["Learner", "LearnerEntry", "build_config", "check_applicable", "entry", "make", "make_with",
           "register_learner", "registered"]
