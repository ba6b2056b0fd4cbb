"""Lifelong multi-agent pathfinding on a grid (POGEMA's `on_target="restart"`), natively batched.

N agents on a grid with obstacles each walk to their own target; an agent that reaches it gets
reward 1 and a new target, drawn uniformly from the free cells of its connected component
(never its own cell), so the episode never ends before the horizon. The score users of lifelong
MAPF compare is the average throughput: targets reached per step, summed over agents
(`game.report_metric` turns the mean return per agent into it).

Moves: wait, up, down, left, right (POGEMA's order). Collisions are POGEMA's "soft" rules,
reproduced step for step (tests/test_mapf.py, and the differential test against POGEMA 1.4.0 in
benchmarks/pogema.py): a move into an obstacle, a swap, a move into a cell another agent also
enters or whose occupant stays put all leave the agent where it was, and a blocked agent blocks
whoever wanted its cell; where several agents want one free cell, the lowest-numbered one enters.

Observation per agent (float32 [3, 2r+1, 2r+1], r = obs_radius): obstacles (outside the map: a
wall around it, then free cells, as POGEMA draws it), agents (itself included), and its target, or
the target's projection onto the window's border when it is farther than r.

Maps (games.mapf_maps): `random` (POGEMA's generator: the same seed gives POGEMA's map, starts
and first targets), `maze`, or a MovingAI `.map` (shipped name or path). Each episode draws its
task from the simulator's seeded stream; `Simulator.load_task` fixes one instead (an obstacle
grid, starts and each agent's target sequence), which is how a run is replayed in POGEMA.

The step and the observation are numba kernels over [E, N] arrays, linear in the number of
agents; target draws are vectorised over the agents that arrived.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numba import njit

from equilibria.common.config import PositiveInt, Probability
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.mapf_maps import components, load_map, make_task, place_agents
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)  # wait, up, down, left, right
_LIST_CAP = 8  # agents that can name one cell in a step: 4 neighbours moving in, its occupant, a revert


class LifelongMAPF(MarkovGame):
    def __init__(self, num_agents: int = 64, size: int = 32, density: float = 0.3, obs_radius: int = 5,
                 max_steps: int = 256, map: str = "random", openness: float = 0.2, height: int | None = None,
                 width: int | None = None):
        self._args = {"num_agents": num_agents, "size": size, "density": density, "obs_radius": obs_radius,
                      "max_steps": max_steps, "map": map, "openness": openness, "height": height, "width": width}
        if (height is None) != (width is None):
            raise ValueError("lifelong_mapf: give both height and width (or size)")
        if map in ("random", "maze"):
            self.height, self.width = (height, width) if height is not None else (size, size)
        elif height is not None:
            raise ValueError(f"lifelong_mapf: map {map!r} has its own size; height and width are for random or maze")
        else:
            self.height, self.width = load_map(map).shape
            place_agents(load_map(map), num_agents, 0)  # a fixed map too small for its agents fails here
        self.num_agents, self.size, self.density = num_agents, size, density
        self.obs_radius, self.max_steps, self.map, self.openness = obs_radius, max_steps, map, openness
        if num_agents > self.height * self.width:
            raise ValueError(f"lifelong_mapf: {num_agents} agents do not fit a {self.height}x{self.width} map")
        d = 2 * obs_radius + 1
        self.groups = (Group("agents", num_agents, Box((3, d, d), "grid"), Discrete(5)),)
        self.state_shape = (2 * self.height * self.width,)
        self.size_estimate = mapf_size(num_agents, size, obs_radius, self.height, self.width)
        self.report_metric = ("average throughput", num_agents / max_steps)
        params = {"num_agents": num_agents, "map": map, "obs_radius": obs_radius, "max_steps": max_steps}
        if map in ("random", "maze") and height is None:
            params["size"] = size
        elif map in ("random", "maze"):
            params["height"], params["width"] = height, width
        if map == "random":
            params["density"] = density
        if map == "maze":
            params["openness"] = openness
        self.info = GameInfo(
            name="lifelong_mapf", num_players=num_agents, dynamics="simultaneous", chance=True,
            information="imperfect", utility="general", min_utility=0.0, max_utility=float(max_steps),
            max_game_length=max_steps, num_distinct_actions=5, utility_sum=None, sampled_chance=True,
            reward_model="step", parameters=params,
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> LifelongMAPFSimulator:
        return LifelongMAPFSimulator(self, num_envs, seed)

    def variant(self, num_agents: int | None = None, map: str | None = None) -> LifelongMAPF:
        """The same game with another agent count or map source (a MovingAI map brings its size)."""
        args = dict(self._args, num_agents=num_agents or self.num_agents, map=map or self.map)
        if args["map"] not in ("random", "maze"):
            args["height"] = args["width"] = None
        return LifelongMAPF(**args)

    def animation(self, record: dict, title: str = "") -> str:
        """An animated SVG of a recorded episode (games.mapf_render)."""
        from equilibria.games.mapf_render import episode_svg

        return episode_svg(record, title)

    def make_task(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obstacles [H, W], starts [N, 2], first targets [N, 2]) of the episode with this seed."""
        return make_task(self.map, seed, self.num_agents, self.height, self.width, self.density, self.openness)


