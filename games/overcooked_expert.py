"""`OvercookedPlanner`: a scripted expert for Overcooked (games.overcooked), for demonstrations.

Each step it reads the world (chef positions, orientations, what they hold, the pots, objects on
counters) from the simulator's state, gives each chef a goal, and moves both chefs with one
centralised plan:

- goals: a chef holding a soup serves it; holding a dish, it waits at the pot while the soup
  cooks and takes it when ready; holding an onion, it puts it in a pot that takes one (else it
  waits nearby); empty-handed, it starts a full pot, picks up a soup lying on a counter, or fetches
  what the team lacks. Chef 1 (who starts by the onions) fetches onions, and one more to hold while
  a soup cooks; chef 0 (who starts by the dishes) brings an onion while the pot still needs one
  beyond chef 1's, otherwise fetches the dish (chef 1 does when chef 0's hands are full). When
  both chefs would only wait (two dishes and an empty pot, after random play), one puts what it
  holds on a counter. A goal is a cell and the direction to face (the tile to interact with),
  weighted 1, or a place to wait, weighted 0.1.
- moves: value iteration over the joint positions and orientations of both chefs (576 states x
  25 joint moves on cramped_room, the package's collision rule included), minimising the
  discounted weighted count of chefs not yet at their goals; a chef at its goal interacts (or
  waits) and the other moves around it. Planning jointly means the chefs never block each other
  for good: a waiting chef steps aside when the other needs its cell. Value tables are cached per
  pair of goals.

With probability `epsilon` a chef's action is a uniformly random move (one of the four moves or
stay; never a random interact, which could drop a soup on a counter or start a pot too early), so
recorded episodes differ. On cramped_room it delivers 12 soups per 400 steps greedily, 11 with the
default 5% random moves.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from equilibria.games.core import State
from equilibria.games.experts import register_expert
from equilibria.games.markov import MarkovState
from equilibria.games.overcooked import (
    DIRS,
    DISH,
    FLOOR,
    NONE,
    ONION,
    POT,
    SOUP,
    Layout,
    Overcooked,
    OvercookedSimulator,
)

STAY, INTERACT = 4, 5
MOVES = (STAY, 0, 1, 2, 3)  # the joint search's move order: ties go to staying put
GAMMA, SWEEPS = 0.9, 80  # 0.9**80 ~ 2e-4: the values have converged for goals a few steps away
HARD, SOFT = 1.0, 0.1  # weights of a goal to reach and of a place to wait at
ONION_DISPENSER, DISH_DISPENSER, SERVING = 3, 5, 6  # terrain kinds (games.overcooked.TERRAIN)
Goal = tuple[int, int, float, bool]  # (floor cell index or -1, direction or -1, weight, interact when there)
IDLE: Goal = (-1, -1, 0.0, False)


class Kitchen:
    """A layout's floor graph and joint-move table, built once per layout."""

    def __init__(self, layout: Layout):
        self.layout = layout
        h, w = layout.shape
        self.cells = [(x, y) for y in range(h) for x in range(w) if layout.terrain[y, x] == FLOOR]
        self.index = {c: i for i, c in enumerate(self.cells)}
        n = self.n = len(self.cells)
        # one chef's move: (cell, dir, action) -> (cell, dir); into anything but floor it only turns
        step = np.zeros((n, 4, 5, 2), dtype=np.int64)
        for c, (x, y) in enumerate(self.cells):
            for d in range(4):
                for k, a in enumerate(MOVES):
                    if a == STAY:
                        step[c, d, k] = (c, d)
                        continue
                    target = (x + DIRS[a][0], y + DIRS[a][1])
                    step[c, d, k] = (self.index.get(target, c), a)
        self.step = step
        # joint moves with the package's collision rule: two chefs ending on one cell or swapping
        # cells both stay where they were (their new orientations stand)
        c0, d0, c1, d1 = np.meshgrid(np.arange(n), np.arange(4), np.arange(n), np.arange(4), indexing="ij")
        c0, d0, c1, d1 = (v.ravel() for v in (c0, d0, c1, d1))
        table = np.zeros((len(c0), 25), dtype=np.int64)
        for k0 in range(5):
            n0, o0 = step[c0, d0, k0, 0], step[c0, d0, k0, 1]
            for k1 in range(5):
                n1, o1 = step[c1, d1, k1, 0], step[c1, d1, k1, 1]
                clash = (n0 == n1) | ((n0 == c1) & (n1 == c0))
                n0c, n1c = np.where(clash, c0, n0), np.where(clash, c1, n1)
                table[:, k0 * 5 + k1] = self.joint(n0c, o0, n1c, o1)
        self.table = table
        # one chef's distances between (cell, dir) poses, the other chef ignored (BFS)
        poses = n * 4
        dist = np.full((poses, poses), 10**6, dtype=np.int64)
        for start in range(poses):
            dist[start, start], frontier = 0, [start]
            while frontier:
                nxt = []
                for p in frontier:
                    for k in range(1, 5):
                        q = int(step[p // 4, p % 4, k, 0] * 4 + step[p // 4, p % 4, k, 1])
                        if dist[start, q] > dist[start, p] + 1:
                            dist[start, q] = dist[start, p] + 1
                            nxt.append(q)
                frontier = nxt
        self.dist = dist
        # the poses (floor cell, direction) from which a chef interacts with each tile
        self.access: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for ty in range(h):
            for tx in range(w):
                if layout.terrain[ty, tx] != FLOOR:
                    self.access[(tx, ty)] = [(self.index[(tx - dx, ty - dy)], d) for d, (dx, dy) in enumerate(DIRS)
                                             if (tx - dx, ty - dy) in self.index]

    def joint(self, c0: Any, d0: Any, c1: Any, d1: Any) -> Any:
        return ((c0 * 4 + d0) * self.n + c1) * 4 + d1

    # a few dozen goal pairs occur on cramped_room; bounded for larger kitchens, whose tables are larger
    @functools.lru_cache(maxsize=256)  # noqa: B019  (one Kitchen per layout, kept for the process)
    def values(self, g0: Goal, g1: Goal) -> np.ndarray:
        """Discounted cost-to-go of every joint state for this pair of goals."""
        idx = np.arange(len(self.table))
        d1, rest = idx % 4, idx // 4
        c1, rest = rest % self.n, rest // self.n
        d0, c0 = rest % 4, rest // 4
        cost = np.zeros(len(idx))
        for (cell, direction, weight, _), c, d in ((g0, c0, d0), (g1, c1, d1)):
            if cell >= 0 and weight > 0:
                cost += weight * ((c != cell) | ((d != direction) & (direction >= 0)))
        v = np.zeros(len(idx))
        for _ in range(SWEEPS):
            v = cost + GAMMA * v[self.table].min(1)
        return v

    def nearest(self, pose: int, tiles: list[tuple[int, int]], avoid: int = -1) -> tuple[int, int] | None:
        """The access pose (cell, dir) of `tiles` closest to `pose` (cell * 4 + dir), steering
        clear of cell `avoid` (the other chef's goal); None when no tile is reachable."""
        best, best_cost = None, None
        for tile in tiles:
            for c, d in self.access.get(tile, []):
                cost = self.dist[pose, c * 4 + d] + (100 if c == avoid else 0)
                if cost < 10**6 and (best_cost is None or cost < best_cost):
                    best, best_cost = (c, d), cost
        return best


@functools.cache
def kitchen(layout: Layout) -> Kitchen:
    return Kitchen(layout)


def _pots(layout: Layout, cell: np.ndarray) -> list[tuple[tuple[int, int], str]]:
    """Each pot's tile and state: empty, filling, full (3 in, not started), cooking or ready."""
    out = []
    for x, y in layout.tiles[POT]:
        kind, on, to, tick = (int(v) for v in cell[y, x])
        if kind == NONE:
            out.append(((x, y), "empty"))
        elif tick < 0:
            out.append(((x, y), "full" if on + to >= 3 else "filling"))
        else:
            out.append(((x, y), "ready" if tick >= layout.cook_time[min(on, 3), min(to, 3)] else "cooking"))
    return out


def _on_counters(layout: Layout, cell: np.ndarray, kind: int) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for y, x in np.argwhere((cell[..., 0] == kind) & (layout.terrain == 1))]


def goals(k: Kitchen, pos: np.ndarray, ori: np.ndarray, held: np.ndarray, cell: np.ndarray) -> tuple[Goal, Goal]:
    """Both chefs' goals for one environment (see the module docstring). Chef 1 decides first;
    chef 0 decides knowing chef 1's choice, so they do not both fetch what is needed once."""
    layout = k.layout
    pose = [k.index[(int(pos[i, 0]), int(pos[i, 1]))] * 4 + int(ori[i]) for i in range(2)]
    hands = [int(held[i, 0]) for i in range(2)]
    pots = _pots(layout, cell)
    taking = [tile for tile, s in pots if s in ("empty", "filling")]
    in_pots = sum(int(cell[y, x, 1] + cell[y, x, 2]) for (x, y), s in pots if s in ("empty", "filling"))
    full = [tile for tile, s in pots if s == "full"]
    ready = [tile for tile, s in pots if s == "ready"]
    busy = [tile for tile, s in pots if s in ("cooking", "ready")]
    out: list[Goal] = [IDLE, IDLE]
    plans: list[str] = ["", ""]

    def goal(i: int, tiles: list[tuple[int, int]], weight: float = HARD, act: bool = True) -> Goal | None:
        other = out[1 - i][0]
        found = k.nearest(pose[i], tiles, avoid=other)
        return None if found is None else (found[0], found[1], weight, act)

    def wait_by_pot(i: int) -> Goal:
        g = goal(i, [t for t, _ in pots], SOFT, False)
        return g or IDLE

    for i in (1, 0):
        j, h = 1 - i, hands[i]
        g: Goal | None = None
        if h == SOUP:
            g, plans[i] = goal(i, layout.tiles[SERVING]), "serve"
        elif h == DISH:
            if ready:
                g = goal(i, ready)
            elif busy:
                g = goal(i, busy, HARD, False)  # at the pot, ready to take the soup the step it is done
        elif h == ONION:
            if taking:
                g = goal(i, taking)
            elif full and hands[j] != NONE:  # nobody could start the full pot: put the onion down
                g = goal(i, _empty_counters(layout, cell))
        elif h != NONE:  # anything else (a tomato) is in the way: onto a counter
            g = goal(i, _empty_counters(layout, cell))
        else:
            counted = in_pots + sum(hands[c] == ONION for c in range(2)) + (plans[j] == "onion")
            needed = 3 * len(taking) - counted if taking else 0
            have_dish = hands[j] == DISH or plans[j] == "dish"
            if full and plans[j] != "start":
                g, plans[i] = goal(i, full), "start"
            elif _on_counters(layout, cell, SOUP) and plans[j] != "loose soup":
                g, plans[i] = goal(i, _on_counters(layout, cell, SOUP)), "loose soup"
            elif needed > 0:
                g, plans[i] = goal(i, layout.tiles[ONION_DISPENSER] + _on_counters(layout, cell, ONION)), "onion"
            elif not have_dish and (busy or full or in_pots or hands[j] == ONION) and (i == 0 or hands[j] != NONE):
                # chef 0's job, or chef 1's when chef 0's hands are full
                g, plans[i] = goal(i, layout.tiles[DISH_DISPENSER] + _on_counters(layout, cell, DISH)), "dish"
            elif i == 1 and busy and hands[j] != ONION and plans[j] != "onion":
                g, plans[i] = goal(i, layout.tiles[ONION_DISPENSER] + _on_counters(layout, cell, ONION)), "onion"
        out[i] = g if g is not None else wait_by_pot(i)
    if out[0][2] < HARD and out[1][2] < HARD:
        # both waiting is a deadlock (two dishes and no onions, two onions and a soup nobody can take):
        # a chef puts down what it holds, and its empty hands get a job at the next step
        for i in (1, 0):
            if hands[i] not in (NONE, SOUP):
                g = goal(i, _empty_counters(layout, cell))
                if g is not None:
                    out[i] = g
                    break
    return out[0], out[1]


def _empty_counters(layout: Layout, cell: np.ndarray) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for y, x in np.argwhere((cell[..., 0] == NONE) & (layout.terrain == 1))]


