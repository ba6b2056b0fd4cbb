"""Cooperative on-ramp merging (MAPPO-PIS's scenario), natively batched: the twin of highway-env.

`games.load("merge(density=medium)")`: connected automated vehicles (CAVs, the agents) merge from
an on-ramp into a single-lane main road among human-driven vehicles (HDVs: IDM/MOBIL, plus one
aggressive vehicle on the ramp and one defensive vehicle on the main road, highway-env's
heterogeneous models). The road, the vehicle models and the meta-action controller are
highway-env 1.12's, ported to numba (games.merge_dynamics); games.merge_highway runs the same
episodes in highway-env itself, and a differential test holds the two together.

Settings from the paper's released code (merge_env_v1): 15 Hz simulation, 5 Hz decisions, 20 s
episodes (100 decisions); five meta-actions (LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER);
per-episode CAV and HDV counts by density (easy: 1-3 CAVs, 0-1 HDVs; medium: 2-4, 2-4;
hard: 3-6, 1-4) on spawn slots every 40 m (main road x = 10..210, ramp x = 5..205), speeds
U[25, 27] m/s; the per-CAV reward

    r_i = -200 crashed_i + clip((v_i - 10) / 20, 0, 1) + 4 c_merge,i + 4 min(0, log(h_i / (1.2 v_i)))

with c_merge,i = -exp(-(x_i - x_merge_end)^2 / (10 * 100)) on the merge lane and h_i the headway
(the code's: the x-gap to the nearest vehicle ahead on the CAV's lane or the next one, capped at
60 m); `reward="global"` (the code's default) gives every CAV the mean over the CAVs still
driving (the code averages over all controlled vehicles), `"regional"` the mean over itself and
the CAVs within `comm_range` along the road, `"own"` its own. An episode
ends when a CAV crashes (as in the code) or every CAV has left the road (x > 520 m); a CAV that
leaves is inactive from then on.

Observations are 5 rows of 10 features, flattened (as the released code's MLP reads Kinematics):
the CAV itself (distance to the merge end, y, velocity, target speed, whether it is still on the
ramp or merge lane), then the four nearest vehicles within 150 m, nearest first, relative
(presence, dx, dy, dvx, dvy, is-CAV); with `intents=True` a neighbouring CAV's row
also carries its shared intent, its planned positions 0.5 s and 1 s ahead relative to the observer
(games.merge_safety), for CAVs within `comm_range`.

`safety="shared"` or `"assume_idle"` puts MAPPO-PIS's safety-enhanced module between the policy and
the road (games.merge_safety): before each decision, CAVs predicted to crash within
`safety_horizon` seconds (the code's 1 s) have their meta-action replaced; `shared` predicts the
other CAVs with their chosen actions (shared intents), `assume_idle` with lane and speed kept.
`events["replaced"]` counts the replacements and `events["crashes"]` the CAVs that crashed at
the last decision.

The numba kernels bake the road and model constants of games.merge_dynamics into their cache
(`__pycache__/*.nbi`); after editing those constants, delete the merge caches.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from numba import njit
from pydantic import Field

from equilibria.common.config import PositiveFloat, PositiveInt
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.merge_dynamics import (
    AGGRESSIVE,
    CAV,
    CRASHED,
    DEFENSIVE,
    DT,
    IDM,
    KIND,
    LANE,
    MAIN_AB,
    MERGE_END,
    MERGE_LANE,
    NF,
    NS,
    RAMP_JK,
    RAMP_Y,
    ROAD_END,
    SIDX,
    TARGET_SPEEDS,
    TIMER,
    TLANE,
    TSPEED,
    H,
    V,
    X,
    Y,
    closest_lane,
    speed_to_index,
    step_batch,
)
from equilibria.games.merge_safety import INTENT_FRAMES, headway_distance, intents, on_ramp, safety_module
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

DENSITIES = {"easy": ((1, 3), (0, 1)), "medium": ((2, 4), (2, 4)), "hard": ((3, 6), (1, 4))}
MAIN_SLOTS = np.arange(10.0, 211.0, 40.0)
RAMP_SLOTS = np.arange(5.0, 206.0, 40.0)
MAX_CAVS = 6
MAX_VEHICLES = MAX_CAVS + 4 + 2  # CAV slots, then HDVs, the aggressive and the defensive vehicle
NEIGHBOURS = 4
OBS_FEATURES = 10
VIEW_RANGE = 150.0
REWARDS = ("global", "regional", "own")
SAFETY = ("off", "shared", "assume_idle")


def draw_episode(rng: np.random.Generator, density: str, heterogeneous: bool = True) -> list[tuple[int, int, float, float]]:
    """One episode's vehicles in road order: (kind, lane, x, speed), CAVs first. The twin and the
    highway-env adapter both build their episodes from this list."""
    (c_lo, c_hi), (h_lo, h_hi) = DENSITIES[density]
    n_cav, n_hdv = int(rng.integers(c_lo, c_hi + 1)), int(rng.integers(h_lo, h_hi + 1))
    slots = [(MAIN_AB, x) for x in MAIN_SLOTS] + [(RAMP_JK, x) for x in RAMP_SLOTS]
    if heterogeneous:
        aggressive = (RAMP_JK, float(rng.choice(RAMP_SLOTS)))
        defensive = (MAIN_AB, float(rng.choice(MAIN_SLOTS)))
        slots = [s for s in slots if s not in (aggressive, defensive)]
    order = rng.permutation(len(slots))[: n_cav + n_hdv]
    speeds = rng.uniform(25.0, 27.0, size=n_cav + n_hdv + 2)
    out = [(CAV if k < n_cav else IDM, slots[j][0], float(slots[j][1]), float(speeds[k])) for k, j in enumerate(order)]
    if heterogeneous:
        out += [(AGGRESSIVE, aggressive[0], aggressive[1], float(speeds[-2])),
                (DEFENSIVE, defensive[0], defensive[1], float(speeds[-1]))]
    return out


def clear_slots(F: np.ndarray, S: np.ndarray, e: int, kinds: list[int]) -> list[int]:
    """Empty environment e and return the slot of each vehicle of `kinds` (in road order): CAVs from
    slot 0, the others from MAX_CAVS, so CAV slots are the agents' slots."""
    F[e], S[e] = 0.0, -1
    S[e, :, 1:] = 0
    cavs = np.cumsum([k == CAV for k in kinds]) - 1
    others = MAX_CAVS + np.cumsum([k != CAV for k in kinds]) - 1
    return [int(c if k == CAV else o) for k, c, o in zip(kinds, cavs, others)]


