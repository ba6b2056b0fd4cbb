"""Scenario kind `population`: PSRO, one generation per iteration.

- finite games (solver `psro`): exact best responses on the game tree, exact exploitability of
  the meta-Nash mixture per generation (the solver loop of scenarios/solving.py);
- two-player zero-sum Markov games (solver `psro-rl`): PPO best responses through marl/,
  the meta-game estimated by playing episodes, and the best-response gain per generation as
  the exploitability estimate. Best responses are independent jobs: `backend: ray` runs them as
  Ray tasks.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from equilibria.common.executor import make_executor
from equilibria.scenarios.loading import Scenario, check_job_backend, load_game
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import heatmap, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext
from equilibria.scenarios.solving import SolveConfig, SolvePlan, prepare_solver, run_solver

POPULATION_SOLVERS = ("psro", "psro-rl")


@dataclasses.dataclass
class RLPlan:
    scenario: Scenario
    game: Any
    config: Any  # marl.population.RLPSROConfig


def prepare_population(scenario: Scenario) -> SolvePlan | RLPlan:
    name = scenario.config.solver.name
    if name not in POPULATION_SOLVERS:
        raise scenario.error(f"population scenarios run {', '.join(POPULATION_SOLVERS)}; got {name!r}",
                             "solver", "name")
    if name == "psro":
        return prepare_solver(scenario, allowed=("psro",))
    from equilibria.games.markov import MarkovGame
    from equilibria.marl.population import RLPSROConfig

    check_job_backend(scenario, "psro-rl scenarios")
    game = load_game(scenario)
    if not isinstance(game, MarkovGame) or game.max_agents != 2 or not game.info.is_zero_sum:
        raise scenario.error(f"psro-rl needs a two-player zero-sum Markov game (e.g. pursuit); "
                             f"{game.info.name} is not one (finite games use solver psro)", "game")
    config = scenario.build(RLPSROConfig, scenario.config.solver.config, "solver", "config")
    if scenario.budget.iterations is None:
        raise scenario.error("a psro-rl scenario needs budget.iterations (generations)", "budget")
    return RLPlan(scenario, game, config)


@register_kind("population", SolveConfig, prepare=prepare_population,
               description="population training (PSRO): exploitability of the meta-Nash mixture per generation")
def run_population(plan: SolvePlan | RLPlan, ctx: RunContext) -> dict[str, Any]:
    if isinstance(plan, SolvePlan):
        return run_solver(plan, ctx)
    return _run_rl_psro(plan, ctx)


def _run_rl_psro(plan: RLPlan, ctx: RunContext) -> dict[str, Any]:
    from equilibria.marl.population import RLPSRO

    scenario = plan.scenario
    psro = RLPSRO(plan.game, plan.config, seed=scenario.seed)
    clock = {"seconds": 0.0}
    state = ctx.load_torch_checkpoint()
    if state is not None:
        ctx.restore(psro, state, ctx.torch_checkpoint_path)
        clock["seconds"] = float(state.get("seconds", 0.0))
        ctx.truncate_metrics("generation", psro.iteration)
        ctx.log(f"resumed {ctx.run_dir} at generation {psro.iteration}")
    executor = make_executor(scenario.backend, ctx.address)

    def step() -> dict[str, Any]:
        t0 = time.perf_counter()
        row = dict(psro.step(executor))
        clock["seconds"] += time.perf_counter() - t0
        return {**row, "seconds": round(clock["seconds"], 3)}

    row = run_loop(ctx, label=scenario.name, total=scenario.budget.iterations, position=lambda: psro.iteration,
                   step=step, evaluate=lambda r: r, eval_every=1,
                   save=lambda: ctx.save_torch_checkpoint({**psro.state_dict(), "seconds": clock["seconds"]}),
                   save_every=1, describe=lambda r: f"best-response gain {r['nash_conv_estimate']:.3g}")
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
