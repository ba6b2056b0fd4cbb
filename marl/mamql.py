"""MAMQL (Haynam et al. 2025, "Multi-Agent Marginal Q-Learning from Demonstrations") and its
baselines, IQ-Learn with a joint-action critic and behaviour cloning, readable top to bottom.

Every agent i keeps a critic Q_i. MAMQL's critic is *marginal*: Q_i(o_i, a_i) takes no other
agent's action, so the other agents' policies are averaged out by the data it is trained on;
the agent acts by the Boltzmann policy pi_i(a_i | o_i) = softmax(Q_i(o_i, .)). It is trained by
IQ-Learn's inverse soft-Q objective with the chi-squared regulariser (Garg et al. 2021, eq. 10;
as the official code computes it, `mamql_online`):

    V_i(o) = alpha * logsumexp(Q_i(o, .) / alpha)
    L_i = E_P[V_i(o) - gamma (1 - d) V_i(o')] - E_E[phi(Q_i(o, a_i) - gamma (1 - d) V_i(o'))]
    phi(x) = x - x^2 / (4 alpha)

with E the expert's transitions and P, online, a replay buffer of all agents' Boltzmann rollouts
(offline: the expert's own transitions), plus 1e-5 ||psi||^2. d is where agent i's trajectory
stops bootstrapping: in the expert term, the episode terminated or the agent left; in the value
term also where a truncated episode ends (the official code bootstraps there, which leaves the
value of such a last state unbounded below). The agents act by softmax(Q_i) at temperature 1
for every variant, as the official code does (for IQ-Learn joint, alpha 100 enters its soft
value only). The reward it implies is recovered
per agent as r_i(o, a_i) = Q_i(o, a_i) - gamma V_i(o') (the paper) or V_i(o) - gamma V_i(o') (what
the official code reports); both are returned by `recovered_rewards`.

Named variants are configurations of the one class (`register_learner` below):
- `mamql`: marginal critics, online, alpha 1 (the official README's default, `--setup 4`);
- `mamql_offline`: the same trained on the expert's transitions alone;
- `iql_joint`: IQ-Learn whose critic Q_i(o_i, a_-i, a_i) also takes the other agents' actions
  (one-hot), offline with alpha 100 as the official baseline (`--setup 1`). Its V at o' uses the
  other agents' recorded next actions. The released baseline also fed the agent's *own* action
  to the critic; here it does not. To act, each agent averages its critic over the others'
  actions under their current policies (starting from uniform, `joint_rounds` rounds);
- `bc`: behaviour cloning, cross-entropy of softmax(Q_i(o_i, .)) on the expert's actions.

Progress: online learners count the environment steps of their rollouts (`env_steps`); offline
learners take no environment steps and count gradient updates instead, so a scenario's
budget.steps means updates for them.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Seed, count
from equilibria.games.markov import MarkovGame
from equilibria.games.reward_model import Transition
from equilibria.games.spaces import Discrete
from equilibria.marl.demos import ReplayBuffer, Transitions, flat, load_transitions
from equilibria.marl.networks import mlp
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


class MAMQLConfig(Config):
    """Defaults from the official code's configs/setup2.json (Gems), a smaller critic for a CPU."""

    demonstrations: str | None = None
    """a dataset directory written by `equilibria record` (used as it is)"""
    expert: str | None = None
    """or a registered scripted expert (games.experts) played for the demonstrations"""
    transitions: count(10**8) | None = 1000
    """expert transitions used: the first N steps (None: all of a dataset; an expert needs a number)"""
    expert_seed: Seed = 0
    """first episode seed of the expert's play (with `expert`)"""
    critic: Literal["marginal", "joint"] = "marginal"
    """Q_i(o_i, .) (MAMQL) or Q_i(o_i, a_-i, .) with the others' one-hot actions (IQ-Learn joint)"""
    loss: Literal["iq", "bc"] = "iq"
    """inverse soft-Q (IQ-Learn, chi-squared) or behaviour cloning (cross-entropy)"""
    online: bool = True
    """value term on a replay buffer of the agents' own rollouts (else on the expert's data)"""
    alpha: PositiveFloat = 1.0
    """soft-value temperature and chi-squared weight (the code: 1 for MAMQL, 100 for IQ-Learn joint)"""
    gamma: Annotated[float, Field(gt=0, lt=1)] = 0.99
    """discount (the code: 0.99)"""
    lr: PositiveFloat = 1e-3
    """Adam learning rate"""
    l2: NonNegativeFloat = 1e-5
    """weight of the squared parameter norm added to the loss"""
    batch_size: count(65_536) = 256
    """expert transitions per update, and as many from the replay buffer (the code: 256)"""
    hidden: count(65_536) = 256
    """units per hidden layer of each critic (two ELU layers; the paper's Gems critic is a CNN + 1024x1024)"""
    num_envs: count(4096) = 4
    """environments stepped together in online rollouts"""
    rollout_length: count(100_000) = 12
    """steps per environment between updates (the code: one 45-step episode per agent update)"""
    updates_per_step: count(10_000) = 1
    """gradient updates after each rollout"""
    buffer_capacity: count(10**7) = 16_600
    """online: replay buffer size in transitions (the code: 16,600)"""
    value_on: Literal["policy", "both"] = "policy"
    """online: the value term on the policy batch (the official code) or on the policy and expert
    batches together (IQ-Learn's online `value` loss)"""
    regularize: Literal["expert", "both"] = "expert"
    """online: the chi-squared term on the expert's implied rewards only (the official code) or on
    the policy batch's as well (IQ-Learn's online setting: it bounds V on the agents' own states,
    which diverged on Gems' 5 x 15 x 15 planes without it)"""
    target_tau: Annotated[float, Field(gt=0, le=1)] = 1.0
    """V at next states from a target copy of the critics updated by Polyak averaging with this
    rate (1: no target, the critics themselves, as the official code; IQ-Learn uses 0.005 online)"""
    joint_rounds: count(16) = 2
    """joint critic: rounds of averaging over the other agents' current policies when acting"""
    eval_actions: Literal["sampled", "greedy"] = "sampled"
    """how the train kind's evaluations act: sampled from the Boltzmann policy (the official code
    on Gems) or greedy (the official code on Overcooked and the intersection)"""

    def check(self) -> None:
        if self.demonstrations is not None and self.expert is not None:
            raise ValueError("demonstrations: give either a dataset directory or an expert, not both")
        if self.expert is not None and self.transitions is None:
            raise ValueError("transitions: an expert plays until it has made this many; give a number")
        if self.loss == "bc" and (self.online or self.critic == "joint"):
            raise ValueError("loss: bc trains a marginal critic offline (online: false, critic: marginal)")


