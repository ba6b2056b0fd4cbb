"""`equilibria explain NAME`: what a scenario kind, game, solver, learner or agent type takes.

Field help comes from the config classes themselves (the docstring under each field, through
common.config.describe), so the CLI, the checker and the code never disagree.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel
from rich.markup import escape

from equilibria.common.config import ConfigError, describe, suggest, type_name
from equilibria.common.yamlio import dump_yaml


def _fields(cls: type[BaseModel], prefix: str = "") -> list[str]:
    lines = []
    for f in describe(cls):
        info = cls.model_fields[f.name]
        nested = typing.get_origin(info.annotation) is None and isinstance(info.annotation, type) \
            and issubclass(info.annotation, BaseModel)
        default = "" if nested else f" = {escape(repr(f.default))}"
        lines.append(f"  [bold]{prefix}{f.name}[/bold]: {escape(f.type)}{default}")
        if f.help:
            lines.append(f"      {escape(' '.join(f.help.split()))}")
        if nested:
            lines += _fields(info.annotation, f"{prefix}{f.name}.")
    return lines


def _kind(name: str) -> list[str]:
    from equilibria.scenarios.loading import ScenarioFields, builtins, load
    from equilibria.scenarios.registry import registered_kinds

    k = registered_kinds()[name]
    lines = [f"[bold]kind {name}[/bold]: {k.description}", "", "fields every scenario has:"]
    lines += _fields(ScenarioFields)
    lines += ["", f"fields of a {name!r} scenario:"] + _fields(k.config_cls)
    for example, path in builtins().items():
        try:
            if load(example).kind == name:
                lines += ["", f"example (built-in {example}, `equilibria run {example}`):",
                          escape(path.read_text().rstrip())]
                break
        except ConfigError:
            continue
    return lines


def _solver(name: str) -> list[str]:
    from equilibria import solvers

    e = solvers.entry(name)
    defaults = dict(solvers.build_config(name))
    lines = [f"[bold]solver {name}[/bold]: {e.description}", f"applies to: {e.kind} games"
             + (", two-player zero-sum only" if e.requires_zero_sum else ""), "", "config fields:"]
    lines += _fields(e.config_cls)
    if e.defaults:
        lines.append(f"  ({name} sets {', '.join(f'{k}={v!r}' for k, v in e.defaults.items())})")
    lines += ["", "example:", escape(dump_yaml({"solver": {"name": name, "config": defaults}}).rstrip())]
    return lines


def _game(name: str) -> list[str]:
    from equilibria import games

    entry = games.registry.entry(name)
    hints = typing.get_type_hints(entry.factory, include_extras=True)
    lines = [f"[bold]game {name}[/bold]: {entry.description}", "", "parameters:"]
    for p in inspect.signature(entry.factory).parameters.values():
        default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
        lines.append(f"  [bold]{p.name}[/bold]: {escape(type_name(hints.get(p.name, Any)))} = {escape(default)}")
    lines += ["", f"example: game: {escape(entry.example)}"]
    return lines


def _learner(name: str) -> list[str]:
    from equilibria import marl

    e = marl.entry(name)
    lines = [f"[bold]learner {name}[/bold]: {e.description}", "", "config fields:"]
    lines += _fields(e.config_cls)
    if e.defaults:
        lines.append(f"  ({name} sets {', '.join(f'{k}={v!r}' for k, v in e.defaults.items())})")
    lines += ["", "example:", escape(dump_yaml({"kind": "train", "game": "cooperative_navigation",
                                                "algorithm": {"name": name, "config": {"num_envs": 32}}}).rstrip())]
    return lines


def _agent(name: str) -> list[str]:
    from equilibria.llm_agents.agents import agent_types

    t = agent_types()[name]
    plays = "any game" if t.games is None else ", ".join(t.games)
    return [f"[bold]agent {name}[/bold]: {t.description} (plays {plays})", "",
            "a tournament lineup entry:", escape(dump_yaml({"lineup": [{"name": name, "agent": name}]}).rstrip())]


def explain(name: str) -> list[str]:
    """Lines of rich markup describing `name`, wherever it is registered (kinds first)."""
    from equilibria import games, marl, solvers
    from equilibria.llm_agents.agents import agent_types
    from equilibria.scenarios.registry import registered_kinds

    found: list[list[str]] = []
    if name in registered_kinds():
        found.append(_kind(name))
    if name in solvers.registered():
        found.append(_solver(name))
    if name in games.registered():
        found.append(_game(name))
    if name in marl.registered():
        found.append(_learner(name))
    if name in agent_types():
        found.append(_agent(name))
    if not found:
        known = [*registered_kinds(), *solvers.registered(), *games.registered(), *marl.registered(), *agent_types()]
        raise ConfigError(f"nothing is registered as {name!r}{suggest(name, known)} (try: equilibria list games, "
                          "solvers, learners, scenarios or kinds)")
    return [line for block in found for line in (*block, "")][:-1]
