"""Evaluation by sampling, for games whose tree does not compile.

Where the tree compiles, `solvers.exploitability` is exact and is what to use. Beyond it:
- `head_to_head`: each seat's mean return (and standard error) when the given policies play;
- `value_against`: a policy's mean return in each seat against a fixed opponent (uniform
  random is the usual one), the number that should rise as a solver learns;
- `sampled_best_response`: MCCFR for one player with everyone else fixed to the policy (the
  others' actions sampled from it), then the greedy response played against the policy. Its
  mean is an unbiased estimate of a lower bound on the best-response value, so
  `sampled_exploitability` is an estimated lower bound on exploitability.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, Game, Policy, State


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Per-player sample means with standard errors."""

    mean: np.ndarray
    stderr: np.ndarray
    episodes: int


def _draw(actions: list, probs: list[float], u: float) -> object:
    total = sum(probs)
    if not total > 0:
        raise ValueError("a policy gave no probability to any legal action")
    acc = 0.0
    for a, p in zip(actions, probs):
        acc += p / total
        if u < acc:
            return a
    return actions[-1]


def _act(policy: Policy, state: State, player: int, u: float) -> object:
    probs = policy.action_probabilities(state, player)
    return _draw(list(probs), list(probs.values()), u)


def play_episode(game: Game, seats: Sequence[Policy], rng: np.random.Generator) -> np.ndarray:
    """One game with seat p played by seats[p]; the returns."""
    state = game.new_initial_state()
    while not state.is_terminal():
        cur = state.current_player()
        if cur == CHANCE:
            outcomes = state.chance_outcomes()
            state.apply_action(_draw([a for a, _ in outcomes], [p for _, p in outcomes], rng.random()))
        elif cur == SIMULTANEOUS:
            state.apply_actions([_act(seats[p], state, p, rng.random()) for p in range(game.num_players)])
        else:
            state.apply_action(_act(seats[cur], state, cur, rng.random()))
    return np.asarray(state.returns(), dtype=np.float64)


def head_to_head(game: Game, seats: Sequence[Policy], episodes: int, seed: int = 0) -> Estimate:
    """Mean returns of every seat over `episodes` sampled games."""
    if len(seats) != game.num_players:
        raise ValueError(f"{game.info.name} has {game.num_players} seats, got {len(seats)} policies")
    if episodes < 2:
        raise ValueError(f"episodes must be at least 2 (for a standard error), got {episodes}")
    rng = np.random.default_rng(seed)
    returns = np.array([play_episode(game, seats, rng) for _ in range(episodes)])
    return Estimate(returns.mean(axis=0), returns.std(axis=0, ddof=1) / np.sqrt(episodes), episodes)


def value_against(game: Game, policy: Policy, opponent: Policy, episodes: int, seed: int = 0) -> Estimate:
    """mean[p]: `policy`'s return in seat p with `opponent` in every other seat (episodes per seat)."""
    n = game.num_players
    mean, stderr = np.empty(n), np.empty(n)
    for p in range(n):
        seats = [policy if q == p else opponent for q in range(n)]
        est = head_to_head(game, seats, episodes, seed + p)
        mean[p], stderr[p] = est.mean[p], est.stderr[p]
    return Estimate(mean, stderr, episodes)


@dataclasses.dataclass(frozen=True)
class SampledBestResponse:
    value: float
    """the response's mean return against the policy (a lower bound on the best-response value, in expectation)"""
    stderr: float
    policy: Policy
    """the greedy response (its player's infosets; uniform where it never went)"""
    iterations: int


def sampled_best_response(game: Game, policy: Policy, player: int, *, iterations: int | None = None,
                          seconds: float | None = None, episodes: int = 10_000, seed: int = 0,
                          sampling: Literal["external", "outcome"] = "external",
                          max_nodes: int = 10_000_000) -> SampledBestResponse:
    """`player`'s response to everyone else playing `policy`, learnt by MCCFR with the others
    fixed for `iterations` (or `seconds`), evaluated over `episodes` fresh games."""
    from equilibria.solvers.mccfr import MCCFRConfig, MCCFRSolver

    if (iterations is None) == (seconds is None):
        raise ValueError("give the best response a budget: iterations or seconds (one of them)")
    n = game.num_players
    solver = MCCFRSolver(game, MCCFRConfig(sampling=sampling, seed=seed, max_nodes=max_nodes),
                         fixed={q: policy for q in range(n) if q != player})
    if iterations is not None:
        solver.run(iterations)
    else:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            solver.run(1 if sampling == "external" else 100)
    response = solver.greedy_policy()
    seats = [response if q == player else policy for q in range(n)]
    est = head_to_head(game, seats, episodes, seed + 1)
    return SampledBestResponse(float(est.mean[player]), float(est.stderr[player]), response, solver.iteration)


def sampled_exploitability(game: Game, policy: Policy, *, iterations: int | None = None,
                           seconds: float | None = None, episodes: int = 10_000, seed: int = 0,
                           sampling: Literal["external", "outcome"] = "external") -> tuple[float, float]:
    """(estimate, standard error) of a lower bound on exploitability (NashConv / players): each
    player's sampled best-response value minus the policy's own value in self-play."""
    n = game.num_players
    own = head_to_head(game, [policy] * n, episodes, seed + 100)
    gains, variances = [], []
    for p in range(n):
        br = sampled_best_response(game, policy, p, iterations=iterations, seconds=seconds, episodes=episodes,
                                   seed=seed + 10 * p, sampling=sampling)
        gains.append(br.value - own.mean[p])
        variances.append(br.stderr**2 + own.stderr[p] ** 2)
    return float(np.sum(gains) / n), float(np.sqrt(np.sum(variances)) / n)
