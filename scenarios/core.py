"""Scenarios: load a YAML file (or a built-in by name), validate it, run it into a run directory.

A scenario kind is one registered function and one config class (a common.config.Config):

    @register_kind("solve", SolveConfig, description="...")
    def run_solve(scenario: Scenario, ctx: RunContext) -> dict: ...

The function builds what it needs from `scenario` (raising ConfigError on bad input), then
calls `ctx.begin()`, which creates the run directory (or, for `equilibria validate`, stops
there), and from then on writes metrics, checkpoints and plots through `ctx`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field

from equilibria import __version__
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
from equilibria.common.limits import MAX_PATH, MAX_RUN_NAME
from equilibria.common.yamlio import dump_yaml, load_yaml_file, parse_value

VERSION = __version__
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
    """solve | preference | train | tournament | population | play"""
    game: str | dict
    """a registry string ('leduc_poker', 'random_zero_sum(n=100)') or a mapping {name: ..., param: ...}"""
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
    import equilibria.scenarios.kinds  # noqa: F401  built-in kinds register on import

    return dict(_KINDS)


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
    import equilibria.scenarios.kinds  # noqa: F401  built-in kinds register on import

    kind_name = data.get("kind")
    if kind_name is None:
        raise source.error("missing required field 'kind'")
    if not isinstance(kind_name, str) or kind_name not in _KINDS:
        raise source.error(f"unknown kind {kind_name!r}{suggest(str(kind_name), list(_KINDS))} "
                           f"(kinds: {', '.join(sorted(_KINDS))})", ("kind",))
    kind = _KINDS[kind_name]
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


def load_game(scenario: Scenario) -> Any:
    from equilibria import games

    try:
        return games.load(scenario.game)
    except ConfigError as err:
        raise scenario.error(err.reason if err.source is None else str(err), "game") from None
    except ValueError as err:
        raise scenario.error(str(err), "game") from None


# ----------------------------------------------------------------------------- running
class Interrupted(Exception):
    def __init__(self, run_dir: Path, iteration: int):
        self.run_dir, self.iteration = run_dir, iteration
        super().__init__(f"interrupted at iteration {iteration}")


class RunFailed(Exception):
    """The run could not go on (a full disk, an unreachable server); what is finished is kept.
    One line for the user; the CLI exits with status 1."""


class _DryRun(Exception):
    pass


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    summary_path: Path
    plots: list[Path]
    alarms: list[str] = dataclasses.field(default_factory=list)  # results not to be trusted (exit status 1)


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` or leave it as it was: write a temporary file, fsync, rename.
    A kill or a full disk mid-write never leaves a torn file in place of the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = " (the previous version is intact)" if path.exists() else ""
        raise RunFailed(f"cannot write {path}: {err.strerror or err}{kept}") from None


FRESH_HINT = "start the run over with: equilibria run --resume {run_dir} --fresh"


class RunContext:
    """What a kind's run function uses: the run directory, metrics, checkpoints, progress.

    A resumed run directory is locked (`.lock`, flock) for as long as the run lasts, so a
    second process resuming it at the same time is refused instead of interleaving writes."""

    def __init__(self, scenario: Scenario, out: Path | None = None, resume: Path | None = None,
                 quiet: bool = False, dry_run: bool = False, console: Any = None, address: str | None = None,
                 fresh: bool = False):
        self.scenario = scenario
        self.address = address  # a Ray cluster to join (backend ray); None starts Ray on this machine
        self.dry_run = dry_run
        self.quiet = quiet
        self.console = console
        self.fresh = fresh
        self.resume_dir = None if fresh else resume
        self.run_dir: Path | None = resume
        self._out = out
        self._metrics_fields: list[str] | None = None
        self._lock: Any = None
        self.stop_requested = False
        self.started = time.time()
        self.plots: list[Path] = []
        self.notes: list[str] = []  # said aloud and kept in summary.json
        self.alarms: list[str] = []

    # -- lifecycle ----------------------------------------------------------------
    def begin(self) -> None:
        """Everything is validated: create the run directory (or stop, when only validating)."""
        if self.dry_run:
            raise _DryRun
        if self.run_dir is None:
            base = self._out if self._out is not None else Path(self.scenario.output)
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = base / f"{self.scenario.name}-{stamp}"
            full = run_dir.absolute()
            if len(str(full)) > MAX_PATH or any(len(part) > 255 for part in full.parts):
                raise self.scenario.error(f"the run directory would be longer than {MAX_PATH} characters (or have a "
                                          f"part over 255): {str(full)[:80]}...; choose a shorter --out or name",
                                          "output")
            n = 1
            while run_dir.exists():
                n += 1
                run_dir = base / f"{self.scenario.name}-{stamp}-{n}"
            try:
                (run_dir / "checkpoints").mkdir(parents=True)
                (run_dir / "plots").mkdir()
            except OSError as err:
                raise ConfigError(f"cannot create the run directory {run_dir}: {err.strerror or err}") from None
            self.run_dir = run_dir
            self._acquire_lock()
            resolved = {"equilibria_version": VERSION, "git_sha": _git_sha(), "source": self.scenario.source.name,
                        **self.scenario.resolved()}
            atomic_write_bytes(run_dir / "config.yaml", dump_yaml(resolved).encode())
            return
        self._acquire_lock()
        if self.fresh:
            self._clear()
            self.log(f"starting {self.run_dir} over (--fresh): its checkpoints, metrics and results were removed")
            return
        self._repair_metrics()
        has_checkpoint = any((self.run_dir / "checkpoints").glob("latest.*"))
        if has_checkpoint and not self.metrics_path.exists():
            self.note(f"{self.metrics_path} is missing: the rows written before the checkpoint are lost; "
                      "the run continues from its checkpoint and writes new rows")

    def _acquire_lock(self) -> None:
        import fcntl

        path = self.run_dir / ".lock"
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise ConfigError(f"{self.run_dir} is in use by another equilibria process (pid {pid}); "
                              "wait for it to finish or stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock = f

    def close(self) -> None:
        """Release the run directory's lock (the OS releases it too if the process dies)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _clear(self) -> None:
        import shutil

        for child in self.run_dir.iterdir():
            if child.name in ("config.yaml", ".lock"):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        (self.run_dir / "checkpoints").mkdir()
        (self.run_dir / "plots").mkdir()

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

    def _repair_metrics(self) -> None:
        """A run killed mid-write can leave a torn last line: drop it (it is newer than any
        checkpoint), say so, and keep the rest."""
        path = self.metrics_path
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data[: data.rfind(b"\n") + 1]
            atomic_write_bytes(path, keep)
            self.note(f"{path}: dropped a torn last line (the run was killed while writing it)")

    def truncate_metrics(self, key: str, last: float) -> None:
        """On resume: drop rows written after the checkpoint we resume from."""
        self.keep_metrics(lambda r: float(r[key]) <= last)

    def keep_metrics(self, keep: Callable[[dict[str, str]], bool]) -> None:
        """Rewrite metrics.csv (atomically) with only the rows `keep` accepts."""
        rows = self.read_rows()
        if not rows:
            return
        self.write_metrics([r for r in rows if keep(r)], fields=list(rows[0].keys()))

    def write_metrics(self, rows: list[dict[str, Any]], fields: list[str] | None = None) -> None:
        """Replace metrics.csv with `rows` (a kind whose metrics are one final table, so that
        resuming a finished run rewrites the same table instead of appending a second one)."""
        import io

        fields = fields or (list(rows[0]) if rows else [])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(self.metrics_path, buf.getvalue().encode())
        self._metrics_fields = fields

    def log_metrics(self, row: dict[str, Any]) -> None:
        new = not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0
        if self._metrics_fields is None:
            header = None if new else self._header()
            self._metrics_fields = header or list(row)
        try:
            with open(self.metrics_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self._metrics_fields, extrasaction="ignore", lineterminator="\n")
                if new:
                    w.writeheader()
                w.writerow(row)
        except OSError as err:
            raise RunFailed(f"cannot write {self.metrics_path}: {err.strerror or err}") from None

    def _header(self) -> list[str] | None:
        with open(self.metrics_path, newline="") as f:
            return next(csv.reader(f), None)

    def read_rows(self) -> list[dict[str, str]]:
        """metrics.csv as written (strings); a malformed file is a one-line ConfigError."""
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="") as f:
            rows = list(csv.DictReader(f))
        for i, r in enumerate(rows, 2):
            if None in r or any(v is None for v in r.values()):
                raise ConfigError(f"{self.metrics_path} line {i} does not match its header; delete the file (the "
                                  f"checkpoint is kept) or {FRESH_HINT.format(run_dir=self.run_dir)}")
        return rows

    def read_metrics(self) -> list[dict[str, float]]:
        out = []
        for i, r in enumerate(self.read_rows(), 2):
            try:
                out.append({k: float(v) for k, v in r.items() if v not in ("", None)})
            except ValueError:
                raise ConfigError(f"{self.metrics_path} line {i} holds a value that is not a number; delete the file "
                                  f"(the checkpoint is kept) or {FRESH_HINT.format(run_dir=self.run_dir)}") from None
        return out

    # -- checkpoints ----------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "latest.npz"

    def checkpoint_error(self, path: Path, reason: str) -> ConfigError:
        """The one message for a checkpoint that cannot be used, with what to do about it."""
        return ConfigError(f"checkpoint {path} {reason}; {FRESH_HINT.format(run_dir=self.run_dir)}, "
                           f"or delete {path} to resume without it")

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
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            reason = "is empty" if path.stat().st_size == 0 else f"is unreadable ({type(err).__name__}: {err})"
            raise self.checkpoint_error(path, reason) from None

    def restore(self, target: Any, state: dict[str, Any], path: Path | None = None) -> None:
        """target.load_state_dict(state), with a checkpoint that does not fit (another config,
        another game, a truncated state) reported as one line instead of a traceback."""
        try:
            target.load_state_dict(state)
        except (KeyError, IndexError, RuntimeError, ValueError, TypeError, AttributeError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if isinstance(err, KeyError):
                text = f"lacks {text}"
            raise self.checkpoint_error(path or self.checkpoint_path, f"does not fit this run ({text[:200]})") from None

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
        if path is None:
            if self.resume_dir is None or not self.torch_checkpoint_path.exists():
                return None
            path = self.torch_checkpoint_path
        return load_torch_file(path, lambda reason: self.checkpoint_error(path, reason))

    # -- output -------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message, highlight=False, markup=False)
        else:
            print(message, flush=True)

    def note(self, message: str) -> None:
        """Something the user should know about this run (said aloud, kept in summary.json)."""
        self.log(f"note: {message}")
        self.notes.append(message)

    def alarm(self, message: str) -> None:
        """A result that should not be trusted as it stands: said aloud, kept in summary.json,
        and the CLI exits with status 1."""
        self.log(f"warning: {message}")
        self.alarms.append(message)

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


def load_torch_file(path: Path, error: Callable[[str], Exception]) -> dict[str, Any]:
    """torch.load with weights_only=True; a corrupt file, or one holding anything but tensors
    and plain containers, becomes `error(reason)`. Torch's own refusal suggests
    weights_only=False, which would unpickle (run code from) a file of unknown origin: we never
    do, and never suggest it."""
    import pickle
    import warnings
    import zipfile

    import torch

    if path.stat().st_size == 0:
        raise error("is empty")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        raise error("holds objects other than tensors and plain containers; equilibria loads only those "
                    "(it never unpickles a file of unknown origin)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"is unreadable ({text[:160]})") from None


def _prepare_resume(resume: Path) -> Scenario:
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


def run(scenario: Scenario | None, out: Path | str | None = None, resume: Path | str | None = None,
        quiet: bool = False, console: Any = None, address: str | None = None, fresh: bool = False) -> RunResult:
    """Run a scenario (or resume the run in `resume`) and return its paths and final metrics.
    `address` is the Ray cluster that `backend: ray` joins (default: start Ray on this machine);
    `fresh` starts a resumed run directory over from nothing (its config kept)."""
    resume = Path(resume) if resume is not None else None
    if resume is not None:
        scenario = _prepare_resume(resume)
    if scenario is None:
        raise ConfigError("nothing to run: give a scenario or a run directory to resume")
    if fresh and resume is None:
        raise ConfigError("--fresh starts a run directory over: give it with --resume RUN_DIR")
    ctx = RunContext(scenario, Path(out) if out is not None else None, resume, quiet, console=console,
                     address=address, fresh=fresh)
    kind = _KINDS[scenario.kind]
    try:
        metrics = kind.run(scenario, ctx)
        summary = {"name": scenario.name, "kind": scenario.kind, "game": scenario.game, "metrics": metrics,
                   "run_dir": str(ctx.run_dir), "plots": [str(p) for p in ctx.plots],
                   "wall_seconds": time.time() - ctx.started, "notes": ctx.notes, "alarms": ctx.alarms}
        summary_path = ctx.run_dir / "summary.json"
        atomic_write_bytes(summary_path, json.dumps(_json_safe(summary), indent=1).encode())
    finally:
        ctx.close()
    return RunResult(ctx.run_dir, metrics, summary_path, list(ctx.plots), list(ctx.alarms))


def _json_safe(obj: Any) -> Any:
    """Plain JSON: numpy scalars as numbers, and non-finite floats (not JSON) as null."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj if isinstance(obj, (str, int, bool, type(None))) else str(obj)


def validate(scenario: Scenario) -> None:
    """Everything `run` would check before starting, without creating anything."""
    ctx = RunContext(scenario, dry_run=True)
    try:
        _KINDS[scenario.kind].run(scenario, ctx)
    except _DryRun:
        return
