"""Shared pieces of on-policy multi-agent training: networks, GAE, value normalisation.

Small, pure where possible, and reused by every algorithm file (mappo.py, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh, out_gain: float = 0.01) -> nn.Sequential:
    """Orthogonally initialised MLP (as in the MAPPO code), small last layer."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, gain=out_gain if last else np.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Categorical policy over discrete actions, with action masks. With shared parameters the
    agent's one-hot id is appended to its observation; otherwise each agent has its own net."""

    def __init__(self, obs_dim: int, num_actions: int, num_agents: int, hidden: int = 64, share: bool = True):
        super().__init__()
        self.share, self.num_agents = share, num_agents
        inp = obs_dim + (num_agents if share else 0)
        nets = [mlp([inp, hidden, hidden, num_actions])] if share else \
            [mlp([obs_dim, hidden, hidden, num_actions]) for _ in range(num_agents)]
        self.nets = nn.ModuleList(nets)

    def logits(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """obs [..., N, D] -> logits [..., N, A]."""
        if self.share:
            ids = torch.eye(self.num_agents, dtype=obs.dtype).expand(*obs.shape[:-1], self.num_agents)
            out = self.nets[0](torch.cat([obs, ids], dim=-1))
        else:
            out = torch.stack([net(obs[..., i, :]) for i, net in enumerate(self.nets)], dim=-2)
        if mask is not None:
            out = out.masked_fill(~mask, -1e9)
        return out

    def dist(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.logits(obs, mask))


class Critic(nn.Module):
    """Value per agent: centralised (global state + agent id) for MAPPO, local observation for IPPO."""

    def __init__(self, input_dim: int, num_agents: int, hidden: int = 64, share: bool = True):
        super().__init__()
        self.share, self.num_agents = share, num_agents
        inp = input_dim + (num_agents if share else 0)
        nets = [mlp([inp, hidden, hidden, 1], out_gain=1.0)] if share else \
            [mlp([input_dim, hidden, hidden, 1], out_gain=1.0) for _ in range(num_agents)]
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., N, input_dim] -> values [..., N]."""
        if self.share:
            ids = torch.eye(self.num_agents, dtype=x.dtype).expand(*x.shape[:-1], self.num_agents)
            return self.nets[0](torch.cat([x, ids], dim=-1)).squeeze(-1)
        return torch.stack([net(x[..., i, :]).squeeze(-1) for i, net in enumerate(self.nets)], dim=-1)


class ValueNorm(nn.Module):
    """Running mean / variance of value targets (MAPPO's ValueNorm, debiased EMA, beta 0.99999)."""

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5):
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("mean_sq", torch.zeros(()))
        self.register_buffer("debias", torch.zeros(()))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.debias.clamp(min=self.eps)
        mean = self.mean / d
        var = (self.mean_sq / d - mean**2).clamp(min=1e-2)
        return mean, var

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        self.mean.mul_(self.beta).add_(x.mean() * (1 - self.beta))
        self.mean_sq.mul_(self.beta).add_((x**2).mean() * (1 - self.beta))
        self.debias.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return (x - mean) / var.sqrt()

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return x * var.sqrt() + mean


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
        ends: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over [T, E, N] arrays.

    next_values[t] is V(s_{t+1}) -- for a truncated episode, the value of its final observation,
    so truncation bootstraps while termination does not. ends[t] marks the last step of an
    episode (terminated or truncated): the recursion does not carry across it."""
    adv = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        nonterminal = 1.0 - terminated[t][..., None]
        delta = rewards[t] + gamma * next_values[t] * nonterminal - values[t]
        carry = 1.0 - ends[t][..., None]
        last = delta + gamma * lam * carry * last
        adv[t] = last
    return adv, adv + values


def play_episodes(game: Any, choose: Callable[[np.ndarray, np.ndarray], np.ndarray], episodes: int,
                  seed: int) -> np.ndarray:
    """Run `episodes` fresh episodes of a batched Markov game at once, with `choose(obs [E, N, D],
    mask [E, N, A]) -> actions [E, N]`; returns each episode's return per agent [E, N]."""
    env = game.spawn()
    obs = env.reset(episodes, seed=seed)
    totals = np.zeros((episodes, env.num_agents))
    done = np.zeros(episodes, dtype=bool)
    while not done.all():
        res = env.step(choose(obs, env.action_mask()), autoreset=False)
        totals += np.where(done[:, None], 0.0, res.rewards)
        done |= res.done
        obs = res.obs
    return totals


def evaluate_episodes(game: Any, choose: Callable[[np.ndarray, np.ndarray], np.ndarray], episodes: int,
                      seed: int) -> tuple[float, float]:
    """Mean episode return per agent over `episodes` fresh episodes and its 95% CI half-width.
    One loop for every learner (MAPPO, the RLlib backend), so their numbers are comparable."""
    return mean_ci(play_episodes(game, choose, episodes, seed).mean(axis=1))


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of a 95% normal confidence interval."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
