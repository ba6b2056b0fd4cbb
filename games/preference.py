"""Preference games: Nash learning from (possibly intransitive) preferences.

A PreferenceGame has contexts x, a finite response set Y (or token sequences enumerated as
one), a preference oracle P(y > y' | x) with P(y > y') + P(y' > y) = 1, a reference policy
pi_ref and a regularisation strength beta. As a Game it is the symmetric two-player
constant-sum game: chance draws a context, both players answer at once, player 0 receives
P(y0 > y1 | x). The beta-regularised game adds -beta KL(pi || pi_ref) per player; its exact
metrics live in games.preference_metrics.

Oracles (each returns matrices P[x] of shape [N, N]):
- matrix          an explicit preference matrix (checked: P + P^T = 1)
- bradley_terry   sigma(r(y) - r(y')): transitive
- random          the EGPO protocol: lower triangle U(0, 1), upper = 1 - lower, diagonal 1/2
- cycle           generalised rock-paper-scissors / Condorcet cycle on odd N
- majority        majority vote of three Bradley-Terry raters with different rewards (SPO)
- gpm             skew-symmetric embedding model (Zhang et al. 2024), learnable in torch
- NoisyOracle     Bernoulli outcomes with optional label noise, for sampled algorithms
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import NonNegativeFloat, PositiveInt, Seed
from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, GameInfo, SizeEstimate, State
from equilibria.games.registry import register


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def check_preference(p: np.ndarray, name: str = "preference matrix") -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1] != p.shape[2]:
        raise ValueError(f"{name} must have shape [N, N] or [contexts, N, N], got {p.shape}")
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"{name} entries must lie in [0, 1]")
    if not np.allclose(p + p.transpose(0, 2, 1), 1.0, atol=1e-9):
        raise ValueError(f"{name} must satisfy P(y > y') + P(y' > y) = 1")
    return p


# ----------------------------------------------------------------------------- oracles
def bradley_terry_matrix(rewards: np.ndarray) -> np.ndarray:
    r = np.atleast_2d(np.asarray(rewards, dtype=np.float64))
    return sigmoid(r[:, :, None] - r[:, None, :])


def random_intransitive_matrix(n: int, rng: np.random.Generator) -> np.ndarray:
    """EGPO's gen_preference_matrix(type='random')."""
    low = rng.uniform(0.0, 1.0, size=(n, n))
    p = np.tril(low, -1)
    p = p + np.triu(1.0 - p.T, 1)
    np.fill_diagonal(p, 0.5)
    return p


def cycle_matrix(n: int, strength: float = 1.0) -> np.ndarray:
    """y_i beats y_j with probability `strength` when (j - i) mod n is in 1..(n-1)/2."""
    if n % 2 == 0 or n < 3:
        raise ValueError(f"a Condorcet cycle needs an odd n >= 3, got {n}")
    if not 0.5 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0.5, 1], got {strength}")
    p = np.full((n, n), 0.5)
    for i in range(n):
        for j in range(n):
            d = (j - i) % n
            if 1 <= d <= (n - 1) // 2:
                p[i, j], p[j, i] = strength, 1.0 - strength
    return p


