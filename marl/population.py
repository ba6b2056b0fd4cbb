"""PSRO with reinforcement-learning best responses on two-player zero-sum Markov games.

The finite-game PSRO (solvers/psro.py) computes exact best responses on the game tree; a
Markov game has no tree, so here every generation trains, for each player, a PPO learner
(marl.mappo with one agent) against the meta-Nash mixture of the other player's population,
then estimates the new rows and columns of the empirical meta-game by playing episodes, and
solves it with the LP.

The opponent mixture is played per episode: at every reset each environment draws one
opponent policy from the meta-Nash weights and keeps it for the whole episode (a mixed
strategy over policies, not a per-step blend of their actions).

`BestResponseGain` (the new best response's return against the mixture minus the mixture's
value, per player) is the usual PSRO stand-in for exploitability where the exact value cannot
be computed: it is a lower bound on each player's exploitability, up to training and
estimation error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from equilibria.common.config import Config, PositiveInt, build
from equilibria.games.markov import BatchedMarkovGame, StepResult
from equilibria.marl.mappo import MAPPO, MAPPOConfig
from equilibria.marl.runtime import Actor, play_episodes
from equilibria.solvers.normal_form import solve_zero_sum

ActorWeights = dict[str, torch.Tensor] | None  # None is the uniform random policy


def actor_for(game: BatchedMarkovGame, weights: ActorWeights, hidden: int) -> Actor | None:
    if weights is None:
        return None
    actor = Actor(game.obs_dim, game.num_actions, 1, hidden, share=True)
    actor.load_state_dict(weights)
    return actor


def mixed_actions(actors: Sequence[Actor | None], which: np.ndarray, obs: np.ndarray, mask: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Sample one agent's actions [E] where environment e follows `actors[which[e]]`;
    obs [E, D], mask [E, A]."""
    out = np.empty(len(obs), dtype=np.int64)
    for k in np.unique(which):
        idx = np.flatnonzero(which == k)
        actor = actors[k]
        if actor is None:
            logits = torch.zeros(len(idx), mask.shape[-1])
        else:
            with torch.no_grad():
                logits = actor.logits(torch.as_tensor(obs[idx, None, :]))[:, 0]
        logits = logits.masked_fill(~torch.as_tensor(mask[idx]), -1e9)
        p = torch.softmax(logits, -1).numpy().astype(np.float64)
        u = rng.random(len(idx))[:, None]
        out[idx] = np.minimum((p.cumsum(-1) < u * p.sum(-1, keepdims=True)).sum(-1), mask.shape[-1] - 1)
    return out


