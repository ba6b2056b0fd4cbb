"""Tabular softmax policy gradient with Bayesian-network joint policies (Chen & Zhang, ICML 2023),
on cooperative normal-form games, with exact gradients: the tabular form of the Bayesian-network
actor-critic (marl/ holds the neural one).

The joint policy factorises over a DAG on the agents, pi(a) = prod_i pi_i(a_i | a_Pa(i)), each
factor a softmax table over the joint action of the agent's parents. With no edges this is
independent softmax policy gradient. Every agent ascends the common payoff
J = sum_a pi(a) R(a); by the policy-gradient theorem, for the logits theta_i[c, b] of agent i
under parent configuration c,

    dJ / dtheta_i[c, b] = sum_{a : a_Pa(i) = c} pi(a) R(a) (1[a_i = b] - pi_i(b | c)),

computed exactly over the joint action tensor. State in, state out (optax's style): `init`
draws logits from N(0, init_scale^2) per seed, `step` returns the next logits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

Parents = tuple[tuple[int, ...], ...]  # parents of each agent; a DAG whose order is the agents' order


def independent(n: int) -> Parents:
    """No edges: independent softmax policy gradient."""
    return tuple(() for _ in range(n))


def chain(n: int) -> Parents:
    """Every agent conditions on all earlier agents (the complete DAG of the order 0, 1, ..., n-1):
    the factorisation can express every joint distribution."""
    return tuple(tuple(range(i)) for i in range(n))


def check_dag(parents: Parents) -> None:
    for i, pa in enumerate(parents):
        if any(not 0 <= j < i for j in pa) or len(set(pa)) != len(pa):
            raise ValueError(f"agent {i}'s parents {pa} must be distinct earlier agents (a DAG in agent order)")


@dataclasses.dataclass(frozen=True)
class Tables:
    """Index tables of a DAG on a game with action counts `shape`: for every joint action (flat),
    each agent's parent configuration and own action."""

    shape: tuple[int, ...]
    parents: Parents
    config: tuple[np.ndarray, ...]  # [joint] parent-configuration index per agent
    action: tuple[np.ndarray, ...]  # [joint] own action per agent
    configs: tuple[int, ...]  # parent configurations per agent


def tables(shape: Sequence[int], parents: Parents) -> Tables:
    if len(parents) != len(shape):
        raise ValueError(f"the DAG names parents for {len(parents)} agents; the game has {len(shape)}")
    check_dag(parents)
    shape = tuple(int(s) for s in shape)
    grid = np.indices(shape).reshape(len(shape), -1)
    config, configs = [], []
    for pa in parents:
        sizes = [shape[j] for j in pa]
        config.append(np.ravel_multi_index(tuple(grid[j] for j in pa), sizes) if pa else np.zeros(grid.shape[1], int))
        configs.append(int(np.prod(sizes)) if pa else 1)
    return Tables(shape, tuple(parents), tuple(config), tuple(grid), tuple(configs))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def init(t: Tables, rng: np.random.Generator, init_scale: float = 0.1) -> list[np.ndarray]:
    return [rng.normal(0.0, init_scale, (c, a)) for c, a in zip(t.configs, t.shape)]


def joint_distribution(t: Tables, logits: list[np.ndarray]) -> np.ndarray:
    """pi(a) over the flat joint actions."""
    p = np.ones(int(np.prod(t.shape)))
    for i, theta in enumerate(logits):
        p *= softmax(theta)[t.config[i], t.action[i]]
    return p


def gradient(t: Tables, logits: list[np.ndarray], reward: np.ndarray) -> list[np.ndarray]:
    """The exact policy gradient of J = sum_a pi(a) R(a) with respect to every agent's logits."""
    weight = joint_distribution(t, logits) * reward.ravel()
    out = []
    for i, theta in enumerate(logits):
        w = np.zeros_like(theta)
        np.add.at(w, (t.config[i], t.action[i]), weight)
        out.append(w - softmax(theta) * w.sum(-1, keepdims=True))
    return out


def step(t: Tables, logits: list[np.ndarray], reward: np.ndarray, lr: float) -> list[np.ndarray]:
    """One gradient-ascent step of every agent's logits."""
    return [theta + lr * g for theta, g in zip(logits, gradient(t, logits, reward))]


def run(reward: np.ndarray, parents: Parents, seed: int, iterations: int = 3000, lr: float = 0.1,
        init_scale: float = 0.1) -> dict[str, float]:
    """Softmax policy gradient from a random initialisation (logits ~ N(0, init_scale^2): near
    uniform by default; far from uniform, vanilla softmax PG can stall at any equilibrium): the
    final expected payoff and the probability of the optimal joint action (the common payoff
    tensor `reward` [A_0, ..., A_n-1])."""
    t = tables(reward.shape, parents)
    logits = init(t, np.random.default_rng(seed), init_scale)
    for _ in range(iterations):
        logits = step(t, logits, reward, lr)
    p = joint_distribution(t, logits)
    best = reward.ravel() == reward.max()
    return {"return": float(p @ reward.ravel()), "p_optimal": float(p[best].sum())}


def common_payoff(game) -> np.ndarray:
    """The common payoff tensor [A_0, ..., A_n-1] of an identical-interest normal-form game
    (games.load("climbing_game"), "penalty_game(k=-100)", "three_agent_climb", any matrix with
    equal payoffs); ValueError otherwise."""
    if not hasattr(game, "payoff_tensor"):
        raise ValueError(f"Bayesian-network policy gradient here runs on normal-form games; {game.info.name} is not one")
    payoffs = game.payoff_tensor()
    if not all(np.allclose(payoffs[i], payoffs[0]) for i in range(len(payoffs))):
        raise ValueError(f"{game.info.name} is not identical-interest: the agents' payoffs differ")
    return np.asarray(payoffs[0])


__all__ = ["Tables", "chain", "common_payoff", "gradient", "independent", "init", "joint_distribution", "run",
           "softmax", "step", "tables"]
