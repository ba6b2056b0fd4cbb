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

import copy
import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from equilibria.common.config import Config, PositiveInt, build
from equilibria.games.markov import MarkovGame, Simulator, StepResult
from equilibria.games.spaces import Group
from equilibria.marl.mappo import MAPPO, MAPPOConfig
from equilibria.marl.networks import GroupActor
from equilibria.marl.runtime import play_episodes
from equilibria.solvers.normal_form import solve_zero_sum

ActorWeights = dict[str, torch.Tensor] | None  # None is the uniform random policy


def seat_group(game: MarkovGame, player: int) -> Group:
    """A one-agent group with the spaces of `player`'s seat (what a best response is trained as)."""
    name, _ = game.seats()[player]
    g = game.group(name)
    return Group(name, 1, g.observation, g.action)


def actor_for(game: MarkovGame, player: int, weights: ActorWeights, hidden: int,
              ids: bool = True) -> GroupActor | None:
    """The actor of a best response's weights (`hidden`, `ids`: its MAPPO's hidden and actor_ids)."""
    if weights is None:
        return None
    actor = GroupActor(seat_group(game, player), hidden, share=True, ids=ids)
    actor.load_state_dict(weights)
    return actor


def mixed_actions(actors: Sequence[GroupActor | None], which: np.ndarray, obs: np.ndarray, mask: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Sample one agent's actions [E] where environment e follows `actors[which[e]]`;
    obs [E, *obs], mask [E, A]."""
    out = np.empty(len(obs), dtype=np.int64)
    for k in np.unique(which):
        idx = np.flatnonzero(which == k)
        actor = actors[k]
        if actor is None:
            logits = torch.zeros(len(idx), mask.shape[-1])
        else:
            with torch.no_grad():
                logits = actor.logits(torch.as_tensor(obs[idx, None]))[:, 0]
        logits = logits.masked_fill(~torch.as_tensor(mask[idx]), -1e9)
        p = torch.softmax(logits, -1).numpy().astype(np.float64)
        u = rng.random(len(idx))[:, None]
        out[idx] = np.minimum((p.cumsum(-1) < u * p.sum(-1, keepdims=True)).sum(-1), mask.shape[-1] - 1)
    return out


def _check_two_seats(game: MarkovGame) -> None:
    if game.max_agents != 2:
        raise ValueError(f"AgainstMixture wraps two-player games; {game.info.name} has {game.max_agents} agents")


class AgainstMixture(MarkovGame):
    """The one-agent game player `learner` faces when its opponent plays the mixture `weights`
    over `opponents` (drawn per episode). Its one group has the learner seat's spaces; the global
    state is the full game's, so a centralised critic still sees it."""

    def __init__(self, game: MarkovGame, learner: int, opponents: Sequence[GroupActor | None], weights: np.ndarray):
        _check_two_seats(game)
        self.game, self.learner, self.opponents = game, learner, list(opponents)
        self.weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.groups = (seat_group(game, learner),)
        self.state_shape, self.max_steps = game.state_shape, game.max_steps
        self.size_estimate = game.size_estimate
        self.info = dataclasses.replace(game.info, name=f"{game.info.name}[player {learner} vs mixture]",
                                        num_players=1)

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> MixtureSimulator:
        return MixtureSimulator(self, num_envs, seed)


class MixtureSimulator(Simulator):
    """The wrapped game's simulator with the opponent's seat played by the mixture."""

    def __init__(self, game: AgainstMixture, num_envs: int, seed: int | None):
        self.game, self.num_envs = game, num_envs
        self.inner = game.game.simulator(num_envs, seed)
        seats = game.game.seats()
        self.me, self.other = seats[game.learner], seats[1 - game.learner]
        self.supports_state = self.inner.supports_state
        self._reseed(seed)

    def _reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng([0 if seed is None else seed, 1])
        self.which = self.rng.choice(len(self.game.opponents), size=self.num_envs, p=self.game.weights)

    def _mine(self, batch: dict[str, Any]) -> dict[str, Any]:
        group, slot = self.me
        return {group: batch[group][:, [slot]]}

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        self.inner.reset(seed)
        self._reseed(seed)
        return self.observe()

    def observe(self) -> dict[str, Any]:
        return self._mine(self.inner.observe())

    def active(self) -> dict[str, np.ndarray]:
        return self._mine(self.inner.active())

    def action_mask(self) -> dict[str, np.ndarray]:
        return self._mine(self.inner.action_mask())

    def global_state(self) -> np.ndarray:
        return self.inner.global_state()

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        (mg, ms), (og, os_) = self.me, self.other
        inner_obs, inner_mask = self.inner.observe(), self.inner.action_mask()
        theirs = mixed_actions(self.game.opponents, self.which, inner_obs[og][:, os_], inner_mask[og][:, os_], self.rng)
        joint = {g.name: np.zeros((self.num_envs, g.size), dtype=np.int64) for g in self.game.game.groups}
        joint[mg][:, ms] = np.asarray(actions[mg]).reshape(self.num_envs)
        joint[og][:, os_] = theirs
        res = self.inner.step(joint, autoreset)
        if autoreset and res.done.any():
            idx = np.flatnonzero(res.done)
            self.which[idx] = self.rng.choice(len(self.game.opponents), size=len(idx), p=self.game.weights)
        return StepResult(self._mine(res.obs), self._mine(res.rewards), self._mine(res.active), res.terminated,
                          res.truncated, None if res.final_obs is None else self._mine(res.final_obs),
                          None if res.final_active is None else self._mine(res.final_active), res.final_state)

    def get_state(self) -> dict[str, Any]:
        return {"inner": self.inner.get_state(), "which": self.which.copy(),
                "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.inner.set_state(state["inner"])
        self.which = np.array(state["which"], dtype=np.int64)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


def train_best_response(game: MarkovGame, learner: int, opponents: Sequence[ActorWeights],
                        weights: np.ndarray, steps: int, config: MAPPOConfig | dict[str, Any], seed: int) -> dict[str, Any]:
    """Train PPO for `learner` against the mixture; returns the actor's weights and its final
    training return. A pure function of its arguments (a Ray task on backend: ray)."""
    torch.set_num_threads(1)
    cfg = build(MAPPOConfig, config, "psro-rl learner")
    env = AgainstMixture(game, learner, [actor_for(game, 1 - learner, w, cfg.hidden, cfg.actor_ids)
                                                     for w in opponents], weights)
    ppo = MAPPO(env, cfg, seed=seed)
    while ppo.env_steps < steps:
        ppo.train_step()
    recent = ppo.finished[-cfg.num_envs:]
    actor = ppo.actors[env.groups[0].name]
    return {"weights": {k: v.clone() for k, v in actor.state_dict().items()},
            "train_return": float(np.mean(recent)) if recent else float("nan"), "env_steps": ppo.env_steps}


def payoff_entry(game: MarkovGame, row: ActorWeights, col: ActorWeights, hidden: int, episodes: int,
                 seed: int, ids: bool = True) -> float:
    """Player 0's mean episode return with `row` as player 0 and `col` as player 1."""
    actors = [actor_for(game, 0, row, hidden, ids), actor_for(game, 1, col, hidden, ids)]
    rng = np.random.default_rng([seed, 2])
    zeros = np.zeros(episodes, dtype=np.int64)
    seats = game.seats()

    def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
        out = {g.name: np.zeros((episodes, g.size), dtype=np.int64) for g in game.groups}
        for p, (group, slot) in enumerate(seats):
            out[group][:, slot] = mixed_actions([actors[p]], zeros, obs[group][:, slot], mask[group][:, slot], rng)
        return out

    return float(play_episodes(game, choose, episodes, seed)[0][:, 0].mean())


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

    def __init__(self, game: MarkovGame, config: RLPSROConfig, seed: int = 0):
        if game.max_agents != 2 or not game.info.is_zero_sum:
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
                            seed=self.seed * 1_000_003 + 1000 * i + j, ids=self.config.learner.actor_ids)

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
