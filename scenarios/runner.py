"""Running and validating scenarios: prepare (every check), create or reopen the run directory,
run the kind, write summary.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from equilibria.common.config import ConfigError
from equilibria.scenarios.loading import Scenario, load_run_config
from equilibria.scenarios.registry import kind as kind_named
from equilibria.scenarios.rundir import RunContext, RunResult, atomic_write_bytes


def run(scenario: Scenario | None, out: Path | str | None = None, resume: Path | str | None = None,
        quiet: bool = False, console: Any = None, address: str | None = None, fresh: bool = False) -> RunResult:
    """Run a scenario (or resume the run in `resume`) and return its paths and final metrics.
    `address` is the Ray cluster that `backend: ray` joins (default: start Ray on this machine);
    `fresh` starts a resumed run directory over from nothing (its config kept)."""
    resume = Path(resume) if resume is not None else None
    if resume is not None:
        scenario = load_run_config(resume)
    if scenario is None:
        raise ConfigError("nothing to run: give a scenario or a run directory to resume")
    if fresh and resume is None:
        raise ConfigError("--fresh starts a run directory over: give it with --resume RUN_DIR")
    kind = kind_named(scenario.kind)
    plan = kind.prepare(scenario)
    ctx = RunContext(scenario, Path(out) if out is not None else None, resume, quiet, console=console,
                     address=address, fresh=fresh)
    try:
        ctx.begin()
        metrics = kind.run(plan, ctx)
        summary = {"name": scenario.name, "kind": scenario.kind, "game": scenario.game, "metrics": metrics,
                   "run_dir": str(ctx.run_dir), "plots": [str(p) for p in ctx.plots],
                   "wall_seconds": time.time() - ctx.started, "notes": ctx.notes, "alarms": ctx.alarms}
        summary_path = ctx.run_dir / "summary.json"
        atomic_write_bytes(summary_path, json.dumps(json_safe(summary), indent=1).encode())
    finally:
        ctx.close()
    return RunResult(ctx.run_dir, metrics, summary_path, list(ctx.plots), list(ctx.alarms))


def validate(scenario: Scenario) -> None:
    """Everything `run` checks before starting (the kind's prepare), creating and running nothing."""
    kind_named(scenario.kind).prepare(scenario)


def json_safe(obj: Any) -> Any:
    """Plain JSON: numpy scalars as numbers, and non-finite floats (not JSON) as null."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj if isinstance(obj, (str, int, bool, type(None))) else str(obj)
