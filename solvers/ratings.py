"""Ratings and meta-games from match results: Elo with uncertainty, Bradley-Terry maximum
likelihood, the empirical meta-game solved for its Nash equilibrium, and per-seat ratings for
games of more than two players (Werewolf and other team games).

Inputs are plain arrays so any tournament backend can feed them:
- `wins[i, j]`: (fractional) wins of policy i over policy j (draws count 1/2 to each)
- `payoff[i, j]`: mean return of policy i against policy j (the empirical meta-game)
- per seat: (entry, return, role) rows, grouped by match, for `seat_ratings`
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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
        from equilibria.solvers.normal_form import solve_zero_sum

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


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float, float]:
    """Rate and its Wilson score interval (sensible at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass
class SeatRatings:
    """Per-entry statistics of a many-player tournament (index = lineup entry). Intervals are
    95% percentile intervals of a bootstrap over matches, shape (2, entries)."""

    seats: np.ndarray  # seats played
    mean_return: np.ndarray
    return_interval: np.ndarray
    win_rate: np.ndarray  # seats that won: the match's best return, strictly above its worst
    win_interval: np.ndarray
    pairwise_wins: np.ndarray  # [i, j]: seats of i that outscored a seat of j in the same match
    roles: list[str]  # roles seen (empty for games without roles)
    role_seats: np.ndarray  # [entry, role]
    role_wins: np.ndarray  # [entry, role]
    role_adjusted: np.ndarray  # win rate re-weighted to the overall role mix (nan if a role was never played)
    role_adjusted_interval: np.ndarray


def seat_ratings(entries: Sequence[int], returns: Sequence[float], num_players: int, num_entries: int,
                 roles: Sequence[str | None] | None = None, bootstrap: int = 500, seed: int = 0) -> SeatRatings:
    """Ratings from one row per seat: `num_players` consecutive rows per match, in seat order.

    Win rate alone mixes skill with the deal: Werewolf's werewolves win far more often than
    villagers whoever plays them, so an entry dealt more werewolf seats looks stronger. The
    role-adjusted win rate sum_r share_r * winrate(entry, role), with share_r the role's share of
    all seats, scores every entry on the same role mix.

    Seats of one match are not independent (teammates share the outcome, and one entry may
    fill several seats), so the intervals resample whole matches (a cluster bootstrap) rather
    than treating seats as coin flips, which would understate the uncertainty."""
    ent = np.asarray(entries, dtype=np.int64)
    ret = np.asarray(returns, dtype=np.float64)
    if len(ent) == 0 or len(ent) % num_players or len(ret) != len(ent):
        raise ValueError(f"need {num_players} seat rows per match, got {len(ent)} entries and {len(ret)} returns")
    e2, r2 = ent.reshape(-1, num_players), ret.reshape(-1, num_players)
    n_matches = len(e2)
    best, worst = r2.max(axis=1, keepdims=True), r2.min(axis=1, keepdims=True)
    won = ((r2 == best) & (best > worst)).astype(np.float64)
    role_names = sorted({r for r in roles if r is not None}) if roles is not None else []
    col = {r: k for k, r in enumerate(role_names)}
    rk = (np.array([col.get(r, -1) for r in roles]) if role_names else np.full(len(ent), -1)).reshape(e2.shape)
    # per-match sufficient statistics, [match, entry] and [match, entry, role]: every statistic
    # below is a ratio of their (bootstrap-weighted) sums over matches
    rows = np.repeat(np.arange(n_matches), num_players)
    m_seats = np.zeros((n_matches, num_entries))
    m_return = np.zeros_like(m_seats)
    m_wins = np.zeros_like(m_seats)
    np.add.at(m_seats, (rows, ent), 1.0)
    np.add.at(m_return, (rows, ent), ret)
    np.add.at(m_wins, (rows, ent), won.ravel())
    m_role_seats = np.zeros((n_matches, num_entries, max(len(role_names), 1)))
    m_role_wins = np.zeros_like(m_role_seats)
    keep = rk.ravel() >= 0
    np.add.at(m_role_seats, (rows[keep], ent[keep], rk.ravel()[keep]), 1.0)
    np.add.at(m_role_wins, (rows[keep], ent[keep], rk.ravel()[keep]), won.ravel()[keep])

    def stats(weights: np.ndarray) -> tuple[np.ndarray, ...]:
        """(mean return, win rate, role-adjusted win rate) per entry; `weights` [batch, match]."""
        seats = weights @ m_seats
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (weights @ m_return) / seats
            rate = (weights @ m_wins) / seats
            if not role_names:
                return mean, rate, np.full_like(mean, np.nan)
            rs = np.einsum("bm,mer->ber", weights, m_role_seats)
            rw = np.einsum("bm,mer->ber", weights, m_role_wins)
            share = rs.sum(axis=1) / rs.sum(axis=(1, 2))[:, None]
            adjusted = np.einsum("ber,br->be", rw / rs, share)  # nan where an entry never played a role
        return mean, rate, adjusted

    mean, rate, adjusted = (x[0] for x in stats(np.ones((1, n_matches))))
    rng = np.random.default_rng(seed)
    draws = [stats(rng.multinomial(n_matches, np.full(n_matches, 1.0 / n_matches), size=min(100, bootstrap - b))
                   .astype(np.float64)) for b in range(0, bootstrap, 100)]

    def interval(k: int) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            samples = np.concatenate([d[k] for d in draws])
            finite = np.isfinite(samples).all(axis=0)
            out = np.full((2, num_entries), np.nan)
            if finite.any():
                out[:, finite] = np.percentile(samples[:, finite], [2.5, 97.5], axis=0)
        return out

    pairwise = np.zeros((num_entries, num_entries))
    for s in range(num_players):
        for t in range(num_players):
            mask = (r2[:, s] > r2[:, t]) & (e2[:, s] != e2[:, t])
            np.add.at(pairwise, (e2[mask, s], e2[mask, t]), 1.0)
    return SeatRatings(seats=m_seats.sum(axis=0), mean_return=mean, return_interval=interval(0), win_rate=rate,
                       win_interval=interval(1), pairwise_wins=pairwise, roles=role_names,
                       role_seats=m_role_seats.sum(axis=0)[:, :len(role_names)],
                       role_wins=m_role_wins.sum(axis=0)[:, :len(role_names)], role_adjusted=adjusted,
                       role_adjusted_interval=interval(2))
