"""Scenario files: YAML (or a built-in by name) -> a validated `Scenario`, and reading a run
directory's resolved config back for `--resume`."""

from __future__ import annotations

import dataclasses
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field

from equilibria.common.config import (
    Config,
    ConfigError,
    FieldPath,
    PositiveFloat,
    PositiveInt,
    Seed,
    Source,
    build,
    suggest,
    to_plain,
)
from equilibria.common.limits import MAX_RUN_NAME
from equilibria.common.yamlio import load_yaml_file, parse_value
from equilibria.scenarios.registry import kind as kind_named

C = TypeVar("C", bound=Config)


# ----------------------------------------------------------------------------- schema
class Budget(Config):
    """How long to run: any of iterations (solvers), steps (learners), seconds (wall clock)."""

    iterations: PositiveInt | None = None
    """solver iterations"""
    steps: PositiveInt | None = None
    """environment steps (learners)"""
    seconds: PositiveFloat | None = None
    """wall-clock seconds of computation"""


class ScenarioFields(Config):
    """The fields every scenario has, whatever its kind."""

    name: str
    """names the run directory: letters, digits, '.', '_', '+', '-', at most 100 characters"""
    kind: str
    """the scenario kind: `equilibria list kinds` (solve, preference, train, tournament, population, evaluate, ...)"""
    game: str | dict | None = None
    """a registry string ('leduc_poker', 'random_zero_sum(n=100)') or a mapping {name: ..., param: ...};
    required by every kind but evaluate (which takes `games`)"""
    description: str = ""
    seed: Seed = 0
    backend: Literal["local", "ray", "rllib"] = "local"
    """where independent jobs run: this process, Ray tasks, or RLlib (train)"""
    output: str = "runs"
    """parent directory of the run directory, inside the directory the scenario is run from"""
    budget: Budget = Field(default_factory=Budget)

    def check(self) -> None:
        if not _RUN_NAME.fullmatch(self.name) or len(self.name) > MAX_RUN_NAME:
            raise ValueError(f"name: names the run directory, so it takes letters, digits, '.', '_', '+' and '-' "
                             f"(not first), at most {MAX_RUN_NAME} characters; got {self.name[:120]!r}")
        out = Path(self.output)
        parts = Path(os.path.normpath(self.output)).parts
        if out.is_absolute() or (parts and parts[0] == ".."):
            raise ValueError(f"output: a scenario writes inside the directory it is run from; {self.output!r} points "
                             "outside it (give --out on the command line to write elsewhere)")


COMMON_KEYS = tuple(ScenarioFields.model_fields)
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclasses.dataclass
class Scenario:
    name: str
    kind: str
    game: Any  # registry string or mapping, resolved by the kind
    config: Any  # the kind's typed config
    description: str = ""
    seed: int = 0
    backend: Literal["local", "ray", "rllib"] = "local"
    output: str = "runs"
    budget: Budget = dataclasses.field(default_factory=Budget)
    source: Source = dataclasses.field(default_factory=lambda: Source("scenario"))
    raw: dict = dataclasses.field(default_factory=dict, repr=False)

    def error(self, reason: str, *path: str) -> ConfigError:
        return self.source.error(reason, tuple(path))

    def build(self, cls: type[C], data: Any, *path: str) -> C:
        """A nested typed config (a solver's, a learner's) checked where it sits in this scenario."""
        return build(cls, data, self.source, tuple(path))

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in), as written to config.yaml."""
        out = {"name": self.name, "description": self.description, "kind": self.kind, "game": self.game,
               "seed": self.seed, "backend": self.backend, "output": self.output,
               "budget": to_plain(self.budget)}
        if self.game is None:  # a kind that takes its games elsewhere (evaluate's `games`)
            del out["game"]
        out.update(to_plain(self.config))
        return out



# ----------------------------------------------------------------------------- loading
def builtin_dir() -> Path:
    return Path(str(resources.files("equilibria.scenarios") / "builtin"))


def builtins() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir().glob("*.yaml"))}


def _set_path(data: dict, dotted: str, value: Any) -> FieldPath:
    keys = tuple(k for k in dotted.split(".") if k)
    if not keys:
        raise ConfigError(f"--set {dotted!r}: empty key path")
    node = data
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(keys[:i + 1])} is not a mapping")
        node = child
    node[keys[-1]] = value
    return keys


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """`key.path=value` pairs; values are YAML 1.2 (`1e3` is a number, `[a, b]` a list)."""
    out = []
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key.path=value")
        out.append((key.strip(), parse_value(text)))
    return out


def load(path_or_name: str | os.PathLike, overrides: list[str] | None = None) -> Scenario:
    """A validated Scenario from a YAML file path or a built-in scenario name."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists() or os.sep in str(path_or_name):
        data, source = load_yaml_file(p)
    else:
        table = builtins()
        if str(path_or_name) not in table:
            raise ConfigError(f"no scenario file or built-in named {str(path_or_name)!r}"
                              f"{suggest(str(path_or_name), list(table))} (built-ins: {', '.join(table)})")
        data, source = load_yaml_file(table[str(path_or_name)])
        source.name = f"{path_or_name} (built-in)"
    if not isinstance(data, dict):
        raise source.error(f"a scenario must be a YAML mapping, got {type(data).__name__}")
    for key, value in parse_overrides(overrides or []):
        path = _set_path(data, key, value)
        for i in range(1, len(path) + 1):
            source.lines.setdefault(path[:i], f"--set {key}")
        source.lines[path] = f"--set {key}"
    return from_data(data, source)