def _preflight(game: MarkovGame, config: MAMQLConfig) -> None:
    if config.demonstrations is None and config.expert is None:
        raise ValueError("demonstrations: give a dataset directory (demonstrations: DIR) or an expert to play "
                         "(expert: NAME)")
    if len(game.groups) != 1 or not isinstance(game.groups[0].action, Discrete):
        raise ValueError(f"{game.info.name}: MAMQL learners need one agent group with discrete actions")
    g = game.groups[0]
    if config.critic == "joint" and g.num_actions ** (g.size - 1) > 4096:
        raise ValueError(f"critic: joint averages over {g.num_actions}^{g.size - 1} joint actions of the others; "
                         "too many (at most 4096)")


# ----------------------------------------------------------------------------- the loss (pure)
def soft_value(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """V(o) = alpha logsumexp(Q(o, .) / alpha)."""
    return alpha * torch.logsumexp(q / alpha, dim=-1)


def chi2_phi(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """IQ-Learn's concave phi for the chi-squared divergence: x - x^2 / (4 alpha)."""
    return x - x**2 / (4 * alpha)


def iq_loss(q_taken: torch.Tensor, v_next: torch.Tensor, done: torch.Tensor, v_value: torch.Tensor,
            v_value_next: torch.Tensor, done_value: torch.Tensor, gamma: float, alpha: float,
            policy_reward: torch.Tensor | None = None) -> torch.Tensor:
    """IQ-Learn's inverse soft-Q loss: the value term on the value batch minus phi of the implied
    expert reward Q(o, a) - gamma (1 - d) V(o'); with `policy_reward` (the implied rewards on the
    policy batch) the chi-squared term also covers those (IQ-Learn's regularisation of the mixture)."""
    value = (v_value - gamma * (1 - done_value) * v_value_next).mean()
    expert_reward = q_taken - gamma * (1 - done) * v_next
    if policy_reward is None:
        return value - chi2_phi(expert_reward, alpha).mean()
    chi2 = (torch.cat([expert_reward, policy_reward]) ** 2).mean() / (4 * alpha)
    return value - expert_reward.mean() + chi2


# ----------------------------------------------------------------------------- the learner
@register_learner("mamql", MAMQLConfig, preflight=_preflight,
                  description="MAMQL (Haynam et al. 2025): marginal soft-Q critics per agent, inverse soft-Q "
                              "learning from demonstrations with online rollouts")
@register_learner("mamql_offline", MAMQLConfig, preflight=_preflight, online=False,
                  description="MAMQL trained on the demonstrations alone (no environment steps)")
@register_learner("iql_joint", MAMQLConfig, preflight=_preflight, critic="joint", online=False, alpha=100.0,
                  description="IQ-Learn with a joint-action critic per agent (the MAMQL paper's baseline), offline")
@register_learner("bc", MAMQLConfig, preflight=_preflight, loss="bc", online=False,
                  description="behaviour cloning: each agent's softmax policy fit to the expert's actions")
class MAMQL:
    def __init__(self, game: MarkovGame, config: MAMQLConfig, seed: int = 0):
        _preflight(game, config)
        self.game, self.config, self.seed = game, config, seed
        self.eval_deterministic = config.eval_actions == "greedy"  # how the train kind evaluates (registry)
        group = game.groups[0]
        self.group, self.n, self.num_actions = group.name, group.size, group.num_actions
        self.obs_dim = game.observation_shape()[0]  # the group's observation flattened
        torch.manual_seed(seed)
        extra = (self.n - 1) * self.num_actions if config.critic == "joint" else 0
        self.critics = nn.ModuleList([mlp([self.obs_dim + extra, config.hidden, config.hidden, self.num_actions],
                                          activation=nn.ELU, out_gain=1.0) for _ in range(self.n)])
        self.opt = torch.optim.Adam(self.critics.parameters(), lr=config.lr)
        self.targets = copy.deepcopy(self.critics).requires_grad_(False) if config.target_tau < 1 else self.critics
        self.gen = torch.Generator().manual_seed(seed)
        self.env_steps = self.updates = 0
        self.expert: Transitions | None = None  # loaded on the first update (a loaded run that only acts needs none)
        self.finished: list[float] = []
        if config.online:
            self.sim = game.simulator(config.num_envs, seed)
            self.obs = self.sim.observe()
            self.returns = np.zeros((config.num_envs, self.n))
            self.took_part = np.zeros((config.num_envs, self.n), dtype=bool)
            self.buffer = ReplayBuffer(config.buffer_capacity, self.n, self.obs_dim)
            self.last_rows = np.full(config.num_envs, -1)  # buffer row of each environment's previous step

    # -- critics and policies ----------------------------------------------------------------
    def _others(self, actions: torch.Tensor, i: int) -> torch.Tensor:
        """One-hot of the agents other than i ([B, n] actions, -1 -> zeros) as [B, (n-1) A]."""
        others = torch.cat([actions[:, :i], actions[:, i + 1:]], dim=1)
        hot = nn.functional.one_hot(others.clamp(min=0), self.num_actions).float() * (others >= 0).unsqueeze(-1)
        return hot.flatten(1)

    def q(self, i: int, obs: torch.Tensor, actions: torch.Tensor | None = None, target: bool = False) -> torch.Tensor:
        """Q_i over agent i's actions: obs [B, n, D] (all slots), the joint critic also reads the
        others' actions [B, n]; `target`: the target copy (for values at next states)."""
        x = obs[:, i]
        if self.config.critic == "joint":
            x = torch.cat([x, self._others(actions, i)], dim=1)
        return (self.targets if target else self.critics)[i](x)

    def action_probs(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """pi(a_i | o) for every agent: [B, n, A]. Marginal critics: softmax(Q_i(o_i, .)). Joint
        critics: softmax of Q_i averaged over the others' actions under their current policies."""
        b = obs.shape[0]
        masked = (lambda q: q) if mask is None else (lambda q: q.masked_fill(~mask, -1e9))
        if self.config.critic == "marginal":
            return torch.softmax(masked(torch.stack([self.critics[i](obs[:, i]) for i in range(self.n)], 1)), -1)
        qs = [self._q_per_joint_action(i, obs) for i in range(self.n)]  # [B, K, A] each
        probs = torch.full((b, self.n, self.num_actions), 1.0 / self.num_actions)
        if mask is not None:
            probs = mask.float() / mask.float().sum(-1, keepdim=True)
        for _ in range(self.config.joint_rounds):
            new = [torch.einsum("bk,bka->ba", self._others_weight(i, probs), qs[i]) for i in range(self.n)]
            probs = torch.softmax(masked(torch.stack(new, 1)), -1)
        return probs

    def _joint_actions(self, i: int) -> torch.Tensor:
        """[K, n]: every joint action of the agents other than i (agent i's own entry, 0, is not read)."""
        combos = itertools.product(range(self.num_actions), repeat=self.n - 1)
        return torch.tensor([c[:i] + (0,) + c[i:] for c in combos])

    def _q_per_joint_action(self, i: int, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """A joint critic's Q_i(o_i, a_-i, .) for every joint action a_-i of the others: [B, K, A]."""
        acts = self._joint_actions(i)
        x = obs[:, i].unsqueeze(1).expand(-1, len(acts), -1)
        hot = self._others(acts, i).unsqueeze(0).expand(len(obs), -1, -1)
        return (self.targets if target else self.critics)[i](torch.cat([x, hot], -1))

    def _others_weight(self, i: int, probs: torch.Tensor) -> torch.Tensor:
        """[B, K]: the probability of each joint action of the others under their policies `probs`."""
        acts = self._joint_actions(i)
        weight = torch.ones(len(probs), len(acts))
        for j in (k for k in range(self.n) if k != i):
            weight = weight * probs[:, j, acts[:, j]]
        return weight

    def _act(self, obs: Any, mask: np.ndarray | None, deterministic: bool, gen: torch.Generator) -> np.ndarray:
        with torch.no_grad():
            probs = self.action_probs(torch.as_tensor(flat(obs, 2)), None if mask is None else torch.as_tensor(mask))
        if deterministic:
            return probs.argmax(-1).numpy()
        return torch.multinomial(probs.reshape(-1, self.num_actions), 1, generator=gen).reshape(probs.shape[:2]).numpy()

    # -- data ------------------------------------------------------------------------------------
    def _expert(self) -> Transitions:
        if self.expert is None:
            c = self.config
            self.expert = load_transitions(self.game, path=c.demonstrations, expert=c.expert,
                                           transitions=c.transitions, seed=c.expert_seed)
            if self.expert.obs.shape[2] != self.obs_dim:
                raise ValueError(f"the demonstrations' observations have {self.expert.obs.shape[2]} values, "
                                 f"{self.game!r}'s {self.obs_dim}")
        return self.expert

    def _rollout(self) -> None:
        """rollout_length steps of every agent's Boltzmann policy into the replay buffer."""
        for _ in range(self.config.rollout_length):
            mask = self.sim.action_mask()[self.group] if self.game.masks_actions else None
            actions = self._act(self.obs[self.group], mask, False, self.gen)
            active = self.sim.active()[self.group]
            res = self.sim.step({self.group: actions})
            taken = np.where(active, actions, -1)
            # the previous step's rows learn their next actions before this step's rows are written,
            # which may overwrite them once the ring buffer wraps
            prev = self.last_rows >= 0
            self.buffer.next_actions[torch.as_tensor(self.last_rows[prev])] = torch.as_tensor(taken[prev])
            nxt = res.obs if res.final_obs is None else res.final_obs  # final_obs: res.obs before the resets
            present = res.active if res.final_active is None else res.final_active
            rows = self.buffer.push(flat(self.obs[self.group], 2), taken, res.rewards[self.group],
                                    flat(nxt[self.group], 2), res.terminated, res.done, present[self.group])
            self.last_rows = np.where(res.done, -1, rows)
            self.returns += res.rewards[self.group]
            self.took_part |= active
            for e in np.flatnonzero(res.done):
                self.finished.append(float(mean_over_present(self.returns[e], self.took_part[e])))
                self.returns[e], self.took_part[e] = 0.0, False
            self.obs = res.obs
            self.env_steps += self.config.num_envs

    # -- the update --------------------------------------------------------------------------------
    def next_value(self, i: int, t: Transitions, target: bool = False) -> torch.Tensor:
        """V_i(o') for each row [M]. A joint critic needs the others' next actions: where one that
        is present is unknown (-1: the last row of a truncated episode, the newest rollout rows, a
        reward model's step), V_i is averaged over the others' current policies at o'."""
        c = self.config
        v = soft_value(self.q(i, t.next_obs, t.next_actions, target), c.alpha)
        if c.critic == "marginal":
            return v
        unknown = ((t.next_actions < 0) & t.next_active)
        unknown[:, i] = False
        rows = unknown.any(1).nonzero().squeeze(1)
        if len(rows) == 0:
            return v
        obs = t.next_obs[rows]
        with torch.no_grad():
            probs = self.action_probs(obs)  # [B, n, A]
        q = self._q_per_joint_action(i, obs, target)  # [B, K, A]
        return v.index_put((rows,), (self._others_weight(i, probs) * soft_value(q, c.alpha)).sum(1))

    def _agent_loss(self, i: int, e: Transitions, p: Transitions) -> torch.Tensor:
        c = self.config
        acted = e.actions[:, i] >= 0  # expert rows where agent i acted
        q_e = self.q(i, e.obs, e.actions)
        if not acted.any():  # nothing to learn for this agent in this batch (keeps the graph, adds 0)
            return q_e.sum() * 0.0
        if c.loss == "bc":  # cross-entropy of softmax(Q) on the expert's actions
            return nn.functional.cross_entropy(q_e[acted], e.actions[acted, i])
        q_taken = q_e.gather(1, e.actions[:, i].clamp(min=0).unsqueeze(1)).squeeze(1)
        # no bootstrap past the end of agent i's own trajectory: the episode terminated, or it left
        done_e = torch.maximum(e.terminated, (~e.next_active[:, i]).float())
        v_next = self.next_value(i, e, target=True)
        v_e = soft_value(q_e, c.alpha)
        # the value term telescopes over whole trajectories only, so it also stops where a truncated
        # episode ends (its last state, seen only as a next state, could otherwise take any value)
        ends_e = torch.maximum(e.ends, (~e.next_active[:, i]).float())
        policy_reward = None
        if c.online:
            mine = p.actions[:, i] >= 0
            q_p = self.q(i, p.obs, p.actions)
            v_p, v_p_next = soft_value(q_p, c.alpha), self.next_value(i, p, target=True)
            ends_p = torch.maximum(p.ends, (~p.next_active[:, i]).float())
            if c.regularize == "both":
                done_p = torch.maximum(p.terminated, (~p.next_active[:, i]).float())
                taken = q_p.gather(1, p.actions[:, i].clamp(min=0).unsqueeze(1)).squeeze(1)
                policy_reward = (taken - c.gamma * (1 - done_p) * v_p_next)[mine]
            v_val, v_val_next, ends_val = v_p[mine], v_p_next[mine], ends_p[mine]
            if c.value_on == "both":
                v_val = torch.cat([v_val, v_e[acted]])
                v_val_next, ends_val = torch.cat([v_val_next, v_next[acted]]), torch.cat([ends_val, ends_e[acted]])
        else:  # offline: the value term on the expert's own transitions
            v_val, v_val_next, ends_val = v_e[acted], v_next[acted], ends_e[acted]
        if len(v_val) == 0:
            v_val, v_val_next, ends_val = v_e[acted], v_next[acted], ends_e[acted]
        return iq_loss(q_taken[acted], v_next[acted], done_e[acted], v_val, v_val_next, ends_val,
                       c.gamma, c.alpha, policy_reward)

    def update(self) -> dict[str, float]:
        c, expert = self.config, self._expert()
        e = expert.index(torch.randint(0, len(expert), (c.batch_size,), generator=self.gen))
        p = self.buffer.sample(c.batch_size, self.gen) if c.online else e
        loss = sum(self._agent_loss(i, e, p) for i in range(self.n))
        l2 = sum((w**2).sum() for w in self.critics.parameters())
        self.opt.zero_grad()
        (loss + c.l2 * l2).backward()
        self.opt.step()
        if self.targets is not self.critics:
            with torch.no_grad():
                for t, w in zip(self.targets.parameters(), self.critics.parameters()):
                    t.lerp_(w, self.config.target_tau)
        self.updates += 1
        return {"loss": float(loss.detach()) / self.n}

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        self.finished = []
        if self.config.online:
            self._rollout()
        stats: dict[str, float] = {}
        for _ in range(self.config.updates_per_step):
            stats = self.update()
        if not self.config.online:
            self.env_steps = self.updates  # offline: progress counts gradient updates
        ret = float(np.mean(self.finished)) if self.finished else float("nan")
        return {"env_steps": self.env_steps, "episode_return": ret, "updates": self.updates,
                "seconds_per_step": time.perf_counter() - t0, **stats}

    # -- recovered rewards -------------------------------------------------------------------------
    @torch.no_grad()
    def recovered_rewards(self, t: Transitions) -> dict[str, np.ndarray]:
        """Per agent [M, n]: the paper's Q_i(o, a_i) - gamma (1 - d) V_i(o') ("q") and the official
        code's V_i(o) - gamma (1 - d) V_i(o') ("v"). Behaviour cloning defines no reward."""
        c = self.config
        if c.loss == "bc":
            raise ValueError("behaviour cloning defines no reward to recover")
        out = {"q": np.zeros(t.actions.shape, dtype=np.float32), "v": np.zeros(t.actions.shape, dtype=np.float32)}
        for i in range(self.n):
            q = self.q(i, t.obs, t.actions)
            done = torch.maximum(t.terminated, (~t.next_active[:, i]).float())
            v_next = (1 - done) * self.next_value(i, t)
            taken = q.gather(1, t.actions[:, i].clamp(min=0).unsqueeze(1)).squeeze(1)
            out["q"][:, i] = (taken - c.gamma * v_next).numpy()
            out["v"][:, i] = (soft_value(q, c.alpha) - c.gamma * v_next).numpy()
        return out

    def reward_model(self, form: Literal["q", "v"] = "q") -> Callable[[Transition], dict[str, np.ndarray]]:
        """The recovered reward as a games.reward_model reward: RewardModelGame(game,
        learner.reward_model()) is the game paying it, for any learner to train on."""

        def reward(step: Transition) -> dict[str, np.ndarray]:
            acts = torch.as_tensor(np.asarray(step.actions[self.group], dtype=np.int64))
            done = torch.as_tensor(step.terminated, dtype=torch.float32)
            # the next actions are not known yet: a joint critic averages over the others' policies
            t = Transitions(torch.as_tensor(flat(step.obs[self.group], 2)), acts, torch.zeros(acts.shape),
                            torch.as_tensor(flat(step.next_obs[self.group], 2)), torch.full_like(acts, -1), done, done,
                            torch.ones(acts.shape, dtype=torch.bool))
            return {self.group: self.recovered_rewards(t)[form]}

        return reward

    def extra_evaluation(self, episodes: int) -> dict[str, float]:
        """Reward recovery on the replay buffer (online) or the expert data (offline), as the
        official code's "imitation loss": MSE and correlation of the recovered reward (V form and
        Q form) with the true reward."""
        if self.config.loss == "bc" or (self.config.online and self.buffer.size == 0):
            return {}
        t = self.buffer.sample(min(4096, self.buffer.size), torch.Generator().manual_seed(0)) \
            if self.config.online else self._expert()
        return reward_recovery(self.recovered_rewards(t), t)

    # -- evaluation and policies -------------------------------------------------------------------
    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)

        def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
            return {self.group: self._act(obs[self.group], mask[self.group] if self.game.masks_actions else None,
                                          deterministic, gen)}

        return episode_means(self.game, choose, episodes, seed)

    def evaluate(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> tuple[float, float]:
        return mean_ci(self.evaluation_returns(episodes, seed, deterministic))

    def policy(self, deterministic: bool = False) -> QPolicy:
        return QPolicy(self, deterministic)

    # -- checkpoints (tensors and plain numbers; the replay buffer is refilled on resume) --------------
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"critics": self.critics.state_dict(), "targets": self.targets.state_dict(),
                               "opt": self.opt.state_dict(),
                               "gen": self.gen.get_state(), "env_steps": self.env_steps, "updates": self.updates}
        if self.config.online:
            out.update(sim=state_to_tensors(self.sim.get_state()), sim_rng=rng_to_tensors(self.sim.rng),
                       obs=state_to_tensors(self.obs), returns=torch.as_tensor(self.returns))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critics.load_state_dict(state["critics"])
        self.targets.load_state_dict(state["targets"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])
        if self.config.online:
            self.sim.set_state(state_from_tensors(state["sim"], self.sim.get_state()))
            self.sim.rng = rng_from_tensors(state["sim_rng"])
            self.obs = state_from_tensors(state["obs"], self.obs)
            self.returns = state["returns"].numpy().copy()
            self.last_rows[:] = -1


def reward_recovery(recovered: dict[str, np.ndarray], t: Transitions) -> dict[str, float]:
    """MSE and Pearson correlation of each recovered-reward form with the true rewards (acting slots)."""
    acted = (t.actions >= 0).numpy()
    true = t.rewards.numpy()[acted]
    out = {}
    for form, r in recovered.items():
        est = r[acted]
        out[f"reward_mse_{form}"] = float(np.mean((est - true) ** 2))
        out[f"reward_corr_{form}"] = float(np.corrcoef(est, true)[0, 1]) if true.std() > 0 and est.std() > 0 else float("nan")
    return out
