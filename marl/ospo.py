"""OSPO and GRPO (Zhao & Li 2025, "One Step is Enough", arXiv 2507.15351) and PPO with a critic for
the ride-dispatch game (games.dispatch), readable top to bottom.

One shared network scores every (vehicle, candidate order) row, the platform
(games.dispatch_platform) turns the scores into a one-to-one assignment, and every vehicle that got
an order contributes one sample: its observation, the row it got, the policy's log-probability of
that row when it was scored, and an advantage. The three variants differ only in the advantage:

- `ospo`: the one-step reward normalised within the group G_t of vehicles assigned an order at
  step t, minus the fairness term, the change of the spread of cumulative rewards over the whole
  fleet:  A_i = (r_i - mean_G r) / (std_G r + 1e-8) - w (sigma_after - sigma_before);
- `grpo`: the same with the reward-to-go over the rest of the (bounded) episode instead of r_i;
- `dispatch_ppo`: GAE with a critic V(o_i) on the vehicle's own observation, along each vehicle's
  whole episode. The simulator observes all N vehicles at every step whatever the game's `active`
  mode, so the critic's trajectory runs on through busy spells (reward 0) without needing
  `active="fleet"`; with "fleet" it is the same computation.

Loss per sample (the paper's objective; the reference code RS2002/OSPO @02ed2da, OSPO/Worker.py
`train`): PPO-clip with the asymmetric upper clip 1 + 1.4 eps, plus beta KL(current || target),
minus alpha times the entropy. The target is the best scorer so far (train.py): every 10 updates
one held-out episode is evaluated; a new best total reward copies the scorer into the target, and
from the first evaluation that does not improve, the KL term is on (beta 0.5, the KL averaged over
the vehicle's candidates as the code averages it over its orders; with `kl_limit`, a gradient step
whose KL exceeds it is skipped and beta doubled, as the code does at 0.01). So the policy is
anchored to its best version once it stops improving. `target_update="polyak"` gives a
soft-updated target with KL from the start.

As the reference code (Worker.observe, Platform.assign): the policy is a softmax over the
vehicle's candidate orders (no "no order" choice: row 0 is masked out); the platform's scores are
those probabilities with 0 for "no order" (the code's zero-padded columns), so a vehicle takes
an order whenever the matching gives it one; exploration is epsilon-greedy on the score matrix,
each candidate pair's score replaced by a huge value with probability epsilon (1.0, x0.99 per
episode, floor 0.0005); the stored probability is the policy's before that noise.

Paper equations could not be read (only the abstracts were available, see
shared/research/batch2.md section 5); comments cite the terms by name and the code's lines.
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
from equilibria.games.dispatch import RideDispatch
from equilibria.games.dispatch_platform import Platform, Scorer, record_episode, summarize
from equilibria.games.markov import MarkovGame
from equilibria.games.spaces import Group
from equilibria.marl.dispatch_controllers import evaluate_scorer
from equilibria.marl.networks import GroupActor, GroupCritic, as_tensors
from equilibria.marl.policy import MARLPolicy
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import (
    gae,
    masked_mean,
    mean_ci,
    mean_over_present,
    normalize_advantages,
    rng_from_tensors,
    rng_to_tensors,
)

EXPLORE_SCORE = 1e8  # the reference's INF: an explored pair outranks every probability
HELDOUT_SEED = 7_000_000  # the anchor's evaluation episodes (target_update "best"): apart from every other seed


class OSPOConfig(Config):
    """Defaults from the reference code (RS2002/OSPO train.py and Worker.train); `advantage`
    picks OSPO, GRPO or PPO with a critic."""

    advantage: Literal["one_step", "reward_to_go", "gae"] = "one_step"
    """one_step (OSPO), reward_to_go (GRPO: the group-normalised return over the rest of the
    episode) or gae (PPO: generalised advantage estimation with a critic)"""
    num_envs: count(4096) = 1
    """environments per update, one episode each (the code: one 1000-vehicle episode per update)"""
    lr: PositiveFloat = 1e-5
    """Adam learning rate of the scorer (train.py --lr)"""
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 0.99
    """learning rate factor per update (the code's ExponentialLR(gamma=0.99), stepped per episode)"""
    batch_size: count(1 << 20) = 256
    """samples per gradient step, drawn with replacement from the episode's (train.py --batch_size)"""
    updates_per_episode: count(10_000) = 10
    """gradient steps per update (train.py --train_times)"""
    clip: PositiveFloat = 0.2
    """PPO ratio clip eps (Worker.train EPSILON)"""
    clip_ceil_rate: Annotated[float, Field(ge=1)] = 1.4
    """the upper clip is 1 + clip_ceil_rate * eps (Worker.train CEIL_RATE; 1: symmetric PPO)"""
    kl_coef: NonNegativeFloat = 0.5
    """beta, weight of KL(current || target) (Worker.train BETA, --kl_mode 2); with target_update
    "best" it is 0 until a held-out evaluation first fails to improve (train.py's `flag`)"""
    kl_limit: PositiveFloat | None = None
    """while the KL term is on, skip a gradient step whose KL exceeds this and double beta for the rest
    of the update (Worker.train: "Too Large KL", at 0.01); None: never. Off by default: the reference
    averages its KL over every open order (hundreds), where 0.01 practically never fires; over 8
    candidates it does, and since a skipped step leaves the scorer where it was, every later step is
    skipped too (measured: from the first held-out evaluation that failed to improve on, training
    stopped)"""
    target_update: Literal["best", "polyak"] = "best"
    """the KL target: "best" = the scorer of the best held-out evaluation so far, copied in whenever
    one improves (train.py: update_target(1.0) on a new best); "polyak" = a soft copy after every
    gradient step at rate target_tau"""
    eval_every: count(100_000) = 10
    """updates between the held-out evaluations (one deterministic episode on its own seeds) that
    pick the target with target_update "best" (train.py --eval_episode)"""
    target_tau: Annotated[float, Field(gt=0, le=1)] = 0.005
    """Polyak rate of the target network after each gradient step with target_update "polyak"
    (Worker.update_target's default)"""
    entropy_coef: NonNegativeFloat = 0.05
    """alpha, weight of the entropy bonus (Worker.train ALPHA)"""
    max_grad_norm: PositiveFloat = 1.0
    """gradient clipping (Worker.train)"""
    epsilon: Probability = 1.0
    """epsilon-greedy exploration rate of the first episode, before its decay (train.py --epsilon)"""
    epsilon_decay: Probability = 0.99
    """factor per episode (train.py --epsilon_decay_rate)"""
    epsilon_final: Probability = 0.0005
    """floor of the exploration rate (train.py --epsilon_final)"""
    fairness_weight: NonNegativeFloat = 1.0
    """w of the fairness term -w (sigma_after - sigma_before) added to every assigned vehicle's
    advantage (Platform.feedback: weight 1; 0 turns it off)"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    """discount per decision step of GRPO's reward-to-go and PPO's GAE (train.py --gamma)"""
    gae_lambda: Probability = 0.95
    """GAE lambda (PPO only)"""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the critic (PPO only)"""
    hidden: count(65_536) = 128
    """units per hidden layer of the scorer (the code's MLP: 128, 128)"""


def _rollout_bytes(game: MarkovGame, config: OSPOConfig) -> float:
    """The simulators plus one episode of float32 observations of every vehicle."""
    g = game.groups[0]
    per_vehicle = 4.0 * sum(b.size for b in g.observation.parts.values()) + 64
    est = game.size_estimate
    per_env = (est.bytes_per_env if est is not None else 0.0) + game.max_steps * g.size * per_vehicle
    return config.num_envs * per_env


def _preflight(game: MarkovGame, config: OSPOConfig) -> None:
    if not isinstance(game, RideDispatch):
        raise ValueError(f"OSPO, GRPO and dispatch_ppo train on ride_dispatch; {game.info.name} is not it")
    check_memory(f"{config.advantage} learner with {config.num_envs} environments of {game!r}",
                 _rollout_bytes(game, config))


# ----------------------------------------------------------------------------- advantages (pure)
def group_normalize(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(x - mean_G x) / (std_G x + 1e-8) over each step's group G (the vehicles assigned an order),
    separately per environment; 0 outside the group. x, group [T, E, N]. std as np.std (ddof 0),
    as the code (Platform.feedback)."""
    n = group.sum(-1, keepdims=True)
    mean = np.where(group, x, 0.0).sum(-1, keepdims=True) / np.maximum(n, 1)
    std = np.sqrt(np.where(group, (x - mean) ** 2, 0.0).sum(-1, keepdims=True) / np.maximum(n, 1))
    return np.where(group, (x - mean) / (std + 1e-8), 0.0)


def fairness_change(cum_before: np.ndarray, cum_after: np.ndarray) -> np.ndarray:
    """[T, E]: sigma_after - sigma_before, the change of the standard deviation of cumulative rewards
    over the whole fleet across each step (cum_* [T, E, N]): the spread of drivers' income."""
    return cum_after.std(-1) - cum_before.std(-1)


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_{t' >= t} gamma^(t' - t) r_t' per vehicle up to the episode's end (the bounded
    horizon: nothing is bootstrapped after it). rewards [T, E, N]; 0 at steps without an order,
    so this is the code's gamma^(delta t) between a vehicle's successive orders."""
    out = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def ospo_advantages(rewards: np.ndarray, assigned: np.ndarray, cum_before: np.ndarray, cum_after: np.ndarray,
                    fairness_weight: float = 1.0) -> np.ndarray:
    """OSPO: the group-normalised one-step reward minus the fairness term (arrays [T, E, N]; 0 for
    vehicles without an order)."""
    penalty = fairness_weight * fairness_change(cum_before, cum_after)[..., None]
    return np.where(assigned, group_normalize(rewards, assigned) - penalty, 0.0)


def grpo_advantages(rewards: np.ndarray, assigned: np.ndarray, cum_before: np.ndarray, cum_after: np.ndarray,
                    gamma: float = 0.99, fairness_weight: float = 1.0) -> np.ndarray:
    """GRPO: the reward-to-go normalised within each step's group (the group average as the
    baseline), minus the same fairness term as OSPO."""
    penalty = fairness_weight * fairness_change(cum_before, cum_after)[..., None]
    return np.where(assigned, group_normalize(reward_to_go(rewards, gamma), assigned) - penalty, 0.0)


# ----------------------------------------------------------------------------- loss terms (pure)
def asymmetric_clip_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float,
                         ceil_rate: float, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """-min(rho A, clip(rho, 1 - eps, 1 + ceil_rate eps) A), averaged (runtime.ppo_clip_loss with
    a wider upper clip; ceil_rate 1 is exactly it); also the fraction of ratios outside the clip."""
    ratio = (logp - old_logp).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + ceil_rate * clip) * adv)
    clipped = ((ratio < 1 - clip) | (ratio > 1 + ceil_rate * clip)).float()
    return -masked_mean(surrogate, weight), masked_mean(clipped, weight).detach()


def kl_divergence(logp: torch.Tensor, target_logp: torch.Tensor) -> torch.Tensor:
    """KL(current || target) per sample as the reference computes it: p log(p / q) averaged over
    the rows the policy covers ([..., A]; masked rows, at -1e9, are left out), not summed
    (Worker.train's `.mean()` over a vehicle's orders). The reference's softmax covers every open
    order, so its average runs over hundreds of rows where this one runs over a vehicle's few
    candidates: the same beta weighs this KL more (see `kl_limit`)."""
    covered = logp > -1e8
    per_row = torch.where(covered, logp.exp() * (logp - target_logp), torch.zeros_like(logp))
    return per_row.sum(-1) / covered.sum(-1).clamp(min=1)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    return -(logp.exp() * logp).sum(-1)


# ----------------------------------------------------------------------------- the learner
@register_learner("ospo", OSPOConfig, preflight=_preflight,
                  description="OSPO (Zhao & Li 2025): one-step group-normalised advantages with a fairness term, "
                              "no critic; ride dispatch through the platform's assignment")
@register_learner("grpo", OSPOConfig, preflight=_preflight, advantage="reward_to_go",
                  description="GRPO for ride dispatch (Zhao & Li 2025): the group-normalised reward-to-go over the "
                              "bounded episode, no critic")
@register_learner("dispatch_ppo", OSPOConfig, preflight=_preflight, advantage="gae", clip_ceil_rate=1.0,
                  kl_coef=0.0, fairness_weight=0.0,
                  description="PPO with a critic on each vehicle's own observation for ride dispatch (the "
                              "baseline GRPO and OSPO replace), same scorer, platform and exploration")
class OSPO:
    def __init__(self, game: MarkovGame, config: OSPOConfig, seed: int = 0):
        _preflight(game, config)
        self.game, self.config, self.seed = game, config, seed
        g = game.groups[0]
        # one slot: no vehicle ids, so the scorer is one function of (vehicle, order) as the
        # paper's homogeneous fleet wants, and serves a fleet of any size
        self.group = Group(g.name, 1, g.observation, g.action)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.actor = GroupActor(self.group, config.hidden)
        self.target = GroupActor(self.group, config.hidden)
        self.target.load_state_dict(self.actor.state_dict())
        self.target.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic = GroupCritic(self.group, "local", 0, config.hidden) if config.advantage == "gae" else None
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr) if self.critic else None
        # row 0 ("no order") is no choice of the policy: the reference's softmax is over orders
        self.row_mask = torch.ones(g.num_actions, dtype=torch.bool)
        self.row_mask[0] = False
        self.sim = game.simulator(config.num_envs, seed)
        self.platform = Platform()
        self.env_steps, self.updates = 0, 0
        # target_update "best": the best held-out total reward so far, and whether one evaluation
        # has failed to beat it (train.py's best_reward and flag: the KL term is on from then)
        self.best_reward, self.kl_on = -float("inf"), config.target_update == "polyak"

    # -- scoring -------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """The exploration rate of the next episode (decayed once before the first, as train.py)."""
        c = self.config
        return max(c.epsilon_final, c.epsilon * c.epsilon_decay ** (self.updates + 1))

    def _log_probs(self, net: GroupActor, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """log pi(row | vehicle) [..., K+1] over the candidate rows (row 0 and padding at ~-1e9)."""
        return torch.log_softmax(net.logits(obs, self.row_mask), -1)

    def _scores(self, logp: torch.Tensor, order: np.ndarray, epsilon: float, rng: np.random.Generator | None) -> np.ndarray:
        """The platform's scores [E, N, K+1]: pi(row | vehicle) for candidates, 0 for "no order"
        (Platform.assign's zero padding), each candidate replaced by EXPLORE_SCORE with probability
        epsilon (Worker.observe, noise_type 0)."""
        scores = logp.exp().numpy().astype(np.float64)
        scores[..., 0] = 0.0
        if epsilon > 0:
            explore = (rng.random(order.shape) < epsilon) & (order >= 0)
            scores[..., 1:][explore] = EXPLORE_SCORE
        return scores

    def scorer(self, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> Scorer:
        """The learned scores as a platform scorer (games.dispatch_platform.run_episodes takes it)."""
        rng = rng if rng is not None else np.random.default_rng(0)

        def score(sim: Any) -> np.ndarray:
            with torch.no_grad():
                logp = self._log_probs(self.actor, as_tensors(sim.observe()[self.group.name]))
            return self._scores(logp, sim.candidates()["order"], epsilon, rng)

        return score

    # -- rollout ---------------------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        """One episode of every environment through the platform: per step the vehicles'
        observations, the rows they got, the policy's log-probability of those rows, rewards,
        cumulative rewards before and after, and (PPO) the critic's values. Arrays [T, E, N]."""
        sim, name, eps = self.sim, self.group.name, self.epsilon
        sim.reset(seed=int(self.rng.integers(2**31)))
        keys = ("obs", "rows", "logp", "rewards", "assigned", "cum_before", "cum_after", "values")
        buf: dict[str, list] = {k: [] for k in keys}
        present = np.zeros((sim.num_envs, self.game.groups[0].size), dtype=bool)
        cum = np.zeros(present.shape)
        for _ in range(self.game.max_steps):
            obs = sim.observe()[name]
            present |= sim.active()[name]
            with torch.no_grad():
                obs_t = as_tensors(obs)
                logp = self._log_probs(self.actor, obs_t)
                if self.critic is not None:
                    buf["values"].append(self.critic(obs_t, None, None).numpy())
            rows = self.platform.actions(sim, self._scores(logp, sim.candidates()["order"], eps, self.rng))[name]
            res = sim.step({name: rows}, autoreset=False)
            chosen = logp.gather(-1, torch.as_tensor(rows).unsqueeze(-1)).squeeze(-1).numpy()
            for k, v in (("obs", obs), ("rows", rows), ("logp", chosen), ("rewards", res.rewards[name]),
                         ("assigned", res.info["assigned"]), ("cum_before", cum), ("cum_after", res.info["cum_reward"])):
                buf[k].append(v)
            cum = res.info["cum_reward"]
        self.env_steps += sim.num_envs * self.game.max_steps
        out = {k: np.stack(v) for k, v in buf.items() if k != "obs" and v}
        out["obs"] = {p: np.stack([o[p] for o in buf["obs"]]) for p in buf["obs"][0]}
        out["returns_per_vehicle"] = mean_over_present(out["rewards"].sum(0), present)
        out["summary"] = summarize(res.info)
        return out

    def advantages(self, batch: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """Advantages [T, E, N] (meaningful where a vehicle got an order) and, for PPO, the value
        targets of every vehicle-step."""
        c = self.config
        r, a = batch["rewards"], batch["assigned"]
        if c.advantage == "one_step":
            return ospo_advantages(r, a, batch["cum_before"], batch["cum_after"], c.fairness_weight), None
        if c.advantage == "reward_to_go":
            return grpo_advantages(r, a, batch["cum_before"], batch["cum_after"], c.gamma, c.fairness_weight), None
        values = batch["values"]
        T = len(r)
        # the episode ends at the horizon and the observation says how far along it is: nothing
        # follows the last step, so it is terminal (no bootstrap)
        end = np.zeros((T, r.shape[1]))
        end[-1] = 1.0
        next_values = np.concatenate([values[1:], np.zeros_like(values[:1])])
        adv, returns = gae(r, values, next_values, end, end, c.gamma, c.gae_lambda)
        if c.fairness_weight:
            adv = adv - c.fairness_weight * fairness_change(batch["cum_before"], batch["cum_after"])[..., None]
        return adv, returns

    # -- update ----------------------------------------------------------------------------------
    def update(self, batch: dict[str, Any]) -> dict[str, float]:
        c = self.config
        adv, returns = self.advantages(batch)
        t, e, n = np.nonzero(batch["assigned"])  # the samples: vehicles that got an order
        stats = {"policy_loss": 0.0, "kl": 0.0, "entropy": 0.0, "clip_fraction": 0.0, "value_loss": 0.0,
                 "samples": float(len(t)), "skipped": 0.0}
        if not len(t):  # nobody got an order: the schedules still advance, as the code's per episode
            self.updates += 1
            return stats
        obs = {p: torch.as_tensor(v[t, e, n]) for p, v in batch["obs"].items()}
        rows = torch.as_tensor(batch["rows"][t, e, n]).unsqueeze(-1)
        old_logp = torch.as_tensor(batch["logp"][t, e, n], dtype=torch.float32)
        adv_t = torch.as_tensor(adv[t, e, n], dtype=torch.float32)
        if c.advantage == "gae":  # OSPO and GRPO normalised theirs within each group already
            adv_t = normalize_advantages(adv_t, None)
        for group in self.actor_opt.param_groups:
            group["lr"] = c.lr * c.lr_decay ** self.updates
        beta, done = (c.kl_coef if self.kl_on else 0.0), 0
        for _ in range(c.updates_per_episode):
            b = torch.as_tensor(self.rng.integers(0, len(t), size=min(c.batch_size, len(t))))
            ob = {p: v[b] for p, v in obs.items()}
            logp_all = self._log_probs(self.actor, ob)
            with torch.no_grad():
                target_all = self._log_probs(self.target, ob)
            logp = logp_all.gather(-1, rows[b]).squeeze(-1)
            # the clipped surrogate with the asymmetric upper clip 1 + CEIL_RATE eps (the paper's
            # OSPO/GRPO objective; Worker.train: ratios = current_p / prob[i], surr2 = clamp(...))
            policy_loss, clip_frac = asymmetric_clip_loss(logp, old_logp[b], adv_t[b], c.clip, c.clip_ceil_rate)
            # beta KL(current || target) keeps the policy near its best evaluated version (the
            # paper's KL penalty; Worker.train kl_mode 2)
            kl = kl_divergence(logp_all, target_all).mean()
            # the entropy bonus alpha H(pi) against an early collapse onto one order (Worker.train ALPHA)
            ent = entropy(logp_all).mean()
            if beta > 0 and c.kl_limit is not None and kl.item() > c.kl_limit:
                beta *= 2.0  # Worker.train: "Too Large KL", the step is skipped
                stats["skipped"] += 1
                continue
            loss = policy_loss + beta * kl - c.entropy_coef * ent
            self.actor_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm)
            self.actor_opt.step()
            if c.target_update == "polyak":
                with torch.no_grad():  # target <- tau current + (1 - tau) target
                    for tp, p in zip(self.target.parameters(), self.actor.parameters()):
                        tp.lerp_(p, c.target_tau)
            if self.critic is not None:
                stats["value_loss"] += self._value_step(batch, returns)
            for k, v in (("policy_loss", policy_loss), ("kl", kl), ("entropy", ent), ("clip_fraction", clip_frac)):
                stats[k] += v.item()
            done += 1
        self.updates += 1
        for k in ("policy_loss", "kl", "entropy", "clip_fraction", "value_loss"):
            stats[k] /= max(done, 1)
        return stats

    def _value_step(self, batch: dict[str, Any], returns: np.ndarray) -> float:
        """One critic step on a minibatch of all vehicle-steps (busy or not), mean squared error."""
        c = self.config
        flat = returns.reshape(-1)
        b = self.rng.integers(0, len(flat), size=min(c.batch_size, len(flat)))
        t, e, n = np.unravel_index(b, returns.shape)
        ob = {p: torch.as_tensor(v[t, e, n]) for p, v in batch["obs"].items()}
        target = torch.as_tensor(flat[b], dtype=torch.float32)
        loss = nn.functional.mse_loss(self.critic(ob, None, None), target)
        self.critic_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), c.max_grad_norm)
        self.critic_opt.step()
        return loss.item()

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        eps = self.epsilon
        batch = self.collect()
        stats = self.update(batch)
        if self.config.target_update == "best" and self.updates % self.config.eval_every == 0:
            stats["heldout_reward"] = self._anchor()
        seconds = time.perf_counter() - t0
        s = batch["summary"]
        return {"env_steps": self.env_steps, "episode_return": float(np.mean(batch["returns_per_vehicle"])),
                "epsilon": eps, "served": float(np.mean(s["served"])), "total_reward": float(np.mean(s["reward"])),
                "steps_per_second": self.config.num_envs * self.game.max_steps / seconds, **stats}

    def _anchor(self) -> float:
        """train.py's evaluation step: one deterministic episode on held-out seeds (its own stream,
        never a training or a final evaluation seed); a new best total reward copies the scorer
        into the target, anything else turns the KL term on for good."""
        reward = float(self.evaluation_metrics(1, seed=HELDOUT_SEED + self.updates)["reward"][0])
        if reward > self.best_reward:
            self.best_reward = reward
            self.target.load_state_dict(self.actor.state_dict())
        else:
            self.kl_on = True
        return reward

    # -- evaluation and policies ---------------------------------------------------------------
    def evaluation_metrics(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True,
                           game: RideDispatch | None = None) -> dict[str, np.ndarray]:
        """Per fresh episode of `game` (default: the one it trains on), all stepped at once through
        the platform with the learned scores (with the current exploration rate unless
        `deterministic`): summarize()'s measures (served orders, total reward, mean pickup /
        confirmation / detour minutes, income spread, ...) and "return", the mean return per
        vehicle that took part (runtime.mean_over_present)."""
        scorer = self.scorer(0.0 if deterministic else self.epsilon, np.random.default_rng(seed))
        return evaluate_scorer(game or self.game, scorer, episodes, seed)

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True,
                           game: RideDispatch | None = None) -> np.ndarray:
        return self.evaluation_metrics(episodes, seed, deterministic, game)["return"]

    def record_episode(self, seed: int = 10_000, deterministic: bool = True,
                       game: RideDispatch | None = None) -> dict[str, Any]:
        """One episode's frames for the animation (games.dispatch_platform.record_episode; the first
        episode of `evaluation_metrics(1, seed, deterministic, game)`)."""
        scorer = self.scorer(0.0 if deterministic else self.epsilon, np.random.default_rng(seed))
        return record_episode(game or self.game, scorer, seed)

    @staticmethod
    def evaluates_on(trained_game: MarkovGame, game: MarkovGame, config: OSPOConfig) -> bool:
        """Whether a scorer trained on `trained_game` can dispatch `game`: any ride_dispatch game
        whose rows have the same shapes (candidates per vehicle, capacity), whatever its fleet,
        city or demand, since the network scores one (vehicle, order) row at a time."""
        if not (isinstance(trained_game, RideDispatch) and isinstance(game, RideDispatch)):
            return False
        shapes = [{k: b.shape for k, b in g.groups[0].observation.parts.items()} for g in (trained_game, game)]
        return shapes[0] == shapes[1]

    def on_game(self, game: MarkovGame) -> Any:
        """This scorer bound to another ride_dispatch game (another fleet size, city or demand) for
        the evaluate kind, or None where its rows do not fit."""
        return _OnGame(self, game) if self.evaluates_on(self.game, game, self.config) else None

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    def extra_evaluation(self, episodes: int = 32) -> dict[str, float]:
        """What the train kind logs beside each evaluation: the dispatch measures' means."""
        m = self.evaluation_metrics(episodes)
        return {k: float(np.mean(m[k])) for k in ("served", "reward", "pickup_min", "detour_min", "income_std")}

    def policy(self, deterministic: bool = False) -> MARLPolicy:
        """Per-seat play without the platform (the engine's single-state view): each vehicle's
        softmax over its rows, "no order" included, as the actor scores it."""
        return MARLPolicy({self.group.name: self.actor}, deterministic)

    # -- checkpoints (tensors and plain numbers only: loadable with weights_only=True) ---------
    def state_dict(self) -> dict[str, Any]:
        out = {"actor": self.actor.state_dict(), "target": self.target.state_dict(),
               "actor_opt": self.actor_opt.state_dict(), "rng": rng_to_tensors(self.rng),
               "env_steps": self.env_steps, "updates": self.updates, "best_reward": self.best_reward,
               "kl_on": self.kl_on}
        if self.critic is not None:
            out.update(critic=self.critic.state_dict(), critic_opt=self.critic_opt.state_dict())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.target.load_state_dict(state["target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            self.critic_opt.load_state_dict(state["critic_opt"])
        # every episode starts from a seed drawn from this generator: nothing else to restore
        self.rng = rng_from_tensors(state["rng"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])
        self.best_reward, self.kl_on = float(state["best_reward"]), bool(state["kl_on"])


__all__ = ["OSPO", "OSPOConfig", "asymmetric_clip_loss", "entropy", "fairness_change", "grpo_advantages",
           "group_normalize", "kl_divergence", "ospo_advantages", "reward_to_go"]


class _OnGame:
    """An OSPO-family scorer bound to another dispatch game, with the evaluation the evaluate kind calls."""

    def __init__(self, learner: OSPO, game: RideDispatch):
        self.learner, self.game = learner, game

    def evaluation_metrics(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> dict[str, np.ndarray]:
        return self.learner.evaluation_metrics(episodes, seed, deterministic, self.game)

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return self.learner.evaluation_returns(episodes, seed, deterministic, self.game)

    def record_episode(self, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        return self.learner.record_episode(seed, deterministic, self.game)
