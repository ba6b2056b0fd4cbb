"""equilibria.scenarios: YAML scenarios, run directories that resume, and the `equilibria` CLI.

    from equilibria import scenarios
    s = scenarios.load("quickstart")          # a built-in name or a YAML path
    result = scenarios.run(s)                 # RunResult(run_dir, metrics, summary_path, plots)

Layout (imports point one way): registry (kinds) <- loading (YAML -> Scenario) <- rundir
(RunContext) <- loop, solving, learning, tournament <- lineup <- kinds <- runner, cli. The
registry imports a built-in kind's module the first time that kind is asked for.
"""

from equilibria.common.config import ConfigError
from equilibria.scenarios.loading import Budget, Scenario, builtins, load
from equilibria.scenarios.registry import register_kind, registered_kinds
from equilibria.scenarios.rundir import Interrupted, RunContext, RunFailed, RunResult
from equilibria.scenarios.runner import run, validate

__all__ = ["Budget", "ConfigError", "Interrupted", "RunContext", "RunFailed", "RunResult", "Scenario", "builtins",
           "registered_kinds", "load", "register_kind", "run", "validate"]
