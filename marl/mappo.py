"""MAPPO and IPPO (Yu et al. 2022, "The Surprising Effectiveness of PPO in Cooperative Multi-Agent
Games"), on batched Markov games, readable top to bottom.

MAPPO: decentralised actors, a centralised critic on the global state. IPPO: the same with
each agent's critic on its own observation. Defaults follow the paper's MPE settings
(lr 7e-4, 64 hidden units, gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, Huber value
loss with delta 10, value normalisation, max grad norm 10, parameter sharing), with fewer
parallel environments to suit a CPU.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Probability, build, count
from equilibria.common.limits import check_memory
from equilibria.games.core import State
from equilibria.games.markov import BatchedMarkovGame
from equilibria.marl.runtime import Actor, Critic, ValueNorm, evaluate_episodes, gae


class MAPPOConfig(Config):
    """MAPPO (Yu et al. 2022) defaults for MPE; `centralized_critic: false` gives IPPO."""

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
    """passes over each batch"""
    num_minibatches: count(100_000) = 1
    """minibatches per epoch"""
    entropy_coef: NonNegativeFloat = 0.01
    """entropy bonus"""
    value_coef: NonNegativeFloat = 1.0
    """weight of the value loss"""
    huber_delta: PositiveFloat = 10.0
    """Huber loss threshold of the value loss"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient clipping"""
    hidden: count(65_536) = 64
    """units per hidden layer (two tanh layers)"""
    share_parameters: bool = True
    """one actor and one critic for all agents (agent id appended to the input)"""
    centralized_critic: bool = True
    """critic on the global state (MAPPO); false: on each agent's observation (IPPO)"""
    value_norm: bool = True
    """normalise value targets with running statistics (MAPPO's ValueNorm)"""


def check_memory_of(game: BatchedMarkovGame, config: MAPPOConfig) -> None:
    """ValueError when the environments plus a rollout of observations and critic inputs (float32)
    would not fit this machine's memory (checked before anything is allocated)."""
    est = game.size_estimate
    per_env = est.bytes_per_env if est is not None else 0.0
    check_memory(f"MAPPO with {config.num_envs} environments of {game!r}",
                 config.num_envs * (per_env + 2 * 4.0 * game.num_agents * game.obs_dim * config.rollout_length))


