"""equilibria.solvers: equilibrium computation on the shared game abstraction.

    from equilibria import games, solvers
    game = games.load("leduc_poker")
    solver = solvers.make("cfr+", game)
    solver.run(100)
    solvers.exploitability(game, solver.average_policy())
"""

from equilibria.solvers.base import NormalFormPolicy, Solver, TreePolicy, build_config, entry, make, registered
from equilibria.solvers.exploitability import best_response, exploitability, nash_conv, policy_value
from equilibria.solvers.sampled_eval import (
    head_to_head,
    sampled_best_response,
    sampled_exploitability,
    value_against,
)

# Solver families register themselves on import.
from equilibria.solvers import cfr, mccfr, mmd, normal_form, preference, psro  # noqa: E402,F401  isort: skip

__all__ = ["Solver", "TreePolicy", "NormalFormPolicy", "make", "registered", "entry", "build_config",
           "nash_conv", "exploitability", "best_response", "policy_value", "head_to_head", "value_against",
           "sampled_best_response", "sampled_exploitability"]
