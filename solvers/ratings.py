"""Ratings and meta-games from match results: Elo with uncertainty, Bradley-Terry maximum
likelihood, and the empirical meta-game solved for its Nash equilibrium.

Inputs are plain arrays so any tournament backend can feed them:
- `wins[i, j]`: (fractional) wins of policy i over policy j (draws count 1/2 to each)
- `payoff[i, j]`: mean return of policy i against policy j (the empirical meta-game)
"""

from __future__ import annotations

import numpy as np


def elo(results: list[tuple[int, int, float]], num_players: int, k: float = 16.0, base: float = 1500.0,
        bootstrap: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequential Elo over (i, j, score of i in [0, 1]) results; uncertainty is the standard deviation
    over `bootstrap` random orderings of the same results (Elo depends on order)."""
    def run(order: np.ndarray) -> np.ndarray:
        r = np.full(num_players, base)
        for idx in order:
            i, j, s = results[idx]
            expected = 1.0 / (1.0 + 10 ** ((r[j] - r[i]) / 400.0))
            r[i] += k * (s - expected)
            r[j] -= k * (s - expected)
        return r

    rng = np.random.default_rng(seed)
    n = len(results)
    runs = np.stack([run(rng.permutation(n)) for _ in range(max(bootstrap, 1))])
    return runs.mean(axis=0), runs.std(axis=0)


def bradley_terry(wins: np.ndarray, iters: int = 1000, tol: float = 1e-10, prior: float = 0.5) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry strengths (log scale, mean zero) by the MM algorithm
    (Hunter 2004). `prior` adds that many virtual wins against every opponent both ways so
    undefeated or winless policies keep finite strengths."""
    w = np.asarray(wins, dtype=np.float64) + prior * (1.0 - np.eye(len(wins)))
    games = w + w.T
    p = np.ones(len(w))
    for _ in range(iters):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = w.sum(axis=1) / denom
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    return np.log(p)


def meta_nash(payoff: np.ndarray, zero_sum: bool = True, iters: int = 20000) -> np.ndarray:
    """A Nash mixture over policies of the empirical meta-game: exact LP for (symmetric)
    zero-sum payoff matrices, replicator dynamics (average iterate) otherwise."""
    a = np.asarray(payoff, dtype=np.float64)
    if zero_sum:
        from solvers.normal_form import solve_zero_sum

        x, _ = solve_zero_sum(a - a.T if not np.allclose(a, -a.T) else a)
        return x
    x = np.full(len(a), 1.0 / len(a))
    avg = np.zeros_like(x)
    for _ in range(iters):
        f = a @ x
        x = x * np.exp(0.1 * (f - x @ f))
        x /= x.sum()
        avg += x
    return avg / iters
