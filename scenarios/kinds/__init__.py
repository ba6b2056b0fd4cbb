"""Built-in scenario kinds; each module registers one kind on import."""

from equilibria.scenarios.kinds import debate, evaluate, population, populations, preference, solve, tournament, train  # noqa: F401