class AgainstMixture(BatchedMarkovGame):
    """The single-agent game player `learner` faces when its opponent plays the mixture
    `weights` over `opponents` (drawn per episode). Observations, rewards and masks are the
    learner's; the global state is the full game's, so a centralised critic still sees it."""

    def __init__(self, game: BatchedMarkovGame, learner: int, opponents: Sequence[Actor | None],
                 weights: np.ndarray):
        super().__init__()
        if game.num_agents != 2:
            raise ValueError("AgainstMixture wraps two-player games")
        self.game, self.learner, self.opponents = game, learner, list(opponents)
        self.weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.num_agents, self.obs_dim, self.num_actions = 1, game.obs_dim, game.num_actions
        self.max_steps = game.max_steps
        self.info = dataclasses.replace(game.info, name=f"{game.info.name}[player {learner} vs mixture]",
                                        num_players=1)
        self.which = np.zeros(0, dtype=np.int64)
        self._obs = np.zeros((0, 2, game.obs_dim), dtype=np.float32)

    def spawn(self) -> AgainstMixture:
        return AgainstMixture(self.game.spawn(), self.learner, self.opponents, self.weights)

    def reset(self, num_envs: int = 1, seed: int | None = None) -> np.ndarray:
        self._obs = self.game.reset(num_envs, seed)
        self.rng = np.random.default_rng([0 if seed is None else seed, 1])
        self.num_envs = num_envs
        self.which = self.rng.choice(len(self.opponents), size=num_envs, p=self.weights)
        return self._obs[:, [self.learner]]

    def step(self, actions: np.ndarray, autoreset: bool = True) -> StepResult:
        actions = np.asarray(actions).reshape(self.num_envs)
        other = 1 - self.learner
        mask = self.game.action_mask()[:, other]
        theirs = mixed_actions(self.opponents, self.which, self._obs[:, other], mask, self.rng)
        joint = np.empty((self.num_envs, 2), dtype=np.int64)
        joint[:, self.learner], joint[:, other] = actions, theirs
        res = self.game.step(joint, autoreset)
        if autoreset and res.done.any():
            idx = np.flatnonzero(res.done)
            self.which[idx] = self.rng.choice(len(self.opponents), size=len(idx), p=self.weights)
        self._obs = res.obs
        me = [self.learner]
        return StepResult(res.obs[:, me], res.rewards[:, me], res.terminated, res.truncated,
                          None if res.final_obs is None else res.final_obs[:, me], res.final_state)

    def global_state(self) -> np.ndarray:
        return self.game.global_state()

    def action_mask(self) -> np.ndarray:
        return self.game.action_mask()[:, [self.learner]]

    # the wrapped game owns the simulator state; these hooks are never reached
    def _allocate(self, num_envs: int) -> None:
        pass

    def _reset_envs(self, idx: np.ndarray) -> None:
        raise NotImplementedError

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _observe(self) -> np.ndarray:
        return self._obs[:, [self.learner]]


def train_best_response(game: BatchedMarkovGame, learner: int, opponents: Sequence[ActorWeights],
                        weights: np.ndarray, steps: int, config: MAPPOConfig | dict[str, Any], seed: int) -> dict[str, Any]:
    """Train PPO for `learner` against the mixture; returns the actor's weights and its final
    training return. A pure function of its arguments (a Ray task on backend: ray)."""
    torch.set_num_threads(1)
    cfg = build(MAPPOConfig, config, "psro-rl learner")
    env = AgainstMixture(game, learner, [actor_for(game, w, cfg.hidden) for w in opponents], weights)
    ppo = MAPPO(env, cfg, seed=seed)
    while ppo.env_steps < steps:
        ppo.train_step()
    recent = ppo.finished[-cfg.num_envs:]
    return {"weights": {k: v.clone() for k, v in ppo.actor.state_dict().items()},
            "train_return": float(np.mean(recent)) if recent else float("nan"), "env_steps": ppo.env_steps}


