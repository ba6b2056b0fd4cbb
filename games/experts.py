"""Scripted experts: game-specific policies that demonstrations are recorded from.

A game module registers its planners here (`register_expert("gems_planner", "gems", GemsPlanner)`);
`equilibria record NAME --game SPEC` and learners from demonstrations (`expert: NAME`) find them
by name, and refuse a game the expert was not written for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from equilibria.common.config import ConfigError, suggest
from equilibria.games.core import Game, Policy


@dataclasses.dataclass(frozen=True)
class Expert:
    name: str
    game: str  # the registered game name it plays
    factory: Callable[[], Policy]
    description: str


_EXPERTS: dict[str, Expert] = {}


def register_expert(name: str, game: str, factory: Callable[[], Policy], description: str) -> None:
    if name in _EXPERTS and _EXPERTS[name].factory is not factory:
        raise ValueError(f"expert {name!r} is registered twice")
    _EXPERTS[name] = Expert(name, game, factory, description)


def experts() -> dict[str, Expert]:
    import equilibria.games  # noqa: F401  (game modules register their experts on import)

    return dict(_EXPERTS)


def expert_policy(name: str, game: Game) -> Policy:
    """The expert `name` for `game`, or a one-line ConfigError (unknown name, another game)."""
    known = experts()
    if name not in known:
        raise ConfigError(f"unknown expert {name!r}{suggest(name, known)} (experts: {', '.join(sorted(known)) or 'none'})")
    e = known[name]
    if game.info.name != e.game:
        raise ConfigError(f"expert {name!r} plays {e.game}, not {game.info.name}")
    return e.factory()


__all__ = ["Expert", "expert_policy", "experts", "register_expert"]
