"""MRA-style meta representations for agents (Zhang et al. 2021, arXiv 2108.12988), a reconstruction.

Only the paper's abstract and its code's README could be read, so this follows the abstract and
names every choice it leaves open (the README's MRA section lists them). What the abstract
states, and where it is here:
- each agent learns a *policy set*: one network pi(a | o, z) conditioned on a latent mode z of K
  (`num_latents`), over entity observations so the same network serves every population size
  (`MRANets`: games.navigation's `observation="entities"` sets, the agent attending over each
  set with marl.networks.AttentionSetEncoder);
- the critic attends over the other agents, as in MAAC, which the code builds on (`MRANets.values`);
- a constrained mutual-information objective between latents and behaviour: the variational bound
  I(z; tau) >= H(z) + E log q(z | tau) (Barber & Agakov) with a discriminator q on the agent's
  observations, paid to the policy as the intrinsic reward mi_coef * (log q(z | o_{t+1}) - log p_g(z))
  for the step that led to o_{t+1} (`intrinsic_reward`); the constraint "bound >= mi_target" sets mi_coef by dual ascent;
- game-common knowledge in the shared network, game-specific modes in a per-game latent
  distribution p_g(z) kept within KL(p_g || prior) <= kl_bound of a shared uniform prior; the
  latent-assignment step maximises the expected per-mode return under that constraint, whose
  solution is the prior tilted by exp(eta * return) with eta set by the bound (`constrained_tilt`);
- training alternates policy updates (PPO with sampled z) and latent-assignment updates, one game
  (population size) per batch;
- in an unseen game the network is frozen and the agent adapts by first-order gradient steps on
  the latent distribution's logits (score-function gradient of the return, `adapt`).
`mra_unimodal` is the baseline with one latent mode and no MI term: the same encoder and critic.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from scipy.special import softmax
from torch import nn

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Probability, count
from equilibria.common.limits import check_memory
from equilibria.games import registry as game_registry
from equilibria.games.core import Policy, State
from equilibria.games.markov import MarkovGame, MarkovState
from equilibria.games.spaces import Composite, Discrete, index_obs
from equilibria.marl.networks import as_tensors, encoder_for, mlp, set_encoder
from equilibria.marl.policy import over_legal
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import (
    ValueNorm,
    gae,
    mean_ci,
    mean_over_present,
    merge_steps,
    normalize_advantages,
    observation_bytes,
    ppo_clip_loss,
    rng_from_tensors,
    rng_to_tensors,
    stack_steps,
)


class MRAConfig(Config):
    """An MRA-style policy set; the abstract gives no hyperparameters, so the PPO ones are MAPPO's
    MPE settings (lr 7e-4, 64 units, gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01)."""

    populations: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [3, 6]
    """numbers of agents of the training games (the game's own `num_agents` is replaced; its
    landmarks or resources follow the agents when the game has as many as agents)"""
    num_latents: count(64) = 4
    """latent modes K per agent (the acceptance: 4; 1 gives the unimodal baseline)"""
    latent_dim: count(256) = 8
    """size of a mode's learned embedding fed to the actor and critic"""
    mi_coef: NonNegativeFloat = 0.05
    """initial weight (the Lagrange multiplier) of the intrinsic reward log q(z | o) - log p_g(z);
    0 with mi_target 0 turns the MI term off"""
    mi_target: NonNegativeFloat = 0.3
    """the MI constraint: the per-step bound E[log q(z | o_t) - log p_g(z)] (nats; log K at most)
    is kept at least this large by dual ascent on mi_coef, so distinct modes cost no more return
    than they need to"""
    mi_coef_lr: NonNegativeFloat = 0.05
    """dual ascent step on mi_coef per batch: mi_coef += mi_coef_lr * (mi_target - bound)"""
    mi_coef_max: NonNegativeFloat = 1.0
    """the multiplier's ceiling (a bound the modes cannot reach yet must not swamp the return)"""
    latent_init_std: PositiveFloat = 1.0
    """std of the initial mode embeddings (PyTorch's default, 1). Near 0 the modes start as one
    policy and the discriminator never finds a difference to reward (measured: accuracy 0.27
    with std 0.3), so they stay one policy"""
    kl_bound: NonNegativeFloat = 0.2
    """the constraint KL(p_g || uniform prior) <= kl_bound on each game's latent distribution
    (log K = 1.39 would allow a single mode for K = 4)"""
    disc_exclude: list[str] = ["self"]
    """observation parts the discriminator does not see: without the agent's own absolute position,
    modes must differ in how the agent relates to landmarks and others, not in where on the map
    it stays (which is what an unrestricted discriminator rewards)"""
    mode_return_decay: Probability = 0.9
    """EMA decay of each game's per-mode return estimates (the latent-assignment step's input)"""
    num_envs: count(65_536) = 32
    """parallel episodes per batch (one game per batch)"""
    lr: PositiveFloat = 7e-4
    """learning rate of the actor, the critic and the discriminator (Adam, eps 1e-5)"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    """discount"""
    gae_lambda: Probability = 0.95
    """GAE lambda"""
    clip: PositiveFloat = 0.2
    """PPO ratio clip"""
    ppo_epochs: count(1000) = 4
    """passes over each batch"""
    num_minibatches: count(1000) = 2
    """minibatches per pass"""
    entropy_coef: NonNegativeFloat = 0.01
    """entropy bonus"""
    value_coef: NonNegativeFloat = 0.5
    """weight of the value loss"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient clipping"""
    hidden: count(65_536) = 64
    """units per hidden layer"""
    adapt_steps: count(10_000) = 20
    """first-order steps on the latent logits in an unseen game (the acceptance: at most 20)"""
    adapt_episodes: count(65_536) = 16
    """episodes per adaptation step"""
    adapt_lr: PositiveFloat = 1.0
    """step size on the latent logits (the gradient uses standardised episode returns)"""


