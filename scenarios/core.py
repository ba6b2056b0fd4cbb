"""Scenarios: load a YAML file (or a built-in by name), validate it, run it into a run directory.

A scenario kind is one registered function and one config class:

    @register_kind("solve", SolveConfig, description="...")
    def run_solve(scenario: Scenario, ctx: RunContext) -> dict: ...

The function builds what it needs from `scenario` (raising ScenarioError on bad input), then
calls `ctx.begin()`, which creates the run directory (or, for `equilibria validate`, stops
there), and from then on writes metrics, checkpoints and plots through `ctx`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from scenarios.spec import ScenarioError, Source, from_dict, read_yaml, suggest, to_plain

VERSION = "0.1.0"
COMMON_KEYS = ("name", "description", "kind", "game", "seed", "backend", "output", "budget")


# ----------------------------------------------------------------------------- schema
@dataclasses.dataclass
class Budget:
    """How long to run: any of iterations (solvers), steps (learners), seconds (wall clock)."""

    iterations: int | None = None
    steps: int | None = None
    seconds: float | None = None

    def validate(self) -> None:
        for name in ("iterations", "steps", "seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name}: must be > 0, got {v}")


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
    source: Source = dataclasses.field(default_factory=lambda: Source("<scenario>"))
    raw: dict = dataclasses.field(default_factory=dict, repr=False)

    def error(self, reason: str, *path: str) -> ScenarioError:
        return self.source.error(reason, tuple(path))

    def check_keys(self, keys: Any, allowed: Any, *path: str, what: str = "parameter") -> None:
        """Refuse the first key not in `allowed`, naming its field path and the closest matches."""
        options = sorted(allowed)
        for key in keys:
            if key not in allowed:
                raise self.error(f"unknown {what}{suggest(str(key), options)} (parameters: {', '.join(options)})",
                                 *path, str(key))

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in), as written to config.yaml."""
        out = {"name": self.name, "description": self.description, "kind": self.kind, "game": self.game,
               "seed": self.seed, "backend": self.backend, "output": self.output,
               "budget": to_plain(self.budget)}
        out.update(to_plain(self.config))
        return out


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    config_cls: type
    run: Callable[[Scenario, RunContext], dict]
    description: str


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, config_cls: type, *, description: str):
    def _do(fn: Callable[[Scenario, RunContext], dict]) -> Callable[[Scenario, RunContext], dict]:
        if name in _KINDS:
            raise ValueError(f"scenario kind {name!r} is registered twice")
        _KINDS[name] = Kind(name, config_cls, fn, description)
        return fn

    return _do


def registered_kinds() -> dict[str, Kind]:
    import scenarios.kinds  # noqa: F401  built-in kinds register on import

    return dict(_KINDS)


# ----------------------------------------------------------------------------- loading
def builtin_dir() -> Path:
    return Path(str(resources.files("scenarios") / "builtin"))


def builtins() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir().glob("*.yaml"))}


