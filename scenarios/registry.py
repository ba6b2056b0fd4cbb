"""The registry of scenario kinds: a kind is a config class and two functions.

    def prepare_solve(scenario: Scenario) -> SolvePlan: ...   # every check; cheap, no side effects
    @register_kind("solve", SolveConfig, prepare=prepare_solve, description="...")
    def run_solve(plan: SolvePlan, ctx: RunContext) -> dict: ...

`equilibria validate` calls `prepare` only; `equilibria run` calls `prepare`, creates the run
directory, then `run`. Kinds register on import of equilibria.scenarios.kinds, which the package
imports; this module imports no other part of scenarios/.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from equilibria.common.config import ConfigError, suggest


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    config_cls: type
    prepare: Callable[[Any], Any]  # Scenario -> plan: all validation, nothing expensive
    run: Callable[[Any, Any], dict]  # (plan, RunContext) -> final metrics
    description: str


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, config_cls: type, *, prepare: Callable[[Any], Any], description: str):
    def _do(fn: Callable[[Any, Any], dict]) -> Callable[[Any, Any], dict]:
        if name in _KINDS:
            raise ValueError(f"scenario kind {name!r} is registered twice")
        _KINDS[name] = Kind(name, config_cls, prepare, fn, description)
        return fn

    return _do


def registered_kinds() -> dict[str, Kind]:
    return dict(_KINDS)


def kind(name: Any) -> Kind:
    if not isinstance(name, str) or name not in _KINDS:
        raise ConfigError(f"unknown kind {name!r}{suggest(str(name), list(_KINDS))} (kinds: {', '.join(sorted(_KINDS))})",
                          ("kind",))
    return _KINDS[name]
