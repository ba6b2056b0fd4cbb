"""Double DQN (van Hasselt et al. 2016) for Markov games with one group of agents, online or offline,
readable top to bottom.

Every agent slot of the group shares one Q-network Q(o, .) on its own observation (independent
learners; with one slot it is plain DQN). The target of a transition (o, a, r, o') is

    y = r + gamma * (1 - terminated) * Q_target(o', argmax_a' Q(o', a'))      (double Q-learning, eq. 4)

(`double: false`: max_a' Q_target(o', a'), the DQN target of Mnih et al. 2015), illegal actions
masked out of the argmax and the max where the game masks actions; the loss is the Huber loss to
y; the target network follows the online one by Polyak averaging (rate `target_tau`).

- `dqn` (online): epsilon-greedy rollouts of `num_envs` environments into a replay buffer
  (marl.demos.ReplayBuffer), epsilon annealed linearly from `epsilon_start` to `epsilon_end`
  over `epsilon_steps` environment steps, `updates_per_step` gradient steps per rollout step once
  `learning_starts` transitions are stored.
- `dqn_offline`: the same update on a fixed dataset of transitions: a dataset written by
  `equilibria record` or a registered scripted expert played on the spot (marl.demos
  load_transitions), as the justifiable-decision paper trains its policy on clinicians' data
  (Sukovic & Radanovic 2024: double DQN, 2 x 128 LeakyReLU, Adam 1e-4, tau 1e-3, batch 256).
  An offline learner takes no environment step: the train kind's budget counts gradient updates.

A reward other than the game's (a judge's verdict mixed in, a recovered reward) is given by
training on games.reward_model.RewardModelGame, or for offline data by `reward_fn`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, PositiveFloat, Probability, Seed, count
from equilibria.games.markov import MarkovGame
from equilibria.games.spaces import Discrete
from equilibria.marl.demos import ReplayBuffer, Transitions, flat, load_transitions
from equilibria.marl.policy import QPolicy
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import (
    episode_means,
    mean_ci,
    mean_over_present,
    rng_from_tensors,
    rng_to_tensors,
    state_from_tensors,
    state_to_tensors,
)


class DQNConfig(Config):
    """Defaults from the justifiable-decision paper's protagonist (Sukovic & Radanovic 2024, App. C:
    double DQN, 2 x 128 LeakyReLU(0.01), Adam 1e-4, tau 1e-3, gamma 0.99, batch 256)."""

    online: bool = True
    """act in the game (epsilon-greedy, replay buffer); false: learn from `demonstrations` or `expert` alone"""
    demonstrations: str | None = None
    """offline: a dataset directory written by `equilibria record`"""
    expert: str | None = None
    """offline: or a registered scripted expert (games.experts) played for the data"""
    transitions: count(10**8) | None = None
    """offline: the first N transitions (None: all of a dataset; an expert plays 1000 by default)"""
    expert_seed: Seed = 0
    """offline: first episode seed of the expert's play"""
    double: bool = True
    """double Q-learning's target (the online network picks a', the target network values it); false: DQN's max"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    """discount"""
    lr: PositiveFloat = 1e-4
    """Adam learning rate"""
    hidden: count(65_536) = 128
    """units per hidden layer (two LeakyReLU(0.01) layers)"""
    batch_size: count(1 << 20) = 256
    """transitions per gradient step"""
    target_tau: Annotated[float, Field(gt=0, le=1)] = 1e-3
    """Polyak rate of the target network after every gradient step"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient clipping"""
    num_envs: count(4096) = 8
    """online: environments stepped together"""
    buffer_capacity: count(10**8) = 100_000
    """online: replay buffer size in transitions (agent slots count separately)"""
    learning_starts: count(10**8) = 1000
    """online: transitions stored before the first gradient step"""
    updates_per_step: count(1000) = 1
    """gradient steps per rollout step of all environments (offline: per train step)"""
    epsilon_start: Probability = 1.0
    """online: exploration rate at the start"""
    epsilon_end: Probability = 0.05
    """online: exploration rate after the annealing"""
    epsilon_steps: count(10**9) = 50_000
    """online: environment steps over which epsilon falls linearly"""


def _preflight(game: MarkovGame, config: DQNConfig) -> None:
    if len(game.groups) != 1 or not isinstance(game.groups[0].action, Discrete):
        raise ValueError(f"DQN learns one group with discrete actions; {game.info.name} has "
                         f"{[g.name for g in game.groups]}")
    if not config.online and config.demonstrations is None and config.expert is None:
        raise ValueError("offline DQN needs `demonstrations` (a recorded dataset) or `expert` (a scripted one)")


