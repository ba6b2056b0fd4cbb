"""Goofspiel: two players bid simultaneously for prize cards.

Each turn a prize card is revealed (by chance under points_order='random'), both players
bid one card from their hand at the same time, the higher bid wins the prize's value and
equal bids discard it. Bids are revealed after each turn. Cards have values 1..num_cards;
action id k bids the card of value k+1, as in OpenSpiel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, GameInfo, SizeEstimate, State
from equilibria.games.registry import register


class Goofspiel(Game):
    def __init__(self, num_cards: int = 4, points_order: str = "random", returns_type: str = "win_loss"):
        if num_cards < 1:
            raise ValueError(f"goofspiel needs num_cards >= 1, got {num_cards}")
        if points_order not in ("random", "descending", "ascending"):
            raise ValueError(f"points_order must be random, descending or ascending, got {points_order!r}")
        if returns_type not in ("win_loss", "point_difference"):
            raise ValueError(f"returns_type must be win_loss or point_difference, got {returns_type!r}")
        self.num_cards, self.points_order, self.returns_type = num_cards, points_order, returns_type
        self.size_estimate = goofspiel_size(num_cards, points_order, returns_type)
        bound = 1.0 if returns_type == "win_loss" else float(num_cards * (num_cards + 1) // 2)
        self.info = GameInfo(
            name="goofspiel", num_players=2, dynamics="simultaneous", chance=points_order == "random",
            information="perfect", utility="zero_sum", min_utility=-bound, max_utility=bound,
            max_game_length=num_cards, num_distinct_actions=num_cards,
            parameters={"num_cards": num_cards, "points_order": points_order, "returns_type": returns_type},
        )

    def new_initial_state(self) -> GoofspielState:
        return GoofspielState(self)


class GoofspielState(State):
    def __init__(self, game: Goofspiel):
        self.game = game
        n = game.num_cards
        self.hands = [set(range(n)), set(range(n))]
        self.prizes: list[int] = []  # revealed prize ids, in order
        self.bids: list[tuple[int, int]] = []
        self.points = [0, 0]

    def _fixed_prize(self) -> int:
        t = len(self.prizes)
        return self.game.num_cards - 1 - t if self.game.points_order == "descending" else t

    def current_player(self) -> int:
        if len(self.bids) == self.game.num_cards:
            return TERMINAL
        if len(self.prizes) == len(self.bids):
            if self.game.points_order == "random":
                return CHANCE
            self.prizes.append(self._fixed_prize())  # deterministic reveal, no decision to make
        return SIMULTANEOUS

    def is_terminal(self) -> bool:
        return len(self.bids) == self.game.num_cards

    def chance_outcomes(self) -> list[tuple[int, float]]:
        if self.current_player() != CHANCE:
            raise ValueError("chance_outcomes() called on a state that is not a chance node")
        left = [c for c in range(self.game.num_cards) if c not in self.prizes]
        return [(c, 1.0 / len(left)) for c in left]

    def legal_actions(self, player: int | None = None) -> list[int]:
        cur = self.current_player()
        if cur == CHANCE and player is None:
            return [c for c, _ in self.chance_outcomes()]
        if cur != SIMULTANEOUS or player is None or player < 0:
            return []
        return sorted(self.hands[player])

    def apply_action(self, action: int) -> None:
        if self.current_player() != CHANCE:
            raise ValueError("goofspiel bids are simultaneous: use apply_actions([bid0, bid1])")
        if action in self.prizes or not 0 <= action < self.game.num_cards:
            raise ValueError(f"illegal chance outcome {action}")
        self.prizes.append(int(action))

    def apply_actions(self, actions: Sequence[int]) -> None:
        if self.current_player() != SIMULTANEOUS:
            raise ValueError("apply_actions on a state that is not simultaneous")
        a0, a1 = (int(a) for a in actions)
        for p, a in ((0, a0), (1, a1)):
            if a not in self.hands[p]:
                raise ValueError(f"illegal bid {a} for player {p}; hand: {sorted(self.hands[p])}")
        self.hands[0].discard(a0)
        self.hands[1].discard(a1)
        prize_value = self.prizes[-1] + 1
        if a0 > a1:
            self.points[0] += prize_value
        elif a1 > a0:
            self.points[1] += prize_value
        self.bids.append((a0, a1))

    def returns(self) -> np.ndarray:
        if not self.is_terminal():
            return np.zeros(2)
        diff = self.points[0] - self.points[1]
        if self.game.returns_type == "point_difference":
            return np.array([diff, -diff], dtype=np.float64)
        s = float(np.sign(diff))
        return np.array([s, -s])

    def information_state_key(self, player: int) -> str:
        bids = " ".join(f"{a}:{b}" for a, b in self.bids)
        return f"p{player}|prizes {' '.join(map(str, self.prizes))}|bids {bids}"

    def observation(self, player: int) -> np.ndarray:
        # [current prize one-hot] [own hand mask] [opponent hand mask] [points (2), scaled] [turn fraction]
        n = self.game.num_cards
        self.current_player()  # reveal a fixed-order prize if due
        obs = np.zeros(3 * n + 3, dtype=np.float32)
        if len(self.prizes) > len(self.bids):
            obs[self.prizes[-1]] = 1.0
        for c in self.hands[player]:
            obs[n + c] = 1.0
        for c in self.hands[1 - player]:
            obs[2 * n + c] = 1.0
        total = n * (n + 1) / 2
        obs[3 * n] = self.points[player] / total
        obs[3 * n + 1] = self.points[1 - player] / total
        obs[3 * n + 2] = len(self.bids) / n
        return obs

    def clone(self) -> GoofspielState:
        new = GoofspielState.__new__(GoofspielState)
        new.game = self.game
        new.hands = [set(self.hands[0]), set(self.hands[1])]
        new.prizes = list(self.prizes)
        new.bids = list(self.bids)
        new.points = list(self.points)
        return new

    def history(self) -> list[int]:
        out: list[int] = []
        for t, prize in enumerate(self.prizes):
            if self.game.points_order == "random":
                out.append(prize)
            if t < len(self.bids):
                out.extend(self.bids[t])
        return out


def goofspiel_size(num_cards: int = 4, points_order: str = "random", returns_type: str = "win_loss") -> SizeEstimate:
    """About 4.94 (n!)^3 histories with a random prize order (1,066 / 68,245 / 8,530,656 for 3, 4, 5
    cards), (n!)^2 times a similar constant with a fixed order."""
    f = float(math.factorial(min(num_cards, 170)))
    return SizeEstimate(histories=5.0 * f ** (3 if points_order == "random" else 2))


@register("goofspiel", size=goofspiel_size)
def goofspiel(num_cards: Annotated[int, Field(ge=1, le=52)] = 4,
              points_order: Literal["random", "descending", "ascending"] = "random",
              returns_type: Literal["win_loss", "point_difference"] = "win_loss") -> Goofspiel:
    """Goofspiel: simultaneous bidding for prize cards (OpenSpiel's default rules)."""
    return Goofspiel(num_cards, points_order, returns_type)
