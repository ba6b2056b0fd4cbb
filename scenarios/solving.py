"""Running an equilibrium solver on a finite game, as the `solve` and `population` (psro)
kinds do: exploitability of the average and/or current policy per evaluation, checkpoints,
resume, and the exploitability plot."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, PositiveInt
from equilibria.scenarios.loading import Scenario, load_game
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import major_log_labels, pyplot, save
from equilibria.scenarios.rundir import RunContext


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
    episodes: PositiveInt = 500
    """games too large for the compiled tree (sampling solvers): episodes per seat of the
    value against a uniform random opponent, reported instead of exploitability"""


class SolveConfig(Config):
    solver: SolverSpec
    eval: SolveEval = Field(default_factory=SolveEval)
    checkpoint_every: PositiveInt = 100
    """iterations between checkpoints"""


@dataclasses.dataclass
class SolvePlan:
    scenario: Scenario
    game: Any
    entry: Any  # solvers.base.SolverEntry
    config: Any  # the solver's checked config
    exact: bool = True  # the game fits the compiled tree: exploitability is computed exactly


def prepare_solver(scenario: Scenario, allowed: tuple[str, ...] | None = None) -> SolvePlan:
    """Every check of a solver scenario, building nothing expensive (no tree is compiled)."""
    from equilibria import solvers
    from equilibria.games.tree import check_tree_size
    from equilibria.solvers.base import check_applicable

    if scenario.backend != "local":
        raise scenario.error(f"this kind runs with backend 'local' (got {scenario.backend!r})", "backend")
    spec = scenario.config.solver
    if allowed is not None and spec.name not in allowed:
        raise scenario.error(f"runs {', '.join(allowed)}; got {spec.name!r}", "solver", "name")
    game = load_game(scenario)
    try:
        entry = solvers.entry(spec.name)
    except ValueError as err:
        raise scenario.error(str(err), "solver", "name") from None
    config = dict(spec.config)
    if "seed" in entry.config_cls.model_fields and "seed" not in config:
        config["seed"] = scenario.seed
    cfg = solvers.build_config(spec.name, config, source=scenario.source, path=("solver", "config"))
    try:
        check_applicable(entry, game)
    except ValueError as err:
        raise scenario.error(str(err), "solver") from None
    exact = True
    if entry.kind == "sampled":
        try:
            check_tree_size(game)
        except ValueError:
            exact = False  # evaluated by sampling: value against uniform random
    budget = scenario.budget
    if budget.iterations is None and budget.seconds is None:
        raise scenario.error("a solve scenario needs budget.iterations or budget.seconds", "budget")
    return SolvePlan(scenario, game, entry, cfg, exact)


def _evaluate(plan: SolvePlan, solver: Any) -> dict[str, float]:
    from equilibria import games, solvers

    game, which = plan.game, plan.scenario.config.eval.policy
    row: dict[str, float] = {}
    targets = {"average": [("", solver.average_policy)], "current": [("", solver.current_policy)],
               "both": [("", solver.average_policy), ("_current", solver.current_policy)]}[which]
    for suffix, get in targets:
        policy = get()
        if not plan.exact:  # beyond the compiled tree: the value against uniform random, per seat
            est = solvers.value_against(game, policy, games.UniformRandomPolicy(),
                                        plan.scenario.config.eval.episodes, seed=plan.scenario.seed)
            for p in range(game.num_players):
                row[f"value_vs_uniform{suffix}_p{p}"] = float(est.mean[p])
                row[f"value_vs_uniform{suffix}_p{p}_stderr"] = float(est.stderr[p])
            continue
        row["exploitability" + suffix] = solvers.exploitability(game, policy)
        if suffix == "":
            values = solvers.policy_value(game, policy)
            for p, v in enumerate(values):
                row[f"value_p{p}"] = float(v)
    return row


def run_solver(plan: SolvePlan, ctx: RunContext) -> dict[str, Any]:
    from equilibria.solvers.base import make_with

    scenario, game = plan.scenario, plan.game
    solver = make_with(plan.entry, game, plan.config)
    cfg, budget = scenario.config, scenario.budget
    clock = {"seconds": 0.0}
    state = ctx.load_checkpoint()
    if state is not None:
        clock["seconds"] = float(state.pop("seconds", 0.0))
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

    def step() -> None:
        t = time.perf_counter()
        solver.step()
        clock["seconds"] += time.perf_counter() - t

    by_iterations = budget.iterations is not None
    row = run_loop(
        ctx, label=scenario.name, total=budget.iterations if by_iterations else budget.seconds,
        position=(lambda: solver.iteration) if by_iterations else (lambda: clock["seconds"]),
        counter=lambda: solver.iteration, step=step,
        also_done=(lambda: budget.seconds is not None and clock["seconds"] >= budget.seconds),
        evaluate=lambda _: {"iteration": solver.iteration, "seconds": round(clock["seconds"], 6),
                            **_evaluate(plan, solver)},
        eval_every=cfg.eval.every, eval_after_first=True,
        save=lambda: ctx.save_checkpoint({**solver.state_dict(), "seconds": clock["seconds"]}),
        save_every=cfg.checkpoint_every, describe=_describe)
    if not row:
        row = {"iteration": solver.iteration, **_evaluate(plan, solver)}
    plot_exploitability(ctx, scenario)
    return {**row, "warmup_seconds": round(warmup, 4)}


def _describe(row: dict[str, float]) -> str:
    if "exploitability" in row:
        return f"exploitability {row['exploitability']:.3g}"
    values = [v for k, v in row.items() if k.startswith("value_vs_uniform_p") and not k.endswith("stderr")]
    return "value vs uniform " + " / ".join(f"{v:.3f}" for v in values)


def plot_exploitability(ctx: RunContext, scenario: Scenario) -> None:
    plt = pyplot()
    rows = ctx.read_metrics()
    if not rows:
        return
    if "exploitability" not in rows[0]:
        plot_value_vs_uniform(ctx, scenario, rows)
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


def plot_value_vs_uniform(ctx: RunContext, scenario: Scenario, rows: list[dict]) -> None:
    """Games beyond the compiled tree: each seat's value against uniform random over iterations,
    with a band of two standard errors."""
    plt = pyplot()
    it = np.array([r["iteration"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    seat = 0
    while f"value_vs_uniform_p{seat}" in rows[0]:
        y = np.array([r[f"value_vs_uniform_p{seat}"] for r in rows])
        se = np.array([r[f"value_vs_uniform_p{seat}_stderr"] for r in rows])
        ax.plot(it, y, marker="o", label=f"seat {seat}")
        ax.fill_between(it, y - 2 * se, y + 2 * se, alpha=0.2)
        seat += 1
    ax.set_xscale("log")
    ax.set_xlabel("iterations")
    which = "current iterate" if scenario.config.eval.policy == "current" else "average policy"
    ax.set_ylabel(f"value against uniform random ({which})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    major_log_labels(ax)
    fig.suptitle(f"{scenario.name}: {scenario.config.solver.name} on {scenario.game}", fontsize=10)
    save(fig, ctx.plot_path("value_vs_uniform.png"))
