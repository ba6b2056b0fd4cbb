"""Overcooked-AI as a Markov game: two chefs cook onion soups in a small kitchen.

Built on the `overcooked` package (0.2.x, a numpy-2 fork of HumanCompatibleAI's overcooked_ai):
its `OvercookedGridworld` holds the rules and steps the state (`get_state_transition`). Rules of
that version (cramped_room): a chef picks an onion from a dispenser, puts it in the pot (up to
3), and cooking starts only when an empty-handed chef interacts with a pot holding onions (a pot
started with fewer than 3 cooks a soup that pays nothing); the soup cooks 20 steps; a chef with a
dish takes it from the pot and delivers it at the serving window for 20. Moving into a tile that
is not floor only turns the chef; two chefs moving onto the same cell or through each other both
stay where they were.

One group "agents" of 2 slots; actions Discrete(6) in the package's order: north, south, east,
west, stay, interact. Each step both chefs receive the team's delivery reward (identical
interest); episodes are truncated at `horizon` (the package's dynamics never terminate).
`StepResult.info["soups"]` counts the soups delivered at that step that paid ([E]; a soup of a
recipe nobody ordered pays nothing); `report_metric` turns the mean return per agent into soups
per episode.

The simulator keeps the world as arrays (get_state/set_state copy them) and rebuilds the
package's state object for each transition: chef positions [E, 2, 2] (x, y), orientations
[E, 2], held objects [E, 2, 4] and objects on tiles [E, H, W, 4], an object being (kind,
onions, tomatoes, cooking tick) with kinds none, onion, tomato, dish, soup.

Observation ("features", 58 floats, from the chef's own perspective; offsets divided by the
layout's width and height): own position, orientation (4) and held object (5); the partner's
offset, orientation and held object; the nearest pot's offset, state (empty, filling, full,
cooking, ready), onions and tomatoes in it / 3 and cook time remaining / 20; offsets to the
nearest onion dispenser, tomato dispenser, dish dispenser and serving window; presence and offset
of the nearest onion, dish and soup lying on a counter; the tile faced (7 terrain kinds) and
whether it holds an object; the elapsed fraction of the horizon. The package's own
`featurize_state` is not used: it needs a planner pickled into site-packages and, in 0.2.1,
calls its motion planner with an argument that no longer exists. The global state is both
chefs' features.

`OvercookedPlanner` (games.overcooked_expert) is a scripted expert for demonstrations.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from equilibria.common.config import ConfigError, PositiveInt
from equilibria.games.core import GameInfo
from equilibria.games.markov import ArraySimulator, MarkovGame, StepResult
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

INSTALL = "pip install 'equilibria[overcooked]' && pip install --no-deps overcooked==0.2.1"
# object kinds in the arrays; terrain kinds in the order of the facing-tile one-hot
NONE, ONION, TOMATO, DISH, SOUP = range(5)
KIND_NAMES = (None, "onion", "tomato", "dish", "soup")
TERRAIN = (" ", "X", "P", "O", "T", "D", "S")  # floor, counter, pot, onion / tomato / dish dispenser, serving
FLOOR, COUNTER, POT = 0, 1, 2
DIRS = np.array([[0, -1], [0, 1], [1, 0], [-1, 0]], dtype=np.int64)  # north, south, east, west (the package's order)
_DIR_INDEX = {tuple(d): i for i, d in enumerate(DIRS.tolist())}
NUM_ACTIONS = 6  # the four moves, stay, interact
OBS_SIZE = 58


def package() -> Any:
    """The package's rules module, or a one-line ConfigError saying how to install it. Imported
    here, not at module import, so `import equilibria.games` works without the package."""
    try:
        from overcooked.mdp import overcooked_mdp
    except ImportError as err:
        missing = getattr(err, "name", None)
        why = "" if missing and missing.split(".")[0] == "overcooked" else f" ({str(err).splitlines()[0]})"
        raise ConfigError(f"overcooked() needs the overcooked package: {INSTALL}{why}") from None
    return overcooked_mdp


def layout_names() -> list[str]:
    """The layouts the package ships (its layout files are Python literals it evals, so only
    these names are ever read)."""
    from overcooked.static import LAYOUTS_DIR

    return sorted(f[: -len(".layout")] for f in os.listdir(LAYOUTS_DIR) if f.endswith(".layout"))


@dataclass(eq=False)  # hashed by identity: one per layout and process
class Layout:
    """A layout's rules object and the tables the simulator and the planner read, built once per
    process (building it configures the package's global Recipe class)."""

    name: str
    mdp: Any
    terrain: np.ndarray  # [H, W] index into TERRAIN
    tiles: dict[int, list[tuple[int, int]]]  # terrain kind -> its (x, y) tiles
    nearest: dict[int, np.ndarray]  # fixed terrain kind -> [H, W, 2] offset from each cell to the nearest tile
    nearest_pot: np.ndarray  # [H, W, 2] the nearest pot's (x, y)
    dist: np.ndarray  # [H*W, H*W] Manhattan distances between cells
    cook_time: np.ndarray  # [4, 4] cook time of a soup of (onions, tomatoes)
    static: np.ndarray  # [H*W, 4, OBS_SIZE] the features fixed by a chef's cell and orientation, zeros elsewhere
    faced: np.ndarray  # [H*W, 4] the cell index a chef on each cell faces in each orientation
    counters: np.ndarray  # [H, W] bool
    start: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # the start state as (pos, ori, held, cell)

    @property
    def shape(self) -> tuple[int, int]:
        return self.terrain.shape


@functools.cache
def load_layout(name: str) -> Layout:
    mod = package()
    if name not in layout_names():
        from equilibria.common.config import suggest

        raise ConfigError(f"overcooked: unknown layout {name!r}{suggest(name, layout_names())}")
    mdp = mod.OvercookedGridworld.from_layout_name(name)
    if mdp.num_players != 2:
        raise ConfigError(f"overcooked: layout {name!r} has {mdp.num_players} chefs; only 2-chef layouts are supported")
    terrain = np.array([[TERRAIN.index(c) for c in row] for row in mdp.terrain_mtx], dtype=np.int64)
    h, w = terrain.shape
    tiles = {k: [(int(x), int(y)) for y, x in np.argwhere(terrain == k)] for k in range(len(TERRAIN))}
    ys, xs = np.mgrid[0:h, 0:w]
    cells = np.stack([xs.ravel(), ys.ravel()], 1)
    dist = np.abs(cells[:, None, :] - cells[None, :, :]).sum(-1)

    def nearest_of(kind: int) -> np.ndarray:
        out = np.zeros((h, w, 2), dtype=np.int64)
        if tiles[kind]:
            where = np.array(tiles[kind])
            near = where[np.abs(cells[:, None, :] - where[None]).sum(-1).argmin(1)]  # [H*W, 2]
            out = (near - cells).reshape(h, w, 2)
        return out

    nearest = {k: nearest_of(k) for k in (POT, 3, 4, 5, 6)}
    nearest_pot = nearest[POT] + np.stack([xs, ys], -1)
    cook = np.zeros((4, 4), dtype=np.int64)
    for on in range(4):
        for to in range(4 - on):
            if on + to:
                cook[on, to] = mod.Recipe(["onion"] * on + ["tomato"] * to).time
    scale = np.array([w, h], dtype=np.float32)
    faced = np.zeros((h * w, 4), dtype=np.int64)
    static = np.zeros((h * w, 4, OBS_SIZE), dtype=np.float32)
    for c, (x, y) in enumerate(cells):
        for d in range(4):
            fx, fy = np.clip(x + DIRS[d][0], 0, w - 1), np.clip(y + DIRS[d][1], 0, h - 1)
            faced[c, d] = fy * w + fx
            row = static[c, d]
            row[0:2], row[2 + d] = (x, y) / scale, 1.0
            row[22:24] = nearest[POT][y, x] / scale
            row[32:40] = np.concatenate([nearest[k][y, x] for k in (3, 4, 5, 6)]) / np.tile(scale, 4)
            row[49 + terrain[fy, fx]] = 1.0
    pos, ori, held, cell = (np.zeros(s, dtype=np.int64) for s in ((1, 2, 2), (1, 2), (1, 2, 4), (1, h, w, 4)))
    encode(mdp.get_standard_start_state(), 0, pos, ori, held, cell)
    return Layout(name, mdp, terrain, tiles, nearest, nearest_pot, dist, cook, static, faced, terrain == COUNTER,
                  (pos[0], ori[0], held[0], cell[0]))


def recipes(layout: Layout) -> Any:
    """The package's Recipe class configured for `layout`. Its configuration is global to the
    process and every layout loaded sets it, so each use sets it back when another layout did."""
    recipe = package().Recipe
    if recipe._conf is not layout.mdp.recipe_config:
        recipe.configure(layout.mdp.recipe_config)
    return recipe


# ----------------------------------------------------------------------------- arrays <-> package state
def _encode_obj(obj: Any) -> tuple[int, int, int, int]:
    if obj is None:
        return (NONE, 0, 0, 0)
    if obj.name == "soup":
        names = obj.ingredients
        return (SOUP, names.count("onion"), names.count("tomato"), int(obj._cooking_tick))
    return (KIND_NAMES.index(obj.name), 0, 0, 0)


def encode(state: Any, e: int, pos: np.ndarray, ori: np.ndarray, held: np.ndarray, cell: np.ndarray) -> None:
    """Write the package's OvercookedState into row `e` of the arrays."""
    for i, p in enumerate(state.players):
        pos[e, i] = p.position
        ori[e, i] = _DIR_INDEX[p.orientation]
        held[e, i] = _encode_obj(p.held_object)
    cell[e] = 0
    for (x, y), obj in state.objects.items():
        cell[e, y, x] = _encode_obj(obj)


def _decode_obj(mod: Any, code: np.ndarray, where: tuple[int, int]) -> Any:
    kind = int(code[0])
    if kind == NONE:
        return None
    if kind != SOUP:
        return mod.ObjectState(KIND_NAMES[kind], where)
    parts = [mod.ObjectState("onion", where) for _ in range(int(code[1]))] + \
        [mod.ObjectState("tomato", where) for _ in range(int(code[2]))]
    return mod.SoupState(where, ingredients=parts, cooking_tick=int(code[3]))


def decode(layout: Layout, pos: np.ndarray, ori: np.ndarray, held: np.ndarray, cell: np.ndarray, t: int) -> Any:
    """The package's OvercookedState for one environment's arrays."""
    mod = package()
    players = []
    for i in range(2):
        where = (int(pos[i, 0]), int(pos[i, 1]))
        players.append(mod.PlayerState(where, tuple(int(d) for d in DIRS[ori[i]]), _decode_obj(mod, held[i], where)))
    objects = {}
    for y, x in np.argwhere(cell[..., 0] != NONE):
        objects[(int(x), int(y))] = _decode_obj(mod, cell[y, x], (int(x), int(y)))
    mdp = layout.mdp
    return mod.OvercookedState(players, objects, bonus_orders=mdp.start_bonus_orders, all_orders=mdp.start_all_orders,
                               timestep=t)


# ----------------------------------------------------------------------------- the game
class Overcooked(MarkovGame):
    def __init__(self, layout: str = "cramped_room", horizon: int = 400, obs: str = "features"):
        if horizon < 1:
            raise ValueError(f"overcooked: horizon must be >= 1, got {horizon}")
        if obs != "features":
            raise ValueError(f"overcooked: obs must be 'features', got {obs!r}")
        self.layout = load_layout(layout)
        self.max_steps = horizon
        self.groups = (Group("agents", 2, Box((OBS_SIZE,)), Discrete(NUM_ACTIONS)),)
        self.state_shape = (2 * OBS_SIZE,)
        mdp = self.layout.mdp
        recipe = recipes(self.layout)
        values = {recipe.from_dict(o).value for o in mdp.start_all_orders}
        # each soup pays every chef the same: per-agent return / value = soups (one recipe value, no bonus orders)
        if len(values) == 1 and not mdp.start_bonus_orders and min(values) > 0:
            self.delivery_reward = float(next(iter(values)))
            self.report_metric = ("soups", 1.0 / self.delivery_reward)
        # one pot can finish a soup at most every `cook time` steps (the fastest recipe's)
        quickest = int(self.layout.cook_time[self.layout.cook_time > 0].min())
        best = max(values)
        best *= max(mdp.order_bonus, 1) if mdp.start_bonus_orders else 1
        self.info = GameInfo(
            name="overcooked", num_players=2, dynamics="simultaneous", chance=False, information="imperfect",
            utility="identical", min_utility=0.0,
            max_utility=float(best * len(self.layout.tiles[POT]) * (horizon // max(quickest, 1) + 1)),
            max_game_length=horizon, num_distinct_actions=NUM_ACTIONS, utility_sum=None, sampled_chance=True,
            reward_model="step", parameters={"layout": layout, "horizon": horizon, "obs": obs},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> OvercookedSimulator:
        return OvercookedSimulator(self, num_envs, seed)


class OvercookedSimulator(ArraySimulator):
    """E environments, each stepped by the package's rules in a Python loop (see the module
    docstring for the arrays)."""

    state_keys = ("pos", "ori", "held", "cell")
    game: Overcooked

    def _allocate(self) -> None:
        e, (h, w) = self.num_envs, self.game.layout.shape
        self.pos = np.zeros((e, 2, 2), dtype=np.int64)
        self.ori = np.zeros((e, 2), dtype=np.int64)
        self.held = np.zeros((e, 2, 4), dtype=np.int64)
        self.cell = np.zeros((e, h, w, 4), dtype=np.int64)
        self.delivered = np.zeros(e, dtype=np.int64)
        self._cached: tuple[tuple[bytes, ...], np.ndarray] | None = None

    def _reset_envs(self, idx: np.ndarray) -> None:
        pos, ori, held, cell = self.game.layout.start  # the layout's fixed start: no draw from the RNG
        self.pos[idx], self.ori[idx], self.held[idx], self.cell[idx] = pos, ori, held, cell

    def overcooked_state(self, env: int = 0) -> Any:
        """Environment `env` as the package's OvercookedState (a new object; changing it changes nothing here)."""
        return decode(self.game.layout, self.pos[env], self.ori[env], self.held[env], self.cell[env], int(self.t[env]))

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        mdp = self.game.layout.mdp
        recipes(self.game.layout)
        everything = package().Action.ALL_ACTIONS
        team = np.zeros(self.num_envs)
        self.delivered = np.zeros(self.num_envs, dtype=np.int64)
        for e in range(self.num_envs):
            state = self.overcooked_state(e)
            joint = [everything[int(a)] for a in actions["agents"][e]]
            new, infos = mdp.get_state_transition(state, joint)
            encode(new, e, self.pos, self.ori, self.held, self.cell)
            team[e] = sum(infos["sparse_reward_by_agent"])
            self.delivered[e] = sum(r > 0 for r in infos["sparse_reward_by_agent"])  # soups that paid
        return {"agents": np.repeat(team[:, None], 2, axis=1)}, np.zeros(self.num_envs, dtype=bool)

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        res = super().step(actions, autoreset)
        res.info["soups"] = self.delivered.copy()
        return res

    def _observe(self) -> dict[str, np.ndarray]:
        # observe(), global_state() and step() all ask for the same features: computed once per state
        key = (self.pos.tobytes(), self.ori.tobytes(), self.held.tobytes(), self.cell.tobytes(), self.t.tobytes())
        if self._cached is None or self._cached[0] != key:
            obs = features(self.game.layout, self.pos, self.ori, self.held, self.cell, self.t / self.game.max_steps)
            self._cached = (key, obs)
        return {"agents": self._cached[1].copy()}


_EYE = {n: np.eye(n, dtype=np.float32) for n in (4, 5)}
_FAR = np.iinfo(np.int64).max


def features(layout: Layout, pos: np.ndarray, ori: np.ndarray, held: np.ndarray, cell: np.ndarray,
             elapsed: np.ndarray) -> np.ndarray:
    """[E, 2, OBS_SIZE] observations (see the module docstring), vectorised over environments:
    the part fixed by a chef's cell and orientation comes from a table, the rest is filled in."""
    e_count = len(pos)
    h, w = layout.shape
    scale = np.array([w, h], dtype=np.float32)
    envs = np.arange(e_count)[:, None]
    here = pos[..., 1] * w + pos[..., 0]  # [E, 2] cell index
    out = layout.static[here, ori]  # own position and orientation, pot and fixed tiles' offsets, tile faced
    out[..., 6:11] = _EYE[5][held[..., 0]]
    out[..., 11:13] = (pos[:, ::-1] - pos) / scale
    out[..., 13:17] = _EYE[4][ori[:, ::-1]]
    out[..., 17:22] = _EYE[5][held[:, ::-1, 0]]
    # the nearest pot's contents
    pot = layout.nearest_pot.reshape(-1, 2)[here]  # [E, 2, 2]
    soup = cell[envs, pot[..., 1], pot[..., 0]]  # [E, 2, 4]
    started = (soup[..., 0] == SOUP) & (soup[..., 3] >= 0)
    cook = layout.cook_time[np.minimum(soup[..., 1], 3), np.minimum(soup[..., 2], 3)]
    status = np.select([soup[..., 0] == NONE, started & (soup[..., 3] >= cook), started, soup[..., 1] + soup[..., 2] >= 3],
                       [0, 4, 3, 2], default=1)
    out[..., 24:29] = _EYE[5][status]
    out[..., 29:31] = soup[..., 1:3] / 3.0
    out[..., 31] = np.where(started, np.maximum(cook - soup[..., 3], 0), 0) / 20.0
    # the nearest onion, dish and soup lying on a counter
    d = layout.dist[here]  # [E, 2, H*W]
    for n, kind in enumerate((ONION, DISH, SOUP)):
        there = ((cell[..., 0] == kind) & layout.counters).reshape(e_count, 1, h * w)
        if not there.any():
            continue  # the table's zeros: nothing of this kind on a counter
        j = np.where(there, d, _FAR).argmin(-1)
        found = np.repeat(there.any(-1), 2, axis=1)  # [E, 2]
        col = 40 + 3 * n
        out[..., col] = found
        out[..., col + 1:col + 3] = np.stack([j % w - pos[..., 0], j // w - pos[..., 1]], -1) * found[..., None] / scale
    faced = layout.faced[here, ori]  # [E, 2] cell index of the tile faced
    out[..., 56] = cell.reshape(e_count, h * w, 4)[envs, faced, 0] != NONE
    out[..., 57] = np.asarray(elapsed, dtype=np.float32).reshape(-1, 1)
    return out


@register("overcooked", requires=("overcooked", "overcooked"), example="overcooked(horizon=100)")
def overcooked(layout: str = "cramped_room", horizon: PositiveInt = 400, obs: Literal["features"] = "features") -> Overcooked:
    """Overcooked-AI (the overcooked package): two chefs cook and serve onion soups; 20 to both per soup."""
    return Overcooked(layout, horizon, obs)


__all__ = ["OBS_SIZE", "Layout", "Overcooked", "OvercookedSimulator", "decode", "encode", "features", "load_layout",
           "package"]