def payoff_entry(game: BatchedMarkovGame, row: ActorWeights, col: ActorWeights, hidden: int, episodes: int,
                 seed: int) -> float:
    """Player 0's mean episode return with `row` as player 0 and `col` as player 1."""
    actors = [actor_for(game, row, hidden), actor_for(game, col, hidden)]
    rng = np.random.default_rng([seed, 2])
    zeros = np.zeros(episodes, dtype=np.int64)

    def choose(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.stack([mixed_actions([actors[p]], zeros, obs[:, p], mask[:, p], rng) for p in range(2)], axis=1)

    return float(play_episodes(game, choose, episodes, seed)[:, 0].mean())


class RLPSROConfig(Config):
    """PSRO with PPO best responses; the initial populations hold the uniform random policy."""

    best_response_steps: PositiveInt = 100_000
    """environment steps of PPO per best response"""
    learner: MAPPOConfig = Field(default_factory=MAPPOConfig)
    """the PPO learner of each best response (MAPPO's fields)"""
    eval_episodes: Annotated[int, Field(ge=2, le=100_000)] = 400
    """episodes played per new meta-game entry"""


class RLPSRO:
    """Explicit state: populations (actor weights or None for uniform), the payoff table, the
    meta-Nash weights. `step(executor)` runs one generation; both players' best responses are
    independent jobs, so `backend: ray` trains them in parallel."""

    def __init__(self, game: BatchedMarkovGame, config: RLPSROConfig, seed: int = 0):
        if game.num_agents != 2 or not game.info.is_zero_sum:
            raise ValueError(f"PSRO with RL best responses needs a two-player zero-sum Markov game; "
                             f"{game.info.name} is not one")
        self.game, self.config, self.seed = game, config, seed
        self.hidden = config.learner.hidden
        self.populations: list[list[ActorWeights]] = [[None], [None]]
        self.payoff = np.array([[self._entry(None, None, 0, 0)]])
        self.meta = [np.ones(1), np.ones(1)]
        self.iteration = 0
        self.env_steps = 0

    def _entry(self, row: ActorWeights, col: ActorWeights, i: int, j: int) -> float:
        return payoff_entry(self.game, row, col, self.hidden, self.config.eval_episodes,
                            seed=self.seed * 1_000_003 + 1000 * i + j)

    def value(self) -> float:
        """Player 0's value of the meta-game under the meta-Nash mixtures."""
        return float(self.meta[0] @ self.payoff @ self.meta[1])

    def step(self, executor: Any = None) -> dict[str, float]:
        from equilibria.common.executor import LocalExecutor

        executor = executor or LocalExecutor()
        self.iteration += 1
        c = self.config
        jobs = [(self.game, p, self.populations[1 - p], self.meta[1 - p], c.best_response_steps, c.learner,
                 self.seed * 7919 + 2 * self.iteration + p) for p in range(2)]
        new: list[dict[str, Any]] = [{}, {}]
        for p, result in executor.run_unordered(train_best_response, jobs):
            new[p] = result
        value_before = self.value()
        n0, n1 = len(self.populations[0]), len(self.populations[1])
        self.populations[0].append(new[0]["weights"])
        self.populations[1].append(new[1]["weights"])
        payoff = np.zeros((n0 + 1, n1 + 1))
        payoff[:n0, :n1] = self.payoff
        for j in range(n1 + 1):
            payoff[n0, j] = self._entry(self.populations[0][n0], self.populations[1][j], n0, j)
        for i in range(n0):
            payoff[i, n1] = self._entry(self.populations[0][i], self.populations[1][n1], i, n1)
        # gains of the new best responses against the mixtures they were trained on
        gain0 = float(payoff[n0, :n1] @ self.meta[1]) - value_before
        gain1 = value_before - float(self.meta[0] @ payoff[:n0, n1])
        self.payoff = payoff
        self.meta = [solve_zero_sum(payoff)[0], solve_zero_sum(-payoff.T)[0]]
        self.env_steps += sum(r["env_steps"] for r in new)
        return {"generation": self.iteration, "env_steps": self.env_steps, "meta_value": self.value(),
                     "br_gain_p0": gain0, "br_gain_p1": gain1, "nash_conv_estimate": max(gain0, 0) + max(gain1, 0),
                     "population": n0 + 1}

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain numbers only (torch.load(weights_only=True) reads it back)."""
        pops = {f"pop{p}_{k}": ({} if w is None else w) for p in range(2) for k, w in enumerate(self.populations[p])}
        return {"populations": pops, "sizes": [len(self.populations[0]), len(self.populations[1])],
                "payoff": torch.as_tensor(self.payoff), "iteration": self.iteration, "env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sizes = [int(s) for s in state["sizes"]]
        self.populations = [[state["populations"][f"pop{p}_{k}"] or None for k in range(sizes[p])] for p in range(2)]
        self.payoff = state["payoff"].numpy().astype(np.float64)
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.meta = [solve_zero_sum(self.payoff)[0], solve_zero_sum(-self.payoff.T)[0]]


__all__ = ["AgainstMixture", "RLPSRO", "RLPSROConfig", "payoff_entry", "train_best_response"]
