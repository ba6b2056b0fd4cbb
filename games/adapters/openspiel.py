"""OpenSpiel adapter: wrap any pyspiel game as a Game; convert tabular policies both ways.

Player-id constants are equal in both libraries (CHANCE -1, SIMULTANEOUS -2, TERMINAL -4),
so states pass them through unchanged.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from equilibria.common.config import ConfigError, suggest
from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, GameInfo, Policy, State, TabularPolicy
from equilibria.games.registry import register


def _pyspiel():
    try:
        import pyspiel
    except ImportError as err:  # pragma: no cover - open_spiel is a core dependency
        raise ImportError("the OpenSpiel adapter needs the open_spiel package (pip install open_spiel)") from err
    return pyspiel


_UTILITY = {"ZERO_SUM": "zero_sum", "CONSTANT_SUM": "constant_sum", "GENERAL_SUM": "general",
            "IDENTICAL": "identical"}


class OpenSpielGame(Game):
    """A pyspiel game seen through the equilibria contract."""

    def __init__(self, os_game: Any):
        self.os_game = os_game
        t = os_game.get_type()
        self._provides_info_string = t.provides_information_state_string
        self._provides_obs_string = t.provides_observation_string
        self._provides_info_tensor = t.provides_information_state_tensor
        self._provides_obs_tensor = t.provides_observation_tensor
        chance_mode = t.chance_mode.name
        usum = os_game.utility_sum() if t.utility.name in ("ZERO_SUM", "CONSTANT_SUM") else None
        self.info = GameInfo(
            name=t.short_name, num_players=os_game.num_players(),
            dynamics="simultaneous" if t.dynamics.name == "SIMULTANEOUS" else "sequential",
            chance=chance_mode != "DETERMINISTIC",
            information="perfect" if t.information.name == "PERFECT_INFORMATION" else "imperfect",
            utility=_UTILITY[t.utility.name], min_utility=float(os_game.min_utility()),
            max_utility=float(os_game.max_utility()), max_game_length=os_game.max_game_length(),
            num_distinct_actions=os_game.num_distinct_actions(), utility_sum=usum,
            sampled_chance=chance_mode == "SAMPLED_STOCHASTIC",
            reward_model="step" if t.reward_model.name == "REWARDS" else "terminal",
            parameters={"game": str(os_game)},
        )
        self._perfect = self.info.information == "perfect"

    def new_initial_state(self) -> OpenSpielState:
        return OpenSpielState(self, self.os_game.new_initial_state())

    def information_state_key(self, os_state: Any, player: int) -> str:
        """The key of `player` at a pyspiel state (solvers that walk raw pyspiel states use this too)."""
        if self._perfect:
            # Every history is its own information state. (OpenSpiel's strings for some perfect-information
            # simultaneous games, e.g. goofspiel, drop the bid order and so break perfect recall.)
            return f"p{player}|{os_state.history_str()}"
        if self._provides_info_string:
            return os_state.information_state_string(player)
        return f"p{player}|{os_state.history_str()}"  # no string offered: the full history (perfect recall)

    def action_name(self, action: int) -> str:
        return self.os_game.action_to_string(0, action) if self.info.num_players else str(action)


class OpenSpielState(State):
    __slots__ = ("game", "s")

    def __init__(self, game: OpenSpielGame, os_state: Any):
        self.game = game
        self.s = os_state

    def current_player(self) -> int:
        return int(self.s.current_player())

    def legal_actions(self, player: int | None = None) -> list[int]:
        cur = self.s.current_player()
        if self.s.is_terminal():
            return []
        if player is None:
            return list(self.s.legal_actions())
        if cur == SIMULTANEOUS:
            return list(self.s.legal_actions(player))
        return list(self.s.legal_actions()) if player == cur else []

    def chance_outcomes(self) -> list[tuple[int, float]]:
        if not self.s.is_chance_node():
            raise ValueError("chance_outcomes() called on a state that is not a chance node")
        return [(int(a), float(p)) for a, p in self.s.chance_outcomes()]

    def apply_action(self, action: int) -> None:
        self.s.apply_action(int(action))

    def apply_actions(self, actions: Sequence[int]) -> None:
        self.s.apply_actions([int(a) for a in actions])

    def is_terminal(self) -> bool:
        return self.s.is_terminal()

    def returns(self) -> np.ndarray:
        return np.asarray(self.s.returns(), dtype=np.float64)

    def rewards(self) -> np.ndarray:
        return np.asarray(self.s.rewards(), dtype=np.float64)

    def information_state_key(self, player: int) -> Hashable:
        return self.game.information_state_key(self.s, player)

    def observation(self, player: int) -> np.ndarray:
        g = self.game
        if g._provides_info_tensor:
            return np.asarray(self.s.information_state_tensor(player), dtype=np.float32)
        if g._provides_obs_tensor:
            return np.asarray(self.s.observation_tensor(player), dtype=np.float32)
        return np.zeros(1, dtype=np.float32)

    def clone(self) -> OpenSpielState:
        return OpenSpielState(self.game, self.s.clone())

    def history(self) -> list[int]:
        return list(self.s.history())

    def action_to_string(self, player: int, action: int) -> str:
        return self.s.action_to_string(player, action)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """pyspiel prints each error to the process's stderr before raising it (for an unknown game,
    the list of all 126 games); the exception carries the message, so keep the fd quiet."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def from_openspiel(game: Any, **params: Any) -> OpenSpielGame:
    """Wrap a pyspiel game, or load one by name ('liars_dice', 'goofspiel(num_cards=4)')."""
    pyspiel = _pyspiel()
    if isinstance(game, str):
        name = game.split("(", 1)[0].strip()
        known = pyspiel.registered_names()
        if name not in known:
            raise ConfigError(f"unknown OpenSpiel game {name!r}{suggest(name, known)} ({len(known)} games: "
                              "pyspiel.registered_names() lists them)")
        try:
            with _quiet_stderr():
                game = pyspiel.load_game(game, params) if params else pyspiel.load_game(game)
        except Exception as err:  # pyspiel raises SpielError with its own (multi-line) message
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            raise ConfigError(f"OpenSpiel game {game!r}: {'; '.join(lines[:2])[:300]}") from None
    return OpenSpielGame(game)