def place(F: np.ndarray, S: np.ndarray, e: int, vehicles: list[tuple[int, int, float, float]]) -> None:
    """Write an episode into environment e's slots (clear_slots)."""
    lane_y = {MAIN_AB: 0.0, RAMP_JK: RAMP_Y}
    slots = clear_slots(F, S, e, [kind for kind, *_ in vehicles])
    for i, (kind, lane, x, v) in zip(slots, vehicles):
        y = lane_y[lane]
        F[e, i, X], F[e, i, Y], F[e, i, H], F[e, i, V] = x, y, 0.0, v
        S[e, i, KIND] = kind
        S[e, i, LANE] = S[e, i, TLANE] = closest_lane(x, y, 0.0)
        if kind == CAV:  # MDPVehicle: the target speed snaps to the nearest of TARGET_SPEEDS
            S[e, i, SIDX] = speed_to_index(v)
            F[e, i, TSPEED] = TARGET_SPEEDS[S[e, i, SIDX]]
        else:  # IDMVehicle: the target speed is the initial speed; the lane-change timer from the position
            F[e, i, TSPEED] = v
            F[e, i, TIMER] = ((x + y) * np.pi) % 1.0


@njit(cache=True)
def cav_rewards(F, S, active, crashed_now, out):
    """Each CAV's own reward (the paper's r_i) for the decision just taken; 0 where inactive."""
    for e in range(F.shape[0]):
        for i in range(F.shape[1]):
            out[e, i] = 0.0
            if not active[e, i]:
                continue
            v, x = F[e, i, V], F[e, i, X]
            r = -200.0 * crashed_now[e, i] + min(max((v - 10.0) / 20.0, 0.0), 1.0)
            if S[e, i, LANE] == MERGE_LANE:
                r += 4.0 * -np.exp(-((x - MERGE_END) ** 2) / (10.0 * 100.0))
            if v > 0:
                r += 4.0 * min(0.0, np.log(headway_distance(F, S, e, i) / (1.2 * v)))
            out[e, i] = r


