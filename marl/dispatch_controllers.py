"""Rule-based controllers for ride dispatch, the baselines of an evaluation grid: the platform's
nearest-vehicle and greedy-by-reward scores (games.dispatch_platform.BASELINES) matched by the
same assignment as a learner's scores.

A controller scores every (vehicle, candidate order) pair of a batch of environments at once and
is evaluated like the OSPO learners, by the same function (`evaluate_scorer` below):
per episode the dispatch measures (served orders, total reward, pickup / confirmation / detour
minutes, income spread, ...) and "return", the mean return per vehicle that took part. So
`kind: evaluate` runs it batched, and `record_episode` draws its animation (games.dispatch_render).
Registered in marl.controllers under `dispatch_nearest` and `dispatch_greedy`; both rules are
deterministic, so `deterministic` changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from equilibria.games.dispatch import RideDispatch
from equilibria.games.dispatch_platform import BASELINES, Method, Platform, Scorer, record_episode, summarize
from equilibria.marl.controllers import register_controller
from equilibria.marl.runtime import mean_over_present


def evaluate_scorer(game: RideDispatch, scorer: Scorer | str, episodes: int = 32, seed: int = 10_000,
                    method: Method = "auto") -> dict[str, np.ndarray]:
    """Per episode of `episodes` fresh ones stepped at once through the platform with a scorer (a
    baseline's name or a function of the simulator): summarize()'s measures and "return", the
    mean return per vehicle over the vehicles that were active at some step
    (runtime.mean_over_present, every learner's evaluation return). The one evaluation of
    the dispatch controllers and the OSPO learners."""
    fn = BASELINES[scorer] if isinstance(scorer, str) else scorer
    sim, name, platform = game.simulator(episodes, seed), game.groups[0].name, Platform(method)
    totals = np.zeros((episodes, game.groups[0].size))
    present = np.zeros(totals.shape, dtype=bool)
    for _ in range(game.max_steps):
        present |= sim.active()[name]
        res = platform.step(sim, fn)
        totals += res.rewards[name]
    return {**summarize(res.info), "return": mean_over_present(totals, present)}


class _DispatchBaseline:
    rule: str  # a key of dispatch_platform.BASELINES

    def __init__(self, game: RideDispatch):
        if not isinstance(game, RideDispatch):
            raise ValueError(f"dispatch controllers act in ride_dispatch games, not {game.info.name}")
        self.game = game

    def evaluation_metrics(self, episodes: int = 32, seed: int = 10_000,
                           deterministic: bool = True) -> dict[str, np.ndarray]:
        return evaluate_scorer(self.game, self.rule, episodes, seed)

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return self.evaluation_metrics(episodes, seed, deterministic)["return"]

    def record_episode(self, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        return record_episode(self.game, self.rule, seed)


@register_controller("dispatch_nearest", description="ride dispatch: the nearest vehicle (least total pickup time, "
                                                     "as many orders served as the matching can)")
class DispatchNearest(_DispatchBaseline):
    rule = "nearest"


@register_controller("dispatch_greedy", description="ride dispatch: greedy by immediate reward (the step's total "
                                                    "reward maximised, orders worth less than nothing left)")
class DispatchGreedy(_DispatchBaseline):
    rule = "greedy"


__all__ = ["DispatchGreedy", "DispatchNearest", "evaluate_scorer"]
