"""equilibria.scenarios: YAML scenarios, runs and the `equilibria` command line."""
