"""The controller registry: rule-based players that hold every seat of a Markov game at once and
act from the batched simulator's state (a planner, PIBT, a random walk; ride dispatch's nearest
and greedy platforms), the baselines of an evaluation grid. A controller is built for one game
(`make(name, game, **params)`) and is evaluated like a learner: `evaluation_returns(episodes,
seed, deterministic)` -> [episodes], each episode's mean return per agent (and, when it has
them, `evaluation_metrics` with more per-episode measures, `record_episode` for an animation).
Lineup entries name one with `controller:` (and its `config:`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from equilibria.common.config import ConfigError, suggest


class Controller(Protocol):
    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class ControllerEntry:
    name: str
    factory: Callable[..., Controller]
    description: str


_CONTROLLERS: dict[str, ControllerEntry] = {}


def register_controller(name: str, *, description: str) -> Callable[[Callable[..., Controller]],
                                                                     Callable[..., Controller]]:
    def _do(factory: Callable[..., Controller]) -> Callable[..., Controller]:
        if name in _CONTROLLERS:
            raise ValueError(f"controller {name!r} is registered twice")
        _CONTROLLERS[name] = ControllerEntry(name, factory, description)
        return factory

    return _do


def _load_builtin() -> None:
    from equilibria.marl import dispatch_controllers, merge_eval  # noqa: F401  (register dispatch_nearest, dispatch_greedy, merge_idle)
    from equilibria.marl.mapf import controllers  # noqa: F401  (registers mapf_random, mapf_planner, pibt)


def registered() -> list[str]:
    _load_builtin()
    return sorted(_CONTROLLERS)


def entry(name: str) -> ControllerEntry:
    _load_builtin()
    if name not in _CONTROLLERS:
        raise ConfigError(f"unknown controller {name!r}{suggest(name, _CONTROLLERS)} "
                          f"(controllers: {', '.join(registered())})")
    return _CONTROLLERS[name]


def make(name: str, game: Any, **params: Any) -> Controller:
    """Controller `name` for `game`; ValueError naming the parameter when `params` do not fit it."""
    e = entry(name)
    accepted = [p for p in inspect.signature(e.factory).parameters if p != "game"]
    for key in params:
        if key not in accepted:
            raise ValueError(f"controller {name!r} has no parameter {key!r}{suggest(key, accepted)} "
                             f"(parameters: {', '.join(accepted) or 'none'})")
    return e.factory(game, **params)


__all__ = ["Controller", "ControllerEntry", "entry", "make", "register_controller", "registered"]
