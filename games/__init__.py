"""equilibria.games: the shared game abstraction, every game, and the adapters.

Importing this package registers every built-in game, so `games.load(...)` works at once.
"""

from equilibria.games.core import (
    CHANCE,
    SIMULTANEOUS,
    TERMINAL,
    CorrelatedPolicy,
    Game,
    GameInfo,
    JointPolicy,
    Policy,
    ScriptedPolicy,
    SizeEstimate,
    State,
    TabularPolicy,
    UniformRandomPolicy,
)
from equilibria.games.registry import load, register, registered

# Built-in games register themselves on import.
from equilibria.games import debate, debate_batched, dispatch, merge, merge_highway, gems, goofspiel, grid_goals, icu_sepsis, lifelong_mapf, navigation, normal_form, occupation, one_shot, overcooked, overcooked_expert, poker, preference, pursuit, werewolf, werewolf_latent  # noqa: E402,F401  isort: skip
from equilibria.games.adapters import openspiel as _openspiel_adapter  # noqa: E402,F401  registers 'openspiel'

__all__ = [
    "CHANCE", "SIMULTANEOUS", "TERMINAL", "CorrelatedPolicy", "Game", "GameInfo", "JointPolicy", "Policy", "ScriptedPolicy", "SizeEstimate", "State", "TabularPolicy",
    "UniformRandomPolicy", "load", "register", "registered",
]


def __getattr__(name: str) -> object:
    """`games.testing` (the API tests) as the README writes it, without importing it first: it is
    loaded on first use rather than with every game."""
    if name == "testing":
        import importlib

        return importlib.import_module(f"{__name__}.testing")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