@njit(cache=True)
def observe_kernel(F, S, active, plans, use_intents, comm_range, out):
    E, n = F.shape[0], F.shape[1]
    dist = np.empty(n)
    for e in range(E):
        for i in range(n):
            out[e, i] = 0.0
            if S[e, i, KIND] != CAV or not active[e, i]:
                continue
            x, y, v, h = F[e, i, X], F[e, i, Y], F[e, i, V], F[e, i, H]
            vx, vy = v * np.cos(h), v * np.sin(h)
            out[e, i, 0, 0] = 1.0
            out[e, i, 0, 1] = (x - MERGE_END) / 100.0
            out[e, i, 0, 2] = y / 10.0
            out[e, i, 0, 3] = vx / 30.0
            out[e, i, 0, 4] = vy / 30.0
            out[e, i, 0, 5] = 1.0
            out[e, i, 0, 6] = F[e, i, TSPEED] / 30.0
            out[e, i, 0, 7] = 1.0 if on_ramp(S[e, i, LANE]) else 0.0
            out[e, i, 0, 8] = 1.0 if S[e, i, TLANE] == MERGE_LANE else 0.0
            for j in range(n):
                dist[j] = np.inf
                if j != i and S[e, j, KIND] >= 0 and F[e, j, X] <= ROAD_END:
                    d = np.sqrt((F[e, j, X] - x) ** 2 + (F[e, j, Y] - y) ** 2)
                    if d <= VIEW_RANGE:
                        dist[j] = d
            order = np.argsort(dist, kind="mergesort")
            for k in range(min(4, n)):
                j = order[k]
                if dist[j] == np.inf:
                    break
                row = out[e, i, 1 + k]
                vj, hj = F[e, j, V], F[e, j, H]
                row[0] = 1.0
                row[1] = (F[e, j, X] - x) / 100.0
                row[2] = (F[e, j, Y] - y) / 10.0
                row[3] = (vj * np.cos(hj) - vx) / 30.0
                row[4] = (vj * np.sin(hj) - vy) / 30.0
                is_cav = S[e, j, KIND] == CAV
                row[5] = 1.0 if is_cav else 0.0
                if use_intents and is_cav and active[e, j] and dist[j] <= comm_range:
                    for w in range(plans.shape[2]):
                        row[6 + 2 * w] = (plans[e, j, w, 0] - x) / 100.0
                        row[7 + 2 * w] = (plans[e, j, w, 1] - y) / 10.0


