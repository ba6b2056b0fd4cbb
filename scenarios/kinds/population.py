"""Scenario kind `population`: PSRO, one generation per iteration.

- finite games (solver `psro`): exact best responses on the game tree, exact exploitability of
  the meta-Nash mixture per generation (runs through the solve kind's loop);
- two-player zero-sum Markov games (solver `psro-rl`): PPO best responses through marl/,
  the meta-game estimated by playing episodes, and the best-response gain per generation as
  the exploitability estimate. Best responses are independent jobs: `backend: ray` runs them as
  Ray tasks.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from equilibria.scenarios.core import Interrupted, RunContext, Scenario, load_game, register_kind
from equilibria.scenarios.kinds.solve import SolveConfig, run_solve
from equilibria.scenarios.plots import heatmap, pyplot, save

POPULATION_SOLVERS = ("psro", "psro-rl")


@register_kind("population", SolveConfig,
               description="population training (PSRO): exploitability of the meta-Nash mixture per generation")
def run_population(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    name = scenario.config.solver.name
    if name not in POPULATION_SOLVERS:
        raise scenario.error(f"population scenarios run {', '.join(POPULATION_SOLVERS)}; got {name!r}",
                             "solver", "name")
    if name == "psro":
        return run_solve(scenario, ctx)
    return _run_rl_psro(scenario, ctx)


def _run_rl_psro(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    from equilibria.games.markov import BatchedMarkovGame
    from equilibria.marl.population import RLPSRO, RLPSROConfig
    from equilibria.scenarios.executor import make_executor

    if scenario.backend not in ("local", "ray"):
        raise scenario.error(f"psro-rl runs with backend 'local' or 'ray', got {scenario.backend!r}", "backend")
    game = load_game(scenario)
    if not isinstance(game, BatchedMarkovGame):
        raise scenario.error(f"psro-rl needs a batched Markov game (e.g. pursuit); {game.info.name} is not one "
                             "(finite games use solver psro)", "game")
    config = scenario.build(RLPSROConfig, scenario.config.solver.config, "solver", "config")
    try:
        psro = RLPSRO(game, config, seed=scenario.seed)
    except ValueError as err:
        raise scenario.error(str(err), "solver", "config") from None
    generations = scenario.budget.iterations
    if generations is None:
        raise scenario.error("a psro-rl scenario needs budget.iterations (generations)", "budget")
    ctx.begin()
    state = ctx.load_torch_checkpoint()
    seconds = 0.0
    if state is not None:
        ctx.restore(psro, state, ctx.torch_checkpoint_path)
        seconds = float(state.get("seconds", 0.0))
        ctx.truncate_metrics("generation", psro.iteration)
        ctx.log(f"resumed {ctx.run_dir} at generation {psro.iteration}")
    try:
        executor = make_executor(scenario.backend, ctx.address)
    except ValueError as err:
        raise scenario.error(str(err), "backend") from None
    row: dict[str, Any] = {}
    with ctx.interruptible(), ctx.progress(generations, scenario.name) as update:
        while psro.iteration < generations:
            t0 = time.perf_counter()
            row = dict(psro.step(executor))
            seconds += time.perf_counter() - t0
            row["seconds"] = round(seconds, 3)
            ctx.log_metrics(row)
            ctx.save_torch_checkpoint({**psro.state_dict(), "seconds": seconds})
            update(psro.iteration, f"best-response gain {row['nash_conv_estimate']:.3g}")
            if ctx.stop_requested and psro.iteration < generations:
                raise Interrupted(ctx.run_dir, psro.iteration)
    if not row:
        rows = ctx.read_metrics()
        row = rows[-1] if rows else {}
    _plot(ctx, scenario, psro.payoff, psro.meta)
    return {**row, "meta_nash_p0": ",".join(f"{w:.3f}" for w in psro.meta[0]),
            "meta_nash_p1": ",".join(f"{w:.3f}" for w in psro.meta[1])}


def _plot(ctx: RunContext, scenario: Scenario, payoff: np.ndarray, meta: list[np.ndarray]) -> None:
    plt = pyplot()
    rows = ctx.read_metrics()
    if not rows:
        return
    gen = [r["generation"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    axes[0].plot(gen, [r["nash_conv_estimate"] for r in rows], "o-", label="best-response gain (both players)")
    axes[0].plot(gen, [r["meta_value"] for r in rows], "s--", label="meta-game value (player 0)")
    axes[0].set_xlabel("generation")
    axes[0].set_ylabel("return per episode")
    axes[0].set_xticks(gen)
    axes[0].grid(True, alpha=0.3)
    axes[0].legend()
    heatmap(fig, axes[1], payoff, [f"{k} ({w:.2f})" for k, w in enumerate(meta[0])],
            [f"{k} ({w:.2f})" for k, w in enumerate(meta[1])], label="player 0's mean return",
            annotate=max(payoff.shape) <= 10, fmt="{:+.1f}")
    axes[1].set_xlabel("player 1 policy of generation k (meta-Nash weight)")
    axes[1].set_ylabel("player 0 policy, k (weight)")
    axes[1].set_title("meta-game: player 0's return, row vs column", fontsize=9)
    fig.suptitle(f"{scenario.name}: PSRO with PPO best responses on {scenario.game}", fontsize=10)
    save(fig, ctx.plot_path("population.png"))