def _set_path(data: dict, dotted: str, value: Any) -> tuple[str, ...]:
    keys = tuple(k for k in dotted.split(".") if k)
    if not keys:
        raise ScenarioError(f"--set {dotted!r}: empty key path")
    node = data
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ScenarioError(f"--set {dotted}: {'.'.join(keys[:i + 1])} is not a mapping")
        node = child
    node[keys[-1]] = value
    return keys


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    out = []
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key.strip():
            raise ScenarioError(f"--set {pair!r}: expected key.path=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out.append((key.strip(), value))
    return out


def load(path_or_name: str | os.PathLike, overrides: list[str] | None = None) -> Scenario:
    """A validated Scenario from a YAML file path or a built-in scenario name."""
    text, name = _read(path_or_name)
    data, source = read_yaml(text, name)
    if not isinstance(data, dict):
        raise source.error(f"a scenario must be a YAML mapping, got {type(data).__name__}")
    for key, value in parse_overrides(overrides or []):
        path = _set_path(data, key, value)
        for i in range(1, len(path) + 1):
            source.lines.setdefault(path[:i], f"--set {key}")
        source.lines[path] = f"--set {key}"
    return from_data(data, source)


def _read(path_or_name: str | os.PathLike) -> tuple[str, str]:
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists() or os.sep in str(path_or_name):
        if not p.exists():
            raise ScenarioError(f"no such file: {p}")
        if p.is_dir():
            raise ScenarioError(f"{p} is a directory, not a scenario file")
        try:
            return p.read_text(), str(p)
        except (OSError, UnicodeDecodeError) as err:
            raise ScenarioError(f"cannot read {p}: {err}") from None
    table = builtins()
    if str(path_or_name) not in table:
        raise ScenarioError(f"no scenario file or built-in named {str(path_or_name)!r}"
                            f"{suggest(str(path_or_name), list(table))} (built-ins: {', '.join(table)})")
    path = table[str(path_or_name)]
    return path.read_text(), f"{path_or_name} (built-in)"


def from_data(data: dict, source: Source) -> Scenario:
    import scenarios.kinds  # noqa: F401  built-in kinds register on import

    for key in ("name", "kind", "game"):
        if key not in data:
            raise source.error(f"missing required field {key!r}")
    kind_name = data["kind"]
    if not isinstance(kind_name, str) or kind_name not in _KINDS:
        raise source.error(f"unknown kind {kind_name!r}{suggest(str(kind_name), list(_KINDS))} "
                           f"(kinds: {', '.join(sorted(_KINDS))})", ("kind",))
    kind = _KINDS[kind_name]
    name = data["name"]
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0"):
        raise source.error(f"must be a non-empty string without slashes, got {name!r}", ("name",))
    game = data["game"]
    if not isinstance(game, (str, dict)):
        raise source.error(f"must be a game string or mapping, got {game!r}", ("game",))
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise source.error(f"must be a string, got {desc!r}", ("description",))
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise source.error(f"must be a non-negative integer, got {seed!r}", ("seed",))
    backend = data.get("backend", "local")
    if backend not in ("local", "ray", "rllib"):
        raise source.error(f"must be 'local', 'ray' or 'rllib', got {backend!r}", ("backend",))
    output = data.get("output", "runs")
    if not isinstance(output, str):
        raise source.error(f"must be a directory path, got {output!r}", ("output",))
    budget = from_dict(Budget, data.get("budget"), ("budget",), source)
    rest = {k: v for k, v in data.items() if k not in COMMON_KEYS}
    allowed = [*COMMON_KEYS, *(f.name for f in dataclasses.fields(kind.config_cls))]
    for key in rest:
        if key not in allowed:
            raise source.error(f"unknown field{suggest(str(key), allowed)} (fields of a {kind_name!r} scenario: "
                               f"{', '.join(allowed)})", (str(key),))
    config = from_dict(kind.config_cls, rest, (), source)
    return Scenario(name=name, kind=kind_name, game=game, config=config, description=desc, seed=seed,
                    backend=backend, output=output, budget=budget, source=source, raw=data)


def load_game(scenario: Scenario) -> Any:
    import games

    try:
        return games.load(scenario.game)
    except ValueError as err:
        raise scenario.error(str(err), "game") from None


# ----------------------------------------------------------------------------- running
class Interrupted(Exception):
    def __init__(self, run_dir: Path, iteration: int):
        self.run_dir, self.iteration = run_dir, iteration
        super().__init__(f"interrupted at iteration {iteration}")


class _DryRun(Exception):
    pass


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    summary_path: Path
    plots: list[Path]


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunContext:
    """What a kind's run function uses: the run directory, metrics, checkpoints, progress."""

    def __init__(self, scenario: Scenario, out: Path | None = None, resume: Path | None = None,
                 quiet: bool = False, dry_run: bool = False, console: Any = None, address: str | None = None):
        self.scenario = scenario
        self.address = address  # a Ray cluster to join (backend ray); None starts Ray on this machine
        self.dry_run = dry_run
        self.quiet = quiet
        self.console = console
        self.resume_dir = resume
        self.run_dir: Path | None = resume
        self._out = out
        self._metrics_fields: list[str] | None = None
        self.stop_requested = False
        self.started = time.time()
        self.plots: list[Path] = []

    # -- lifecycle ----------------------------------------------------------------
    def begin(self) -> None:
        """Everything is validated: create the run directory (or stop, when only validating)."""
        if self.dry_run:
            raise _DryRun
        if self.run_dir is None:
            base = self._out if self._out is not None else Path(self.scenario.output)
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = base / f"{self.scenario.name}-{stamp}"
            n = 1
            while run_dir.exists():
                n += 1
                run_dir = base / f"{self.scenario.name}-{stamp}-{n}"
            (run_dir / "checkpoints").mkdir(parents=True)
            (run_dir / "plots").mkdir()
            self.run_dir = run_dir
            resolved = {"equilibria_version": VERSION, "git_sha": _git_sha(), "source": self.scenario.source.name,
                        **self.scenario.resolved()}
            atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False).encode())

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """SIGINT/SIGTERM set `stop_requested`; the kind checkpoints and raises Interrupted."""
        def handler(signum: int, frame: Any) -> None:
            self.stop_requested = True

        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for s in old:
                signal.signal(s, handler)
        except ValueError:  # not the main thread: no signal handling
            old = {}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # -- metrics ------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.csv"

    def truncate_metrics(self, key: str, last: float) -> None:
        """On resume: drop rows written after the checkpoint we resume from."""
        self.keep_metrics(lambda r: float(r[key]) <= last)

    def keep_metrics(self, keep: Callable[[dict[str, str]], bool]) -> None:
        """Rewrite metrics.csv (atomically) with only the rows `keep` accepts."""
        rows = self.read_rows()
        if not rows:
            return
        fields = list(rows[0].keys())
        tmp = self.metrics_path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(r for r in rows if keep(r))
        os.replace(tmp, self.metrics_path)
        self._metrics_fields = fields

    def log_metrics(self, row: dict[str, Any]) -> None:
        new = not self.metrics_path.exists()
        if self._metrics_fields is None:
            self._metrics_fields = list(row)
        with open(self.metrics_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._metrics_fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)

    def read_rows(self) -> list[dict[str, str]]:
        """metrics.csv as written (strings)."""
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="") as f:
            return list(csv.DictReader(f))

    def read_metrics(self) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in self.read_rows()]

    # -- checkpoints ----------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "latest.npz"

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically replace the latest checkpoint (a kill mid-write leaves the old one intact)."""
        import io

        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in state.items()})
        atomic_write_bytes(self.checkpoint_path, buf.getvalue())

    def load_checkpoint(self) -> dict[str, Any] | None:
        if self.resume_dir is None:
            return None
        path = self.checkpoint_path
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise ScenarioError(f"checkpoint {path} is unreadable: {err}") from None

    @property
    def torch_checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "latest.pt"

    def save_torch_checkpoint(self, state: dict[str, Any]) -> None:
        """Tensors and plain containers (loaded back with weights_only=True); atomic like save_checkpoint."""
        import io

        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.torch_checkpoint_path, buf.getvalue())

    def load_torch_checkpoint(self, path: Path | None = None) -> dict[str, Any] | None:
        """The latest torch checkpoint of a resumed run (or `path`); never unpickles arbitrary objects."""
        import torch

        if path is None:
            if self.resume_dir is None or not self.torch_checkpoint_path.exists():
                return None
            path = self.torch_checkpoint_path
        try:
            return torch.load(path, weights_only=True)
        except Exception as err:  # a corrupt or foreign file: say so, do not unpickle anything
            raise ScenarioError(f"checkpoint {path} is unreadable: {err}") from None

    # -- output -------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, highlight=False, markup=False)
        else:
            print(message, flush=True)

    @contextmanager
    def progress(self, total: float, description: str) -> Iterator[Callable[[float, str], None]]:
        """Yields update(completed, text). A rich bar on a terminal; plain lines otherwise."""
        use_bar = (not self.quiet) and sys.stdout.isatty()
        if use_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
                          transient=False) as bar:
                task = bar.add_task(description, total=total, info="")
                yield lambda done, text: bar.update(task, completed=done, info=text)
        else:
            # plain lines: one per tenth of the budget, plus the last
            marks = {"next": total / 10}

            def update(done: float, text: str) -> None:
                if done >= marks["next"] or done >= total:
                    marks["next"] = (int(done / (total / 10)) + 1) * total / 10
                    self.log(f"[{description}] {done:g}/{total:g} {text}")

            yield update

    def plot_path(self, name: str) -> Path:
        path = self.run_dir / "plots" / name
        self.plots.append(path)
        return path


def _prepare_resume(resume: Path) -> Scenario:
    cfg = resume / "config.yaml"
    if not cfg.exists():
        raise ScenarioError(f"{resume} is not a run directory (no config.yaml)")
    data, source = read_yaml(cfg.read_text(), str(cfg))
    if not isinstance(data, dict):
        raise ScenarioError(f"{cfg}: not a scenario mapping")
    for k in ("equilibria_version", "git_sha", "source"):
        data.pop(k, None)
    return from_data(data, source)


def run(scenario: Scenario | None, out: Path | str | None = None, resume: Path | str | None = None,
        quiet: bool = False, console: Any = None, address: str | None = None) -> RunResult:
    """Run a scenario (or resume the run in `resume`) and return its paths and final metrics.
    `address` is the Ray cluster that `backend: ray` joins (default: start Ray on this machine)."""
    resume = Path(resume) if resume is not None else None
    if resume is not None:
        scenario = _prepare_resume(resume)
    if scenario is None:
        raise ScenarioError("nothing to run: give a scenario or a run directory to resume")
    ctx = RunContext(scenario, Path(out) if out is not None else None, resume, quiet, console=console,
                     address=address)
    kind = _KINDS[scenario.kind]
    metrics = kind.run(scenario, ctx)
    summary = {"name": scenario.name, "kind": scenario.kind, "game": scenario.game, "metrics": metrics,
               "run_dir": str(ctx.run_dir), "plots": [str(p) for p in ctx.plots],
               "wall_seconds": time.time() - ctx.started}
    summary_path = ctx.run_dir / "summary.json"
    atomic_write_bytes(summary_path, json.dumps(summary, indent=1, default=float).encode())
    return RunResult(ctx.run_dir, metrics, summary_path, list(ctx.plots))


def validate(scenario: Scenario) -> None:
    """Everything `run` would check before starting, without creating anything."""
    ctx = RunContext(scenario, dry_run=True)
    try:
        _KINDS[scenario.kind].run(scenario, ctx)
    except _DryRun:
        return
