"""Bayesian-network actor-critic (Chen & Zhang, ICML 2023, "Context-Aware Bayesian Network
Actor-Critic Methods for Cooperative Multi-Agent Reinforcement Learning"), built on MAPPO.

The joint policy factorises over a DAG G on the agents,

    pi(a | o) = prod_i pi_i(a_i | o_i, a_Pa_G(i)),

so an agent's action may depend on its parents' actions: agents act one after another in the
DAG's order, each actor reading its own observation plus its parents' one-hot actions (zeros for
agents that are not its parents). The gradient is MAPPO's, sum_i grad log pi_i(a_i | o_i,
a_Pa(i)) A_hat with the shared centralised critic, so everything but the actors and the DAG is
marl.mappo's.

The DAG is drawn per context, as the authors' code does it (not NOTEARS): an MLP on the
concatenated observations gives a logit for every edge j -> i with j < i (the order is the agents'
order, so every sample is acyclic by construction), and an edge is a hard straight-through
Gumbel-softmax sample of it; the PPO loss trains the DAG network through the parents' inputs.
The logistic noise of every sample is kept with the rollout, so the update re-scores exactly the
DAG the agents acted under while gradients still reach the edge logits.

Density annealing: a threshold starts at 1; at `anneal_start` of the training budget it drops by
1/num_decay, and again every anneal_span / num_decay, so it reaches 0 at anneal_start +
(num_decay - 1) / num_decay * anneal_span (the code's SMAC runner: 40%, 30%, 20 drops; 0 from
68.5% of the budget). Each sampled edge is kept with probability `threshold` (the
code passes the threshold to its trainer, where its use was not found; keeping edges with that
probability is a reconstruction that anneals the density to zero, as the paper states), so the
policy ends with no edges and executes decentralised. `dag: random` is the code's DummyDAG
baseline: edges drawn at random, with probability random_edge_prob * threshold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from equilibria.common.config import PositiveFloat, Probability, count
from equilibria.games.core import CorrelatedPolicy, JointAction, State
from equilibria.games.markov import MarkovGame, MarkovState
from equilibria.games.spaces import Box, Discrete, Group
from equilibria.marl.mappo import MAPPO, MAPPOConfig, check_memory_of
from equilibria.marl.networks import GroupActor, as_tensors, mlp
from equilibria.marl.registry import register_learner
from equilibria.marl.runtime import episode_means, mean_ci


class BNACConfig(MAPPOConfig):
    """MAPPO's defaults plus the DAG and its density schedule (the authors' code)."""

    dag: Literal["context", "random", "complete", "none"] = "context"
    """how each step's DAG is drawn: from the observations (the paper's context-aware DAG), at
    random (the DummyDAG baseline), every edge of the order (complete), or none (MAPPO)"""
    temperature: PositiveFloat = 1.0
    """Gumbel-softmax temperature of the edge samples (the code: 1.0, hard)"""
    anneal: bool = True
    """anneal the edge density to zero, so the final policy executes without edges"""
    total_steps: count(10**12) = 400_000
    """the training budget (environment steps) the density schedule refers to (a train scenario
    sets it to its budget.steps unless given)"""
    anneal_start: Probability = 0.4
    """fraction of the budget after which the threshold starts to fall (the code: 0.4)"""
    anneal_span: Probability = 0.3
    """fraction of the budget over which it falls, in num_decay drops (the code: 0.6 / 2); the
    first drop is at anneal_start, so it is 0 from anneal_start + (num_decay - 1) / num_decay of it"""
    num_decay: count(10_000) = 20
    """equal steps of the fall (the code: 20)"""
    random_edge_prob: Probability = 0.5
    """dag random: an edge's probability at threshold 1 (0.5 is the context DAG's density at
    initialisation, whose edge logits start near zero)"""


def threshold(config: BNACConfig, env_steps: int) -> float:
    """The density threshold after `env_steps` environment steps (1 without annealing)."""
    start = config.anneal_start * config.total_steps
    if not config.anneal or env_steps < start:
        return 1.0
    interval = max(config.anneal_span * config.total_steps / config.num_decay, 1.0)
    drops = 1 + int((env_steps - start) // interval)
    return max(1.0 - drops / config.num_decay, 0.0)


def parent_features(edges: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """edges [B, n, n] (edges[b, j, i]: j is a parent of i), onehot [B, n, A] -> [B, n, n * A]:
    row i holds edges[j, i] * onehot(a_j) in block j."""
    b, n, a = onehot.shape
    return (edges.transpose(1, 2).unsqueeze(-1) * onehot.unsqueeze(1)).reshape(b, n, n * a)


def _check_game(game: MarkovGame) -> None:
    if len(game.groups) != 1:
        raise ValueError(f"bnac orders the agents of one group; {game.info.name} has groups "
                         f"{[g.name for g in game.groups]}")
    g = game.groups[0]
    if not isinstance(g.action, Discrete) or not isinstance(g.observation, Box) or g.observation.layout != "vector":
        raise ValueError(f"bnac needs discrete actions and vector observations; {game.info.name}'s agents have "
                         f"{type(g.action).__name__} actions and {g.observation.layout} observations")


def _preflight(game: MarkovGame, config: BNACConfig) -> None:
    _check_game(game)
    check_memory_of(game, config)


@register_learner("bnac", BNACConfig, preflight=_preflight,
                  description="Bayesian-network actor-critic (Chen & Zhang 2023): MAPPO whose agents act in a "
                              "context-aware DAG, annealed to no edges")
@register_learner("bnac_random", BNACConfig, preflight=_preflight, dag="random",
                  description="the Bayesian-network actor-critic's baseline: MAPPO on random DAGs of the same density")
class BNAC(MAPPO):
    config: BNACConfig

    def __init__(self, game: MarkovGame, config: BNACConfig, seed: int = 0):
        _check_game(game)
        super().__init__(game, config, seed)  # checks the memory
        g = game.groups[0]
        self.group, self.n, self.num_actions = g.name, g.size, g.num_actions
        obs_dim = g.observation.size
        # the actor reads [own observation, parents' one-hot actions]; replaces MAPPO's actor
        augmented = Group(g.name, g.size, Box((obs_dim + self.n * self.num_actions,)), g.action)
        self.actors = nn.ModuleDict({g.name: GroupActor(augmented, config.hidden, config.share_parameters,
                                                          config.actor_ids)})
        self.dag = mlp([self.n * obs_dim, config.hidden, config.hidden, self.n * self.n])
        self.order_mask = torch.triu(torch.ones(self.n, self.n), diagonal=1)  # j -> i allowed iff j < i
        params = list(self.actors.parameters()) + list(self.dag.parameters())
        self.actor_opt = torch.optim.Adam(params, lr=config.lr, eps=1e-5)
        self.open_ratios: list[float] = []

    # -- the DAG ----------------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return threshold(self.config, self.env_steps)

    def edge_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, n, D] -> logits [B, n, n] of the edges j -> i."""
        return self.dag(obs.reshape(obs.shape[0], -1)).view(-1, self.n, self.n)

    def draw(self, batch: int, thresh: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The randomness of `batch` DAG samples: logistic noise (the difference of two Gumbels,
        for the binary Gumbel-softmax) and which edges the threshold keeps (for dag random: the
        edges themselves)."""
        c = self.config
        u = torch.rand(batch, self.n, self.n, generator=generator).clamp(1e-6, 1 - 1e-6)
        keep_p = thresh * (c.random_edge_prob if c.dag == "random" else 1.0)
        keep = torch.rand(batch, self.n, self.n, generator=generator) < keep_p
        if c.dag == "none":
            keep = torch.zeros_like(keep)
        return {"edge_noise": torch.log(u) - torch.log1p(-u), "edge_keep": keep}

    def edges(self, obs: torch.Tensor, noise: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Edges [B, n, n] in {0, 1}; for the context DAG with straight-through gradients to the
        edge logits."""
        allowed = self.order_mask * keep.to(torch.float32)
        if self.config.dag != "context":
            return allowed.expand(obs.shape[0], -1, -1)
        soft = torch.sigmoid((self.edge_logits(obs) + noise) / self.config.temperature)
        hard = (soft > 0.5).to(soft.dtype)
        return (hard + soft - soft.detach()) * allowed

    # -- acting and scoring (MAPPO's hooks) -------------------------------------------------------
    def _sample(self, obs: np.ndarray, mask: np.ndarray, drawn: dict[str, torch.Tensor], greedy: bool = False,
                generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """Agents act in order, each after its parents: actions [E, n], log-probs, edges."""
        actor = self.actors[self.group]
        o = as_tensors(obs)
        m = torch.as_tensor(mask)
        e = o.shape[0]
        edges = self.edges(o, drawn["edge_noise"], drawn["edge_keep"])
        onehot = torch.zeros(e, self.n, self.num_actions)
        actions = torch.zeros(e, self.n, dtype=torch.long)
        logp = torch.zeros(e, self.n)
        for i in range(self.n):
            pf = parent_features(edges, onehot)[:, i]
            logits = actor.slot_logits(torch.cat([o[:, i], pf], -1), i, m[:, i])
            if greedy:
                a = logits.argmax(-1)
            else:
                a = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
            actions[:, i] = a
            logp[:, i] = torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1)
            onehot[:, i] = nn.functional.one_hot(a, self.num_actions).to(torch.float32)
        return actions.numpy(), logp.numpy(), edges

    def act(self, obs: dict, mask: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        drawn = self.draw(self.config.num_envs, self.threshold)
        with torch.no_grad():
            actions, logp, edges = self._sample(obs[self.group], mask[self.group], drawn)
        pairs = self.n * (self.n - 1) / 2
        self.open_ratios.append(float(edges.sum((1, 2)).mean()) / pairs if pairs else 0.0)
        return {self.group: actions}, {self.group: logp}, {k: v.numpy() for k, v in drawn.items()}

    def log_probs(self, group: str, obs: Any, mask: torch.Tensor | None, actions: torch.Tensor,
                  extras: dict[str, torch.Tensor]) -> torch.Tensor:
        edges = self.edges(obs, extras["edge_noise"], extras["edge_keep"])
        onehot = nn.functional.one_hot(actions, self.num_actions).to(torch.float32)
        x = torch.cat([obs, parent_features(edges, onehot)], -1)
        return torch.log_softmax(self.actors[group].logits(x, mask), -1)

    def train_step(self) -> dict[str, float]:
        self.open_ratios = []
        thresh = self.threshold
        stats = super().train_step()
        return {**stats, "open_ratio": float(np.mean(self.open_ratios)), "threshold": thresh}

    # -- evaluation -----------------------------------------------------------------------------
    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True,
                           remove_edges: bool = False) -> np.ndarray:
        """[episodes] mean returns per agent; the DAG is drawn as in training at the current
        threshold (greedy actions when `deterministic`), or left out (`remove_edges`: every agent
        acts on its own observation, the decentralised execution the annealing aims at)."""
        gen = torch.Generator().manual_seed(seed)
        thresh = 0.0 if remove_edges else self.threshold
        return episode_means(self.game, self._chooser(thresh, gen, deterministic), episodes, seed)

    def _chooser(self, thresh: float, gen: torch.Generator, greedy: bool,
                 seen: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Callable[[dict, dict, dict], dict[str, np.ndarray]]:
        """An episode_means policy: each step the agents act in a DAG drawn at `thresh`; `seen`,
        if given, collects each step's observations [E, n, D] and action masks [E, n, A]."""

        def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
            o = obs[self.group]
            if seen is not None:
                seen.append((o, mask[self.group]))
            with torch.no_grad():
                a, _, _ = self._sample(o, mask[self.group], self.draw(o.shape[0], thresh, gen), greedy=greedy,
                                       generator=gen)
            return {self.group: a}

        return choose

    def extra_evaluation(self, episodes: int = 32, seed: int = 10_000) -> dict[str, float]:
        """What the train kind logs beside the evaluation return: the return with every edge
        removed, and the current threshold."""
        mean, ci = mean_ci(self.evaluation_returns(episodes, seed, True, remove_edges=True))
        return {"eval_return_no_edges": mean, "eval_no_edges_ci95": ci, "threshold": self.threshold}

    def parent_response(self, child: int, parent: int, episodes: int = 32, seed: int = 10_000) -> dict[str, float]:
        """Whether agent `child` reads agent `parent`'s action, not only that it has a parent:
        on the observations of greedy evaluation episodes, its greedy action when `parent` is
        its only parent, for each action the parent could take. `changes`: the fraction of
        observations where that answer depends on the parent's action (0 for a child that only
        notices it has a parent); `differs`: the fraction of (observation, parent action) pairs
        where it is another action than the parent's. Only the parent's legal actions at each
        observation are asked, and the child answers among its own legal actions; `changes`
        counts the observations where the parent has at least two (nan if there are none)."""
        if not 0 <= parent < child < self.n:
            raise ValueError(f"an edge goes from an earlier agent to a later one; got {parent} -> {child} "
                             f"of {self.n} agents")
        seen: list[tuple[np.ndarray, np.ndarray]] = []
        gen = torch.Generator().manual_seed(seed)
        episode_means(self.game, self._chooser(self.threshold, gen, True, seen), episodes, seed)
        own = torch.as_tensor(np.concatenate([o for o, _ in seen])[:, child], dtype=torch.float32)
        masks = torch.as_tensor(np.concatenate([m for _, m in seen]))
        legal, child_mask = masks[:, parent].bool(), masks[:, child]
        if not legal.any():
            raise ValueError(f"agent {parent} has no legal action in any of the {len(legal)} observations recorded")
        b, a = own.shape[0], self.num_actions
        edges = torch.zeros(b, self.n, self.n)
        edges[:, parent, child] = 1.0
        answers = []
        with torch.no_grad():
            for k in range(a):
                onehot = torch.zeros(b, self.n, a)
                onehot[:, parent, k] = 1.0
                x = torch.cat([own, parent_features(edges, onehot)[:, child]], -1)
                answers.append(self.actors[self.group].slot_logits(x, child, child_mask).argmax(-1))
        ans = torch.stack(answers, 1)  # [B, A]: the child's answer to each parent action
        first = ans.gather(1, legal.float().argmax(1, keepdim=True))  # its answer to the first legal one
        can_change = legal.sum(1) >= 2
        changed = ((ans != first) & legal).any(1)[can_change]
        return {"changes": float(changed.float().mean()) if len(changed) else float("nan"),
                "differs": float(((ans != torch.arange(a)) & legal).sum() / legal.sum())}

    def policy(self, deterministic: bool = False) -> BNPolicy:
        return BNPolicy(self, deterministic)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "dag": self.dag.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dag.load_state_dict(state["dag"])
        super().load_state_dict(state)


class BNPolicy(CorrelatedPolicy):
    """The trained joint policy as a games JointPolicy: the exact distribution over joint actions,
    sum over DAGs G of P(G | o) prod_i pi_i(a_i | o_i, a_Pa_G(i)), so evaluation and tournaments
    that hold every seat keep the correlation (a seat played alone gets its marginal)."""

    MAX_ROWS = 1 << 18  # DAGs x joint actions enumerated at once

    def __init__(self, learner: BNAC, deterministic: bool = False):
        self.learner, self.deterministic = learner, deterministic
        n, a = learner.n, learner.num_actions
        self.pairs = [(j, i) for i in range(n) for j in range(i)]
        if 2 ** len(self.pairs) * a ** n > self.MAX_ROWS:
            raise ValueError(f"the exact joint policy of {n} agents with {a} actions enumerates "
                             f"{2 ** len(self.pairs) * a ** n} (DAG, joint action) rows; at most {self.MAX_ROWS}")

    def joint_action_probabilities(self, state: State) -> dict[JointAction, float]:
        if not isinstance(state, MarkovState):
            raise ValueError(f"a Bayesian-network policy acts in Markov games; got a {type(state).__name__}")
        bn = self.learner
        n, a = bn.n, bn.num_actions
        obs = torch.as_tensor(np.stack([state.agent_observation(p) for p in range(n)]), dtype=torch.float32)[None]
        legal = torch.zeros(n, a, dtype=torch.bool)
        for p in range(n):
            legal[p, state.legal_actions(p)] = True
        with torch.no_grad():
            thresh = bn.threshold
            if bn.config.dag == "context":
                p_edge = torch.sigmoid(bn.edge_logits(obs))[0] * thresh
            else:
                full = {"random": bn.config.random_edge_prob * thresh, "complete": thresh, "none": 0.0}[bn.config.dag]
                p_edge = torch.full((n, n), full)
            graphs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=len(self.pairs))))  # [G, m]
            edges = torch.zeros(len(graphs), n, n)
            p_graph = torch.ones(len(graphs))
            for k, (j, i) in enumerate(self.pairs):
                edges[:, j, i] = graphs[:, k]
                p_graph = p_graph * torch.where(graphs[:, k] > 0, p_edge[j, i], 1 - p_edge[j, i])
            joint = torch.tensor(list(itertools.product(range(a), repeat=n)))  # [J, n]
            rows_e = edges.repeat_interleave(len(joint), 0)
            rows_a = joint.repeat(len(graphs), 1)
            onehot = nn.functional.one_hot(rows_a, a).to(torch.float32)
            x = torch.cat([obs.expand(len(rows_a), -1, -1), parent_features(rows_e, onehot)], -1)
            logits = bn.actors[bn.group].logits(x, legal.expand(len(rows_a), -1, -1))
            logp = torch.log_softmax(logits, -1).gather(-1, rows_a[..., None]).squeeze(-1).sum(-1)
            probs = (logp.exp().view(len(graphs), len(joint)) * p_graph[:, None]).sum(0)
        out = {tuple(int(x) for x in row): float(p) for row, p in zip(joint, probs) if p > 0}
        if self.deterministic:
            best = max(out, key=out.get)
            return {best: 1.0}
        return out
