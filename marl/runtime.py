"""What every multi-agent learner shares: GAE with per-agent ends, masked losses (inactive agents
count for nothing), the PPO-clip loss, value normalisation, evaluation episodes, and turning
RNGs and simulator states into checkpointable tensors. Networks are in marl.networks.

Small and pure where possible, reused by every algorithm file (mappo.py, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from equilibria.games.spaces import Composite


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
    so truncation bootstraps while termination does not. ends[t] marks the last step of a
    trajectory: the recursion does not carry across it. `terminated` and `ends` are [T, E] (the
    whole environment) or [T, E, N] (per agent: an agent that leaves ends its own trajectory)."""
    if terminated.ndim == rewards.ndim - 1:
        terminated = terminated[..., None]
    if ends.ndim == rewards.ndim - 1:
        ends = ends[..., None]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        last = delta + gamma * lam * (1.0 - ends[t]) * last
        adv[t] = last
    return adv, adv + values


def agent_ends(active: np.ndarray, next_active: np.ndarray, terminated: np.ndarray,
               done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-agent (terminated, ends) [T, E, N] from who acted at each step (`active`), who is still
    present after it (`next_active`: the final active mask where the episode finished) and the
    environments' ends [T, E]. An agent that leaves has reached its end: no bootstrap. A step an
    agent did not act at ends its trajectory too, so nothing carries into or out of absences."""
    leaves = active & ~next_active
    term = terminated[..., None] | leaves
    ends = done[..., None] | leaves | ~active
    return term.astype(np.float64), ends.astype(np.float64)


def stack_steps(xs: list) -> Any:
    """A rollout's per-step arrays (or dicts of arrays: composite observations) stacked on a new
    leading time axis."""
    if isinstance(xs[0], dict):
        return {p: np.stack([x[p] for x in xs]) for p in xs[0]}
    return np.stack(xs)


def merge_steps(x: Any, rows: int) -> Any:
    """[T, E, ...] -> [T * E, ...] (each part of a composite observation; arrays or tensors)."""
    if isinstance(x, dict):
        return {k: v.reshape(rows, *v.shape[2:]) for k, v in x.items()}
    return x.reshape(rows, *x.shape[2:])


def observation_bytes(game: Any) -> float:
    """float32 bytes of one step's observations of every agent of a Markov game."""
    total = 0.0
    for g in game.groups:
        parts = g.observation.parts.values() if isinstance(g.observation, Composite) else [g.observation]
        total += g.size * sum(b.size for b in parts)
    return 4.0 * total


def masked_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of x over the entries where `weight` is 1 (all entries when None): inactive agents do
    not count, neither as zeros nor at all."""
    if weight is None:
        return x.mean()
    return (x * weight).sum() / weight.sum().clamp(min=1.0)


def normalize_advantages(adv: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(adv - mean) / std over the active entries."""
    if weight is None:
        return (adv - adv.mean()) / (adv.std() + 1e-8)
    n = weight.sum().clamp(min=2.0)
    mean = (adv * weight).sum() / n
    var = (((adv - mean) ** 2) * weight).sum() / (n - 1)
    return (adv - mean) / (var.sqrt() + 1e-8)


def ppo_clip_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float,
                  weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), negated for minimisation, averaged
    over the entries where `weight` is 1; also the fraction of clipped ratios."""
    ratio = (logp - old_logp).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    clipped = ((ratio - 1).abs() > clip).float()
    return -masked_mean(surrogate, weight), masked_mean(clipped, weight).detach()


def play_episodes(game: Any, choose: Callable[[dict, dict, dict], dict], episodes: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run `episodes` fresh episodes of a Markov game at once, with `choose(obs, mask, active) ->
    actions` (dicts keyed by group, as the simulator takes them). Returns each agent's return
    [E, max_agents] (slots in group order) and whether the agent took part in the episode."""
    sim = game.simulator(episodes, seed)
    obs = sim.observe()
    names = [g.name for g in game.groups]
    totals = np.zeros((episodes, game.max_agents))
    present = np.zeros((episodes, game.max_agents), dtype=bool)
    done = np.zeros(episodes, dtype=bool)
    active = sim.active()
    while not done.all():
        present |= np.concatenate([active[k] for k in names], axis=1) & ~done[:, None]
        res = sim.step(choose(obs, sim.action_mask(), active), autoreset=False)
        rewards = np.concatenate([res.rewards[k] for k in names], axis=1)
        totals += np.where(done[:, None], 0.0, rewards)
        done |= res.done
        obs, active = res.obs, res.active
    return totals, present


def mean_over_present(totals: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each episode's mean return per agent over the agents that took part (0 where none did):
    `totals` and `present` are [..., agents]. The one definition of an evaluation return."""
    present = np.asarray(present, dtype=bool)
    return (np.asarray(totals) * present).sum(-1) / np.maximum(present.sum(-1), 1)


def episode_means(game: Any, choose: Callable[[dict, dict, dict], dict], episodes: int, seed: int) -> np.ndarray:
    """[episodes]: the mean return per agent of each of `episodes` fresh episodes (mean_over_present)."""
    return mean_over_present(*play_episodes(game, choose, episodes, seed))


def evaluate_episodes(game: Any, choose: Callable[[dict, dict, dict], dict], episodes: int,
                      seed: int) -> tuple[float, float]:
    """Mean episode return per agent (over the agents that took part) over `episodes` fresh
    episodes and its 95% CI half-width. One loop for every learner (MAPPO, the RLlib backend), so
    their numbers are comparable."""
    return mean_ci(episode_means(game, choose, episodes, seed))


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of a 95% normal confidence interval."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))


def seed_interval(x: np.ndarray | list[float]) -> tuple[float, float]:
    """Mean and 95% Student-t half-width over a few seeds (benchmarks' tables; nan for one seed)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


# ----------------------------------------------------------------------------- checkpoints
def rng_to_tensors(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy PCG64 generator's state as plain numbers (torch.load(weights_only=True) reads it)."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError("checkpoints support numpy's default PCG64 generator")
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def rng_from_tensors(d: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
                               "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}
    return rng


def state_to_tensors(state: Any) -> Any:
    """A simulator's get_state() (nested dicts of arrays and numbers, an RNG state) as tensors and
    plain values, so a checkpoint loads with weights_only=True."""
    if isinstance(state, dict):
        return {k: state_to_tensors(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return torch.as_tensor(state)
    if isinstance(state, (list, tuple)):
        return [state_to_tensors(v) for v in state]
    if isinstance(state, (int, float, str, bool)) or state is None:
        return str(state) if isinstance(state, int) and abs(state) >= 2**63 else state
    raise ValueError(f"cannot checkpoint a simulator state value of type {type(state).__name__}")


def state_from_tensors(state: Any, like: Any) -> Any:
    """The inverse of state_to_tensors, guided by a fresh get_state() for the types."""
    if isinstance(like, dict):
        return {k: state_from_tensors(state[k], v) for k, v in like.items()}
    if isinstance(like, np.ndarray):
        return state.numpy().astype(like.dtype, copy=True)
    if isinstance(like, (list, tuple)):
        return type(like)(state_from_tensors(s, v) for s, v in zip(state, like))
    if isinstance(like, int) and not isinstance(like, bool):
        return int(state)
    return state
