"""Built-in scenario kinds: each module registers one kind (named like the module) on import;
equilibria.scenarios.registry imports a module the first time its kind is asked for."""
