"""The Follower's heuristic path planner (Skrynnik et al., AAAI 2024), batched over agents.

Each agent plans on its known map (here the whole obstacle map, as the authors' code gives it)
with A*, every step, from its cell to its target. Entering a cell costs
  static part:  max_c avgdist(c) / avgdist(n), where avgdist(n) is the mean shortest-path
                distance from n to every other reachable cell (central cells cost more, so
                paths spread out; 1 everywhere without the static cost), plus
  dynamic part: how many times the agent has seen another agent on n since it got its current
                target (congestion it has observed; reset with each new target).
The heuristic is the static-cost distance to the target (Dijkstra from the target when the
target changes), computed as the authors' update_h_values does: summing the penalties of the
cells from the target outward, it counts the start cell's penalty instead of the target's, so it
can overestimate by that difference (the authors' planner, not an admissible one). The path's next cell is the
agent's sub-goal. A budget of node expansions per agent and step caps the work; an agent whose
search runs out steps to the neighbour with the smallest cost plus heuristic.

Arrays follow games.lifelong_mapf's padded flat cells; everything is numba, one call per step for
every environment and agent.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

INF = np.float32(1e9)
_NEIGHBOURS = 4


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    static_cost: bool = True
    """the static cost (cells central to the map cost more)"""
    dynamic_cost: bool = True
    """the dynamic cost (cells where other agents were seen cost more)"""
    max_expansions: int = 10_000
    """A* node expansions per agent and step before it falls back to a greedy step"""
    path_cells: int = 16
    """how many cells of each path are kept (for drawing into observations)"""


class BatchPlanner:
    """Planner state for E environments x N agents of one lifelong_mapf simulator."""

    def __init__(self, sim, config: PlannerConfig = PlannerConfig()):  # noqa: B008  (frozen dataclass)
        self.sim, self.config = sim, config
        e, n = sim.pos.shape
        cells = sim.grid.shape[1]
        self.offsets = np.array([-sim.padded_width, sim.padded_width, -1, 1], dtype=np.int64)  # up, down, left, right
        self.penalty = np.ones((e, cells), dtype=np.float32)
        self.h = np.full((e, n, cells), INF, dtype=np.float32)
        self.h_goal = np.full((e, n), -1, dtype=np.int64)
        # congestion counts only where the dynamic cost uses them (the kernels never touch them otherwise)
        self.seen = np.zeros((e, n, cells if config.dynamic_cost else 1), dtype=np.float32)
        self.seen_goal = np.full((e, n), -1, dtype=np.int64)
        self.path = np.full((e, n, config.path_cells), -1, dtype=np.int64)
        self.path_len = np.zeros((e, n), dtype=np.int64)
        self.expansions = np.zeros((e, n), dtype=np.int64)
        r, g = sim.game.obs_radius, sim.game
        rows, cols = np.indices((g.height, g.width))
        self.inner = ((rows + r) * sim.padded_width + cols + r).ravel()
        self.map_of = np.full(e, -1, dtype=np.int64)  # which task (sim.task_id) each environment's tables belong to
        self.refresh()

    def refresh(self) -> None:
        """Recompute static penalties where an environment started a new episode (a new map)."""
        sim = self.sim
        stale = np.flatnonzero(self.map_of != sim.task_id)
        for e in stale:
            if self.config.static_cost:
                self.penalty[e] = static_penalty(sim.grid[e], self.offsets, self.inner)
            self.h_goal[e] = -1
            self.seen_goal[e] = -1
            self.map_of[e] = sim.task_id[e]

    def heuristics(self) -> np.ndarray:
        """[E, N, cells]: every agent's static-cost distance table to its current target (unit
        steps without the static cost), recomputed only for new targets and new maps."""
        sim = self.sim
        self.refresh()
        refresh_heuristics(sim.grid, sim.target, self.penalty, self.h, self.h_goal, self.offsets,
                           self.config.static_cost)
        return self.h

    def plan(self) -> np.ndarray:
        """Plan every agent's path from the simulator's current state; returns the sub-goal
        cells [E, N] (the agent's own cell when it has no path)."""
        sim, c = self.sim, self.config
        self.heuristics()
        plan_all(sim.grid, sim.occupant, sim.pos, sim.target, self.penalty, self.h, self.h_goal, self.seen,
                 self.seen_goal, self.offsets, sim.padded_width, sim.game.obs_radius, c.static_cost, c.dynamic_cost,
                 c.max_expansions, self.path, self.path_len, self.expansions)
        return np.where(self.path_len > 1, self.path[:, :, 1], sim.pos)

    def actions(self, subgoal: np.ndarray) -> np.ndarray:
        """The move (games.lifelong_mapf.MOVES index) from each agent's cell to its sub-goal."""
        delta = subgoal - self.sim.pos
        return move_towards(delta, self.sim.padded_width)


def move_towards(delta: np.ndarray, width: int) -> np.ndarray:
    """Cell differences (flat) -> the MOVES index: 0 wait, 1 up, 2 down, 3 left, 4 right."""
    out = np.zeros(delta.shape, dtype=np.int64)
    out[delta == -width], out[delta == width], out[delta == -1], out[delta == 1] = 1, 2, 3, 4
    return out


@njit(cache=True)
def _bfs_mean_distance(grid, offsets, source, dist, queue):
    dist[:] = -1
    dist[source] = 0
    head, tail = 0, 1
    queue[0] = source
    total, count = 0.0, 0
    while head < tail:
        u = queue[head]
        head += 1
        for k in range(_NEIGHBOURS):
            v = u + offsets[k]
            if grid[v] == 0 and dist[v] < 0:
                dist[v] = dist[u] + 1
                total += dist[v]
                count += 1
                queue[tail] = v
                tail += 1
    return total / count if count > 0 else 0.0


@njit(cache=True)
def static_penalty(grid, offsets, inner):
    """max avgdist / avgdist(c) on the map's free cells `inner` (1 elsewhere): the authors'
    static cost; the free frame beyond the wall around the map takes no part."""
    cells = grid.shape[0]
    out = np.ones(cells, dtype=np.float32)
    mean = np.zeros(cells, dtype=np.float64)
    dist = np.empty(cells, dtype=np.int64)
    queue = np.empty(cells, dtype=np.int64)
    best = 0.0
    for c in inner:
        if grid[c] == 0:
            mean[c] = _bfs_mean_distance(grid, offsets, c, dist, queue)
            best = max(best, mean[c])
    for c in inner:
        if grid[c] == 0 and mean[c] > 0:
            out[c] = best / mean[c]
    return out


# a binary min-heap on (f, g) with lazy deletion, in three parallel arrays
@njit(cache=True)
def _push(hf, hg, hc, size, f, g, c):
    if size >= hf.shape[0]:  # never reached with the capacity plan_all gives; a guard, not a code path
        return size
    i = size
    hf[i], hg[i], hc[i] = f, g, c
    while i > 0:
        p = (i - 1) // 2
        if hf[p] > hf[i] + 1e-5 or (abs(hf[p] - hf[i]) < 1e-5 and hg[p] > hg[i]):
            hf[p], hf[i] = hf[i], hf[p]
            hg[p], hg[i] = hg[i], hg[p]
            hc[p], hc[i] = hc[i], hc[p]
            i = p
        else:
            break
    return size + 1


@njit(cache=True)
def _pop(hf, hg, hc, size):
    f, g, c = hf[0], hg[0], hc[0]
    size -= 1
    hf[0], hg[0], hc[0] = hf[size], hg[size], hc[size]
    i = 0
    while True:
        left, right, m = 2 * i + 1, 2 * i + 2, i
        if left < size and (hf[left] < hf[m] - 1e-5 or (abs(hf[left] - hf[m]) < 1e-5 and hg[left] < hg[m])):
            m = left
        if right < size and (hf[right] < hf[m] - 1e-5 or (abs(hf[right] - hf[m]) < 1e-5 and hg[right] < hg[m])):
            m = right
        if m == i:
            break
        hf[m], hf[i] = hf[i], hf[m]
        hg[m], hg[i] = hg[i], hg[m]
        hc[m], hc[i] = hc[i], hc[m]
        i = m
    return f, g, c, size


@njit(cache=True)
def distances_to(grid, offsets, penalty, use_static, goal, h, hf, hg, hc):
    """h[c] = cheapest static cost from c to goal (cost of a step = the entered cell's penalty)."""
    h[:] = INF
    h[goal] = 0.0
    size = _push(hf, hg, hc, 0, np.float32(0.0), np.float32(0.0), goal)
    while size > 0:
        f, g, u, size = _pop(hf, hg, hc, size)
        if f > h[u]:
            continue
        for k in range(_NEIGHBOURS):
            v = u + offsets[k]
            step = penalty[v] if use_static else np.float32(1.0)  # as the authors' update_h_values
            if grid[v] == 0 and h[v] > f + step:
                h[v] = f + step
                size = _push(hf, hg, hc, size, h[v], h[v], v)


@njit(cache=True)
def refresh_heuristics(grid, target, penalty, h, h_goal, offsets, use_static):
    """h[e, i] = distances to target[e, i] wherever the agent's target changed since h_goal."""
    cells = grid.shape[1]
    hf = np.empty(4 * cells + 8, dtype=np.float32)
    hg = np.empty(4 * cells + 8, dtype=np.float32)
    hc = np.empty(4 * cells + 8, dtype=np.int64)
    for e in range(target.shape[0]):
        for i in range(target.shape[1]):
            if h_goal[e, i] != target[e, i]:
                distances_to(grid[e], offsets, penalty[e], use_static, target[e, i], h[e, i], hf, hg, hc)
                h_goal[e, i] = target[e, i]


@njit(cache=True)
def plan_all(grid, occupant, pos, target, penalty, h, h_goal, seen, seen_goal, offsets, width, radius,
             use_static, use_dynamic, max_expansions, path, path_len, expansions):
    """Every environment, its agents in turn. Serial on purpose: numba's threads (prange) made
    one uncontended process 1.6x faster but an evaluation grid 3-5x slower wherever another
    process or Ray worker shared the cores (spinning threads oversubscribe them)."""
    for e in range(pos.shape[0]):
        _plan_env(e, grid, occupant, pos, target, penalty, h, h_goal, seen, seen_goal, offsets, width, radius,
                  use_static, use_dynamic, max_expansions, path, path_len, expansions)


@njit(cache=True)
def _plan_env(e, grid, occupant, pos, target, penalty, h, h_goal, seen, seen_goal, offsets, width, radius,
              use_static, use_dynamic, max_expansions, path, path_len, expansions):
    n = pos.shape[1]
    cells = grid.shape[1]
    # heap room: A* (whose heuristic, as the authors', need not be consistent) pushes at most 4
    # cells per expansion, and expansions are capped
    cap = 4 * (max(cells, max_expansions) + 2)
    hf = np.empty(cap, dtype=np.float32)
    hg = np.empty(cap, dtype=np.float32)
    hc = np.empty(cap, dtype=np.int64)
    g = np.empty(cells, dtype=np.float32)
    parent = np.empty(cells, dtype=np.int64)
    stamp = np.zeros(cells, dtype=np.int64)
    tick = 0
    keep = path.shape[2]
    for i in range(n):
        start, goal = pos[e, i], target[e, i]  # h[e, i] is up to date (refresh_heuristics)
        if use_dynamic:
            if seen_goal[e, i] != goal:
                seen[e, i, :] = 0.0
                seen_goal[e, i] = goal
            pr, pc = start // width, start % width
            for a in range(-radius, radius + 1):
                for b in range(-radius, radius + 1):
                    c = (pr + a) * width + pc + b
                    if c != start and occupant[e, c] >= 0:
                        seen[e, i, c] += 1.0
        # A* from start to goal
        tick += 1
        stamp[start] = tick
        g[start] = 0.0
        parent[start] = -1
        size = _push(hf, hg, hc, 0, h[e, i, start], np.float32(0.0), start)
        found = start == goal
        spent = 0
        while size > 0 and not found:
            f, gu, u, size = _pop(hf, hg, hc, size)
            if gu > g[u]:
                continue
            if u == goal:
                found = True
                break
            spent += 1
            if spent > max_expansions:
                break
            for k in range(_NEIGHBOURS):
                v = u + offsets[k]
                if grid[e, v] != 0:
                    continue
                cost = penalty[e, v] if use_static else np.float32(1.0)
                if use_dynamic:
                    cost += seen[e, i, v]
                if stamp[v] != tick or g[v] > gu + cost:
                    stamp[v] = tick
                    g[v] = gu + cost
                    parent[v] = u
                    size = _push(hf, hg, hc, size, g[v] + h[e, i, v], g[v], v)
        expansions[e, i] = spent
        if found and goal != start:
            length = 0  # walk back from the goal: count, then fill the first `keep` cells
            c = goal
            while c != -1:
                length += 1
                c = parent[c]
            c = goal
            for k in range(length - 1, -1, -1):
                if k < keep:
                    path[e, i, k] = c
                c = parent[c]
            path_len[e, i] = min(length, keep)
        elif h[e, i, start] < INF and goal != start:  # out of budget: one greedy step
            best, best_c = INF, start
            for k in range(_NEIGHBOURS):
                v = start + offsets[k]
                if grid[e, v] == 0:
                    cost = (penalty[e, v] if use_static else np.float32(1.0)) + h[e, i, v]
                    if use_dynamic:
                        cost += seen[e, i, v]
                    if cost < best:
                        best, best_c = cost, v
            path[e, i, 0], path[e, i, 1] = start, best_c
            path_len[e, i] = 2
        else:
            path[e, i, 0] = start
            path_len[e, i] = 1