class LifelongMAPFSimulator(ArraySimulator):
    """Public arrays (padded coordinates: the map sits at offset r inside a frame of width r,
    cells are flat indices row * padded_width + column): `grid` [E, cells] obstacles, `occupant`
    [E, cells] the agent on each cell or -1, `pos` and `target` [E, N], and `task_id` [E], which
    changes whenever an environment gets a new map or task. Planners read these."""

    state_keys = ("grid", "occupant", "pos", "target", "comp_cells", "comp_start", "comp_size", "seq", "seq_len",
                  "seq_idx", "episode_seed", "draws", "task_id")
    game: LifelongMAPF

    def _allocate(self) -> None:
        g, e, n, r = self.game, self.num_envs, self.game.num_agents, self.game.obs_radius
        self.padded_height, self.padded_width = g.height + 2 * r, g.width + 2 * r
        cells = self.padded_height * self.padded_width
        self.deltas = MOVES[:, 0] * self.padded_width + MOVES[:, 1]
        self.grid = np.zeros((e, cells), dtype=np.int8)
        self.occupant = np.full((e, cells), -1, dtype=np.int32)
        self.pos = np.zeros((e, n), dtype=np.int64)
        self.target = np.zeros((e, n), dtype=np.int64)
        self.comp_cells = np.zeros((e, g.height * g.width), dtype=np.int64)
        self.comp_start = np.zeros((e, cells), dtype=np.int64)
        self.comp_size = np.zeros((e, cells), dtype=np.int64)
        self.seq = np.zeros((e, n, 1), dtype=np.int64)  # explicit target sequences (load_task)
        self.seq_len = np.zeros(e, dtype=np.int64)  # 0: targets are drawn
        self.seq_idx = np.zeros((e, n), dtype=np.int64)
        self.episode_seed = np.zeros(e, dtype=np.int64)
        self.draws = np.zeros((e, n), dtype=np.int64)  # targets drawn per agent this episode
        self.task_id = np.zeros(e, dtype=np.int64)  # bumped whenever an environment gets a new map (planners watch it)
        self._count = np.zeros(cells, dtype=np.int64)  # kernel scratch, all zero between calls
        self._items = np.zeros((cells, _LIST_CAP), dtype=np.int64)

    # -- coordinates ----------------------------------------------------------------------
    def to_cell(self, rc: np.ndarray) -> np.ndarray:
        """(row, column) on the map -> flat padded cell index."""
        r = self.game.obs_radius
        rc = np.asarray(rc, dtype=np.int64)
        return (rc[..., 0] + r) * self.padded_width + rc[..., 1] + r

    def to_rc(self, cell: np.ndarray) -> np.ndarray:
        """Flat padded cell index -> (row, column) on the map."""
        r = self.game.obs_radius
        cell = np.asarray(cell, dtype=np.int64)
        return np.stack([cell // self.padded_width - r, cell % self.padded_width - r], axis=-1)

    def obstacles(self, env: int = 0) -> np.ndarray:
        """The map of environment `env` (int8 [H, W], 1 = obstacle)."""
        r, g = self.game.obs_radius, self.game
        return self.grid[env].reshape(self.padded_height, self.padded_width)[r:r + g.height, r:r + g.width].copy()

    # -- tasks ----------------------------------------------------------------------------
    def _reset_envs(self, idx: np.ndarray) -> None:
        for e in idx:
            seed = int(self.rng.integers(2**31 - 1))
            obstacles, starts, targets = self.game.make_task(seed)
            self._install(int(e), obstacles, starts, targets[:, None, :])
            self.episode_seed[e] = seed

    def load_task(self, obstacles: np.ndarray, starts: np.ndarray, targets: np.ndarray, env: int = 0) -> None:
        """Fix environment `env`'s episode: the obstacle grid [H, W], starts [N, 2] and targets
        [N, K, 2], each agent's target sequence (cycled when it runs out); its clock restarts."""
        g = self.game
        obstacles, starts, targets = np.asarray(obstacles), np.asarray(starts), np.asarray(targets)
        if obstacles.shape != (g.height, g.width):
            raise ValueError(f"obstacles must have shape {(g.height, g.width)}, got {obstacles.shape}")
        if starts.shape != (g.num_agents, 2) or targets.ndim != 3 or targets.shape[::2] != (g.num_agents, 2) \
                or targets.shape[1] < 1:
            raise ValueError(f"starts must be [{g.num_agents}, 2] and targets [{g.num_agents}, K >= 1, 2]")
        obstacles = (obstacles != 0).astype(np.int8)
        cells = np.concatenate([starts[:, None, :], targets], axis=1)  # every agent's start, then its targets
        inside = (cells >= 0).all(-1) & (cells[..., 0] < g.height) & (cells[..., 1] < g.width)
        if not inside.all():
            agent, k = np.argwhere(~inside)[0]
            raise ValueError(f"agent {agent}: {'start' if k == 0 else f'target {k - 1}'} {cells[agent, k].tolist()} "
                             f"lies outside the {g.height}x{g.width} map")
        comps = components(obstacles)
        comp = comps[0][cells[..., 0], cells[..., 1]]
        if (comp == 0).any():
            agent, k = np.argwhere(comp == 0)[0]
            raise ValueError(f"agent {agent}: {'start' if k == 0 else f'target {k - 1}'} {cells[agent, k].tolist()} "
                             "is an obstacle")
        if (comp != comp[:, :1]).any():
            agent, k = np.argwhere(comp != comp[:, :1])[0]
            raise ValueError(f"agent {agent}: target {k - 1} {cells[agent, k].tolist()} cannot be reached from its "
                             "start (another connected component)")
        if len({tuple(c) for c in starts.tolist()}) != g.num_agents:
            raise ValueError("starts must be distinct cells")
        self._install(env, obstacles, starts, targets, comps, explicit=True)
        self.t[env] = 0

    def _install(self, e: int, obstacles: np.ndarray, starts: np.ndarray, targets: np.ndarray,
                 comps: tuple[np.ndarray, np.ndarray] | None = None, explicit: bool = False) -> None:
        g, r = self.game, self.game.obs_radius
        ph, pw = self.padded_height, self.padded_width
        # POGEMA's frame (empty_outside): free cells, then a wall right around the map
        padded = np.zeros((ph, pw), dtype=np.int8)
        padded[r - 1, r - 1:pw - r + 1] = padded[ph - r, r - 1:pw - r + 1] = 1
        padded[r - 1:ph - r + 1, r - 1] = padded[r - 1:ph - r + 1, pw - r] = 1
        padded[r:r + g.height, r:r + g.width] = obstacles
        self.grid[e] = padded.ravel()
        labels, sizes = comps if comps is not None else components(obstacles)
        order = np.argsort(labels.ravel(), kind="stable")
        inner = self.to_cell(np.stack(np.unravel_index(order, labels.shape), axis=-1))
        self.comp_cells[e] = inner
        starts_of = np.concatenate([[0], np.cumsum(sizes)])[:-1]
        flat = self.to_cell(np.stack(np.indices(labels.shape), axis=-1).reshape(-1, 2))
        self.comp_start[e], self.comp_size[e] = 0, 0
        self.comp_start[e, flat] = starts_of[labels.ravel()]
        self.comp_size[e, flat] = np.where(labels.ravel() > 0, sizes[labels.ravel()], 0)
        self.occupant[e] = -1
        self.pos[e] = self.to_cell(starts)
        self.occupant[e, self.pos[e]] = np.arange(g.num_agents)
        self.draws[e] = 0
        self._installed = getattr(self, "_installed", 0) + 1  # never reset: a new map never reuses an id
        self.task_id[e] = self._installed
        k = targets.shape[1]
        if explicit:
            if self.seq.shape[2] < k:
                self.seq = np.concatenate([self.seq, np.zeros((*self.seq.shape[:2], k - self.seq.shape[2]),
                                                              dtype=np.int64)], axis=2)
            self.seq[e, :, :k] = self.to_cell(targets)
            self.seq_len[e] = k
        else:
            self.seq_len[e] = 0
        self.seq_idx[e] = 0
        self.target[e] = self.to_cell(targets[:, 0])

    def _new_targets(self, env: np.ndarray, agent: np.ndarray) -> None:
        """Next targets of the agents that just arrived: from their sequence, or drawn uniformly
        from their component's other cells."""
        listed = self.seq_len[env] > 0
        if listed.any():
            e, a = env[listed], agent[listed]
            self.seq_idx[e, a] = (self.seq_idx[e, a] + 1) % self.seq_len[e]
            self.target[e, a] = self.seq[e, a, self.seq_idx[e, a]]
        e, a = env[~listed], agent[~listed]
        here = self.pos[e, a]
        size = self.comp_size[e, here]
        # uniform over the component minus the agent's own cell: draw among size - 1 and skip it. The
        # draw is a hash of (episode seed, agent, draw count), so an environment's targets do not
        # depend on how many environments share the simulator or what the others do
        k = (_uniform(self.episode_seed[e], a, self.draws[e, a]) * np.maximum(size - 1, 1)).astype(np.int64)
        self.draws[e, a] += 1
        start = self.comp_start[e, here]
        drawn = self.comp_cells[e, start + k]
        self.target[e, a] = np.where(drawn == here, self.comp_cells[e, start + size - 1], drawn)

    # -- dynamics -------------------------------------------------------------------------
    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        soft_step(self.grid, self.occupant, self.pos, actions["agents"], self.deltas, self._count, self._items)
        arrived = self.pos == self.target
        if arrived.any():
            self._new_targets(*np.nonzero(arrived))
        return {"agents": arrived.astype(np.float64)}, np.zeros(self.num_envs, dtype=bool)

    def _observe(self) -> dict[str, np.ndarray]:
        d = 2 * self.game.obs_radius + 1
        out = np.empty((self.num_envs, self.game.num_agents, 3, d, d), dtype=np.float32)
        observe(self.grid, self.occupant, self.pos, self.target, self.padded_width, self.game.obs_radius, out)
        return {"agents": out}

    def global_state(self) -> np.ndarray:
        g, r = self.game, self.game.obs_radius
        shape = (self.num_envs, self.padded_height, self.padded_width)
        inner = (slice(None), slice(r, r + g.height), slice(r, r + g.width))
        obstacles = self.grid.reshape(shape)[inner]
        agents = (self.occupant >= 0).reshape(shape)[inner]
        return np.concatenate([obstacles.reshape(self.num_envs, -1), agents.reshape(self.num_envs, -1)],
                              axis=1).astype(np.float32)


def _uniform(seed: np.ndarray, agent: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers from (seed, agent, draw) triples: splitmix64 over a mixed key."""
    with np.errstate(over="ignore"):
        x = (seed.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + agent.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)
             + draw.astype(np.uint64) * np.uint64(0x8CB92BA72F3D8DD7) + np.uint64(0x632BE59BD9B4E019))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


@njit(cache=True)
def _remove(items, count, cell, agent):
    n = count[cell]
    for k in range(n):
        if items[cell, k] == agent:
            for m in range(k, n - 1):
                items[cell, m] = items[cell, m + 1]
            count[cell] = n - 1
            return


@njit(cache=True)
def _append(items, count, cell, agent):
    items[cell, count[cell]] = agent
    count[cell] += 1


@njit(cache=True)
def soft_step(grid, occupant, pos, actions, deltas, count, items):
    """POGEMA's soft collision system, in its order of operations, for every environment: every
    agent names its target cell; the lower-numbered agent of each swapping pair stays; then, from
    the highest-numbered agent down, one whose cell is an obstacle or named by another agent stays,
    and staying hands the block on to the first agent that named its own cell (a chain)."""
    n_env, n = pos.shape
    act = np.empty(n, dtype=np.int64)
    for e in range(n_env):
        for i in range(n):
            act[i] = actions[e, i]
            _append(items, count, pos[e, i] + deltas[act[i]], i)
        for i in range(n):  # swaps
            if act[i] != 0:
                j = occupant[e, pos[e, i] + deltas[act[i]]]
                if j > i and act[j] != 0 and pos[e, j] + deltas[act[j]] == pos[e, i]:
                    _remove(items, count, pos[e, i] + deltas[act[i]], i)
                    _append(items, count, pos[e, i], i)
                    act[i] = 0
        for i in range(n - 1, -1, -1):
            cell = pos[e, i] + deltas[act[i]]
            if count[cell] > 1 or grid[e, cell] != 0:
                agent = i
                while True:  # the revert chain
                    act[agent] = 0
                    _remove(items, count, cell, agent)
                    own = pos[e, agent]
                    if count[own] > 0:
                        _append(items, count, own, agent)
                        agent = items[own, 0]
                        cell = own
                    else:
                        _append(items, count, own, agent)
                        break
        for i in range(n):  # clear the scratch lists, then move
            count[pos[e, i]] = 0
            count[pos[e, i] + deltas[actions[e, i]]] = 0
        for i in range(n):
            if act[i] != 0:
                occupant[e, pos[e, i]] = -1
        for i in range(n):
            if act[i] != 0:
                pos[e, i] += deltas[act[i]]
                occupant[e, pos[e, i]] = i


@njit(cache=True)
def observe(grid, occupant, pos, target, width, r, out):
    n_env, n = pos.shape
    d = 2 * r + 1
    for e in range(n_env):
        for i in range(n):
            pr, pc = pos[e, i] // width, pos[e, i] % width
            for a in range(d):
                base = (pr - r + a) * width + pc - r
                for b in range(d):
                    out[e, i, 0, a, b] = grid[e, base + b]
                    out[e, i, 1, a, b] = 1.0 if occupant[e, base + b] >= 0 else 0.0
                    out[e, i, 2, a, b] = 0.0
            dx = min(max(pr - target[e, i] // width, -r), r)
            dy = min(max(pc - target[e, i] % width, -r), r)
            out[e, i, 2, r - dx, r - dy] = 1.0


def mapf_size(num_agents: int = 64, size: int = 32, obs_radius: int = 5, height: int | None = None,
              width: int | None = None, **_: object) -> SizeEstimate:
    """Per environment: observations [N, 3, d, d] float32, padded grid arrays (int8 obstacles,
    int32 occupants, two int64 component tables, and the step kernel's int64 scratch lists of 9
    per cell, shared by the environments but counted for each), agent arrays."""
    h, w = height or size, width or size
    cells = (h + 2 * obs_radius) * (w + 2 * obs_radius)
    d = 2 * obs_radius + 1
    return SizeEstimate(bytes_per_env=num_agents * (3 * d * d * 4 + 48) + cells * (1 + 4 + 16 + 72) + h * w * 8)


@register("lifelong_mapf", size=lambda num_agents=64, size=32, obs_radius=5, height=None, width=None, **_:
          mapf_size(num_agents, size, obs_radius, height, width),
          example="lifelong_mapf(num_agents=16, size=12, max_steps=48)")
def lifelong_mapf(num_agents: PositiveInt = 64, size: PositiveInt = 32, density: Probability = 0.3,
                  obs_radius: PositiveInt = 5, max_steps: PositiveInt = 256, map: str = "random",
                  openness: Probability = 0.2, height: PositiveInt | None = None, width: PositiveInt | None = None,
                  on_target: Literal["restart"] = "restart") -> LifelongMAPF:
    """Lifelong multi-agent pathfinding (POGEMA's rules): targets restart on arrival; random
    (POGEMA's generator), maze or MovingAI maps; throughput is the score."""
    return LifelongMAPF(num_agents, size, density, obs_radius, max_steps, map, openness, height, width)
