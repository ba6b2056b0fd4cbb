"""Scenario kind `solve`: run an equilibrium solver on a finite game, evaluating exploitability
(scenarios/solving.py holds the loop, shared with the population kind's exact PSRO)."""

from __future__ import annotations

from typing import Any

from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext
from equilibria.scenarios.solving import SolveConfig, SolvePlan, prepare_solver, run_solver


@register_kind("solve", SolveConfig, prepare=prepare_solver, description="run an equilibrium solver on a finite game")
def run_solve(plan: SolvePlan, ctx: RunContext) -> dict[str, Any]:
    return run_solver(plan, ctx)
