"""equilibria.scenarios: YAML scenarios, run directories that resume, and the `equilibria` CLI.

    from equilibria import scenarios
    s = scenarios.load("quickstart")          # a built-in name or a YAML path
    result = scenarios.run(s)                 # RunResult(run_dir, metrics, summary_path, plots)
"""

from equilibria.common.config import ConfigError
from equilibria.scenarios.core import (
    Budget,
    Interrupted,
    RunContext,
    RunFailed,
    RunResult,
    Scenario,
    builtins,
    load,
    register_kind,
    registered_kinds,
    run,
    validate,
)

__all__ = ["Budget", "ConfigError", "Interrupted", "RunContext", "RunFailed", "RunResult", "Scenario", "builtins",
           "registered_kinds", "load", "register_kind", "run", "validate"]