def from_data(data: dict, source: Source) -> Scenario:
    kind_name = data.get("kind")
    if kind_name is None:
        raise source.error("missing required field 'kind'")
    try:
        kind = kind_named(kind_name)
    except ConfigError as err:
        raise source.error(err.reason, ("kind",)) from None
    allowed = [*COMMON_KEYS, *kind.config_cls.model_fields]
    for key in data:
        if key not in allowed:
            raise source.error(f"unknown field{suggest(str(key), allowed)} (fields of a {kind_name!r} scenario: "
                               f"{', '.join(allowed)})", (str(key),))
    common = build(ScenarioFields, {k: v for k, v in data.items() if k in COMMON_KEYS}, source)
    config = build(kind.config_cls, {k: v for k, v in data.items() if k not in COMMON_KEYS}, source)
    return Scenario(name=common.name, kind=kind_name, game=common.game, config=config, description=common.description,
                    seed=common.seed, backend=common.backend, output=common.output, budget=common.budget,
                    source=source, raw=data)


def game_spec(scenario: Scenario) -> str | dict:
    """The scenario's `game` spec; ConfigError when it has none (`game` is optional for evaluate only)."""
    if scenario.game is None:
        raise scenario.error(f"missing required field (a {scenario.kind!r} scenario plays one game: a registry "
                             "string or {name: ..., param: ...})", "game")
    return scenario.game


def load_game(scenario: Scenario) -> Any:
    """The scenario's `game`, built; a bad or missing spec is a ConfigError naming the field."""
    return load_game_spec(scenario, game_spec(scenario), "game")


def load_game_spec(scenario: Scenario, spec: Any, *where: str) -> Any:
    """A game spec found at `where` in the scenario, built (ConfigError naming that field)."""
    from equilibria import games

    try:
        return games.load(spec)
    except ConfigError as err:
        raise scenario.error(err.reason if err.source is None else str(err), *where) from None
    except ValueError as err:
        raise scenario.error(str(err), *where) from None


def check_job_backend(scenario: Scenario, what: str) -> None:
    """A kind whose jobs run through common.executor: backend local or ray, and ray importable for
    ray (nothing is started here)."""
    if scenario.backend not in ("local", "ray"):
        raise scenario.error(f"{what} run with backend 'local' or 'ray', got {scenario.backend!r}", "backend")
    if scenario.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise scenario.error("backend ray needs ray (pip install 'equilibria[rllib]')", "backend") from None


def load_run_config(resume: Path) -> Scenario:
    """The scenario a run directory was made from (its resolved config.yaml)."""
    cfg = resume / "config.yaml"
    if not resume.is_dir():
        raise ConfigError(f"{resume} is not a run directory (no such directory)")
    if not cfg.exists():
        raise ConfigError(f"{resume} is not a run directory (no config.yaml)")
    data, source = load_yaml_file(cfg, what="run configuration")
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg}: not a scenario mapping")
    for k in ("equilibria_version", "git_sha", "source"):
        data.pop(k, None)
    return from_data(data, source)


