"""Kuhn poker (2 or 3 players) and Leduc poker, following OpenSpiel's standard rules.

Action ids, chance-outcome order and information-state strings match OpenSpiel's
`kuhn_poker` and `leduc_poker` exactly (tests/test_openspiel_adapter.py walks every
history of both to check), so tabular policies move between the two without a mapping.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from equilibria.games.core import CHANCE, TERMINAL, Game, GameInfo, SizeEstimate, State
from equilibria.games.registry import register

# ----------------------------------------------------------------------------- Kuhn
PASS, BET = 0, 1


class KuhnPoker(Game):
    def __init__(self, players: int = 2):
        if players not in (2, 3, 4, 5):
            raise ValueError(f"kuhn_poker supports 2 to 5 players, got players={players}")
        self.players = players
        self.size_estimate = kuhn_size(players)
        self.info = GameInfo(
            name="kuhn_poker", num_players=players, dynamics="sequential", chance=True,
            information="imperfect", utility="zero_sum", min_utility=-2.0, max_utility=2.0 * (players - 1),
            max_game_length=2 * players - 1, num_distinct_actions=2, parameters={"players": players},
        )

    def new_initial_state(self) -> KuhnState:
        return KuhnState(self)

    def action_name(self, action: int) -> str:
        return "pass" if action == PASS else "bet"


class KuhnState(State):
    __slots__ = ("game", "n", "cards", "bets")

    def __init__(self, game: KuhnPoker):
        self.game = game
        self.n = game.players
        self.cards: list[int] = []
        self.bets: list[int] = []

    def _first_bet(self) -> int:
        try:
            return self.bets.index(BET)
        except ValueError:
            return -1

    def is_terminal(self) -> bool:
        if len(self.cards) < self.n:
            return False
        first = self._first_bet()
        if first < 0:
            return len(self.bets) == self.n
        return len(self.bets) == first + self.n

    def current_player(self) -> int:
        if len(self.cards) < self.n:
            return CHANCE
        if self.is_terminal():
            return TERMINAL
        return len(self.bets) % self.n

    def chance_outcomes(self) -> list[tuple[int, float]]:
        if len(self.cards) >= self.n:
            raise ValueError("chance_outcomes() called on a state that is not a chance node")
        left = [c for c in range(self.n + 1) if c not in self.cards]
        return [(c, 1.0 / len(left)) for c in left]

    def legal_actions(self, player: int | None = None) -> list[int]:
        cur = self.current_player()
        if cur == CHANCE and player is None:
            return [c for c, _ in self.chance_outcomes()]
        if cur < 0 or (player is not None and player != cur):
            return []
        return [PASS, BET]

    def apply_action(self, action: int) -> None:
        cur = self.current_player()
        if cur == CHANCE:
            if action in self.cards or not 0 <= action <= self.n:
                raise ValueError(f"illegal chance outcome {action}")
            self.cards.append(int(action))
        elif cur == TERMINAL:
            raise ValueError("apply_action on a terminal state")
        else:
            if action not in (PASS, BET):
                raise ValueError(f"illegal action {action} in kuhn_poker")
            self.bets.append(int(action))

    def returns(self) -> np.ndarray:
        out = np.zeros(self.n)
        if not self.is_terminal():
            return out
        first = self._first_bet()
        contrib = np.ones(self.n)
        if first < 0:
            contenders = list(range(self.n))
        else:
            contenders = []
            for i in range(first, first + self.n):
                if self.bets[i] == BET:
                    p = i % self.n
                    contrib[p] += 1
                    contenders.append(p)
        winner = max(contenders, key=lambda p: self.cards[p])
        out -= contrib
        out[winner] += contrib.sum()
        return out

    def information_state_key(self, player: int) -> str:
        card = str(self.cards[player]) if player < len(self.cards) else ""
        return card + "".join("p" if b == PASS else "b" for b in self.bets)

    def observation(self, player: int) -> np.ndarray:
        # [player one-hot (n)] [private card one-hot (n+1)] [per betting step: pass bit, bet bit]
        n = self.n
        obs = np.zeros(n + (n + 1) + 2 * (2 * n - 1), dtype=np.float32)
        obs[player] = 1.0
        if player < len(self.cards):
            obs[n + self.cards[player]] = 1.0
        base = 2 * n + 1
        for i, b in enumerate(self.bets):
            obs[base + 2 * i + b] = 1.0
        return obs

    def clone(self) -> KuhnState:
        new = KuhnState.__new__(KuhnState)
        new.game, new.n, new.cards, new.bets = self.game, self.n, list(self.cards), list(self.bets)
        return new

    def history(self) -> list[int]:
        return self.cards + self.bets

    def action_to_string(self, player: int, action: int) -> str:
        if player == CHANCE:
            return f"deal:{action}"
        return self.game.action_name(action)


def kuhn_size(players: int = 2) -> SizeEstimate:
    """58 histories for two players, about 12.8x more per extra player (617, 7886 measured)."""
    return SizeEstimate(histories=58.0 * 12.8 ** (players - 2))


@register("kuhn_poker", size=kuhn_size)
def kuhn_poker(players: Annotated[int, Field(ge=2, le=5)] = 2) -> KuhnPoker:
    """Kuhn poker: n+1 cards, ante 1, one betting round (OpenSpiel's rules)."""
    return KuhnPoker(players)


# ----------------------------------------------------------------------------- Leduc
FOLD, CALL, RAISE = 0, 1, 2
_STARTING_MONEY = 100
_ANTE = 1
_MAX_RAISES = 2


class LeducPoker(Game):
    """Two-player Leduc hold'em. num_ranks/num_suits generalise the deck (3 x 2 is standard)."""

    def __init__(self, num_ranks: int = 3, num_suits: int = 2):
        if num_ranks < 2 or num_suits < 2:
            raise ValueError(f"leduc_poker needs num_ranks >= 2 and num_suits >= 2, got {num_ranks}, {num_suits}")
        self.num_ranks, self.num_suits = num_ranks, num_suits
        self.num_cards = num_ranks * num_suits
        self.size_estimate = leduc_size(num_ranks, num_suits)
        self.bet_sizes = (2, 4)
        max_stake = _ANTE + _MAX_RAISES * self.bet_sizes[0] + _MAX_RAISES * self.bet_sizes[1]
        self.info = GameInfo(
            name="leduc_poker", num_players=2, dynamics="sequential", chance=True, information="imperfect",
            utility="zero_sum", min_utility=-float(max_stake), max_utility=float(max_stake), max_game_length=8,
            num_distinct_actions=3, parameters={"num_ranks": num_ranks, "num_suits": num_suits},
        )

    def new_initial_state(self) -> LeducState:
        return LeducState(self)

    def action_name(self, action: int) -> str:
        return ("fold", "call", "raise")[action]


class LeducState(State):
    __slots__ = ("game", "private", "public", "round", "seq", "contrib", "num_raises", "folded",
                 "player", "stakes", "_hist")

    def __init__(self, game: LeducPoker):
        self.game = game
        self.private: list[int] = []
        self.public = -1
        self.round = 1
        self.seq: list[list[int]] = [[], []]
        self.contrib = [_ANTE, _ANTE]
        self.stakes = _ANTE  # the amount each player must have put in to stay in
        self.num_raises = 0
        self.folded = -1
        self.player = CHANCE
        self._hist: list[int] = []

    # -- chance ---------------------------------------------------------------
    def chance_outcomes(self) -> list[tuple[int, float]]:
        if self.player != CHANCE:
            raise ValueError("chance_outcomes() called on a state that is not a chance node")
        used = set(self.private)
        left = [c for c in range(self.game.num_cards) if c not in used]
        return [(c, 1.0 / len(left)) for c in left]

    def current_player(self) -> int:
        return self.player

    def is_terminal(self) -> bool:
        return self.player == TERMINAL

    def legal_actions(self, player: int | None = None) -> list[int]:
        if self.player == CHANCE and player is None:
            return [c for c, _ in self.chance_outcomes()]
        if self.player < 0 or (player is not None and player != self.player):
            return []
        actions = []
        if self.stakes > self.contrib[self.player]:
            actions.append(FOLD)
        actions.append(CALL)
        if self.num_raises < _MAX_RAISES:
            actions.append(RAISE)
        return actions

    def apply_action(self, action: int) -> None:
        action = int(action)
        if self.player == TERMINAL:
            raise ValueError("apply_action on a terminal state")
        if self.player == CHANCE:
            if action in self.private or not 0 <= action < self.game.num_cards:
                raise ValueError(f"illegal chance outcome {action}")
            self._hist.append(action)
            if len(self.private) < 2:
                self.private.append(action)
                if len(self.private) == 2:
                    self.player = 0
            else:
                self.public = action
                self.player = 0
            return
        if action not in self.legal_actions():
            raise ValueError(f"illegal action {action} in leduc_poker; legal: {self.legal_actions()}")
        self._hist.append(action)
        p = self.player
        seq = self.seq[self.round - 1]
        seq.append(action)
        if action == FOLD:
            self.folded = p
            self.player = TERMINAL
            return
        if action == RAISE:
            self.stakes += self.game.bet_sizes[self.round - 1]
            self.contrib[p] = self.stakes
            self.num_raises += 1
            self.player = 1 - p
            return
        # call / check
        self.contrib[p] = self.stakes
        if len(seq) >= 2:  # both have acted and stakes are matched: the round is over
            if self.round == 1:
                self.round = 2
                self.num_raises = 0
                self.player = CHANCE
            else:
                self.player = TERMINAL
        else:
            self.player = 1 - p

    # -- outcome ----------------------------------------------------------------
    def _rank(self, card: int) -> int:
        return card // self.game.num_suits

    def returns(self) -> np.ndarray:
        if self.player != TERMINAL:
            return np.zeros(2)
        pot = sum(self.contrib)
        if self.folded >= 0:
            winner = 1 - self.folded
            out = np.array([-self.contrib[0], -self.contrib[1]], dtype=np.float64)
            out[winner] += pot
            return out
        pub = self._rank(self.public)

        def strength(p: int) -> int:
            r = self._rank(self.private[p])
            return (self.game.num_ranks + r) if r == pub else r

        s0, s1 = strength(0), strength(1)
        if s0 == s1:
            return np.zeros(2)
        winner = 0 if s0 > s1 else 1
        out = np.array([-self.contrib[0], -self.contrib[1]], dtype=np.float64)
        out[winner] += pot
        return out

    def information_state_key(self, player: int) -> str:
        priv = self.private[player] if player < len(self.private) else -1000
        money = f"{_STARTING_MONEY - self.contrib[0]} {_STARTING_MONEY - self.contrib[1]}"
        parts = [f"[Observer: {player}]", f"[Private: {priv}]", f"[Round {self.round}]",
                 f"[Player: {self.player}]", f"[Pot: {sum(self.contrib)}]", f"[Money: {money}]"]
        if self.public >= 0:
            parts.append(f"[Public: {self.public}]")
        parts.append(f"[Round1: {' '.join(map(str, self.seq[0]))}]")
        parts.append(f"[Round2: {' '.join(map(str, self.seq[1]))}]")
        return "".join(parts)

    def observation(self, player: int) -> np.ndarray:
        # [player (2)] [private card (D)] [public card (D)] [round-1 actions: 4 x (call, raise)] [round 2 likewise]
        d = self.game.num_cards
        obs = np.zeros(2 + 2 * d + 16, dtype=np.float32)
        obs[player] = 1.0
        if player < len(self.private):
            obs[2 + self.private[player]] = 1.0
        if self.public >= 0:
            obs[2 + d + self.public] = 1.0
        for r in range(2):
            base = 2 + 2 * d + 8 * r
            for i, a in enumerate(self.seq[r][:4]):
                if a == CALL:
                    obs[base + 2 * i] = 1.0
                elif a == RAISE:
                    obs[base + 2 * i + 1] = 1.0
        return obs

    def clone(self) -> LeducState:
        new = LeducState.__new__(LeducState)
        new.game = self.game
        new.private = list(self.private)
        new.public = self.public
        new.round = self.round
        new.seq = [list(self.seq[0]), list(self.seq[1])]
        new.contrib = list(self.contrib)
        new.stakes = self.stakes
        new.num_raises = self.num_raises
        new.folded = self.folded
        new.player = self.player
        new._hist = list(self._hist)
        return new

    def history(self) -> list[int]:
        return list(self._hist)

    def action_to_string(self, player: int, action: int) -> str:
        if player == CHANCE:
            return f"deal:{action}"
        return self.game.action_name(action)


def leduc_size(num_ranks: int = 3, num_suits: int = 2) -> SizeEstimate:
    """Histories with N = ranks x suits cards: 75 N(N-1)(N-2) + 15 N(N-1) + N + 1 (exact for the
    two-raise betting rounds: 1,985 / 9,457 / 38,890 histories for 2x2, 3x2, 3x3)."""
    n = float(num_ranks) * float(num_suits)
    return SizeEstimate(histories=75 * n * (n - 1) * (n - 2) + 15 * n * (n - 1) + n + 1)


@register("leduc_poker", size=leduc_size)
def leduc_poker(num_ranks: Annotated[int, Field(ge=2)] = 3, num_suits: Annotated[int, Field(ge=2)] = 2) -> LeducPoker:
    """Leduc hold'em (OpenSpiel's rules); more ranks or suits give larger variants."""
    return LeducPoker(num_ranks, num_suits)