# ----------------------------------------------------------------------------- the target (pure)
def td_target(rewards: torch.Tensor, terminated: torch.Tensor, q_next_online: torch.Tensor,
              q_next_target: torch.Tensor, gamma: float, double: bool,
              next_mask: torch.Tensor | None = None) -> torch.Tensor:
    """y = r + gamma (1 - terminated) Q_target(o', a*), a* = argmax Q_online(o', .) (double) or the
    target's own argmax (DQN); q_next_* [B, A], next_mask [B, A] bool legal actions (None: all)."""
    if next_mask is not None:
        q_next_online = q_next_online.masked_fill(~next_mask, -float("inf"))
        q_next_target = q_next_target.masked_fill(~next_mask, -float("inf"))
    chooser = q_next_online if double else q_next_target
    best = chooser.argmax(-1, keepdim=True)
    value = q_next_target.gather(-1, best).squeeze(-1)
    value = torch.where(torch.isfinite(value), value, torch.zeros_like(value))  # no legal action: nothing follows
    return rewards + gamma * (1.0 - terminated) * value


def linear_epsilon(step: int, start: float, end: float, steps: int) -> float:
    return end + (start - end) * max(0.0, 1.0 - step / steps)


# ----------------------------------------------------------------------------- the learner
@register_learner("dqn", DQNConfig, preflight=_preflight,
                  description="double DQN, online (epsilon-greedy, replay buffer); one Q-network shared by the group's slots")
@register_learner("dqn_offline", DQNConfig, preflight=_preflight, online=False,
                  description="double DQN on a fixed dataset (a recording or a scripted expert), no environment steps")