# ----------------------------------------------------------------------------- pure pieces
def constrained_tilt(prior: np.ndarray, scores: np.ndarray, bound: float, iters: int = 60) -> np.ndarray:
    """argmax_p E_p[scores] subject to KL(p || prior) <= bound: p ∝ prior * exp(eta * scores) with
    the eta >= 0 that meets the bound (bisection; KL grows with eta). Modes without a score (nan)
    keep their prior weight relative to each other at the mean score."""
    s = np.where(np.isnan(scores), np.nanmean(scores) if np.isfinite(scores).any() else 0.0, scores)
    s = s - s.max()
    spread = float(s.max() - s.min())
    if spread == 0.0 or bound <= 0.0:
        return prior.copy()
    s = s / spread

    def tilt(eta: float) -> tuple[np.ndarray, float]:
        p = prior * np.exp(eta * s)
        p /= p.sum()
        return p, float(np.sum(p * (np.log(np.maximum(p, 1e-300)) - np.log(prior))))

    lo, hi = 0.0, 1.0
    while tilt(hi)[1] < bound and hi < 1e6:
        hi *= 2.0
    if tilt(hi)[1] < bound:
        return tilt(hi)[0]
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if tilt(mid)[1] < bound else (lo, mid)
    return tilt(lo)[0]


