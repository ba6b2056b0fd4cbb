"""Debate as a batched Markov game (`debate_batched`): E debates at once for self-play learners.

The rules, the judge and the observation parts are those of games/debate.py, whose docstring
also explains why both slots are active at every step (the waiting one with a single pass
action) and receive the verdict. Cases are drawn per episode from a `sampler`; `case_sampler`
deals a DebateGame's finite cases, so learned debaters and CFR play the same game.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from equilibria.common.config import PositiveInt
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.debate import (
    PARTS,
    DebateRules,
    First,
    FirstParam,
    Judge,
    Sampler,
    check_sizes,
    gaussian_sampler,
    judge_scores,
    observation_parts,
    random_linear_judge,
    reveal,
    to_move,
    verdict,
)
from equilibria.games.markov import ArraySimulator, MarkovGame, StepResult
from equilibria.games.registry import register
from equilibria.games.spaces import Discrete, Group


class BatchedDebate(MarkovGame):
    """E debates at once (see the module docstring): cases drawn per episode from `sampler`
    (rng, n) -> (x [n, F], a [n, 2]); one group "debaters" of 2 slots (slot 0 defends a1);
    both slots active at every step, the waiting one with a single pass action."""

    masks_actions = True

    def __init__(self, sampler: Sampler, judge: Judge, num_features: int, num_decisions: int,
                 num_arguments: int = 6, first: First = "random", tie_tol: float = 1e-9,
                 parameters: Mapping[str, Any] | None = None):
        if not callable(sampler):
            raise ValueError("debate: the sampler must be a callable (rng, n) -> (x [n, F], a [n, 2])")
        self.sampler = sampler
        self.rules = r = DebateRules(judge, int(num_features), int(num_decisions), int(num_arguments), first,
                                     float(tie_tol))
        self.groups = (Group("debaters", 2, r.observation_space(), Discrete(r.num_features)),)
        self.state_shape = (2 * r.num_features + 2 * r.num_decisions + 2,)
        self.max_steps = r.num_arguments
        self.size_estimate = SizeEstimate(bytes_per_env=8.0 * (4 * r.num_features + 2 * r.num_arguments + 8)
                                          + 2 * 4.0 * (3 * r.num_features + 2 * r.num_decisions + 2))
        self.info = GameInfo(
            name="debate_batched", num_players=2, dynamics="simultaneous", chance=True, information="perfect",
            utility="zero_sum", min_utility=-1.0, max_utility=1.0, max_game_length=r.num_arguments,
            num_distinct_actions=r.num_features, sampled_chance=True, reward_model="terminal",
            parameters=dict(parameters) if parameters is not None else {
                "num_features": r.num_features, "num_decisions": r.num_decisions,
                "num_arguments": r.num_arguments, "first": first},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> DebateSimulator:
        return DebateSimulator(self, num_envs, seed)


class DebateSimulator(ArraySimulator):
    """StepResult.info: "mover" [E] the slot that revealed at this step, "ended" [E] where a debate
    ended at this step, "judge_scores" [E, 2] (s1, s2) where it ended (0 elsewhere), "payoff" [E]
    slot 0's payoff where it ended; all taken before the auto-reset."""

    state_keys = ("x", "a", "mask", "first", "order")
    game: BatchedDebate

    def _allocate(self) -> None:
        r, e = self.game.rules, self.num_envs
        self.x = np.zeros((e, r.num_features))
        self.a = np.zeros((e, 2), dtype=np.int64)
        self.mask = np.zeros((e, r.num_features), dtype=bool)
        self.first = np.zeros(e, dtype=np.int64)
        self.order = np.full((e, r.num_arguments), -1, dtype=np.int64)
        self._info: dict[str, np.ndarray] = {}

    def _reset_envs(self, idx: np.ndarray) -> None:
        r = self.game.rules
        x, a = self.game.sampler(self.rng, len(idx))
        x, a = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.int64)
        if x.shape != (len(idx), r.num_features) or a.shape != (len(idx), 2):
            raise ValueError(f"debate: the sampler must return x [{len(idx)}, {r.num_features}] and a [{len(idx)}, 2], "
                             f"got {x.shape} and {a.shape}")
        if np.any((a < 0) | (a >= r.num_decisions)) or not np.all(np.isfinite(x)):
            raise ValueError(f"debate: sampled decisions must lie in [0, {r.num_decisions}) and x be finite")
        self.x[idx], self.a[idx] = x, a
        self.mask[idx] = False
        self.first[idx] = r.draw_first(self.rng, len(idx))
        self.order[idx] = -1

    def _count(self) -> np.ndarray:
        return self.mask.sum(1)

    def active(self) -> dict[str, np.ndarray]:
        return {"debaters": np.ones((self.num_envs, 2), dtype=bool)}

    def action_mask(self) -> dict[str, np.ndarray]:
        free = ~self.mask
        mover = to_move(self.first, self._count())
        out = np.zeros((self.num_envs, 2, self.game.rules.num_features), dtype=bool)
        rows = np.arange(self.num_envs)
        out[rows, mover] = free
        out[rows, 1 - mover, np.argmax(free, axis=1)] = True  # the waiting slot's single pass action
        return {"debaters": out}

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        r, rows = self.game.rules, np.arange(self.num_envs)
        count = self._count()
        mover = to_move(self.first, count)
        chosen = np.asarray(actions["debaters"], dtype=np.int64)[rows, mover]
        self.mask = reveal(self.mask, chosen)
        self.order[rows, count] = chosen
        ended = count + 1 >= r.num_arguments
        rewards = np.zeros((self.num_envs, 2))
        scores = np.zeros((self.num_envs, 2))
        payoff = np.zeros(self.num_envs)
        idx = np.flatnonzero(ended)
        if len(idx):
            s1, s2 = judge_scores(r.judge, self.x[idx], self.mask[idx], self.a[idx, 0], self.a[idx, 1])
            payoff[idx] = verdict(s1, s2, r.tie_tol)
            scores[idx] = np.stack([s1, s2], axis=1)
            rewards[idx, 0], rewards[idx, 1] = payoff[idx], -payoff[idx]
        self._info = {"mover": mover, "ended": ended, "judge_scores": scores, "payoff": payoff}
        return {"debaters": rewards}, ended

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        res = super().step(actions, autoreset)
        res.info.update(self._info)
        return res

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        r = self.game.rules
        count = self._count()
        mover = to_move(self.first, count)
        sides = [observation_parts(r, self.x, self.mask, self.a, s, count, mover == s) for s in (0, 1)]
        return {"debaters": {k: np.stack([sides[0][k], sides[1][k]], axis=1) for k in PARTS}}

    def global_state(self) -> np.ndarray:
        """[E, 2F + 2D + 2]: x, the revealed mask, one-hots of a1 and a2, progress, 1 where slot 0 moves."""
        r = self.game.rules
        count = self._count()
        eye = np.eye(r.num_decisions)
        return np.concatenate([self.x, self.mask, eye[self.a[:, 0]], eye[self.a[:, 1]],
                               (count / r.num_arguments)[:, None],
                               (to_move(self.first, count) == 0)[:, None]], axis=1).astype(np.float32)


@register("debate_batched")
def debate_batched(num_features: PositiveInt = 8, num_decisions: PositiveInt = 4, num_arguments: PositiveInt = 3,
                   first: FirstParam = "random", seed: int = 0) -> BatchedDebate:
    """Debate as a batched Markov game for self-play debaters: fresh random cases per episode, a linear judge.

    Cases are N(0, 1) features with two distinct decisions, the judge is drawn from `seed`."""
    check_sizes(num_features, num_decisions, num_arguments)
    judge = random_linear_judge(num_features, num_decisions, np.random.default_rng(seed))
    params = {"num_features": num_features, "num_decisions": num_decisions, "num_arguments": num_arguments,
              "first": first, "seed": seed}
    return BatchedDebate(gaussian_sampler(num_features, num_decisions), judge, num_features, num_decisions,
                         num_arguments, first, parameters=params)


__all__ = ["BatchedDebate", "DebateSimulator", "debate_batched"]
