"""Scenario kind `solve`: run an equilibrium solver on a game, evaluating exploitability."""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, PositiveInt
from equilibria.scenarios.core import Interrupted, RunContext, Scenario, load_game, register_kind
from equilibria.scenarios.plots import major_log_labels, pyplot, save


class SolverSpec(Config):
    name: str
    """a registered solver (equilibria list solvers)"""
    config: dict = Field(default_factory=dict)
    """the solver's parameters, checked against its typed config"""


class SolveEval(Config):
    every: PositiveInt = 10
    """iterations between evaluations"""
    policy: Literal["average", "current", "both"] = "average"
    """which policy's exploitability is measured"""


class SolveConfig(Config):
    solver: SolverSpec
    eval: SolveEval = Field(default_factory=SolveEval)
    checkpoint_every: PositiveInt = 100
    """iterations between checkpoints"""


def _make_solver(scenario: Scenario, game: Any) -> Any:
    from equilibria import solvers
    from equilibria.solvers.base import make_with

    spec = scenario.config.solver
    try:
        entry = solvers.entry(spec.name)
    except ValueError as err:
        raise scenario.error(str(err), "solver", "name") from None
    config = dict(spec.config)
    if "seed" in entry.config_cls.model_fields and "seed" not in config:
        config["seed"] = scenario.seed
    cfg = solvers.build_config(spec.name, config, source=scenario.source, path=("solver", "config"))
    try:
        return make_with(entry, game, cfg)
    except ValueError as err:
        raise scenario.error(str(err), "solver") from None


def _evaluate(game: Any, solver: Any, which: str) -> dict[str, float]:
    from equilibria import solvers

    row: dict[str, float] = {}
    targets = {"average": [("", solver.average_policy)], "current": [("", solver.current_policy)],
               "both": [("", solver.average_policy), ("_current", solver.current_policy)]}[which]
    for suffix, get in targets:
        policy = get()
        row["exploitability" + suffix] = solvers.exploitability(game, policy)
        if suffix == "":
            values = solvers.policy_value(game, policy)
            for p, v in enumerate(values):
                row[f"value_p{p}"] = float(v)
    return row


@register_kind("solve", SolveConfig, description="run an equilibrium solver on a finite game")
def run_solve(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    if scenario.backend != "local":
        raise scenario.error(f"this kind runs with backend 'local' (got {scenario.backend!r})", "backend")
    game = load_game(scenario)
    solver = _make_solver(scenario, game)
    budget = scenario.budget
    if budget.iterations is None and budget.seconds is None:
        raise scenario.error("a solve scenario needs budget.iterations or budget.seconds", "budget")
    cfg = scenario.config
    ctx.begin()
    seconds = 0.0
    state = ctx.load_checkpoint()
    if state is not None:
        seconds = float(state.pop("seconds", 0.0))
        ctx.restore(solver, state)
        ctx.truncate_metrics("iteration", solver.iteration)
        ctx.log(f"resumed {ctx.run_dir} at iteration {solver.iteration}")
    elif ctx.resume_dir is not None:
        ctx.truncate_metrics("iteration", 0)

    # one step, rolled back exactly: kernels compile (or load from numba's cache) here, so the
    # seconds column measures iterations, not one-off compilation
    t0 = time.perf_counter()
    before = solver.state_dict()
    solver.step()
    solver.load_state_dict(before)
    warmup = time.perf_counter() - t0

    def checkpoint() -> None:
        ctx.save_checkpoint({**solver.state_dict(), "seconds": seconds})

    def done() -> bool:
        return ((budget.iterations is not None and solver.iteration >= budget.iterations)
                or (budget.seconds is not None and seconds >= budget.seconds))

    total = budget.iterations if budget.iterations is not None else budget.seconds
    last_row: dict[str, Any] = {}
    with ctx.interruptible(), ctx.progress(total, scenario.name) as update:
        while not done():
            t0 = time.perf_counter()
            solver.step()
            seconds += time.perf_counter() - t0
            it = solver.iteration
            final = done()
            if it % cfg.eval.every == 0 or final or it == 1:
                last_row = {"iteration": it, "seconds": round(seconds, 6), **_evaluate(game, solver, cfg.eval.policy)}
                ctx.log_metrics(last_row)
                update(it if budget.iterations is not None else seconds,
                       f"exploitability {last_row['exploitability']:.3g}")
            if it % cfg.checkpoint_every == 0 or final:
                checkpoint()
            if ctx.stop_requested and not final:
                checkpoint()
                raise Interrupted(ctx.run_dir, it)
    if not last_row:  # resumed a finished run
        rows = ctx.read_metrics()
        last_row = rows[-1] if rows else {"iteration": solver.iteration, **_evaluate(game, solver, cfg.eval.policy)}
    _plot(ctx, scenario)
    return {**last_row, "warmup_seconds": round(warmup, 4)}


def _plot(ctx: RunContext, scenario: Scenario) -> None:
    plt = pyplot()
    rows = ctx.read_metrics()
    if not rows:
        return
    it = np.array([r["iteration"] for r in rows])
    sec = np.array([max(r["seconds"], 1e-6) for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("exploitability", "-"), ("exploitability_current", "--")):
        if key in rows[0]:
            y = np.maximum(np.array([r[key] for r in rows]), 1e-16)
            label = "average policy" if key == "exploitability" else "current (last) iterate"
            axes[0].loglog(it, y, style, label=label)
            axes[1].loglog(sec, y, style, label=label)
    axes[0].set_xlabel("iterations")
    axes[1].set_xlabel("solver seconds (one-off compilation excluded)")
    for ax in axes:
        ax.set_ylabel("exploitability")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        major_log_labels(ax)
    fig.suptitle(f"{scenario.name}: {scenario.config.solver.name} on {scenario.game}", fontsize=10)
    save(fig, ctx.plot_path("exploitability.png"))
