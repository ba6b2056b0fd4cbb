"""Learn to Follow (Skrynnik et al., AAAI 2024): a learned follower of a heuristic planner's path,
for lifelong multi-agent pathfinding, readable top to bottom.

Every agent plans its path with A* on the map with a static and a dynamic (observed congestion)
cost (marl.mapf.planner); the path's next cell is its sub-goal. The follower is a policy that
sees a local window around the agent (radius `network_radius`): channel 0 holds -1 on obstacles
and +1 on the planned path's cells (drawn from the agent outward until the path leaves the
window), channel 1 the other agents (and itself). It is trained by PPO with one network shared by
every agent and only the intrinsic reward `intrinsic_reward` (0.01) for standing on the sub-goal
it was given one step earlier; the game's own reward (targets reached) is never used for
training. Training draws its episodes from random and maze maps with several agent counts.

Defaults are FollowerLite's (1 residual block x 8 filters, no hidden layer, radius 3, gamma
0.9716, exploration 0.0156, PPO clip 0.2, rollout 8); `FollowerConfig.full()` gives the full
Follower (8 blocks x 64 filters, a hidden layer of 512, radius 5, gamma 0.9756, exploration 0.023;
the authors' full model also has a GRU, which is not built here). The authors train
with Sample-Factory's APPO on 4-8 workers for 2e7 (Lite) to 1e9 steps; here every simulator is
batched and the planner is numba, on one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Probability, count
from equilibria.games.core import CorrelatedPolicy, JointAction, State
from equilibria.games.lifelong_mapf import LifelongMAPF, LifelongMAPFSimulator
from equilibria.games.markov import MarkovGame, MarkovState
from equilibria.marl.mapf.controllers import Chooser, mapf_episodes, record_mapf_episode
from equilibria.marl.mapf.planner import BatchPlanner, PlannerConfig
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import gae, mean_ci, normalize_advantages, ppo_clip_loss, rng_from_tensors, rng_to_tensors


class FollowerConfig(Config):
    """Learn to Follow; defaults are FollowerLite's (the authors' config.json for follower-lite)."""

    num_envs: count(4096) = 8
    """environments per training simulator (each holds the game's agents)"""
    rollout_length: count(10_000) = 8
    """steps per environment per update (Sample-Factory's rollout: 8)"""
    maps: Annotated[list[str], Field(min_length=1, max_length=32)] = Field(default_factory=lambda: ["random", "maze"])
    """map sources trained on (the authors train on mazes; random and maze maps here), the game's size"""
    agent_counts: Annotated[list[int], Field(max_length=32)] = Field(default_factory=lambda: [32, 64, 128])
    """agent counts trained on (the authors: bins of 64-256 on 65x65 mazes); empty: the game's"""
    network_radius: count(64) = 3
    """radius of the window the network sees (Lite 3, full 5); at most the game's obs_radius"""
    num_filters: count(1024) = 8
    """convolution filters (Lite 8, full 64)"""
    num_res_blocks: count(64) = 1
    """residual blocks (Lite 1, full 8)"""
    hidden: Annotated[int, Field(ge=0, le=65_536)] = 0
    """units of a hidden layer after the convolutions; 0: the heads read the convolution features
    (the authors' config: Lite has extra_fc_layers 0, so its hidden_size 16 is unused; full 512)"""
    lr: PositiveFloat = 1.3e-4
    """Adam learning rate (Lite 1.3e-4 with a KL-adaptive schedule; constant here)"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.9716
    """discount (Lite 0.9716, full 0.9756)"""
    gae_lambda: Probability = 0.95
    """GAE lambda"""
    clip: PositiveFloat = 0.2
    """PPO ratio clip"""
    ppo_epochs: count(1000) = 1
    """passes over each batch (Sample-Factory's num_epochs: 1)"""
    num_minibatches: count(100_000) = 4
    """minibatches per epoch"""
    entropy_coef: NonNegativeFloat = 0.0156
    """exploration (entropy) coefficient (Lite 0.0156, full 0.023)"""
    value_coef: NonNegativeFloat = 0.5
    """value loss weight"""
    max_grad_norm: PositiveFloat = 4.0
    """gradient clipping"""
    intrinsic_reward: PositiveFloat = 0.01
    """reward for standing on last step's sub-goal: the only training signal"""
    static_cost: bool = True
    """the planner's static cost (ablation: false)"""
    dynamic_cost: bool = True
    """the planner's dynamic cost (ablation: false)"""

    @classmethod
    def full(cls, **overrides: Any) -> FollowerConfig:
        """The full-size Follower of the paper."""
        return cls(**{"network_radius": 5, "num_filters": 64, "num_res_blocks": 8, "hidden": 512, "gamma": 0.9756,
                      "entropy_coef": 0.023, "lr": 2.2e-4, **overrides})


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FollowerNet(nn.Module):
    """The authors' ResNet encoder (conv, residual blocks, ReLU), an optional hidden layer, and
    actor and critic heads sharing the encoder (Sample-Factory's actor_critic_share_weights)."""

    def __init__(self, radius: int, filters: int, blocks: int, hidden: int, actions: int = 5):
        super().__init__()
        d = 2 * radius + 1
        features = filters * d * d
        head = [nn.Linear(features, hidden), nn.ReLU()] if hidden else []
        self.encoder = nn.Sequential(nn.Conv2d(2, filters, 3, padding=1), *[ResBlock(filters) for _ in range(blocks)],
                                     nn.ReLU(), nn.Flatten(), *head)
        self.actor = nn.Linear(hidden or features, actions)
        self.critic = nn.Linear(hidden or features, 1)
        nn.init.orthogonal_(self.actor.weight, 0.01)
        nn.init.zeros_(self.actor.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.actor(z), self.critic(z).squeeze(-1)


def hidden_units(net_state: dict[str, torch.Tensor]) -> int:
    """The hidden layer's width in a FollowerNet's weights (0: the heads read the convolutions)."""
    return next((int(w.shape[0]) for k, w in net_state.items() if k.startswith("encoder.") and w.dim() == 2), 0)


def follower_observations(sim, planner: BatchPlanner, radius: int) -> np.ndarray:
    """[E, N, 2, d, d] float32: -obstacles with the planned path as +1, and the agents, in the
    window of `radius` around each agent (d = 2 radius + 1)."""
    r0 = sim.game.obs_radius
    if radius > r0:
        raise ValueError(f"the follower sees radius {radius}; this game's observations have radius {r0}")
    full = sim.observe()["agents"]  # [E, N, 3, D, D]
    window = full[:, :, :2, r0 - radius:r0 + radius + 1, r0 - radius:r0 + radius + 1]
    out = np.empty(window.shape, dtype=np.float32)
    out[:, :, 0] = -window[:, :, 0]
    out[:, :, 1] = window[:, :, 1]
    # the path, from the agent outward, until its first cell outside the window
    w = sim.padded_width
    path, length = planner.path, planner.path_len
    rows = path // w - (sim.pos // w)[..., None] + radius
    cols = path % w - (sim.pos % w)[..., None] + radius
    d = 2 * radius + 1
    inside = (rows >= 0) & (rows < d) & (cols >= 0) & (cols < d) & (np.arange(path.shape[2]) < length[..., None])
    inside &= (length > 1)[..., None]
    inside = np.logical_and.accumulate(inside, axis=-1)
    e, i, k = np.nonzero(inside)
    out[e, i, 0, rows[e, i, k], cols[e, i, k]] = 1.0
    return out


class _Stream:
    """One training simulator (a map source and an agent count) with its planner and the
    sub-goals given at the last step."""

    def __init__(self, game: LifelongMAPF, num_envs: int, seed: int, planner: PlannerConfig, radius: int):
        self.sim = game.simulator(num_envs, seed)
        self.planner = BatchPlanner(self.sim, planner)
        self.subgoal = self.planner.plan()
        self.obs = follower_observations(self.sim, self.planner, radius)
        self.returns = np.zeros((num_envs, game.num_agents))


@register_learner("follower", FollowerConfig,
                  description="Learn to Follow (Skrynnik et al. 2024): a PPO follower of an A* planner's path "
                              "(lifelong MAPF)")
class Follower:
    def __init__(self, game: MarkovGame, config: FollowerConfig, seed: int = 0):
        if not isinstance(game, LifelongMAPF):
            raise ValueError(f"the follower trains on lifelong_mapf games; {game.info.name} is not one")
        if config.network_radius > game.obs_radius:
            raise ValueError(f"network_radius {config.network_radius} exceeds the game's obs_radius {game.obs_radius}")
        self.game, self.config, self.seed = game, config, seed
        torch.manual_seed(seed)
        self.net = FollowerNet(config.network_radius, config.num_filters, config.num_res_blocks, config.hidden)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, eps=1e-6)
        self.planner_config = PlannerConfig(static_cost=config.static_cost, dynamic_cost=config.dynamic_cost)
        self.variants = [game.variant(n, m) for m in config.maps for n in (config.agent_counts or [game.num_agents])]
        for v in self.variants:  # every training variant must hold its agents, checked before training starts
            try:
                v.make_task(0)
            except ValueError as err:
                raise ValueError(f"training variant {v!r}: {err} (see maps and agent_counts)") from None
        self.rng = np.random.default_rng(seed)
        self.streams: dict[int, _Stream] = {}
        self.env_steps = self.updates = 0
        self.finished: list[float] = []

    def _stream(self, k: int) -> _Stream:
        if k not in self.streams:
            self.streams[k] = _Stream(self.variants[k], self.config.num_envs, int(self.rng.integers(2**31)),
                                      self.planner_config, self.config.network_radius)
        return self.streams[k]

    # -- rollout ----------------------------------------------------------------------
    def collect(self, s: _Stream) -> dict[str, np.ndarray]:
        T = self.config.rollout_length
        keys = ("obs", "actions", "logp", "values", "rewards", "ends")
        buf: dict[str, list] = {k: [] for k in keys}
        for _ in range(T):
            with torch.no_grad():
                logits, values = self.net(torch.from_numpy(s.obs).flatten(0, 1))
                dist = torch.distributions.Categorical(logits=logits, validate_args=False)
                a = dist.sample()
            shape = s.obs.shape[:2]
            actions = a.numpy().reshape(shape)
            res = s.sim.step({"agents": actions})
            # the intrinsic reward: standing, after the move, on the sub-goal given before it
            reached = (s.sim.pos == s.subgoal) if not res.done.any() else \
                np.where(res.done[:, None], False, s.sim.pos == s.subgoal)
            s.returns += res.rewards["agents"]
            for e in np.flatnonzero(res.done):
                self.finished.append(float(s.returns[e].mean()))
                s.returns[e] = 0.0
            for name, v in (("obs", s.obs), ("actions", actions), ("logp", dist.log_prob(a).numpy().reshape(shape)),
                            ("values", values.numpy().reshape(shape)),
                            ("rewards", self.config.intrinsic_reward * reached),
                            ("ends", np.broadcast_to(res.done[:, None], shape))):
                buf[name].append(v)
            s.subgoal = s.planner.plan()
            s.obs = follower_observations(s.sim, s.planner, self.config.network_radius)
            self.env_steps += actions.size  # agent-steps, as Sample-Factory counts a multi-agent env's frames
        with torch.no_grad():
            last = self.net(torch.from_numpy(s.obs).flatten(0, 1))[1].numpy().reshape(s.obs.shape[:2])
        out = {k: np.stack(v) for k, v in buf.items()}
        # next_values[t] = V(s_{t+1}); where an episode hit its horizon, V(s_t) stands in for the value
        # of the final observation (the planner has already moved on to the next episode)
        nxt = np.concatenate([out["values"][1:], last[None]])
        out["next_values"] = np.where(out["ends"], out["values"], nxt)
        return out

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        c = self.config
        zeros = np.zeros_like(batch["ends"], dtype=bool)
        adv, returns = gae(batch["rewards"], batch["values"], batch["next_values"], zeros, batch["ends"],
                           c.gamma, c.gae_lambda)
        obs = torch.from_numpy(batch["obs"].reshape(-1, *batch["obs"].shape[3:]))
        actions = torch.from_numpy(batch["actions"].reshape(-1))
        old_logp = torch.from_numpy(batch["logp"].reshape(-1)).float()
        adv_t = normalize_advantages(torch.as_tensor(adv.reshape(-1), dtype=torch.float32), None)
        ret_t = torch.as_tensor(returns.reshape(-1), dtype=torch.float32)
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        n = 0
        for _ in range(c.ppo_epochs):
            for idx in torch.randperm(len(actions)).chunk(c.num_minibatches):
                logits, v = self.net(obs[idx])
                log_probs = torch.log_softmax(logits, -1)
                logp = log_probs.gather(-1, actions[idx, None]).squeeze(-1)
                pl, clipped = ppo_clip_loss(logp, old_logp[idx], adv_t[idx], c.clip)
                ent = -(log_probs.exp() * log_probs).sum(-1).mean()
                vl = 0.5 * ((v - ret_t[idx]) ** 2).mean()
                self.opt.zero_grad()
                (pl - c.entropy_coef * ent + c.value_coef * vl).backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), c.max_grad_norm)
                self.opt.step()
                for k, x in (("policy_loss", pl), ("value_loss", vl), ("entropy", ent), ("clip_fraction", clipped)):
                    stats[k] += float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
                n += 1
        self.updates += 1
        return {k: v / n for k, v in stats.items()}

    def train_step(self) -> dict[str, float]:
        """One update on one training variant (map source x agent count), taken in turn."""
        t0 = time.perf_counter()
        self.finished = []
        s = self._stream(self.updates % len(self.variants))
        steps_before = self.env_steps
        batch = self.collect(s)
        stats = self.update(batch)
        seconds = time.perf_counter() - t0
        ret = float(np.mean(self.finished)) if self.finished else float("nan")
        return {"env_steps": self.env_steps, "episode_return": ret,
                "subgoal_rate": float(batch["rewards"].mean() / self.config.intrinsic_reward),
                "steps_per_second": (self.env_steps - steps_before) / seconds, **stats}

    # -- evaluation -------------------------------------------------------------------
    def act(self, obs: np.ndarray, deterministic: bool, gen: torch.Generator | None = None) -> np.ndarray:
        with torch.no_grad():
            logits, _ = self.net(torch.from_numpy(obs).flatten(0, 1))
        if deterministic:
            a = logits.argmax(-1)
        else:
            a = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
        return a.numpy().reshape(obs.shape[:2])

    def _chooser(self, seed: int, deterministic: bool) -> Chooser:
        def make(sim: LifelongMAPFSimulator) -> Callable[[], np.ndarray]:
            planner = BatchPlanner(sim, self.planner_config)
            gen = torch.Generator().manual_seed(seed)

            def choose() -> np.ndarray:
                planner.plan()
                obs = follower_observations(sim, planner, self.config.network_radius)
                return self.act(obs, deterministic, gen)

            return choose

        return make

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True,
                           game: LifelongMAPF | None = None) -> np.ndarray:
        """[episodes]: each episode's targets reached per agent, on `game` (the trained game by
        default; any lifelong_mapf game with obs_radius >= network_radius), all stepped at once."""
        return mapf_episodes(game or self.game, episodes, seed, self._chooser(seed, deterministic))

    def record_episode(self, seed: int = 10_000, deterministic: bool = True,
                       game: LifelongMAPF | None = None) -> dict[str, Any]:
        """One episode with its positions and targets at every step (games.mapf_render)."""
        return record_mapf_episode(game or self.game, seed, self._chooser(seed, deterministic))

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    @staticmethod
    def evaluates_on(trained_game: MarkovGame, game: MarkovGame, config: FollowerConfig) -> bool:
        """Whether a follower trained on `trained_game` with `config` can be evaluated on `game`
        (any lifelong MAPF game whose observation window holds the network's)."""
        return isinstance(trained_game, LifelongMAPF) and isinstance(game, LifelongMAPF) \
            and game.obs_radius >= config.network_radius

    def on_game(self, game: MarkovGame) -> Any:
        """A batched evaluator of this follower on another lifelong_mapf game (other maps and agent
        counts), or None where it cannot act."""
        return _OnGame(self, game) if self.evaluates_on(self.game, game, self.config) else None

    def policy(self, deterministic: bool = False) -> FollowerPolicy:
        return FollowerPolicy(self, deterministic)

    # -- checkpoints: weights, optimiser, counters, RNGs; simulators restart their episodes ----
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "rng": rng_to_tensors(self.rng),
                "torch_rng": torch.get_rng_state(), "env_steps": self.env_steps, "updates": self.updates,
                "hidden": self.config.hidden}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = int(state["hidden"]) if "hidden" in state else hidden_units(state["net"])
        if saved != self.config.hidden:
            if "hidden" in state:
                raise ValueError(f"the checkpoint's network has hidden {saved}, the config hidden {self.config.hidden}")
            # written before `hidden` defaulted to 0, by a config that left it at its old default: the weights
            # say what the network was
            self.config = self.config.model_copy(update={"hidden": saved})
            self.net = FollowerNet(self.config.network_radius, self.config.num_filters, self.config.num_res_blocks, saved)
            self.opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr, eps=1e-6)
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.rng = rng_from_tensors(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])
        self.streams = {}