class MAPPO:
    def __init__(self, game: BatchedMarkovGame, config: MAPPOConfig, seed: int = 0):
        if not isinstance(game, BatchedMarkovGame):
            raise ValueError(f"MAPPO trains on batched Markov games; {game.info.name} is not one")
        check_memory_of(game, config)
        self.game, self.config, self.seed = game, config, seed
        self.env = game.spawn()
        torch.manual_seed(seed)
        n, d, a = game.num_agents, game.obs_dim, game.num_actions
        self.obs = self.env.reset(config.num_envs, seed=seed)
        state_dim = self.env.global_state().shape[1]
        self.actor = Actor(d, a, n, config.hidden, config.share_parameters)
        self.critic = Critic(state_dim if config.centralized_critic else d, n, config.hidden, config.share_parameters)
        self.value_norm = ValueNorm()
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, eps=1e-5)
        self.env_steps = 0
        self.updates = 0
        self.episode_returns = np.zeros((config.num_envs, n))
        self.finished: list[float] = []

    # -- helpers ----------------------------------------------------------------------
    def _critic_input(self, obs: np.ndarray, state: np.ndarray) -> torch.Tensor:
        if self.config.centralized_critic:
            n = self.game.num_agents
            return torch.as_tensor(np.repeat(state[:, None, :], n, axis=1), dtype=torch.float32)
        return torch.as_tensor(obs, dtype=torch.float32)

    def _values(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            v = self.critic(x)
            if self.config.value_norm:
                v = self.value_norm.denormalize(v)
        return v.numpy()

    # -- rollout ----------------------------------------------------------------------
    def collect(self) -> dict[str, np.ndarray]:
        c, env = self.config, self.env
        T, E = c.rollout_length, c.num_envs
        buf = {k: [] for k in ("obs", "critic_in", "mask", "actions", "logp", "values", "rewards", "next_values",
                               "terminated", "ends")}
        for _ in range(T):
            state = env.global_state()
            mask = env.action_mask()
            critic_in = self._critic_input(self.obs, state)
            with torch.no_grad():
                dist = self.actor.dist(torch.as_tensor(self.obs), torch.as_tensor(mask))
                actions = dist.sample()
                logp = dist.log_prob(actions)
            values = self._values(critic_in)
            res = env.step(actions.numpy())
            # V(s_{t+1}); where an episode ended, the value of its final observation / state
            next_obs = res.obs if res.final_obs is None else np.where(res.done[:, None, None], res.final_obs, res.obs)
            next_state = env.global_state() if res.final_state is None else \
                np.where(res.done[:, None], res.final_state, env.global_state())
            next_values = self._values(self._critic_input(next_obs, next_state))
            for k, v in (("obs", self.obs), ("critic_in", critic_in.numpy()), ("mask", mask), ("actions", actions.numpy()),
                         ("logp", logp.numpy()), ("values", values), ("rewards", res.rewards),
                         ("next_values", next_values), ("terminated", res.terminated.astype(np.float64)),
                         ("ends", res.done.astype(np.float64))):
                buf[k].append(v)
            self.episode_returns += res.rewards
            for e in np.flatnonzero(res.done):
                self.finished.append(float(self.episode_returns[e].mean()))
                self.episode_returns[e] = 0.0
            self.obs = res.obs
            self.env_steps += E
        return {k: np.stack(v) for k, v in buf.items()}

    # -- update -----------------------------------------------------------------------
    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        c = self.config
        adv, returns = gae(batch["rewards"], batch["values"], batch["next_values"], batch["terminated"],
                           batch["ends"], c.gamma, c.gae_lambda)
        # samples are (t, env) pairs, each keeping its N agents
        T, E, N = batch["rewards"].shape
        obs = torch.as_tensor(batch["obs"].reshape(T * E, N, -1), dtype=torch.float32)
        critic_in = torch.as_tensor(batch["critic_in"].reshape(T * E, N, -1), dtype=torch.float32)
        mask = torch.as_tensor(batch["mask"].reshape(T * E, N, -1))
        all_legal = bool(mask.all())  # skip masking work when nothing is ever illegal
        actions = torch.as_tensor(batch["actions"].reshape(T * E, N))
        old_logp = torch.as_tensor(batch["logp"].reshape(T * E, N), dtype=torch.float32)
        adv_t = torch.as_tensor(adv.reshape(T * E, N), dtype=torch.float32)
        adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
        ret_t = torch.as_tensor(returns.reshape(T * E, N), dtype=torch.float32)
        if c.value_norm:
            self.value_norm.update(ret_t)
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        count = 0
        for _ in range(c.ppo_epochs):
            for idx in torch.randperm(T * E).chunk(c.num_minibatches):
                log_probs = torch.log_softmax(self.actor.logits(obs[idx], None if all_legal else mask[idx]), dim=-1)
                logp = log_probs.gather(-1, actions[idx].unsqueeze(-1)).squeeze(-1)
                ratio = (logp - old_logp[idx]).exp()
                a = adv_t[idx]
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - c.clip, 1 + c.clip) * a).mean()
                entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
                self.actor_opt.zero_grad()
                (policy_loss - c.entropy_coef * entropy).backward()
                nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm)
                self.actor_opt.step()
                target = self.value_norm.normalize(ret_t[idx]) if c.value_norm else ret_t[idx]
                value_loss = nn.functional.huber_loss(self.critic(critic_in[idx]), target, delta=c.huber_delta)
                self.critic_opt.zero_grad()
                (c.value_coef * value_loss).backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), c.max_grad_norm)
                self.critic_opt.step()
                stats["policy_loss"] += float(policy_loss.detach())
                stats["value_loss"] += float(value_loss.detach())
                stats["entropy"] += float(entropy.detach())
                stats["clip_fraction"] += float(((ratio - 1).abs() > c.clip).float().mean())
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
        """Mean episode return (per agent) over `episodes` fresh episodes, with a 95% CI half-width."""
        gen = torch.Generator().manual_seed(seed)

        def choose(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                logits = self.actor.logits(torch.as_tensor(obs), torch.as_tensor(mask))
                if deterministic:
                    return logits.argmax(-1).numpy()
                flat = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)
                return torch.multinomial(flat, 1, generator=gen).view(logits.shape[:-1]).numpy()

        return evaluate_episodes(self.game, choose, episodes, seed)

    def policy(self, deterministic: bool = False) -> MARLPolicy:
        return MARLPolicy(self.actor, self.game.num_agents, deterministic)

    # -- checkpoints (tensors and plain numbers only: loadable with weights_only=True) ---------
    def state_dict(self) -> dict[str, Any]:
        try:
            env_state = {k: torch.as_tensor(v) for k, v in self.env.get_state().items()}
        except NotImplementedError:  # e.g. wrapped PettingZoo envs: resume re-seeds them instead
            env_state = {}
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "value_norm": self.value_norm.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "env": env_state,
                "env_rng": _rng_to_tensors(self.env.rng), "torch_rng": torch.get_rng_state(),
                "obs": torch.as_tensor(self.obs), "episode_returns": torch.as_tensor(self.episode_returns),
                "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.value_norm.load_state_dict(state["value_norm"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.env.rng = _rng_from_tensors(state["env_rng"])
        if state["env"]:
            self.env.set_state({k: v.numpy() for k, v in state["env"].items()})
        else:
            self.obs = self.env.reset(self.config.num_envs, seed=int(self.env.rng.integers(2**31)))
            state = {**state, "obs": torch.as_tensor(self.obs), "episode_returns": torch.zeros(self.episode_returns.shape)}
        torch.set_rng_state(state["torch_rng"])
        self.obs = state["obs"].numpy()
        self.episode_returns = state["episode_returns"].numpy().copy()
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])


