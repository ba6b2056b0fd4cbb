"""The run directory: what a kind writes through (`RunContext`: metrics, checkpoints, plots,
progress, notes and alarms, the lock), atomic writes, and safe torch checkpoint loading."""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from equilibria import __version__
from equilibria.common import files
from equilibria.common.config import ConfigError
from equilibria.common.limits import MAX_PATH
from equilibria.common.yamlio import dump_yaml
from equilibria.scenarios.loading import Scenario


class Interrupted(Exception):
    def __init__(self, run_dir: Path, iteration: int):
        self.run_dir, self.iteration = run_dir, iteration
        super().__init__(f"interrupted at iteration {iteration}")


class RunFailed(Exception):
    """The run could not go on (a full disk, an unreachable server); what is finished is kept.
    One line for the user; the CLI exits with status 1."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    summary_path: Path
    plots: list[Path]
    alarms: list[str] = dataclasses.field(default_factory=list)  # results not to be trusted (exit status 1)


def _git_sha() -> str | None:
    """The commit of the checkout equilibria runs from, with "-dirty" when tracked files differ from
    it (the run's code is then not that commit's); None outside such a checkout (an installed
    package, even one inside somebody else's repository)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:  # --no-optional-locks: never take the index lock from under the user's own git commands
            out = subprocess.run(["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    sha = git("rev-parse", "HEAD") if top and Path(top).resolve() == root else None
    if not sha:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return sha + ("-dirty" if status else "" if status is not None else "-unknown")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """common.files.atomic_write_bytes, failing as RunFailed (a run cannot go on without its files)."""
    try:
        files.atomic_write_bytes(path, data)
    except OSError as err:
        kept = " (the previous version is intact)" if path.exists() else ""
        raise RunFailed(f"cannot write {path}: {err.strerror or err}{kept}") from None


FRESH_HINT = "start the run over with: equilibria run --resume {run_dir} --fresh"


class RunContext:
    """What a kind's run function uses: the run directory, metrics, checkpoints, progress.

    A resumed run directory is locked (`.lock`, flock) for as long as the run lasts, so a
    second process resuming it at the same time is refused instead of interleaving writes."""

    def __init__(self, scenario: Scenario, out: Path | None = None, resume: Path | None = None,
                 quiet: bool = False, console: Any = None, address: str | None = None,
                 fresh: bool = False):
        self.scenario = scenario
        self.address = address  # a Ray cluster to join (backend ray); None starts Ray on this machine
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
        """Create the run directory (or reopen and lock the one being resumed); the runner calls
        this after the kind's prepare() has checked everything."""
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
            resolved = {"equilibria_version": __version__, "git_sha": _git_sha(), "source": self.scenario.source.name,
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
        added = [k for k in row if k not in self._metrics_fields]
        if added and not new:  # a column that appears later (training statistics after the first
            # evaluation): rewrite the file once with the wider header, earlier rows blank there
            self.write_metrics(self.read_rows(), fields=self._metrics_fields + added)
        elif added:
            self._metrics_fields = self._metrics_fields + added
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

    @property
    def best_checkpoint_path(self) -> Path:
        """A train run's learner at its best evaluation so far (beside it, best.json says when)."""
        return self.run_dir / "checkpoints" / "best.pt"

    def save_torch_checkpoint(self, state: dict[str, Any], path: Path | None = None) -> None:
        """Tensors and plain containers (loaded back with weights_only=True); atomic like save_checkpoint.
        To the latest checkpoint, or to `path`."""
        import io

        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(path or self.torch_checkpoint_path, buf.getvalue())

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
        with progress(total, description, quiet=self.quiet, console=self.console, log=self.log) as update:
            yield update

    def plot_path(self, name: str) -> Path:
        path = self.run_dir / "plots" / name
        # a resumed run may have no plots/ (a run shipped without its plots, or one whose plots were removed)
        path.parent.mkdir(exist_ok=True)
        self.plots.append(path)
        return path


@contextmanager
def progress(total: float, description: str, *, quiet: bool = False, console: Any = None,
             log: Callable[[str], None] = print) -> Iterator[Callable[[float, str], None]]:
    """Yields update(completed, text): a rich bar on a terminal (unless `quiet`), plain lines through
    `log` otherwise. Runs show progress through RunContext.progress; other long commands call this."""
    use_bar = (not quiet) and sys.stdout.isatty()
    if use_bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                      transient=False) as bar:
            task = bar.add_task(description, total=total, info="")
            yield lambda done, text: bar.update(task, completed=done, info=text)
    else:
        # plain lines: one per tenth of the budget, plus the last
        marks = {"next": total / 10}

        def update(done: float, text: str) -> None:
            if done >= marks["next"] or done >= total:
                marks["next"] = (int(done / (total / 10)) + 1) * total / 10
                log(f"[{description}] {done:g}/{total:g} {text}")

        yield update


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