class MergeGame(MarkovGame):
    masks_actions = False

    def __init__(self, density: str = "medium", reward: str = "global", intents: bool = False,
                 safety: str = "off", comm_range: float = 150.0, heterogeneous: bool = True,
                 end_on_crash: bool = True, max_steps: int = 100, safety_horizon: float = 1.0):
        if not 0 < safety_horizon <= 5:
            raise ValueError(f"safety_horizon must lie in (0, 5] seconds, got {safety_horizon}")
        if safety not in SAFETY:
            raise ValueError(f"safety must be one of {list(SAFETY)}, got {safety!r}")
        if density not in DENSITIES:
            raise ValueError(f"density must be one of {sorted(DENSITIES)}, got {density!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
        if not comm_range > 0 or max_steps < 1:  # (not > catches NaN)
            raise ValueError(f"comm_range must be > 0 and max_steps >= 1, got {comm_range}, {max_steps}")
        self.density, self.reward, self.intents, self.safety = density, reward, bool(intents), safety
        self.comm_range, self.heterogeneous = float(comm_range), bool(heterogeneous)
        self.end_on_crash, self.max_steps = bool(end_on_crash), int(max_steps)
        self.safety_horizon = float(safety_horizon)
        # a flat vector, rows nearest first (the released code's MLP over Kinematics rows): pooled as an
        # entity set, the CAV's own row would blur with its neighbours'
        self.groups = (Group("cavs", MAX_CAVS, Box(((1 + NEIGHBOURS) * OBS_FEATURES,)), Discrete(5)),)
        self.state_shape = (MAX_VEHICLES * 6,)
        self.size_estimate = SizeEstimate(bytes_per_env=MAX_VEHICLES * (NF + NS) * 8 * 4)
        self.info = GameInfo(
            name="merge", num_players=MAX_CAVS, dynamics="simultaneous", chance=True, information="imperfect",
            utility="general", min_utility=-np.inf, max_utility=float(max_steps), max_game_length=max_steps,
            num_distinct_actions=5, utility_sum=None, sampled_chance=True, reward_model="step",
            parameters={"density": density, "reward": reward, "intents": self.intents, "safety": safety,
                        "comm_range": self.comm_range,
                        "heterogeneous": self.heterogeneous, "end_on_crash": self.end_on_crash,
                        "max_steps": max_steps, "safety_horizon": self.safety_horizon},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> MergeSimulator:
        return MergeSimulator(self, num_envs, seed)


class MergeSimulator(ArraySimulator):
    """E merge environments; `F`, `S` hold the vehicles (games.merge_dynamics' columns)."""

    state_keys = ("F", "S", "left")
    game: MergeGame

    def _allocate(self) -> None:
        e = self.num_envs
        self.F = np.zeros((e, MAX_VEHICLES, NF))
        self.S = np.full((e, MAX_VEHICLES, NS), -1, dtype=np.int64)
        self.left = np.zeros((e, MAX_VEHICLES), dtype=bool)  # CAVs that drove past the road's end
        self._plans = np.zeros((e, MAX_VEHICLES, len(INTENT_FRAMES), 2))
        self.events = {"crashes": np.zeros(e, dtype=np.int64), "replaced": np.zeros(e, dtype=np.int64)}

    def _reset_envs(self, idx: np.ndarray) -> None:
        for e in idx:
            place(self.F, self.S, int(e), draw_episode(self.rng, self.game.density, self.game.heterogeneous))
        self.left[idx] = False

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._plans = np.zeros((self.num_envs, MAX_VEHICLES, len(INTENT_FRAMES), 2))  # sized by the new state
        self.events = {k: np.zeros(self.num_envs, dtype=np.int64) for k in self.events}

    def load_episode(self, e: int, vehicles: list[tuple[int, int, float, float]]) -> None:
        """Start environment e from a given episode (the differential test, paired evaluation)."""
        place(self.F, self.S, e, vehicles)
        self.left[e] = False
        self.t[e] = 0

    def cav_active(self) -> np.ndarray:
        return (self.S[:, :, KIND] == CAV) & (self.S[:, :, CRASHED] == 0) & ~self.left

    def active(self) -> dict[str, np.ndarray]:
        return {"cavs": self.cav_active()[:, :MAX_CAVS]}

    def supervised_actions(self, actions: dict[str, np.ndarray], acting: np.ndarray) -> np.ndarray:
        """[E, MAX_VEHICLES] meta-actions (-1 where no CAV acts), after the safety module when the
        game has one (`safety`: shared intents, or other CAVs assumed to keep lane and speed)."""
        full = -np.ones((self.num_envs, MAX_VEHICLES), dtype=np.int64)
        full[:, :MAX_CAVS] = np.where(acting[:, :MAX_CAVS], actions["cavs"], -1)
        self.events["replaced"] = np.zeros(self.num_envs, dtype=np.int64)
        if self.game.safety != "off":
            horizon = int(round(self.game.safety_horizon / DT))
            self.events["replaced"] = safety_module(self.F, self.S, full, acting, self.game.safety == "shared", horizon)
        return full

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        acting = self.cav_active()
        step_batch(self.F, self.S, self.supervised_actions(actions, acting))
        return self.finish_step(acting)

    def finish_step(self, acting: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Rewards, departures and termination after the vehicles moved (shared with highway-env's
        adapter, which moves them in highway-env and copies the state in)."""
        crashed_now = acting & (self.S[:, :, CRASHED] == 1)
        own = np.zeros((self.num_envs, MAX_VEHICLES))
        cav_rewards(self.F, self.S, acting, crashed_now.astype(np.float64), own)
        shaped = share_rewards(own, acting, self.F, self.game.reward, self.game.comm_range)
        self.left |= acting & ~crashed_now & (self.F[:, :, X] > ROAD_END)
        self.events["crashes"] = crashed_now.sum(axis=1)
        still = self.cav_active()
        terminated = ~still.any(axis=1)
        if self.game.end_on_crash:
            terminated |= crashed_now.any(axis=1)
        return {"cavs": shaped[:, :MAX_CAVS]}, terminated

    def _observe(self) -> dict[str, np.ndarray]:
        active = self.cav_active()
        if self.game.intents:
            intents(self.F, self.S, active, self._plans)
        out = np.zeros((self.num_envs, MAX_VEHICLES, 1 + NEIGHBOURS, OBS_FEATURES), dtype=np.float32)
        observe_kernel(self.F, self.S, active, self._plans, self.game.intents, self.game.comm_range, out)
        return {"cavs": out[:, :MAX_CAVS].reshape(self.num_envs, MAX_CAVS, -1)}

    def global_state(self) -> np.ndarray:
        present = (self.S[:, :, KIND] >= 0).astype(np.float32)
        f = self.F
        parts = [present, (f[:, :, X] - MERGE_END) / 100.0 * present, f[:, :, Y] / 10.0 * present,
                 f[:, :, V] * np.cos(f[:, :, H]) / 30.0 * present, (self.S[:, :, KIND] == CAV) * present,
                 self.S[:, :, CRASHED].clip(0, 1) * present]
        return np.stack(parts, axis=-1).reshape(self.num_envs, -1).astype(np.float32)


def share_rewards(own: np.ndarray, acting: np.ndarray, F: np.ndarray, mode: str, comm_range: float) -> np.ndarray:
    """The reward each CAV learns from: its own, or the mean over CAVs (global) or over the CAVs
    within comm_range of it (regional, itself included)."""
    if mode == "own":
        return own
    count = acting.sum(axis=1, keepdims=True)
    if mode == "global":
        mean = own.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        return np.where(acting, mean, 0.0)
    x = F[:, :, X]
    near = (np.abs(x[:, :, None] - x[:, None, :]) <= comm_range) & acting[:, None, :] & acting[:, :, None]
    return np.where(acting, (near * own[:, None, :]).sum(-1) / np.maximum(near.sum(-1), 1), 0.0)


Density = Literal["easy", "medium", "hard"]
Reward = Literal["global", "regional", "own"]
Safety = Literal["off", "shared", "assume_idle"]
Horizon = Annotated[float, Field(gt=0, le=5)]


@register("merge", description="on-ramp merging of CAVs among HDVs (MAPPO-PIS); highway-env's models, batched")
def merge(density: Density = "medium", reward: Reward = "global", intents: bool = False, safety: Safety = "off",
          comm_range: PositiveFloat = 150.0, heterogeneous: bool = True, end_on_crash: bool = True,
          max_steps: PositiveInt = 100, safety_horizon: Horizon = 1.0) -> MergeGame:
    """The registry's typed factory (parameters checked from game strings and YAML)."""
    return MergeGame(density, reward, intents, safety, comm_range, heterogeneous, end_on_crash, max_steps,
                     safety_horizon)