def plan_env(k: Kitchen, pos: np.ndarray, ori: np.ndarray, held: np.ndarray, cell: np.ndarray) -> tuple[int, int]:
    """Both chefs' actions in one environment."""
    g = goals(k, pos, ori, held, cell)
    c = [k.index[(int(pos[i, 0]), int(pos[i, 1]))] for i in range(2)]
    there = [g[i][0] == c[i] and (g[i][1] < 0 or g[i][1] == int(ori[i])) and g[i][2] >= HARD for i in range(2)]
    acts = [INTERACT if there[i] and g[i][3] else STAY for i in range(2)]
    if all(there):
        return acts[0], acts[1]
    q = k.values(*g)[k.table[k.joint(c[0], int(ori[0]), c[1], int(ori[1]))]]  # [25] cost-to-go after each joint move
    choices = [(k0, k1) for k0 in range(5) for k1 in range(5)
               if (not there[0] or k0 == 0) and (not there[1] or k1 == 0)]  # a chef at its goal stays put
    best = min(q[k0 * 5 + k1] for k0, k1 in choices)
    k0, k1 = next(ch for ch in choices if q[ch[0] * 5 + ch[1]] <= best + 1e-9)
    return (acts[0] if there[0] else MOVES[k0]), (acts[1] if there[1] else MOVES[k1])