class _OnGame:
    """A follower bound to another game, with the evaluation the evaluate kind calls."""

    def __init__(self, follower: Follower, game: LifelongMAPF):
        self.follower, self.game = follower, game

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return self.follower.evaluation_returns(episodes, seed, deterministic, self.game)

    def record_episode(self, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        return self.follower.record_episode(seed, deterministic, self.game)


class FollowerPolicy(CorrelatedPolicy):
    """The follower holding every seat of a lifelong_mapf State: each call plans on the State's
    simulator and returns the joint action (the greedy one, or one draw of the agents'
    independent choices when not deterministic) with probability 1."""

    def __init__(self, follower: Follower, deterministic: bool):
        self.follower, self.deterministic = follower, deterministic
        self._planners: dict[int, BatchPlanner] = {}

    def joint_action_probabilities(self, state: State) -> dict[JointAction, float]:
        if not isinstance(state, MarkovState) or not isinstance(state.game, LifelongMAPF):
            raise ValueError("the follower acts in lifelong_mapf States")
        key = id(state.sim)
        if key not in self._planners or self._planners[key].sim is not state.sim:
            self._planners = {key: BatchPlanner(state.sim, self.follower.planner_config)}
        planner = self._planners[key]
        planner.plan()
        obs = follower_observations(state.sim, planner, self.follower.config.network_radius)
        gen = torch.Generator().manual_seed((state.seed or 0) * 100_003 + len(state.history()))  # reproducible draws
        return {tuple(int(a) for a in self.follower.act(obs, self.deterministic, gen)[0]): 1.0}
