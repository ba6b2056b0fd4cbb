"""Normal-form (one-shot, simultaneous-move) games defined by a payoff tensor.

`payoff_tensor()` has shape (num_players, A_0, ..., A_{n-1}): entry [i, a_0, ..., a_{n-1}] is
player i's payoff for that joint action. Solvers use this view directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import Field

from equilibria.common.config import PositiveInt, Seed, Strategies
from equilibria.games.core import SIMULTANEOUS, TERMINAL, Game, GameInfo, SizeEstimate, State
from equilibria.games.registry import register


class NormalFormGame(Game):
    def __init__(self, payoffs: np.ndarray, name: str = "matrix", action_names: Sequence[Sequence[str]] | None = None,
                 parameters: dict | None = None):
        payoffs = np.asarray(payoffs, dtype=np.float64)
        if payoffs.ndim < 2 or payoffs.shape[0] != payoffs.ndim - 1:
            raise ValueError(f"payoff tensor must have shape (num_players, A_0, ..., A_n-1); got {payoffs.shape}")
        if not np.all(np.isfinite(payoffs)):
            raise ValueError("payoff tensor has non-finite entries")
        self._payoffs = payoffs
        self._payoffs.setflags(write=False)
        n = payoffs.shape[0]
        sums = payoffs.sum(axis=0)
        if np.allclose(sums, 0.0):
            utility, usum = "zero_sum", 0.0
        elif np.allclose(sums, sums.flat[0]):
            utility, usum = "constant_sum", float(sums.flat[0])
        elif all(np.allclose(payoffs[i], payoffs[0]) for i in range(n)):
            utility, usum = "identical", None
        else:
            utility, usum = "general", None
        self.action_names = [list(a) for a in action_names] if action_names else None
        self.info = GameInfo(
            name=name, num_players=n, dynamics="simultaneous", chance=False, information="imperfect",
            utility=utility, min_utility=float(payoffs.min()), max_utility=float(payoffs.max()),
            max_game_length=1, num_distinct_actions=int(max(payoffs.shape[1:])), utility_sum=usum,
            parameters=dict(parameters or {}),
        )

    def payoff_tensor(self) -> np.ndarray:
        return self._payoffs

    @property
    def num_actions(self) -> tuple[int, ...]:
        return tuple(self._payoffs.shape[1:])

    def new_initial_state(self) -> NormalFormState:
        return NormalFormState(self)

    def action_name(self, action: int, player: int = 0) -> str:
        if self.action_names:
            return self.action_names[player][action]
        return str(action)


class NormalFormState(State):
    def __init__(self, game: NormalFormGame):
        self.game = game
        self.joint: tuple[int, ...] | None = None

    def current_player(self) -> int:
        return TERMINAL if self.joint is not None else SIMULTANEOUS

    def legal_actions(self, player: int | None = None) -> list[int]:
        if self.joint is not None:
            return []
        if player is None or player < 0:
            raise ValueError("legal_actions at a simultaneous node needs a player")
        return list(range(self.game.num_actions[player]))

    def apply_action(self, action: int) -> None:
        raise ValueError("normal-form games move simultaneously: use apply_actions(joint)")

    def apply_actions(self, actions: Sequence[int]) -> None:
        if self.joint is not None:
            raise ValueError("apply_actions on a terminal state")
        if len(actions) != self.game.num_players:
            raise ValueError(f"need {self.game.num_players} actions, got {len(actions)}")
        for p, a in enumerate(actions):
            if not 0 <= int(a) < self.game.num_actions[p]:
                raise ValueError(f"illegal action {a} for player {p}")
        self.joint = tuple(int(a) for a in actions)

    def is_terminal(self) -> bool:
        return self.joint is not None

    def returns(self) -> np.ndarray:
        if self.joint is None:
            return np.zeros(self.game.num_players)
        return self.game.payoff_tensor()[(slice(None), *self.joint)].copy()

    def information_state_key(self, player: int) -> str:
        return "" if self.joint is None else "joint " + " ".join(map(str, self.joint))

    def observation(self, player: int) -> np.ndarray:
        obs = np.zeros(sum(self.game.num_actions), dtype=np.float32)
        if self.joint is not None:
            offset = 0
            for p, a in enumerate(self.joint):
                obs[offset + a] = 1.0
                offset += self.game.num_actions[p]
        return obs

    def clone(self) -> NormalFormState:
        new = NormalFormState(self.game)
        new.joint = self.joint
        return new

    def history(self) -> list[int]:
        return list(self.joint or ())

    def action_to_string(self, player: int, action: int) -> str:
        return self.game.action_name(action, player)


def _as_matrix(name: str, values: list) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D list of numbers, got shape {arr.shape}")
    return arr


@register("matrix", example="matrix(row=[[1, -1], [-1, 1]])")
def matrix(row: Strategies, col: Strategies | None = None) -> NormalFormGame:
    """Two-player bimatrix game from payoff arrays; `col` defaults to -row (zero-sum)."""
    r = _as_matrix("row", row)
    c = -r if col is None else _as_matrix("col", col)
    if c.shape != r.shape:
        raise ValueError(f"row and col payoffs differ in shape: {r.shape} vs {c.shape}")
    return NormalFormGame(np.stack([r, c]), name="matrix", parameters={"row": row, "col": col})


def matrix_game(row: np.ndarray, col: np.ndarray | None = None, name: str = "matrix",
                action_names: Sequence[Sequence[str]] | None = None) -> NormalFormGame:
    """Python-side constructor from numpy arrays (col defaults to -row)."""
    row = np.asarray(row, dtype=np.float64)
    col = -row if col is None else np.asarray(col, dtype=np.float64)
    return NormalFormGame(np.stack([row, col]), name=name, action_names=action_names)


@register("rock_paper_scissors")
def rock_paper_scissors() -> NormalFormGame:
    """Rock-paper-scissors: zero-sum, unique Nash equilibrium uniform, value 0."""
    a = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=np.float64)
    names = ["rock", "paper", "scissors"]
    return NormalFormGame(np.stack([a, -a]), name="rock_paper_scissors", action_names=[names, names])


@register("matching_pennies")
def matching_pennies() -> NormalFormGame:
    """Matching pennies: row wins on a match; equilibrium (1/2, 1/2), value 0."""
    a = np.array([[1, -1], [-1, 1]], dtype=np.float64)
    names = ["heads", "tails"]
    return NormalFormGame(np.stack([a, -a]), name="matching_pennies", action_names=[names, names])


@register("prisoners_dilemma")
def prisoners_dilemma() -> NormalFormGame:
    """Prisoner's dilemma (T=5, R=3, P=1, S=0): general-sum, unique equilibrium (defect, defect)."""
    row = np.array([[3, 0], [5, 1]], dtype=np.float64)
    names = ["cooperate", "defect"]
    return NormalFormGame(np.stack([row, row.T]), name="prisoners_dilemma", action_names=[names, names])


