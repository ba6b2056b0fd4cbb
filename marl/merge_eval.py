"""Evaluation of merge policies (games.merge, games.merge_highway) on paired episodes.

Episode k of seed s is `draw_episode(default_rng([s, k]))`, so every policy, safety setting and
simulator (the twin or highway-env) meets the same vehicles. All episodes run at once, one
environment each, until they end (a crash, every CAV gone, or 100 decisions). Per episode:

- `return`: the mean return per CAV over the CAVs that took part (every learner's definition);
- `collision`: 1 if a CAV crashed; `collisions_per_step`: crashed CAVs per decision (the released
  code's collision rate);
- `speed`: the CAVs' mean speed over their active decisions [m/s];
- `merge_success`: of the CAVs that started on the ramp and whose merge was decided (they reached
  the main road, or crashed), the fraction that reached it and did not crash by the episode's
  end (nan when none was decided: the episode ended first);
- `headway`: the CAVs' mean time headway [s] (the reward's headway distance over own speed), over
  the decisions with a vehicle ahead within the 60 m headway cap; `replaced`: safety-module
  replacements per decision.
`headways` (a list, when given) receives each of those time headways, for distributions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from equilibria.games.merge import MAX_CAVS, MergeGame, draw_episode
from equilibria.games.merge_dynamics import CRASHED, LANE, MAIN_BC, MAIN_CD, V
from equilibria.games.merge_safety import on_ramp, time_headway
from equilibria.marl.controllers import register_controller
from equilibria.marl.runtime import mean_over_present

Choose = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]]  # (obs, active) -> actions


def paired_episodes(game: MergeGame, episodes: int, seed: int) -> list[list[tuple[int, int, float, float]]]:
    return [draw_episode(np.random.default_rng([seed, k]), game.density, game.heterogeneous) for k in range(episodes)]


def paired_simulator(game: MergeGame, episodes: int, seed: int, **kwargs: Any) -> Any:
    """A simulator of `episodes` environments, environment k holding episode k of `seed`."""
    sim = game.simulator(episodes, seed, **kwargs)
    for e, vehicles in enumerate(paired_episodes(game, episodes, seed)):
        sim.load_episode(e, vehicles)
    return sim


def evaluate_merge(game: MergeGame, choose: Choose, episodes: int = 20, seed: int = 10_000,
                   headways: list[float] | None = None, frames: list[np.ndarray] | None = None,
                   render_episode: int = 0) -> dict[str, np.ndarray]:
    """The measures above for `episodes` paired episodes; `frames` (highway-env simulators built
    with render_mode='rgb_array') receives the frames of episode `render_episode`."""
    sim = paired_simulator(game, episodes, seed, **({"render_mode": "rgb_array"} if frames is not None else {}))
    obs, active = sim.observe(), sim.active()
    running = np.ones(episodes, dtype=bool)
    totals = np.zeros((episodes, MAX_CAVS))
    took_part = np.zeros((episodes, MAX_CAVS), dtype=bool)
    started_on_ramp = np.array([[on_ramp(sim.S[e, i, LANE]) for i in range(MAX_CAVS)] for e in range(episodes)]) \
        & active["cavs"]
    merged = np.zeros((episodes, MAX_CAVS), dtype=bool)
    crashed_cavs = np.zeros(episodes)
    decisions = np.zeros(episodes)
    speed_sum, speed_n = np.zeros(episodes), np.zeros(episodes)
    headway_sum, headway_n = np.zeros(episodes), np.zeros(episodes)
    replaced = np.zeros(episodes)
    if frames is not None:
        frames.append(sim.render(render_episode))
    while running.any():
        acting = active["cavs"] & running[:, None]
        for e in np.flatnonzero(running):
            for i in np.flatnonzero(acting[e]):
                h = time_headway(sim.F, sim.S, e, i)
                if np.isfinite(h):
                    headway_sum[e] += h
                    headway_n[e] += 1
                    if headways is not None:
                        headways.append(float(h))
        speed_sum += np.where(acting, sim.F[:, :MAX_CAVS, V], 0.0).sum(1)
        speed_n += acting.sum(1)
        actions = choose(obs, active)
        res = sim.step(actions, autoreset=False)
        if frames is not None and running[render_episode]:
            frames.append(sim.render(render_episode))
        took_part |= acting
        totals += np.where(running[:, None], res.rewards["cavs"], 0.0)
        lanes = sim.S[:, :MAX_CAVS, LANE]
        merged |= acting & ((lanes == MAIN_BC) | (lanes == MAIN_CD))
        crashed_cavs += np.where(running, sim.events["crashes"], 0)
        replaced += np.where(running, sim.events["replaced"], 0)
        decisions += running
        running &= ~res.done
        obs, active = res.obs, res.active
    crashed = sim.S[:, :MAX_CAVS, CRASHED] == 1
    decided = started_on_ramp & (merged | crashed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"return": mean_over_present(totals, took_part),
                "collision": (crashed_cavs > 0).astype(float),
                "collisions_per_step": crashed_cavs / decisions,
                "speed": speed_sum / np.maximum(speed_n, 1),
                "merge_success": np.where(decided.any(1), (decided & merged & ~crashed).sum(1)
                                          / np.maximum(decided.sum(1), 1), np.nan),
                "headway": np.where(headway_n > 0, headway_sum / np.maximum(headway_n, 1), np.nan),
                "replaced": replaced / decisions}


class MergeEvaluation:
    """A choose function evaluated on one merge game (a trained policy's `on_game`, a controller)."""

    def __init__(self, game: MergeGame, choose: Choose):
        if not isinstance(game, MergeGame):
            raise ValueError(f"merge policies act in merge or merge_highway games, not {game.info.name}")
        self.game, self.choose = game, choose

    def evaluation_metrics(self, episodes: int = 20, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        return evaluate_merge(self.game, self.choose, episodes, seed)

    def evaluation_returns(self, episodes: int = 20, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return self.evaluation_metrics(episodes, seed, deterministic)["return"]


@register_controller("merge_idle", description="merge: every CAV keeps its lane and speed (IDLE), "
                                               "merging only where its lane ends")
def merge_idle(game: MergeGame) -> MergeEvaluation:
    return MergeEvaluation(game, lambda obs, active: {"cavs": np.ones(active["cavs"].shape, dtype=np.int64)})


def save_gif(frames: list[np.ndarray], path: Any, fps: int = 5) -> None:
    """An animated GIF of RGB frames (Pillow, which matplotlib already requires)."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=True)
