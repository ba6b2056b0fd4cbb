"""Built-in scenario kinds; each module registers one kind on import."""

from equilibria.scenarios.kinds import (  # noqa: F401
    debate,
    evaluate,
    lspo,
    population,
    populations,
    preference,
    solve,
    tournament,
    train,
)
