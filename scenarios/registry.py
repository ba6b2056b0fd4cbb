"""The registry of scenario kinds: a kind is a config class and two functions.

    def prepare_solve(scenario: Scenario) -> SolvePlan: ...   # every check; cheap, no side effects
    @register_kind("solve", SolveConfig, prepare=prepare_solve, description="...")
    def run_solve(plan: SolvePlan, ctx: RunContext) -> dict: ...

`equilibria validate` calls `prepare` only; `equilibria run` calls `prepare`, creates the run
directory, then `run`. The built-in kinds live in equilibria.scenarios.kinds.<name> and register
when that module is imported, which happens the first time the kind is asked for: the CLI starts
without torch and the learners, and a solve scenario never loads them. This module imports no
other part of scenarios/ at import time.
"""

from __future__ import annotations

import dataclasses
import importlib
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
BUILTIN_KINDS = ("debate", "evaluate", "lspo", "population", "populations", "preference", "solve", "tournament",
                 "train")  # each registered by equilibria.scenarios.kinds.<name>


def _import_builtin(name: str) -> None:
    importlib.import_module(f"equilibria.scenarios.kinds.{name}")


def register_kind(name: str, config_cls: type, *, prepare: Callable[[Any], Any], description: str):
    def _do(fn: Callable[[Any, Any], dict]) -> Callable[[Any, Any], dict]:
        if name in BUILTIN_KINDS and name not in _KINDS and fn.__module__ != f"equilibria.scenarios.kinds.{name}":
            _import_builtin(name)  # a built-in's name taken by another module: the duplicate is reported now
        if name in _KINDS:
            raise ValueError(f"scenario kind {name!r} is registered twice")
        _KINDS[name] = Kind(name, config_cls, prepare, fn, description)
        return fn

    return _do


def registered_kinds() -> dict[str, Kind]:
    """Every kind, the built-ins imported first."""
    for name in BUILTIN_KINDS:
        if name not in _KINDS:
            _import_builtin(name)
    return dict(_KINDS)


def kind(name: Any) -> Kind:
    if isinstance(name, str) and name not in _KINDS and name in BUILTIN_KINDS:
        _import_builtin(name)
    if not isinstance(name, str) or name not in _KINDS:
        known = sorted(set(_KINDS) | set(BUILTIN_KINDS))
        raise ConfigError(f"unknown kind {name!r}{suggest(str(name), known)} (kinds: {', '.join(known)})", ("kind",))
    return _KINDS[name]