class OvercookedPlanner:
    """The scripted Overcooked expert as a Policy (see the module docstring)."""

    def __init__(self, epsilon: float = 0.05):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = epsilon
        self._last: tuple[Any, np.ndarray] | None = None  # (key, actions) of the last state planned

    def actions(self, sim: OvercookedSimulator) -> np.ndarray:
        """The planned (greedy) actions of every environment of `sim`: [E, 2]."""
        k = kitchen(sim.game.layout)
        return np.array([plan_env(k, sim.pos[e], sim.ori[e], sim.held[e], sim.cell[e]) for e in range(sim.num_envs)],
                        dtype=np.int64)

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if not isinstance(state, MarkovState) or not isinstance(state.game, Overcooked):
            raise ValueError("the Overcooked planner plays overcooked")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        sim = state.sim
        key = (id(sim), sim.pos.tobytes(), sim.ori.tobytes(), sim.held.tobytes(), sim.cell.tobytes())
        if self._last is None or self._last[0] != key:  # both chefs ask about the same state: plan once
            self._last = (key, self.actions(sim)[0])
        best = int(self._last[1][player])
        moves = [a for a in legal if a != INTERACT]
        probs = {a: (self.epsilon / len(moves) if a in moves else 0.0) for a in legal}
        probs[best] += 1.0 - self.epsilon
        return probs


def run_planner(game: Overcooked, episodes: int, seed: int = 0, epsilon: float = 0.0) -> np.ndarray:
    """Soups delivered in each of `episodes` episodes played in one batched simulator, with
    probability `epsilon` of a random move per chef and step (drawn from `seed`)."""
    sim, planner = game.simulator(episodes, seed), OvercookedPlanner(epsilon)
    rng = np.random.default_rng(seed)
    soups = np.zeros(episodes, dtype=np.int64)
    for _ in range(game.max_steps):  # every environment starts together and is truncated together
        acts = planner.actions(sim)
        noise = rng.random(acts.shape) < epsilon
        acts = np.where(noise, rng.integers(0, 5, acts.shape), acts)
        soups += sim.step({"agents": acts}).info["soups"]
    return soups


register_expert("overcooked_planner", "overcooked", OvercookedPlanner,
                "two chefs planned jointly: onions into the pot, start it, dish, serve (5% random moves)")

__all__ = ["Kitchen", "OvercookedPlanner", "goals", "kitchen", "plan_env", "run_planner"]