def _rng_to_tensors(rng: np.random.Generator) -> dict[str, Any]:
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError("checkpoints support numpy's default PCG64 generator")
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _rng_from_tensors(d: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
                               "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}
    return rng


class MARLPolicy:
    """A trained actor as a games Policy: acts from state.observation(player). An actor trained
    for all agents (shared parameters) reads every agent's observation; a one-agent actor only
    the acting player's."""

    def __init__(self, actor: Actor, num_agents: int, deterministic: bool = False):
        self.actor, self.num_agents, self.deterministic = actor, num_agents, deterministic

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if player is None or player < 0:
            raise ValueError("MARL policies act for a given player")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        if self.num_agents == 1:  # a one-agent actor (e.g. a PSRO best response) acts for any seat
            obs, row = state.observation(player)[None], 0
        else:
            obs, row = np.stack([state.observation(p) for p in range(self.num_agents)]), player
        with torch.no_grad():
            logits = self.actor.logits(torch.as_tensor(obs)[None])[0, row]
        probs = torch.softmax(logits, -1).numpy()
        if self.deterministic:
            best = max(legal, key=lambda a: probs[a])
            return {a: float(a == best) for a in legal}
        z = sum(probs[a] for a in legal)
        return {a: float(probs[a] / z) for a in legal}


ALGORITHMS = {"mappo": {}, "ippo": {"centralized_critic": False}}


def make(name: str, game: BatchedMarkovGame, seed: int = 0, **config: Any) -> MAPPO:
    """'mappo' or 'ippo' with config overrides (IPPO is MAPPO with local critics)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown MARL algorithm {name!r} (algorithms: {', '.join(ALGORITHMS)})")
    return MAPPO(game, build(MAPPOConfig, {**ALGORITHMS[name], **config}, f"learner {name!r}"), seed)