def _common(payoff: np.ndarray, name: str) -> NormalFormGame:
    return NormalFormGame(np.stack([payoff] * payoff.ndim), name=name)


@register("climbing_game")
def climbing_game() -> NormalFormGame:
    """Claus & Boutilier (1998), common payoff: the optimum (0, 0) pays 11, but miscoordinating
    next to it costs 30; (1, 1) pays 7 and (2, 2) 5."""
    return _common(np.array([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]]), "climbing_game")


@register("penalty_game")
def penalty_game(k: float = -100.0) -> NormalFormGame:
    """Claus & Boutilier (1998), common payoff: two optima (0, 2) and (2, 0) worth 10,
    miscoordinating on them costs k (<= 0), (1, 1) pays 2."""
    if k > 0:
        raise ValueError(f"penalty_game: k is a penalty, <= 0; got {k}")
    return _common(np.array([[k, 0.0, 10.0], [0.0, 2.0, 0.0], [10.0, 0.0, k]]), "penalty_game")


@register("three_agent_climb")
def three_agent_climb() -> NormalFormGame:
    """Three agents, three actions, common payoff: all choosing 0 pays 20 (the unique optimum),
    a 0 next to any other choice costs 20, all choosing 2 pays 8 (the safe equilibrium)."""
    r = np.where((np.indices((3, 3, 3)) == 0).any(0), -20.0, 0.0)
    r[0, 0, 0], r[2, 2, 2] = 20.0, 8.0
    return _common(r, "three_agent_climb")


def tensor_size(players: int, *actions: int) -> SizeEstimate:
    """A payoff tensor of float64 (built with a temporary of the same size) and its one-move tree."""
    cells = float(np.prod([float(a) for a in actions]))
    return SizeEstimate(bytes=2 * 8.0 * players * cells, histories=1.0 + cells + float(actions[0]))


def _random_zero_sum_size(n: int = 10, seed: int = 0, m: int | None = None) -> SizeEstimate:
    return tensor_size(2, n, m or n)


def _random_general_sum_size(n: int = 10, players: int = 2, seed: int = 0) -> SizeEstimate:
    return tensor_size(players, *([n] * players))


@register("random_zero_sum", size=_random_zero_sum_size)
def random_zero_sum(n: PositiveInt = 10, seed: Seed = 0, m: PositiveInt | None = None) -> NormalFormGame:
    """n x m (default square) zero-sum matrix with U(-1, 1) entries."""
    a = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, m or n))
    return NormalFormGame(np.stack([a, -a]), name="random_zero_sum", parameters={"n": n, "seed": seed, "m": m})


@register("random_general_sum", size=_random_general_sum_size)
def random_general_sum(n: PositiveInt = 10, players: Annotated[int, Field(ge=2, le=32)] = 2,
                       seed: Seed = 0) -> NormalFormGame:
    """General-sum game, `players` players with n actions each, U(0, 1) payoffs."""
    p = np.random.default_rng(seed).uniform(0.0, 1.0, size=(players,) + (n,) * players)
    return NormalFormGame(p, name="random_general_sum", parameters={"n": n, "players": players, "seed": seed})
