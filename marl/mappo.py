"""MAPPO and IPPO (Yu et al. 2022, "The Surprising Effectiveness of PPO in Cooperative Multi-Agent
Games") on Markov games, readable top to bottom.

MAPPO: decentralised actors, a centralised critic on the global state. IPPO: the same with each
agent's critic on its own observation. Every agent group (games.spaces.Group) has its own actor
and critic, shared by the group's agents (their one-hot slot id appended); agents that are not
active at a step are left out of the losses, the advantages and their normalisation. Defaults
follow the paper's MPE settings (lr 7e-4, 64 hidden units, gamma 0.99, GAE lambda 0.95, clip
0.2, entropy 0.01, Huber value loss with delta 10, value normalisation, max grad norm 10,
parameter sharing), with fewer parallel environments to suit a CPU.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Probability, count
from equilibria.common.limits import check_memory
from equilibria.games.markov import MarkovGame, StepResult
from equilibria.games.spaces import index_obs
from equilibria.marl.networks import GroupActor, GroupCritic, as_tensors
from equilibria.marl.policy import MARLPolicy
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import (
    ValueNorm,
    agent_ends,
    episode_means,
    gae,
    masked_mean,
    mean_ci,
    merge_steps,
    normalize_advantages,
    observation_bytes,
    ppo_clip_loss,
    rng_from_tensors,
    rng_to_tensors,
    stack_steps,
    state_from_tensors,
    state_to_tensors,
)


class MAPPOConfig(Config):
    """MAPPO (Yu et al. 2022) defaults for MPE; `critic: local` gives IPPO."""

    num_envs: count(65_536) = 32
    """parallel environments (the paper: 128 rollout threads)"""
    rollout_length: count(100_000) = 25
    """steps per environment per update (the MPE episode length)"""
    lr: PositiveFloat = 7e-4
    """actor learning rate (Adam, eps 1e-5)"""
    critic_lr: PositiveFloat = 7e-4
    """critic learning rate"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    """discount"""
    gae_lambda: Probability = 0.95
    """GAE lambda"""
    clip: PositiveFloat = 0.2
    """PPO ratio clip"""
    ppo_epochs: count(1000) = 10
    """passes over each batch (the paper: 10 for MPE)"""
    num_minibatches: count(100_000) = 1
    """minibatches per epoch (the paper: 1 for MPE)"""
    entropy_coef: NonNegativeFloat = 0.01
    """entropy bonus"""
    value_coef: NonNegativeFloat = 1.0
    """weight of the value loss"""
    huber_delta: PositiveFloat = 10.0
    """Huber loss threshold of the value loss"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient clipping (actor and critic separately)"""
    hidden: count(65_536) = 64
    """units per hidden layer (two tanh layers)"""
    share_parameters: bool = True
    """one actor and one critic per agent group (the agent's slot id appended to the input)"""
    actor_ids: bool = True
    """with shared parameters, append the agent's slot id to the actor's input (MAPPO's default);
    off, the agents are anonymous: the same observation gets the same action distribution
    whichever agent holds it (MPE's observations carry no id)"""
    critic: Literal["centralized", "local", "pooled"] = "centralized"
    """the critic's input: the global state (MAPPO), the agent's own observation (IPPO), or its
    observation plus the mean encoding of all present agents (linear in the number of agents)"""
    value_norm: bool = True
    """normalise value targets with running statistics (MAPPO's ValueNorm)"""


def check_memory_of(game: MarkovGame, config: MAPPOConfig) -> None:
    """ValueError when the environments plus a rollout of observations and global states
    (float32) would not fit this machine's memory (checked before anything is allocated)."""
    est = game.size_estimate
    per_env = est.bytes_per_env if est is not None else 0.0
    per_step = observation_bytes(game) + 4.0 * float(np.prod(game.state_shape)) + 4 * 8.0 * game.max_agents
    check_memory(f"MAPPO with {config.num_envs} environments of {game!r}",
                 config.num_envs * (per_env + per_step * config.rollout_length))


def _preflight(game: MarkovGame, config: MAPPOConfig) -> None:
    check_memory_of(game, config)


@register_learner("mappo", MAPPOConfig, preflight=_preflight,
                  description="MAPPO (Yu et al. 2022): PPO actors per agent group, a centralised critic")
