"""Rule-based controllers for lifelong MAPF, the baselines of an evaluation grid: a random walk,
the Follower's planner alone (with or without its dynamic and static costs) and PIBT.

A controller acts for every agent of a batch of environments at once from the simulator's arrays
(its map, positions and targets: the planners are given the map, as the Follower's is) and is
evaluated like a learner (`evaluation_returns`), so `kind: evaluate` runs it batched, locally or
as a Ray task. Registered in marl.controllers under `mapf_random`, `mapf_planner`, `pibt`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from equilibria.games.lifelong_mapf import LifelongMAPF, LifelongMAPFSimulator
from equilibria.marl.controllers import register_controller
from equilibria.marl.mapf.planner import BatchPlanner, PlannerConfig, move_towards

Chooser = Callable[[LifelongMAPFSimulator], Callable[[], np.ndarray]]


def mapf_episodes(game: LifelongMAPF, episodes: int, seed: int, make_choose: Chooser) -> np.ndarray:
    """[episodes]: targets reached per agent in each of `episodes` fresh episodes stepped at once,
    the actions [E, N] from `make_choose(sim)()` at every step."""
    sim = game.simulator(episodes, seed)
    choose = make_choose(sim)
    totals = np.zeros((episodes, game.num_agents))
    for _ in range(game.max_steps):
        totals += sim.step({"agents": choose()}, autoreset=False).rewards["agents"]
    return totals.mean(axis=1)


def record_mapf_episode(game: LifelongMAPF, seed: int, make_choose: Chooser) -> dict[str, Any]:
    """One episode (the first of `mapf_episodes(game, 1, seed, ...)`) with every step's positions
    and targets, for games.mapf_render.episode_svg."""
    sim = game.simulator(1, seed)
    choose = make_choose(sim)
    positions, targets, reached = [sim.to_rc(sim.pos[0])], [sim.to_rc(sim.target[0])], []
    for _ in range(game.max_steps):
        res = sim.step({"agents": choose()}, autoreset=False)
        positions.append(sim.to_rc(sim.pos[0]))
        targets.append(sim.to_rc(sim.target[0]))
        reached.append(int(res.rewards["agents"][0].sum()))
    return {"obstacles": sim.obstacles(0), "positions": np.stack(positions), "targets": np.stack(targets),
            "reached": reached}


class _Controller:
    def __init__(self, game: LifelongMAPF):
        if not isinstance(game, LifelongMAPF):
            raise ValueError(f"MAPF controllers act in lifelong_mapf games, not {game.info.name}")
        self.game = game

    def chooser(self, sim: LifelongMAPFSimulator, seed: int) -> Callable[[], np.ndarray]:
        raise NotImplementedError

    def evaluation_returns(self, episodes: int = 32, seed: int = 10_000, deterministic: bool = True) -> np.ndarray:
        return mapf_episodes(self.game, episodes, seed, lambda sim: self.chooser(sim, seed))

    def record_episode(self, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        return record_mapf_episode(self.game, seed, lambda sim: self.chooser(sim, seed))


@register_controller("mapf_random", description="uniformly random moves (lifelong MAPF)")
class RandomWalk(_Controller):
    def chooser(self, sim: LifelongMAPFSimulator, seed: int) -> Callable[[], np.ndarray]:
        rng = np.random.default_rng([seed, 1])
        return lambda: rng.integers(0, 5, size=sim.pos.shape)


@register_controller("mapf_planner", description="the Follower's A* planner alone: step to the path's next cell")
class PlannerOnly(_Controller):
    def __init__(self, game: LifelongMAPF, static_cost: bool = True, dynamic_cost: bool = True,
                 max_expansions: int = 10_000):
        super().__init__(game)
        for name, value in (("static_cost", static_cost), ("dynamic_cost", dynamic_cost)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
        if isinstance(max_expansions, bool) or not isinstance(max_expansions, int) \
                or not 1 <= max_expansions <= 1_000_000:
            raise ValueError(f"max_expansions must be an integer in [1, 1000000], got {max_expansions!r}")
        self.config = PlannerConfig(static_cost=static_cost, dynamic_cost=dynamic_cost, max_expansions=max_expansions)

    def chooser(self, sim: LifelongMAPFSimulator, seed: int) -> Callable[[], np.ndarray]:
        planner = BatchPlanner(sim, self.config)
        return lambda: planner.actions(planner.plan())


@register_controller("pibt", description="PIBT (Okumura et al. 2022): priority inheritance with backtracking, "
                                         "one step at a time, centralised")
class PIBT(_Controller):
    """Each step, agents in order of priority (steps since their last new target, ties broken
    by a fixed random order) claim the neighbouring cell closest to their target; an agent whose
    cell is claimed must move away first (it inherits the priority), and backtracks to its next
    choice when that agent cannot. The moves it returns have no vertex or swap conflicts, so the
    soft collision rules execute them all."""

    def chooser(self, sim: LifelongMAPFSimulator, seed: int) -> Callable[[], np.ndarray]:
        e_count, n = sim.pos.shape
        offsets = np.array([0, -sim.padded_width, sim.padded_width, -1, 1], dtype=np.int64)
        # the planner's distance tables (unit steps), kept per target and map by the planner itself
        distances = BatchPlanner(sim, PlannerConfig(static_cost=False, dynamic_cost=False))
        rng = np.random.default_rng([seed, 2])
        tie = rng.random((e_count, n)) / n  # fixed tie-break, below one step of priority
        elapsed = np.zeros((e_count, n))
        task = sim.task_id.copy()

        def choose() -> np.ndarray:
            nonlocal elapsed
            dist = distances.heuristics()
            new_task = sim.task_id != task  # a new map: priorities start over
            elapsed[new_task] = 0.0
            task[:] = sim.task_id
            nxt = np.empty_like(sim.pos)
            for e in range(e_count):
                nxt[e] = _pibt_step(sim.pos[e], sim.occupant[e], sim.grid[e], dist[e], offsets, elapsed[e] + tie[e])
            actions = move_towards(nxt - sim.pos, sim.padded_width)
            arrives = nxt == sim.target
            elapsed = np.where(arrives, 0.0, elapsed + 1.0)
            return actions

        return choose


def _pibt_step(pos: np.ndarray, occupant: np.ndarray, grid: np.ndarray, dist: np.ndarray, offsets: np.ndarray,
               priority: np.ndarray) -> np.ndarray:
    """One PIBT step for one environment: next cells [N]."""
    n = len(pos)
    nxt = np.full(n, -1, dtype=np.int64)
    claimed: dict[int, int] = {}

    def pibt(i: int, parent: int) -> bool:
        candidates = [c for c in pos[i] + offsets if grid[c] == 0]
        candidates.sort(key=lambda c: dist[i, c])
        for c in candidates:
            if c in claimed:
                continue
            j = int(occupant[c])
            if j >= 0 and j != i and nxt[j] == pos[i]:  # a swap (with the agent that pushed us)
                continue
            nxt[i] = c
            claimed[c] = i
            if j >= 0 and j != i and nxt[j] == -1 and not pibt(j, i):
                continue
            return True
        nxt[i] = pos[i]
        claimed[int(pos[i])] = i
        return False

    if sys.getrecursionlimit() < 2 * n + 100:  # a chain of pushes can pass through every agent
        sys.setrecursionlimit(2 * n + 100)
    for i in np.argsort(-priority, kind="stable"):
        if nxt[i] == -1:
            pibt(int(i), -1)
    return nxt