class DQN:
    def __init__(self, game: MarkovGame, config: DQNConfig, seed: int = 0,
                 reward_fn: Callable[[Transitions], torch.Tensor] | None = None):
        _preflight(game, config)
        self.game, self.config, self.seed = game, config, seed
        group = game.groups[0]
        self.group, self.n, self.num_actions = group.name, group.size, group.num_actions
        self.obs_dim = game.observation_shape()[0]
        self.reward_fn = reward_fn  # offline: rewards [M, n] for the dataset's rows (None: the recorded ones)
        torch.manual_seed(seed)
        h = config.hidden
        self.q = nn.Sequential(nn.Linear(self.obs_dim, h), nn.LeakyReLU(0.01), nn.Linear(h, h), nn.LeakyReLU(0.01),
                               nn.Linear(h, self.num_actions))
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=config.lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env_steps = self.updates = 0
        self.finished: list[float] = []
        self.data: Transitions | None = None  # offline: loaded on the first update
        self.masks_actions = game.masks_actions
        if config.online:
            self.sim = game.simulator(config.num_envs, seed)
            self.obs = self.sim.observe()
            self.returns = np.zeros((config.num_envs, self.n))
            self.took_part = np.zeros((config.num_envs, self.n), dtype=bool)
            self.buffer = ReplayBuffer(config.buffer_capacity, self.n, self.obs_dim)
            # the legal actions after each stored step (the double-Q argmax must not pick an illegal one)
            self.next_masks = torch.ones(config.buffer_capacity, self.n, self.num_actions, dtype=torch.bool)

    # -- acting ----------------------------------------------------------------------------------
    def action_probs(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The greedy policy as probabilities [B, n, A] (one-hot on argmax Q among legal actions)."""
        q = self.q(obs)
        if mask is not None:
            q = q.masked_fill(~mask, -float("inf"))
        return nn.functional.one_hot(q.argmax(-1), self.num_actions).float()

    def _act(self, obs: Any, mask: np.ndarray | None, epsilon: float) -> np.ndarray:
        """Epsilon-greedy actions [E, n] (uniform among legal actions when exploring)."""
        with torch.no_grad():
            greedy = self.action_probs(torch.as_tensor(flat(obs, 2)), None if mask is None else torch.as_tensor(mask))
        greedy_a = greedy.argmax(-1).numpy()
        if epsilon <= 0:
            return greedy_a
        legal = np.ones(greedy_a.shape + (self.num_actions,), dtype=bool) if mask is None else mask
        # a uniform legal action: the argmax of random keys on legal entries
        random_a = np.where(legal, self.rng.random(legal.shape), -1.0).argmax(-1)
        return np.where(self.rng.random(greedy_a.shape) < epsilon, random_a, greedy_a)

    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_epsilon(self.env_steps, c.epsilon_start, c.epsilon_end, c.epsilon_steps)

    def _rollout(self) -> None:
        """One step of every environment into the replay buffer."""
        mask = self.sim.action_mask()[self.group] if self.masks_actions else None
        actions = self._act(self.obs[self.group], mask, self.epsilon)
        active = self.sim.active()[self.group]
        res = self.sim.step({self.group: actions})
        nxt = res.obs if res.final_obs is None else res.final_obs  # final_obs: the last observations before resets
        present = res.active if res.final_active is None else res.final_active
        rows = self.buffer.push(flat(self.obs[self.group], 2), np.where(active, actions, -1), res.rewards[self.group],
                                flat(nxt[self.group], 2), res.terminated, res.done, present[self.group])
        if self.masks_actions:  # after an auto-reset the mask is the new episode's: unused, terminated rows do not bootstrap
            self.next_masks[torch.as_tensor(rows)] = torch.as_tensor(self.sim.action_mask()[self.group])
        self.returns += res.rewards[self.group]
        self.took_part |= active
        for e in np.flatnonzero(res.done):
            self.finished.append(float(mean_over_present(self.returns[e], self.took_part[e])))
            self.returns[e], self.took_part[e] = 0.0, False
        self.obs = res.obs
        self.env_steps += self.config.num_envs

    # -- the update ------------------------------------------------------------------------------
    def _dataset(self) -> Transitions:
        if self.data is None:
            c = self.config
            self.data = load_transitions(self.game, path=c.demonstrations, expert=c.expert, transitions=c.transitions,
                                         seed=c.expert_seed)
            if self.data.obs.shape[2] != self.obs_dim:
                raise ValueError(f"the demonstrations' observations have {self.data.obs.shape[2]} values, "
                                 f"{self.game!r}'s {self.obs_dim}")
            if self.reward_fn is not None:
                self.data.rewards = self.reward_fn(self.data).float()
        return self.data

    def _sample(self) -> tuple[Transitions, torch.Tensor | None]:
        b = self.config.batch_size
        if self.config.online:
            idx = torch.randint(0, self.buffer.size, (b,), generator=self.gen)  # kept: the rows' next masks too
            return self.buffer.rows(idx), (self.next_masks[idx] if self.masks_actions else None)
        data = self._dataset()
        return data.index(torch.randint(0, len(data), (b,), generator=self.gen)), None

    def update(self) -> dict[str, float]:
        """One gradient step on a batch: Huber loss of Q(o, a) to the (double) Q-learning target,
        over the slots that acted; then the Polyak step of the target network."""
        c = self.config
        t, next_mask = self._sample()
        acted = t.actions >= 0  # [B, n]
        with torch.no_grad():
            y = td_target(t.rewards.reshape(-1), t.terminated[:, None].expand_as(t.rewards).reshape(-1),
                          self.q(t.next_obs).reshape(-1, self.num_actions),
                          self.q_target(t.next_obs).reshape(-1, self.num_actions), c.gamma, c.double,
                          None if next_mask is None else next_mask.reshape(-1, self.num_actions))
        q_taken = self.q(t.obs).gather(-1, t.actions.clamp(min=0).unsqueeze(-1)).squeeze(-1).reshape(-1)
        w = acted.reshape(-1).float()
        loss = (nn.functional.smooth_l1_loss(q_taken, y, reduction="none") * w).sum() / w.sum().clamp(min=1)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), c.max_grad_norm)
        self.opt.step()
        with torch.no_grad():
            for tp, p in zip(self.q_target.parameters(), self.q.parameters()):
                tp.lerp_(p, c.target_tau)
        self.updates += 1
        return {"loss": loss.item(), "q_mean": float((q_taken.detach() * w).sum() / w.sum().clamp(min=1))}

    def train_step(self) -> dict[str, float]:
        """Online: one step of every environment and `updates_per_step` gradient steps once the buffer
        holds `learning_starts` transitions. Offline: `updates_per_step` gradient steps, counted as
        the budget's steps."""
        c, t0 = self.config, time.perf_counter()
        stats: dict[str, float] = {}
        if c.online:
            self._rollout()
            if self.buffer.size >= c.learning_starts:
                for _ in range(c.updates_per_step):
                    stats = self.update()
        else:
            for _ in range(c.updates_per_step):
                stats = self.update()
            self.env_steps += c.updates_per_step
        finished, self.finished = self.finished, []
        return {"env_steps": self.env_steps, "episode_return": float(np.mean(finished)) if finished else float("nan"),
                "epsilon": self.epsilon if c.online else 0.0,
                "steps_per_second": (c.num_envs if c.online else c.updates_per_step) / (time.perf_counter() - t0), **stats}

    # -- evaluation and policies -------------------------------------------------------------------
    def greedy_actions(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        """argmax_a Q(o, a) over legal actions for observations [E, n, ...]."""
        return self._act(obs, mask, 0.0)

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        """Greedy episodes (`deterministic`), else epsilon-greedy at the current rate."""
        eps = 0.0 if deterministic else self.epsilon

        def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
            return {self.group: self._act(obs[self.group], mask[self.group] if self.masks_actions else None, eps)}

        return episode_means(self.game, choose, episodes, seed)

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    def policy(self, deterministic: bool = True) -> QPolicy:
        return QPolicy(self, deterministic)

    # -- checkpoints (tensors and plain numbers; the replay buffer is refilled on resume) --------------
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
                               "opt": self.opt.state_dict(), "gen": self.gen.get_state(), "rng": rng_to_tensors(self.rng),
                               "env_steps": self.env_steps, "updates": self.updates}
        if self.config.online:
            out.update(sim=state_to_tensors(self.sim.get_state()), sim_rng=rng_to_tensors(self.sim.rng),
                       obs=state_to_tensors(self.obs), returns=torch.as_tensor(self.returns))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.rng = rng_from_tensors(state["rng"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])
        if self.config.online:
            self.sim.set_state(state_from_tensors(state["sim"], self.sim.get_state()))
            self.sim.rng = rng_from_tensors(state["sim_rng"])
            self.obs = state_from_tensors(state["obs"], self.obs)
            self.returns = state["returns"].numpy().copy()


__all__ = ["DQN", "DQNConfig", "linear_epsilon", "td_target"]
