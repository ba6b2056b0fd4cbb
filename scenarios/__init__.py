"""equilibria.scenarios: YAML scenarios, run directories that resume, and the `equilibria` CLI.

    import scenarios
    s = scenarios.load("quickstart")          # a built-in name or a YAML path
    result = scenarios.run(s)                 # RunResult(run_dir, metrics, summary_path, plots)
"""

from scenarios.core import (
    Budget,
    Interrupted,
    RunContext,
    RunResult,
    Scenario,
    builtins,
    load,
    register_kind,
    registered_kinds,
    run,
    validate,
)
from scenarios.spec import ScenarioError

__all__ = ["Budget", "Interrupted", "RunContext", "RunResult", "Scenario", "ScenarioError", "builtins", "registered_kinds",
           "load", "register_kind", "run", "validate"]