def intrinsic_reward(disc_logits: torch.Tensor, z: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """log q(z | o_t) - log p_g(z) per step: the per-step term of the MI lower bound
    I(z; tau) >= H(z) + E log q(z | tau) (DIAYN's reward). disc_logits [..., K], z and log_p [...]."""
    return torch.log_softmax(disc_logits, -1).gather(-1, z.unsqueeze(-1)).squeeze(-1) - log_p


def latent_score_gradient(z: np.ndarray, returns: np.ndarray, present: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The score-function gradient of the expected episode return with respect to the latent
    logits shared by an episode's agents: E_e[(R_e - mean R) / std R * sum_i (onehot(z_ei) - p)]
    with R_e the episode's mean return per present agent, over an adaptation batch (z, returns,
    present [E, n]). Every agent's draw enters the team's return, so the sum runs over agents."""
    team = mean_over_present(returns, present)
    adv = (team - team.mean()) / (team.std() + 1e-8)
    scores = (np.eye(len(probs))[z] - probs) * present[..., None]  # [E, n, K]
    return (adv[:, None] * scores.sum(1)).mean(0)


def with_population(game: MarkovGame, n: int) -> MarkovGame:
    """The same game with n agents; landmarks or resources follow when the game has one per agent."""
    params = dict(game.info.parameters)
    old = params.get("num_agents")
    if old is None:
        raise ValueError(f"{game.info.name} has no num_agents parameter: MRA needs a game whose population can be set")
    for key in ("num_landmarks", "num_resources"):
        if params.get(key) == old:
            params[key] = n
    params.pop("population", None)
    return game_registry.load({"name": game.info.name, **params, "num_agents": n})


# ----------------------------------------------------------------------------- networks
class MRANets(nn.Module):
    """Actor pi(a | o, z), attention critic V(o_i, others, z_i) and discriminator q(z | o), all
    on set encodings so the number of agents can change between games."""

    def __init__(self, observation: Composite, num_actions: int, config: MRAConfig):
        super().__init__()
        h, d, k = config.hidden, config.latent_dim, config.num_latents
        self.num_actions = num_actions
        self.latents = nn.Embedding(k, d)
        nn.init.normal_(self.latents.weight, std=config.latent_init_std)
        self.actor_enc = set_encoder(observation, h)
        self.actor = mlp([self.actor_enc.out_dim + d, h, h, num_actions])
        self.critic_enc = set_encoder(observation, h)
        self.embed = mlp([self.critic_enc.out_dim + d, h], activation=nn.ReLU, out_gain=np.sqrt(2))
        self.query, self.key, self.value = (nn.Linear(h, h, bias=False) for _ in range(3))
        self.critic = mlp([2 * h, h, 1], out_gain=1.0)
        self.disc_parts = [k for k in observation.parts if k not in config.disc_exclude]
        if not self.disc_parts:
            raise ValueError(f"disc_exclude {config.disc_exclude} leaves the discriminator no observation part "
                             f"(parts: {sorted(observation.parts)})")
        self.disc_enc = encoder_for(Composite({k: observation.parts[k] for k in self.disc_parts}), h)
        self.disc = mlp([self.disc_enc.out_dim, h, k], activation=nn.ReLU, out_gain=1.0)

    def logits(self, obs: Any, z: torch.Tensor) -> torch.Tensor:
        """obs [B, n, ...], z [B, n] -> [B, n, A]."""
        return self.actor(torch.cat([self.actor_enc(obs), self.latents(z)], -1))

    def values(self, obs: Any, z: torch.Tensor) -> torch.Tensor:
        """[B, n]: agent i's value from its own embedding and a scaled dot-product attention over
        the other agents' embeddings (MAAC's critic, on states rather than state-actions)."""
        e = self.embed(torch.cat([self.critic_enc(obs), self.latents(z)], -1))  # [B, n, h]
        n = e.shape[-2]
        if n > 1:
            scores = self.query(e) @ self.key(e).transpose(-1, -2) / np.sqrt(e.shape[-1])
            scores = scores.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
            attended = torch.softmax(scores, -1) @ self.value(e)
        else:
            attended = torch.zeros_like(e)
        return self.critic(torch.cat([e, attended], -1)).squeeze(-1)

    def disc_logits(self, obs: Any) -> torch.Tensor:
        """Per-step logits of q(z | o_t) [..., K] (DIAYN's state discriminator: modes must differ in
        what they see, not in action noise); a trajectory's are their mean over steps."""
        return self.disc(self.disc_enc({k: obs[k] for k in self.disc_parts}))


# ----------------------------------------------------------------------------- the learner
def _check_game(game: MarkovGame) -> None:
    if len(game.groups) != 1 or not isinstance(game.groups[0].observation, Composite) \
            or not isinstance(game.groups[0].action, Discrete):
        raise ValueError(f"MRA needs one group of agents with entity-set (Composite) observations and discrete "
                         f"actions, so one network serves every population: {game.info.name} has none (use "
                         f"cooperative_navigation(observation=entities) or resource_occupation)")
    if "num_agents" not in game.info.parameters:
        raise ValueError(f"MRA needs a game with a num_agents parameter; {game.info.name} has none")