@register_learner("ippo", MAPPOConfig, preflight=_preflight, critic="local",
                  description="IPPO (de Witt et al. 2020): MAPPO with each agent's critic on its own observation")
class MAPPO:
    def __init__(self, game: MarkovGame, config: MAPPOConfig, seed: int = 0):
        if not isinstance(game, MarkovGame):
            raise ValueError(f"MAPPO trains on Markov games (games.markov.MarkovGame); {game.info.name} is not one")
        check_memory_of(game, config)
        self.game, self.config, self.seed = game, config, seed
        self.groups = [g.name for g in game.groups]
        self.sim = game.simulator(config.num_envs, seed)
        torch.manual_seed(seed)
        state_dim = int(np.prod(game.state_shape))
        self.actors = nn.ModuleDict({g.name: GroupActor(g, config.hidden, config.share_parameters, config.actor_ids)
                                     for g in game.groups})
        self.critics = nn.ModuleDict({g.name: GroupCritic(g, config.critic, state_dim, config.hidden,
                                                          config.share_parameters) for g in game.groups})
        self.value_norms = nn.ModuleDict({g.name: ValueNorm() for g in game.groups})
        self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=config.lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=config.critic_lr, eps=1e-5)
        self.obs, self.active = self.sim.observe(), self.sim.active()
        self.env_steps = 0
        self.updates = 0
        self.episode_returns = np.zeros((config.num_envs, game.max_agents))
        self.took_part = np.zeros((config.num_envs, game.max_agents), dtype=bool)
        self.finished: list[float] = []

    # -- helpers ----------------------------------------------------------------------
    def _values(self, obs: dict, state: np.ndarray, active: dict) -> dict[str, np.ndarray]:
        """Denormalised values {group: [E, n]}."""
        st = torch.as_tensor(state, dtype=torch.float32)
        out = {}
        with torch.no_grad():
            for k in self.groups:
                v = self.critics[k](as_tensors(obs[k]), st, torch.as_tensor(active[k]))
                out[k] = (self.value_norms[k].denormalize(v) if self.config.value_norm else v).numpy()
        return out

    def _track_returns(self, res: StepResult, acting: dict[str, np.ndarray]) -> None:
        rewards = np.concatenate([res.rewards[k] for k in self.groups], axis=1)
        self.took_part |= np.concatenate([acting[k] for k in self.groups], axis=1)
        self.episode_returns += rewards
        for e in np.flatnonzero(res.done):
            present = self.took_part[e]
            self.finished.append(float(self.episode_returns[e][present].mean()) if present.any() else 0.0)
            self.episode_returns[e] = 0.0
            self.took_part[e] = False

    # -- the joint policy (a learner with correlated actors overrides these two) --------------
    def act(self, obs: dict, mask: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Sampled actions {group: [E, n]}, their log-probabilities, and per-environment extras
        {name: [E, ...]} that `log_probs` needs to score the same actions again (none here: every
        agent samples from its own actor independently)."""
        actions, logp = {}, {}
        with torch.no_grad():
            for k in self.groups:
                logits = self.actors[k].logits(as_tensors(obs[k]), torch.as_tensor(mask[k]))
                dist = torch.distributions.Categorical(logits=logits, validate_args=False)
                a = dist.sample()
                actions[k], logp[k] = a.numpy(), dist.log_prob(a).numpy()
        return actions, logp, {}

    def log_probs(self, group: str, obs: Any, mask: torch.Tensor | None, actions: torch.Tensor,
                  extras: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probabilities [B, n, A] of every action of a minibatch's agents, with gradients
        (`actions` [B, n] are the group's sampled actions, `extras` what `act` recorded)."""
        return torch.log_softmax(self.actors[group].logits(obs, mask), -1)

    # -- rollout ----------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        """T steps of every environment: per group the observations, masks, actions, log-probs,
        values, rewards and who acted / is still present after each step; per environment the
        global states and ends. next_values[t] is V(s_{t+1}): the value of the next step's
        observation, or of the final observation where an episode ended."""
        c, sim = self.config, self.sim
        T = c.rollout_length
        keys = ("obs", "mask", "actions", "logp", "values", "next_values", "rewards", "active", "next_active")
        buf: dict[str, dict[str, list]] = {k: {g: [] for g in self.groups} for k in keys}
        states, terminated, done = [], [], []
        extra_buf: dict[str, list] = {}
        for _ in range(T):
            state = sim.global_state()
            mask = sim.action_mask()
            actions, logp, extras = self.act(self.obs, mask)
            for k in self.groups:
                buf["logp"][k].append(logp[k])
            for name, v in extras.items():
                extra_buf.setdefault(name, []).append(v)
            values = self._values(self.obs, state, self.active)
            res = sim.step(actions)
            final_values = None
            if res.final_obs is not None:
                final_values = self._values(res.final_obs, res.final_state, res.final_active)
            for k in self.groups:
                next_active = res.active[k] if res.final_active is None else \
                    np.where(res.done[:, None], res.final_active[k], res.active[k])
                for name, v in (("obs", self.obs[k]), ("mask", mask[k]), ("actions", actions[k]),
                                ("values", values[k]), ("rewards", res.rewards[k]), ("active", self.active[k]),
                                ("next_active", next_active)):
                    buf[name][k].append(v)
                # filled in below from the next step's values, except where an episode ended
                buf["next_values"][k].append(None if final_values is None else
                                             np.where(res.done[:, None], final_values[k], np.nan))
            states.append(state)
            terminated.append(res.terminated)
            done.append(res.done)
            self._track_returns(res, self.active)
            self.obs, self.active = res.obs, res.active
            self.env_steps += c.num_envs
        last = self._values(self.obs, sim.global_state(), self.active)
        out: dict[str, Any] = {"state": np.stack(states), "terminated": np.stack(terminated), "done": np.stack(done),
                               "extras": {name: np.stack(v) for name, v in extra_buf.items()}}
        for k in self.groups:
            following = buf["values"][k][1:] + [last[k]]
            nv = [f if pre is None else np.where(np.isnan(pre), f, pre) for pre, f in zip(buf["next_values"][k], following)]
            buf["next_values"][k] = nv
        for name in keys:
            out[name] = {k: stack_steps(buf[name][k]) for k in self.groups}
        return out

    # -- update -----------------------------------------------------------------------
    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        c = self.config
        T, E = batch["done"].shape
        flat = {}  # per group: samples are (t, env) pairs, each keeping the group's n agents
        for k in self.groups:
            term, ends = agent_ends(batch["active"][k], batch["next_active"][k], batch["terminated"], batch["done"])
            adv, returns = gae(batch["rewards"][k], batch["values"][k], batch["next_values"][k], term, ends,
                               c.gamma, c.gae_lambda)
            active = torch.as_tensor(batch["active"][k].reshape(T * E, -1))
            weight = None if bool(active.all()) else active.float()
            mask = torch.as_tensor(batch["mask"][k].reshape(T * E, *batch["mask"][k].shape[2:]))
            adv_t = torch.as_tensor(adv.reshape(T * E, -1), dtype=torch.float32)
            ret_t = torch.as_tensor(returns.reshape(T * E, -1), dtype=torch.float32)
            if c.value_norm:
                self.value_norms[k].update(ret_t if weight is None else ret_t[active])
            flat[k] = {"obs": as_tensors(merge_steps(batch["obs"][k], T * E)), "weight": weight, "active": active,
                       "mask": None if bool(mask.all()) else mask,
                       "actions": torch.as_tensor(batch["actions"][k].reshape(T * E, -1)),
                       "old_logp": torch.as_tensor(batch["logp"][k].reshape(T * E, -1), dtype=torch.float32),
                       "adv": normalize_advantages(adv_t, weight), "returns": ret_t}
        state = torch.as_tensor(batch["state"].reshape(T * E, -1), dtype=torch.float32)
        extras = {name: torch.as_tensor(v.reshape(T * E, *v.shape[2:])) for name, v in batch["extras"].items()}
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        count = 0
        for _ in range(c.ppo_epochs):
            for idx in torch.randperm(T * E).chunk(c.num_minibatches):
                policy_loss = value_loss = entropy = clipped = 0.0
                for k in self.groups:
                    f = flat[k]
                    w = None if f["weight"] is None else f["weight"][idx]
                    obs = index_obs(f["obs"], idx)
                    log_probs = self.log_probs(k, obs, None if f["mask"] is None else f["mask"][idx], f["actions"][idx],
                                               {name: v[idx] for name, v in extras.items()})
                    logp = log_probs.gather(-1, f["actions"][idx].unsqueeze(-1)).squeeze(-1)
                    pl, clip_frac = ppo_clip_loss(logp, f["old_logp"][idx], f["adv"][idx], c.clip, w)
                    ent = masked_mean(-(log_probs.exp() * log_probs).sum(-1), w)
                    target = f["returns"][idx]
                    if c.value_norm:
                        target = self.value_norms[k].normalize(target)
                    v = self.critics[k](obs, state[idx], f["active"][idx])
                    vl = masked_mean(nn.functional.huber_loss(v, target, delta=c.huber_delta, reduction="none"), w)
                    policy_loss, entropy, value_loss = policy_loss + pl, entropy + ent, value_loss + vl
                    clipped += float(clip_frac)
                # actor and critic share no parameters: one backward pass serves both optimisers
                self.actor_opt.zero_grad()
                self.critic_opt.zero_grad()
                (policy_loss - c.entropy_coef * entropy + c.value_coef * value_loss).backward()
                # clip what each optimiser steps (a subclass's actor optimiser may hold more than
                # the actors, e.g. the Bayesian-network actor-critic's DAG network)
                for opt in (self.actor_opt, self.critic_opt):
                    nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], c.max_grad_norm)
                self.actor_opt.step()
                self.critic_opt.step()
                n = len(self.groups)
                stats["policy_loss"] += float(policy_loss.detach()) / n
                stats["value_loss"] += float(value_loss.detach()) / n
                stats["entropy"] += float(entropy.detach()) / n
                stats["clip_fraction"] += clipped / n
                count += 1
        self.updates += 1
        return {k: v / count for k, v in stats.items()}

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        self.finished = []
        batch = self.collect()
        stats = self.update(batch)
        seconds = time.perf_counter() - t0
        ret = float(np.mean(self.finished)) if self.finished else float("nan")
        return {"env_steps": self.env_steps, "episode_return": ret,
                "steps_per_second": self.config.num_envs * self.config.rollout_length / seconds, **stats}

    # -- evaluation and policies ----------------------------------------------------------
    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        """Mean episode return per agent (over the agents that took part) over `episodes` fresh
        episodes, with a 95% CI half-width."""
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        """[episodes]: each fresh episode's mean return per agent (over the agents that took part),
        all episodes stepped at once."""
        gen = torch.Generator().manual_seed(seed)

        def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
            out = {}
            with torch.no_grad():
                for k in self.groups:
                    logits = self.actors[k].logits(as_tensors(obs[k]), torch.as_tensor(mask[k]))
                    if deterministic:
                        out[k] = logits.argmax(-1).numpy()
                    else:
                        flat = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)
                        out[k] = torch.multinomial(flat, 1, generator=gen).view(logits.shape[:-1]).numpy()
            return out

        return episode_means(self.game, choose, episodes, seed)

    def policy(self, deterministic: bool = False) -> MARLPolicy:
        return MARLPolicy(dict(self.actors.items()), deterministic)

    # -- checkpoints (tensors and plain numbers only: loadable with weights_only=True) ---------
    def state_dict(self) -> dict[str, Any]:
        sim_state = state_to_tensors(self.sim.get_state()) if self.sim.supports_state else {}
        return {"actors": self.actors.state_dict(), "critics": self.critics.state_dict(),
                "value_norms": self.value_norms.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "sim": sim_state, "sim_rng": rng_to_tensors(self.sim.rng),
                "torch_rng": torch.get_rng_state(), "obs": state_to_tensors(self.obs),
                "active": state_to_tensors(self.active), "episode_returns": torch.as_tensor(self.episode_returns),
                "took_part": torch.as_tensor(self.took_part), "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critics.load_state_dict(state["critics"])
        self.value_norms.load_state_dict(state["value_norms"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        if state["sim"]:
            self.sim.set_state(state_from_tensors(state["sim"], self.sim.get_state()))
            self.obs = state_from_tensors(state["obs"], self.obs)
            self.active = state_from_tensors(state["active"], self.active)
            self.episode_returns = state["episode_returns"].numpy().copy()
            self.took_part = state["took_part"].numpy().copy()
        else:  # a simulator that cannot be copied (wrapped PettingZoo envs) starts fresh episodes
            self.sim.rng = rng_from_tensors(state["sim_rng"])
            self.obs = self.sim.reset(seed=int(self.sim.rng.integers(2**31)))
            self.active = self.sim.active()
            self.episode_returns[:] = 0.0
            self.took_part[:] = False
        torch.set_rng_state(state["torch_rng"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])