@register("openspiel", example="openspiel(game=kuhn_poker)")
def openspiel(game: str) -> OpenSpielGame:
    """Any OpenSpiel game by its pyspiel name, e.g. openspiel(game='liars_dice')."""
    return from_openspiel(game)


# ----------------------------------------------------------------------------- equivalents
def openspiel_equivalent(game: Game) -> Any:
    """The pyspiel game whose histories, action ids and chance order match `game`, or None."""
    pyspiel = _pyspiel()
    if isinstance(game, OpenSpielGame):
        return game.os_game
    p = dict(game.info.parameters)
    name = game.info.name
    if name == "kuhn_poker":
        return pyspiel.load_game("kuhn_poker", {"players": p["players"]})
    if name == "leduc_poker" and p.get("num_ranks", 3) == 3 and p.get("num_suits", 2) == 2:
        return pyspiel.load_game("leduc_poker")
    return None


def _paired_decision_states(game: Game, os_game: Any) -> Iterator[tuple[State, Any]]:
    """Walk our game and the OpenSpiel game in lockstep; yield (our state, os state) at every
    sequential decision node. Both must share action ids and chance-outcome order."""
    stack = [(game.new_initial_state(), os_game.new_initial_state())]
    while stack:
        ours, theirs = stack.pop()
        if theirs.is_terminal():
            continue
        cur = theirs.current_player()
        if cur == SIMULTANEOUS:
            raise ValueError("policy conversion supports sequential games only "
                             "(wrap simultaneous games with pyspiel's turn_based_simultaneous_game)")
        if cur != CHANCE:
            yield ours, theirs
        actions = [a for a, _ in theirs.chance_outcomes()] if cur == CHANCE else theirs.legal_actions()
        for a in actions:
            stack.append((ours.child(a), theirs.child(a)))


def to_openspiel_policy(game: Game, policy: Policy, os_game: Any = None) -> Any:
    """Convert any Policy on `game` into an OpenSpiel TabularPolicy."""
    from open_spiel.python import policy as os_policy

    os_game = os_game if os_game is not None else openspiel_equivalent(game)
    if os_game is None:
        raise ValueError(f"no OpenSpiel equivalent known for {game!r}; pass os_game=")
    tab = os_policy.TabularPolicy(os_game)
    seen = set()
    for ours, theirs in _paired_decision_states(game, os_game):
        key = theirs.information_state_string()
        if key in seen:
            continue
        seen.add(key)
        probs = policy.action_probabilities(ours, theirs.current_player())
        row = tab.policy_for_key(key)
        row[:] = 0.0
        for a in theirs.legal_actions():
            row[a] = probs.get(a, 0.0)
        total = row.sum()
        if total <= 0:
            raise ValueError(f"policy gives no probability to any legal action at {key!r}")
        row /= total
    return tab


def from_openspiel_policy(os_policy: Any, game: Game, os_game: Any = None) -> TabularPolicy:
    """Convert an OpenSpiel policy into a TabularPolicy keyed by `game`'s information states."""
    os_game = os_game if os_game is not None else openspiel_equivalent(game)
    if os_game is None:
        raise ValueError(f"no OpenSpiel equivalent known for {game!r}; pass os_game=")
    table: dict[Hashable, dict[int, float]] = {}
    for ours, theirs in _paired_decision_states(game, os_game):
        p = theirs.current_player()
        key = ours.information_state_key(p)
        if key not in table:
            table[key] = {int(a): float(x) for a, x in os_policy.action_probabilities(theirs, p).items()}
    return TabularPolicy(table)


__all__ = ["OpenSpielGame", "from_openspiel", "to_openspiel_policy", "from_openspiel_policy",
           "openspiel_equivalent", "TERMINAL"]