def check_population_memory(game: MarkovGame, populations: list[int], episodes: int, what: str) -> None:
    """ValueError when `episodes` parallel episodes of any of the game's populations, with a
    recorded rollout (o_t and o_{t+1} of every step), would not fit this machine's memory."""
    for n in populations:
        g = with_population(game, n)
        est = g.size_estimate
        per_env = (est.bytes_per_env if est is not None else 0.0) + 2 * observation_bytes(g) * g.info.max_game_length
        check_memory(f"{what}: {episodes} episodes of {g!r}", episodes * per_env)


def _preflight(game: MarkovGame, config: MRAConfig) -> None:
    _check_game(game)
    check_population_memory(game, config.populations, config.num_envs, "MRA")


@register_learner("mra", MRAConfig, preflight=_preflight,
                  description="MRA-style policy sets (Zhang et al. 2021): latent-conditioned policies across "
                              "populations, MI-distinct modes, latent adaptation in unseen games")
@register_learner("mra_unimodal", MRAConfig, preflight=_preflight, num_latents=1, mi_coef=0.0, mi_target=0.0,
                  description="MRA's baseline: one policy (no latent) with the same set encoder and attention critic")
class MRA:
    eval_deterministic = True

    def __init__(self, game: MarkovGame, config: MRAConfig, seed: int = 0):
        _check_game(game)
        self.game, self.config, self.seed = game, config, seed
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.games = {n: with_population(game, n) for n in config.populations}
        group = game.groups[0]
        self.group = group.name
        self.nets = MRANets(group.observation, group.num_actions, config)
        disc = [p for name, p in self.nets.named_parameters() if name.startswith("disc")]
        policy = [p for name, p in self.nets.named_parameters() if not name.startswith("disc")]
        self.opt = torch.optim.Adam(policy, lr=config.lr, eps=1e-5)
        self.disc_opt = torch.optim.Adam(disc, lr=config.lr, eps=1e-5)
        self.value_norms = nn.ModuleDict({str(n): ValueNorm() for n in config.populations})
        k = config.num_latents
        self.prior = np.full(k, 1.0 / k)
        self.latent_probs = {n: self.prior.copy() for n in config.populations}
        self.mode_returns = {n: np.full(k, np.nan) for n in config.populations}
        self.mi_coef = config.mi_coef if config.num_latents > 1 else 0.0
        self.env_steps = self.updates = 0

    # -- rollout ------------------------------------------------------------------------
    def _play(self, game: MarkovGame, probs: np.ndarray, episodes: int, seed: int, sample: bool,
              record: bool = False) -> dict[str, Any]:
        """`episodes` fresh episodes of `game` with every agent's latent drawn from `probs`:
        per-agent returns [E, n], the latents [E, n], and with `record` the trajectories."""
        sim = game.simulator(episodes, seed)
        obs, g = sim.observe(), torch.Generator().manual_seed(seed)
        n = game.max_agents
        z = torch.multinomial(torch.as_tensor(probs, dtype=torch.float32), episodes * n, replacement=True,
                              generator=g).view(episodes, n)
        totals, present = np.zeros((episodes, n)), np.zeros((episodes, n), dtype=bool)
        traj: dict[str, list] = {"obs": [], "next_obs": [], "actions": [], "logp": [], "rewards": []}
        done = np.zeros(episodes, dtype=bool)
        while not done.all():
            if record and done.any():  # the rollout below is laid out as [T, E]: every episode the same length
                raise ValueError(f"MRA trains on fixed-length episodes; {game.info.name} ended some episodes "
                                 f"early (after {len(traj['obs'])} steps)")
            present |= sim.active()[self.group] & ~done[:, None]
            with torch.no_grad():
                logits = self.nets.logits(as_tensors(obs[self.group]), z)
                if sample:
                    a = torch.multinomial(torch.softmax(logits.reshape(-1, logits.shape[-1]), -1), 1,
                                          generator=g).view(episodes, n)
                else:
                    a = logits.argmax(-1)
            res = sim.step({self.group: a.numpy()}, autoreset=False)
            r = res.rewards[self.group]
            if record:
                traj["obs"].append(obs[self.group])
                traj["next_obs"].append(res.obs[self.group])
                traj["actions"].append(a)
                traj["logp"].append(torch.log_softmax(logits, -1).gather(-1, a.unsqueeze(-1)).squeeze(-1))
                traj["rewards"].append(r)
            totals += np.where(done[:, None], 0.0, r)
            done |= res.done
            obs = res.obs
        out: dict[str, Any] = {"returns": totals, "present": present, "z": z}
        if record:
            out.update(obs=stack_steps(traj["obs"]), next_obs=stack_steps(traj["next_obs"]),
                       actions=torch.stack(traj["actions"]),
                       logp=torch.stack(traj["logp"]), rewards=np.stack(traj["rewards"]))
        return out

    # -- one update: a batch of one game, PPO on the policy set, then the discriminator and the
    #    latent assignment -------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        c, t0 = self.config, time.perf_counter()
        n = int(self.rng.choice(c.populations))
        game, probs = self.games[n], self.latent_probs[n]
        batch = self._play(game, probs, c.num_envs, int(self.rng.integers(2**31)), sample=True, record=True)
        T, E = batch["actions"].shape[:2]
        obs = {k: torch.as_tensor(v) for k, v in batch["obs"].items()}  # [T, E, n, ...]
        # the discriminator scores what an action led to, o_{t+1} (DIAYN scores the next state)
        next_obs = {k: torch.as_tensor(v) for k, v in batch["next_obs"].items()}
        z = batch["z"].unsqueeze(0).expand(T, E, n)
        log_p = torch.as_tensor(np.log(np.maximum(probs, 1e-6)), dtype=torch.float32)[z]
        with torch.no_grad():
            bonus = intrinsic_reward(self.nets.disc_logits(next_obs), z, log_p) if c.num_latents > 1 \
                else torch.zeros(T, E, n)
            norm = self.value_norms[str(n)]
            values = norm.denormalize(self.nets.values(obs, z)).numpy()
        rewards = batch["rewards"] + self.mi_coef * bonus.numpy()
        # fixed-length episodes end at T: no bootstrap past the last step (MPE practice)
        next_values = np.concatenate([values[1:], np.zeros_like(values[:1])])
        last = np.zeros((T, E))
        last[-1] = 1.0
        adv, returns = gae(rewards, values, next_values, last, last, c.gamma, c.gae_lambda)
        adv_t = normalize_advantages(torch.as_tensor(adv, dtype=torch.float32), None)
        ret_t = torch.as_tensor(returns, dtype=torch.float32)
        norm.update(ret_t)
        f_obs, f_z, f_a = merge_steps(obs, T * E), merge_steps(z, T * E), merge_steps(batch["actions"], T * E)
        f_old, f_adv = merge_steps(batch["logp"], T * E), merge_steps(adv_t, T * E)
        f_ret = norm.normalize(merge_steps(ret_t, T * E))
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        count_ = 0
        for _ in range(c.ppo_epochs):
            for idx in torch.randperm(T * E).chunk(c.num_minibatches):
                o, zz = index_obs(f_obs, idx), f_z[idx]
                log_probs = torch.log_softmax(self.nets.logits(o, zz), -1)
                logp = log_probs.gather(-1, f_a[idx].unsqueeze(-1)).squeeze(-1)
                pl, clipped = ppo_clip_loss(logp, f_old[idx], f_adv[idx], c.clip)
                ent = -(log_probs.exp() * log_probs).sum(-1).mean()
                vl = 0.5 * ((self.nets.values(o, zz) - f_ret[idx]) ** 2).mean()
                self.opt.zero_grad()
                (pl - c.entropy_coef * ent + c.value_coef * vl).backward()
                nn.utils.clip_grad_norm_([p for group in self.opt.param_groups for p in group["params"]],
                                         c.max_grad_norm)
                self.opt.step()
                for key, v in (("policy_loss", pl), ("value_loss", vl), ("entropy", ent), ("clip_fraction", clipped)):
                    stats[key] += float(v.detach())
                count_ += 1
        stats = {k: v / count_ for k, v in stats.items()}
        if c.num_latents > 1:
            stats["disc_accuracy"] = self._update_discriminator(next_obs, batch["z"])
            self._assign_latents(n, batch["z"].numpy(), batch["returns"])
            stats["mi_bound"] = float(bonus.mean())
            # dual ascent on the MI constraint (bound >= mi_target)
            self.mi_coef = float(np.clip(self.mi_coef + c.mi_coef_lr * (c.mi_target - stats["mi_bound"]), 0.0,
                                         c.mi_coef_max))
            stats["mi_coef"] = self.mi_coef
        self.env_steps += T * E
        self.updates += 1
        ret = float(mean_over_present(batch["returns"], batch["present"]).mean())
        return {"env_steps": self.env_steps, "episode_return": ret, "population": n,
                "steps_per_second": T * E / (time.perf_counter() - t0), **stats}

    def _update_discriminator(self, obs: dict[str, torch.Tensor], z: torch.Tensor) -> float:
        """Cross-entropy of q on every step and on whole trajectories (mean step logits); returns
        the trajectory accuracy on this batch before the last update."""
        T = next(iter(obs.values())).shape[0]
        for _ in range(self.config.ppo_epochs):
            logits = self.nets.disc_logits(obs)  # [T, E, n, K]
            k = logits.shape[-1]
            step_loss = nn.functional.cross_entropy(logits.reshape(-1, k), z.unsqueeze(0).expand(T, *z.shape).reshape(-1))
            traj_loss = nn.functional.cross_entropy(logits.mean(0).reshape(-1, k), z.reshape(-1))
            self.disc_opt.zero_grad()
            (step_loss + traj_loss).backward()
            self.disc_opt.step()
        return self.discriminator_accuracy_of(logits.detach(), z)

    @staticmethod
    def discriminator_accuracy_of(step_logits: torch.Tensor, z: torch.Tensor) -> float:
        """Share of trajectories whose mean step logits pick their latent (step_logits [T, E, n, K])."""
        return float((step_logits.mean(0).argmax(-1) == z).float().mean())

    def _assign_latents(self, n: int, z: np.ndarray, returns: np.ndarray) -> None:
        """The latent-assignment step: per-mode return estimates (EMA over batches), then
        p_g = the constrained maximiser of the expected per-mode return (constrained_tilt)."""
        est, d = self.mode_returns[n], self.config.mode_return_decay
        for k in range(self.config.num_latents):
            mine = returns[z == k]
            if len(mine):
                est[k] = mine.mean() if np.isnan(est[k]) else d * est[k] + (1 - d) * mine.mean()
        self.latent_probs[n] = constrained_tilt(self.prior, est, self.config.kl_bound)

    # -- evaluation, adaptation, policies ----------------------------------------------------
    def probs_for(self, n: int) -> np.ndarray:
        """The latent distribution of the n-agent game: its own if trained on, else the prior."""
        return self.latent_probs.get(n, self.prior)

    def returns_on(self, game: MarkovGame, probs: np.ndarray, episodes: int = 32, seed: int = 10_000,
                   deterministic: bool = True) -> np.ndarray:
        """[episodes]: mean return per agent of fresh episodes of `game` with latents drawn from `probs`."""
        out = self._play(game, probs, episodes, seed, sample=not deterministic)
        return mean_over_present(out["returns"], out["present"])

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return self.returns_on(self.game, self.probs_for(self.game.max_agents), episodes, seed, deterministic)

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    def adapt(self, game: MarkovGame, steps: int | None = None, seed: int = 20_000) -> tuple[np.ndarray, list[float]]:
        """First-order adaptation to an unseen game with the network frozen: `steps` gradient steps
        on the latent logits (from the prior), each from `adapt_episodes` greedy episodes. Returns
        the adapted distribution and the mean return per agent at each step (before its update)."""
        c = self.config
        steps = c.adapt_steps if steps is None else steps
        logits = np.log(self.prior)
        curve = []
        for s in range(steps):
            probs = softmax(logits)
            out = self._play(game, probs, c.adapt_episodes, seed + s, sample=False)
            curve.append(float(mean_over_present(out["returns"], out["present"]).mean()))
            if c.num_latents > 1:
                logits = logits + c.adapt_lr * latent_score_gradient(out["z"].numpy(), out["returns"], out["present"],
                                                                     probs)
        return softmax(logits), curve

    def discriminator_accuracy(self, game: MarkovGame | None = None, episodes: int = 32, seed: int = 30_000) -> float:
        """Trajectory accuracy of q(z | tau) on fresh episodes (latents uniform, actions sampled)."""
        game = self.game if game is None else game
        out = self._play(game, self.prior, episodes, seed, sample=True, record=True)
        obs = {k: torch.as_tensor(v) for k, v in out["next_obs"].items()}
        with torch.no_grad():
            return self.discriminator_accuracy_of(self.nets.disc_logits(obs), out["z"])

    def extra_evaluation(self, episodes: int) -> dict[str, float]:
        if self.config.num_latents == 1:
            return {}
        return {"disc_accuracy": self.discriminator_accuracy(episodes=episodes)}

    def policy(self, deterministic: bool = False) -> Policy:
        return MRAPolicy(self, deterministic)

    # -- checkpoints (tensors and plain numbers: torch.load(weights_only=True)) -------------------
    def state_dict(self) -> dict[str, Any]:
        return {"nets": self.nets.state_dict(), "opt": self.opt.state_dict(), "disc_opt": self.disc_opt.state_dict(),
                "value_norms": self.value_norms.state_dict(),
                "latent_probs": {str(n): torch.as_tensor(p) for n, p in self.latent_probs.items()},
                "mode_returns": {str(n): torch.as_tensor(r) for n, r in self.mode_returns.items()},
                "rng": rng_to_tensors(self.rng), "torch_rng": torch.get_rng_state(), "mi_coef": self.mi_coef,
                "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.opt.load_state_dict(state["opt"])
        self.disc_opt.load_state_dict(state["disc_opt"])
        self.value_norms.load_state_dict(state["value_norms"])
        self.latent_probs = {int(n): p.numpy().copy() for n, p in state["latent_probs"].items()}
        self.mode_returns = {int(n): r.numpy().copy() for n, r in state["mode_returns"].items()}
        self.rng = rng_from_tensors(state["rng"])
        self.mi_coef = float(state["mi_coef"])
        torch.set_rng_state(state["torch_rng"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])


class MRAPolicy(Policy):
    """The policy set as a games Policy for one seat. Seat i plays a latent drawn once from the
    latent distribution of the game's population (the prior in a game it was not trained on), by
    a generator seeded with i: a fixed assignment with the distribution's proportions, as
    evaluation draws per agent."""

    def __init__(self, learner: MRA, deterministic: bool = False):
        self.learner, self.deterministic = learner, deterministic

    def seat_latent(self, population: int, player: int) -> int:
        probs = self.learner.probs_for(population)
        return int(np.random.default_rng(player).choice(len(probs), p=probs / probs.sum()))

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if not isinstance(state, MarkovState) or player is None or player < 0:
            raise ValueError("an MRA policy acts for a given player of a Markov game")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        obs = {k: torch.as_tensor(v, dtype=torch.float32)[None, None] for k, v in state.agent_observation(player).items()}
        z = torch.tensor([[self.seat_latent(state.game.max_agents, player)]])
        with torch.no_grad():
            probs = torch.softmax(self.learner.nets.logits(obs, z), -1)[0, 0].numpy()
        return over_legal(probs, legal, self.deterministic)