def majority_vote_matrix(rewards: np.ndarray) -> np.ndarray:
    """P(y > y') = P(at least two of three independent BT raters prefer y)."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.shape[0] != 3:
        raise ValueError(f"majority vote needs exactly three raters' rewards, got {r.shape[0]}")
    q = [sigmoid(r[k][:, None] - r[k][None, :]) for k in range(3)]
    return q[0] * q[1] * q[2] + q[0] * q[1] * (1 - q[2]) + q[0] * (1 - q[1]) * q[2] + (1 - q[0]) * q[1] * q[2]


def gpm_matrix(embeddings: np.ndarray) -> np.ndarray:
    """General preference model: unit embeddings v in R^{2k}, s(i, j) = <R v_i, v_j> with R
    block-diagonal [[0, -1], [1, 0]] (skew-symmetric), P = sigma(s). Cycles are representable."""
    v = np.asarray(embeddings, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    rv = np.empty_like(v)
    rv[..., 0::2] = -v[..., 1::2]
    rv[..., 1::2] = v[..., 0::2]
    s = rv @ v.T
    return sigmoid(s)


class NoisyOracle:
    """Sampled comparisons: each query returns 1 if y wins, flipped with probability `label_noise`."""

    def __init__(self, p: np.ndarray, label_noise: float = 0.0, seed: int = 0):
        if not 0.0 <= label_noise < 0.5:
            raise ValueError(f"label_noise must lie in [0, 0.5), got {label_noise}")
        self.p = check_preference(p, "oracle matrix")
        self.label_noise = label_noise
        self.rng = np.random.default_rng(seed)
        self.queries = 0

    def compare(self, x: np.ndarray, y: np.ndarray, y2: np.ndarray) -> np.ndarray:
        """Bernoulli outcomes 1[y > y2] for arrays of contexts and responses."""
        x, y, y2 = (np.asarray(a, dtype=np.int64) for a in (x, y, y2))
        self.queries += y.size
        prob = self.p[x, y, y2]
        prob = prob * (1 - self.label_noise) + (1 - prob) * self.label_noise
        return (self.rng.random(prob.shape) < prob).astype(np.float64)


# ----------------------------------------------------------------------------- the game
class PreferenceGame(Game):
    def __init__(self, preference: np.ndarray, reference: np.ndarray | None = None, beta: float = 0.1,
                 context_weights: np.ndarray | None = None, name: str = "preference",
                 parameters: dict | None = None, response_names: Sequence[str] | None = None):
        self.P = check_preference(preference)
        c, n, _ = self.P.shape
        if reference is None:
            reference = np.full((c, n), 1.0 / n)
        ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
        if ref.shape != (c, n) or np.any(ref <= 0) or not np.allclose(ref.sum(-1), 1.0):
            raise ValueError(f"reference must be a full-support distribution of shape ({c}, {n})")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        w = np.full(c, 1.0 / c) if context_weights is None else np.asarray(context_weights, dtype=np.float64)
        if w.shape != (c,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
            raise ValueError(f"context_weights must be a distribution over {c} contexts")
        self.reference, self.beta, self.context_weights = ref, float(beta), w
        self.num_contexts, self.num_responses = c, n
        self.response_names = list(response_names) if response_names is not None else None
        self.info = GameInfo(
            name=name, num_players=2, dynamics="simultaneous", chance=c > 1, information="imperfect",
            utility="constant_sum", min_utility=0.0, max_utility=1.0, max_game_length=1,
            num_distinct_actions=n, utility_sum=1.0, parameters=dict(parameters or {}),
        )

    def payoff_tensor(self) -> np.ndarray:
        """Normal-form view (single context): [P, P^T]."""
        if self.num_contexts != 1:
            raise ValueError("payoff_tensor() is defined for single-context preference games; use game.P[x]")
        return np.stack([self.P[0], self.P[0].T])

    def new_initial_state(self) -> PreferenceState:
        return PreferenceState(self)

    def action_name(self, action: int) -> str:
        return self.response_names[action] if self.response_names else str(action)


class PreferenceState(State):
    def __init__(self, game: PreferenceGame):
        self.game = game
        self.context = 0 if game.num_contexts == 1 else -1
        self.joint: tuple[int, int] | None = None

    def current_player(self) -> int:
        if self.joint is not None:
            return TERMINAL
        return CHANCE if self.context < 0 else SIMULTANEOUS

    def chance_outcomes(self) -> list[tuple[int, float]]:
        if self.context >= 0:
            raise ValueError("chance_outcomes() called on a state that is not a chance node")
        return [(x, float(w)) for x, w in enumerate(self.game.context_weights) if w > 0]

    def legal_actions(self, player: int | None = None) -> list[int]:
        cur = self.current_player()
        if cur == CHANCE and player is None:
            return [x for x, _ in self.chance_outcomes()]
        if cur != SIMULTANEOUS or player is None or player < 0:
            return []
        return list(range(self.game.num_responses))

    def apply_action(self, action: int) -> None:
        if self.current_player() != CHANCE:
            raise ValueError("responses are simultaneous: use apply_actions([y0, y1])")
        self.context = int(action)

    def apply_actions(self, actions: Sequence[int]) -> None:
        if self.current_player() != SIMULTANEOUS:
            raise ValueError("apply_actions on a state that is not simultaneous")
        y0, y1 = (int(a) for a in actions)
        n = self.game.num_responses
        if not (0 <= y0 < n and 0 <= y1 < n):
            raise ValueError(f"responses must lie in [0, {n})")
        self.joint = (y0, y1)

    def is_terminal(self) -> bool:
        return self.joint is not None

    def returns(self) -> np.ndarray:
        if self.joint is None:
            return np.zeros(2)
        p = self.game.P[self.context, self.joint[0], self.joint[1]]
        return np.array([p, 1.0 - p])

    def information_state_key(self, player: int) -> str:
        key = f"x{self.context}"
        return key if self.joint is None else f"{key}|{self.joint[0]}:{self.joint[1]}"

    def observation(self, player: int) -> np.ndarray:
        obs = np.zeros(self.game.num_contexts, dtype=np.float32)
        if self.context >= 0:
            obs[self.context] = 1.0
        return obs

    def clone(self) -> PreferenceState:
        new = PreferenceState(self.game)
        new.context, new.joint = self.context, self.joint
        return new

    def history(self) -> list[int]:
        out = [self.context] if self.game.num_contexts > 1 and self.context >= 0 else []
        return out + list(self.joint or ())


Oracle = Literal["random", "cycle", "bradley_terry", "majority", "gpm", "matrix", "tokens"]


def token_sequences(vocab: int, length: int) -> np.ndarray:
    """Every length-L sequence over the vocabulary, in base-vocab order (index k <-> digits of k)."""
    idx = np.arange(vocab**length)
    return np.stack([(idx // vocab ** (length - 1 - i)) % vocab for i in range(length)], axis=1)


def token_preference_matrix(vocab: int, length: int, rng: np.random.Generator, scale: float = 3.0) -> np.ndarray:
    """An intransitive preference over token sequences: a skew-symmetric bilinear form on
    bag-of-token features (a GPM with fixed features), P = sigma(scale * f(y)^T R f(y') / L)."""
    seqs = token_sequences(vocab, length)
    f = np.stack([np.bincount(s, minlength=vocab) for s in seqs]).astype(np.float64) / length
    a = rng.normal(0, 1, size=(vocab, vocab))
    r = a - a.T
    return sigmoid(scale * f @ r @ f.T)


def preference_size(oracle: str = "random", n: int = 10, contexts: int = 1, vocab: int = 4, length: int = 3,
                    matrix: list | None = None, **_: Any) -> SizeEstimate:
    """P is contexts x n x n float64, built with a few temporaries of its size."""
    if oracle == "tokens":
        n = vocab**length
    elif oracle == "matrix" and matrix is not None:
        return SizeEstimate(bytes=0.0, histories=None)
    return SizeEstimate(bytes=4 * 8.0 * contexts * float(n) * float(n), histories=1.0 + contexts * (1.0 + n + n * n))


@register("preference", size=preference_size)
def preference(oracle: Oracle = "random", n: Annotated[int, Field(ge=2)] = 10, contexts: PositiveInt = 1,
               beta: NonNegativeFloat = 0.1, seed: Seed = 0, reference: Literal["random", "uniform"] = "random",
               strength: float = 1.0, matrix: list[list[list[float]]] | list[list[float]] | None = None,
               dim: PositiveInt = 4, vocab: Annotated[int, Field(ge=2, le=16)] = 4,
               length: Annotated[int, Field(ge=1, le=8)] = 3) -> PreferenceGame:
    """Preference game: oracle random|cycle|bradley_terry|majority|gpm|matrix|tokens, n responses, beta.
    `reference`: 'random' (softmax of N(0, 1) logits, as in EGPO) or 'uniform'."""
    rng = np.random.default_rng(seed)
    if oracle == "matrix":
        if matrix is None:
            raise ValueError("oracle 'matrix' needs matrix=[[...]]")
        p = check_preference(np.asarray(matrix, dtype=np.float64))
        contexts, n = p.shape[0], p.shape[1]
    elif oracle == "random":
        p = np.stack([random_intransitive_matrix(n, rng) for _ in range(contexts)])
    elif oracle == "cycle":
        p = np.stack([cycle_matrix(n, strength)] * contexts)
    elif oracle == "bradley_terry":
        p = bradley_terry_matrix(rng.normal(0, 1, size=(contexts, n)))
    elif oracle == "majority":
        p = np.stack([majority_vote_matrix(rng.normal(0, 2, size=(3, n))) for _ in range(contexts)])
    elif oracle == "tokens":
        if vocab**length > 65536:
            raise ValueError(f"vocab**length must stay enumerable (<= 65536), got {vocab}**{length}")
        p = np.stack([token_preference_matrix(vocab, length, rng) for _ in range(contexts)])
        n = vocab**length
    else:  # gpm
        p = np.stack([gpm_matrix(rng.normal(0, 1, size=(n, 2 * dim))) for _ in range(contexts)])
    if reference == "uniform":
        ref = np.full((contexts, n), 1.0 / n)
    else:
        logits = rng.normal(0, 1, size=(contexts, n))
        ref = np.exp(logits - logits.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
    params = {"oracle": oracle, "n": n, "contexts": contexts, "beta": beta, "seed": seed, "reference": reference}
    if oracle == "tokens":
        params.update(vocab=vocab, length=length)
    return PreferenceGame(p, ref, beta, name="preference", parameters=params)
