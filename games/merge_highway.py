"""The on-ramp merge in highway-env itself: a multi-agent merge env and its Markov-game adapter.

highway-env's own `merge-v0` is single-agent and has two main lanes; `MultiAgentMergeEnv` builds
the paper's road on highway-env's classes (a single-lane main road, the ramp, the merge lane and
its obstacle; speed limit 30 m/s), controls every CAV through `MultiAgentAction` of
`DiscreteMetaAction` and observes them with `MultiAgentObservation` of `Kinematics`, at 15 Hz
simulation and 5 Hz decisions, with `neighbour_vehicles_connected_lanes` on. Its HDVs are
highway-env's `IDMVehicle`, `AggressiveVehicle` and `DefensiveVehicle`.

`games.load("merge_highway(density=medium)")` is the same Markov game as `merge` (games.merge):
each environment is a highway-env instance whose episode comes from the same `draw_episode`;
after every decision the adapter copies highway-env's vehicles into the twin's state arrays and
computes observations, rewards, departures and termination with the twin's functions, so a policy
trained on the twin runs here unchanged and the two differ only in how vehicles move. Needs the
`merge` extra (`highway-env`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import numpy as np

from equilibria.common.config import PositiveFloat, PositiveInt
from equilibria.games.merge import (
    MAX_CAVS,
    Density,
    Horizon,
    MergeGame,
    MergeSimulator,
    Reward,
    Safety,
    clear_slots,
    draw_episode,
)
from equilibria.games.merge_dynamics import (
    ACC,
    AGGRESSIVE,
    AMPLITUDE,
    CAV,
    CRASHED,
    DEFENSIVE,
    ENDS,
    HASIMP,
    IDLE_ACTION,
    IDM,
    IMPX,
    IMPY,
    KIND,
    LANE,
    LANE_NAMES,
    LANE_WIDTH,
    RAMP_Y,
    SIDX,
    SPEED_LIMIT,
    STEER,
    TARGET_SPEEDS,
    TIMER,
    TLANE,
    TSPEED,
    H,
    V,
    X,
    Y,
)
from equilibria.games.registry import register

_LANE_INDEX = {name: k for k, name in enumerate(LANE_NAMES)}


@functools.cache
def env_class() -> type:
    """MultiAgentMergeEnv, built on first use (highway-env is an optional dependency)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import highway_env  # noqa: F401  (registers its envs, imports gymnasium)
    from highway_env import utils
    from highway_env.envs.common.abstract import AbstractEnv
    from highway_env.road.lane import LineType, SineLane, StraightLane
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.behavior import AggressiveVehicle, DefensiveVehicle, IDMVehicle
    from highway_env.vehicle.objects import Obstacle

    class MultiAgentMergeEnv(AbstractEnv):
        """The paper's merge (merge_env_v1's road and spawning) on highway-env 1.12, multi-agent."""

        episode: list[tuple[int, int, float, float]] | None = None  # set before reset (games.merge.draw_episode)

        @classmethod
        def default_config(cls) -> dict:
            cfg = super().default_config()
            utils.update_config(cfg, {
                "observation": {"type": "MultiAgentObservation",
                                "observation_config": {"type": "Kinematics", "vehicles_count": 5}},
                "action": {"type": "MultiAgentAction",
                           "action_config": {"type": "DiscreteMetaAction", "target_speeds": TARGET_SPEEDS.tolist()}},
                "simulation_frequency": 15, "policy_frequency": 5, "duration": 20,
                "neighbour_vehicles_connected_lanes": True, "screen_width": 1200, "screen_height": 200,
                "centering_position": [0.5, 0.5], "scaling": 3.0,
            })
            return cfg

        def _reset(self) -> None:
            self._make_road()
            self._make_vehicles()

        def _make_road(self) -> None:
            net = RoadNetwork()
            c, s, n = LineType.CONTINUOUS_LINE, LineType.STRIPED, LineType.NONE
            x_b, x_c, x_d = ENDS[0] + ENDS[1], sum(ENDS[:3]), sum(ENDS)
            net.add_lane("a", "b", StraightLane([0, 0], [x_b, 0], line_types=[c, c], speed_limit=SPEED_LIMIT))
            net.add_lane("b", "c", StraightLane([x_b, 0], [x_c, 0], line_types=[c, s], speed_limit=SPEED_LIMIT))
            net.add_lane("c", "d", StraightLane([x_c, 0], [x_d, 0], line_types=[c, c], speed_limit=SPEED_LIMIT))
            ljk = StraightLane([0, RAMP_Y], [ENDS[0], RAMP_Y], line_types=[c, c], forbidden=True, speed_limit=SPEED_LIMIT)
            lkb = SineLane(ljk.position(ENDS[0], -AMPLITUDE), ljk.position(x_b, -AMPLITUDE), AMPLITUDE,
                           2 * np.pi / (2 * ENDS[1]), np.pi / 2, line_types=[c, c], forbidden=True,
                           speed_limit=SPEED_LIMIT)
            lbc = StraightLane(lkb.position(ENDS[1], 0), lkb.position(ENDS[1], 0) + [ENDS[2], 0],
                               line_types=[n, c], forbidden=True, speed_limit=SPEED_LIMIT)
            net.add_lane("j", "k", ljk)
            net.add_lane("k", "b", lkb)
            net.add_lane("b", "c", lbc)
            road = Road(network=net, np_random=self.np_random, record_history=self.config["show_trajectories"],
                        neighbour_vehicles_connected_lanes=True)
            road.objects.append(Obstacle(road, lbc.position(ENDS[2], 0)))
            self.road = road
            assert abs(lbc.start[1] - LANE_WIDTH) < 1e-9

        def _make_vehicles(self) -> None:
            episode = self.episode or draw_episode(self.np_random, "medium")
            classes = {IDM: IDMVehicle, AGGRESSIVE: AggressiveVehicle, DEFENSIVE: DefensiveVehicle}
            self.controlled_vehicles = []
            for kind, lane, x, v in episode:
                position = self.road.network.get_lane(LANE_NAMES[lane]).position(x, 0.0)
                if kind == CAV:
                    vehicle = self.action_type.vehicle_class(self.road, position, speed=v)
                    self.controlled_vehicles.append(vehicle)
                else:
                    vehicle = classes[kind](self.road, position, speed=v)
                self.road.vehicles.append(vehicle)

        def _reward(self, action: Any) -> float:
            return 0.0  # the adapter computes the paper's rewards from the copied state

        def _is_terminated(self) -> bool:
            return False

        def _is_truncated(self) -> bool:
            return False

    return MultiAgentMergeEnv


def export_state(env: Any, F: np.ndarray, S: np.ndarray, e: int) -> None:
    """Copy a highway-env merge's vehicles into the twin's arrays (environment e)."""
    from highway_env.vehicle.behavior import AggressiveVehicle, DefensiveVehicle, IDMVehicle

    def kind_of(vehicle: Any) -> int:
        if isinstance(vehicle, AggressiveVehicle):
            return AGGRESSIVE
        if isinstance(vehicle, DefensiveVehicle):
            return DEFENSIVE
        return IDM if isinstance(vehicle, IDMVehicle) else CAV

    vehicles = env.unwrapped.road.vehicles
    kinds = [kind_of(v) for v in vehicles]
    for i, kind, vehicle in zip(clear_slots(F, S, e, kinds), kinds, vehicles):
        F[e, i, X], F[e, i, Y] = vehicle.position
        F[e, i, H], F[e, i, V] = vehicle.heading, vehicle.speed
        F[e, i, TSPEED] = vehicle.target_speed
        F[e, i, TIMER] = getattr(vehicle, "timer", 0.0)
        F[e, i, STEER], F[e, i, ACC] = vehicle.action["steering"], vehicle.action["acceleration"]
        S[e, i, KIND] = kind
        S[e, i, LANE] = _LANE_INDEX[tuple(vehicle.lane_index[:2]) + (int(vehicle.lane_index[2]),)]
        S[e, i, TLANE] = _LANE_INDEX[tuple(vehicle.target_lane_index[:2]) + (int(vehicle.target_lane_index[2]),)]
        S[e, i, SIDX] = getattr(vehicle, "speed_index", 0)
        S[e, i, CRASHED] = int(vehicle.crashed)
        if vehicle.impact is not None:
            S[e, i, HASIMP] = 1
            F[e, i, IMPX], F[e, i, IMPY] = vehicle.impact


class HighwayMergeSimulator(MergeSimulator):
    """E highway-env merges presented as the `merge` Markov game (see the module docstring)."""

    supports_state = False  # highway-env's internals are not copied back

    def __init__(self, game: MergeGame, num_envs: int = 1, seed: int | None = None, render_mode: str | None = None):
        self.render_mode = render_mode  # read by _allocate, which the base __init__ calls
        super().__init__(game, num_envs, seed)

    def _allocate(self) -> None:
        super()._allocate()
        if not hasattr(self, "envs") or len(self.envs) != self.num_envs:
            cls = env_class()
            self.envs = [cls(render_mode=self.render_mode) for _ in range(self.num_envs)]

    def _reset_envs(self, idx: np.ndarray) -> None:
        for e in idx:
            self.load_episode(int(e), draw_episode(self.rng, self.game.density, self.game.heterogeneous))

    def load_episode(self, e: int, vehicles: list[tuple[int, int, float, float]]) -> None:
        env = self.envs[e]
        env.unwrapped.episode = vehicles
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.reset(seed=0)  # the episode is given; highway-env's own randomness is unused
        export_state(env, self.F, self.S, e)
        self.left[e] = False
        self.t[e] = 0

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        acting = self.cav_active()
        full = self.supervised_actions(actions, acting)
        for e, env in enumerate(self.envs):
            n = len(env.unwrapped.controlled_vehicles)
            chosen = tuple(int(full[e, i]) if acting[e, i] else IDLE_ACTION for i in range(n))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env.step(chosen)
            export_state(env, self.F, self.S, e)
        return self.finish_step(acting)

    def render(self, e: int = 0) -> np.ndarray:
        """An RGB frame of environment e (the simulator must be built with render_mode='rgb_array')."""
        return self.envs[e].render()


class HighwayMergeGame(MergeGame):
    def __init__(self, density: str = "medium", reward: str = "global", intents: bool = False,
                 safety: str = "off", comm_range: float = 150.0, heterogeneous: bool = True,
                 end_on_crash: bool = True, max_steps: int = 100, safety_horizon: float = 1.0):
        super().__init__(density, reward, intents, safety, comm_range, heterogeneous, end_on_crash, max_steps,
                         safety_horizon)
        self.info = dataclasses.replace(self.info, name="merge_highway")

    def simulator(self, num_envs: int = 1, seed: int | None = None, render_mode: str | None = None
                  ) -> HighwayMergeSimulator:
        return HighwayMergeSimulator(self, num_envs, seed, render_mode)


def events(lanes: np.ndarray, tlanes: np.ndarray, crashed: np.ndarray) -> set[tuple[int, int, str]]:
    """The discrete events of one episode from per-decision arrays [T, N] (T includes the start):
    (decision, slot, kind) for lane-change decisions (the target switching between the merge lane
    and the main road), merges (a vehicle entering the main road from the ramp or merge lane) and
    crashes."""
    from equilibria.games.merge_dynamics import MAIN_BC, MAIN_CD, MERGE_LANE, RAMP_KB

    out = set()
    for t in range(1, len(lanes)):
        for i in range(lanes.shape[1]):
            if crashed[t, i] and not crashed[t - 1, i]:
                out.add((t, i, "crash"))
            if tlanes[t, i] != tlanes[t - 1, i] and {tlanes[t, i], tlanes[t - 1, i]} == {MERGE_LANE, MAIN_BC}:
                out.add((t, i, "lane change"))
            if lanes[t - 1, i] in (MERGE_LANE, RAMP_KB) and lanes[t, i] in (MAIN_BC, MAIN_CD):
                out.add((t, i, "merge"))
    return out


def differential(episodes: int = 100, seed: int = 0, density: str = "medium", decisions: int = 100) -> dict[str, Any]:
    """Drive highway-env and the twin with the same episodes and the same CAV actions (random,
    mostly IDLE) and compare: per episode, whether the discrete events are identical, and the
    largest position, speed and reward differences over the episode."""
    from equilibria.games.merge import MergeGame

    twin = MergeGame(density=density, end_on_crash=False).simulator(1, seed=seed)
    ref = HighwayMergeGame(density=density, end_on_crash=False).simulator(1, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(episodes):
        episode = draw_episode(rng, density)
        twin.load_episode(0, episode)
        ref.load_episode(0, episode)
        record = {k: [] for k in ("lane", "tlane", "crashed")}
        twin_record = {k: [] for k in ("lane", "tlane", "crashed")}
        worst = {"position": 0.0, "speed": 0.0, "reward": 0.0}

        def log(sim: MergeSimulator, rec: dict) -> None:
            rec["lane"].append(sim.S[0, :, LANE].copy())
            rec["tlane"].append(sim.S[0, :, TLANE].copy())
            rec["crashed"].append(sim.S[0, :, CRASHED].copy())

        log(ref, record)
        log(twin, twin_record)
        for _ in range(decisions):
            a = rng.choice(5, size=(1, MAX_CAVS), p=[0.1, 0.5, 0.1, 0.15, 0.15])
            r_ref = ref.step({"cavs": a}, autoreset=False)
            r_twin = twin.step({"cavs": a}, autoreset=False)
            log(ref, record)
            log(twin, twin_record)
            present = ref.S[0, :, KIND] >= 0
            worst["position"] = max(worst["position"], float(np.abs(ref.F[0, present, X:Y + 1]
                                                                  - twin.F[0, present, X:Y + 1]).max()))
            worst["speed"] = max(worst["speed"], float(np.abs(ref.F[0, present, V] - twin.F[0, present, V]).max()))
            worst["reward"] = max(worst["reward"], float(np.abs(r_ref.rewards["cavs"] - r_twin.rewards["cavs"]).max()))
        ev_ref = events(*(np.array(record[k]) for k in ("lane", "tlane", "crashed")))
        ev_twin = events(*(np.array(twin_record[k]) for k in ("lane", "tlane", "crashed")))
        rows.append({"identical": ev_ref == ev_twin, "events": len(ev_ref), "only_highway": sorted(ev_ref - ev_twin),
                     "only_twin": sorted(ev_twin - ev_ref), **worst})
    same = [r for r in rows if r["identical"]]
    return {"episodes": episodes, "identical": len(same), "events": sum(r["events"] for r in rows),
            "max_position": max((r["position"] for r in same), default=0.0),
            "max_speed": max((r["speed"] for r in same), default=0.0),
            "max_reward": max((r["reward"] for r in same), default=0.0), "rows": rows}


@register("merge_highway", requires=("highway_env", "merge"), example="merge_highway(max_steps=4)",
          description="the on-ramp merge (merge) simulated by highway-env itself")
def merge_highway(density: Density = "medium", reward: Reward = "global", intents: bool = False,
                  safety: Safety = "off", comm_range: PositiveFloat = 150.0, heterogeneous: bool = True,
                  end_on_crash: bool = True, max_steps: PositiveInt = 100, safety_horizon: Horizon = 1.0
                  ) -> HighwayMergeGame:
    """The registry's typed factory; its example is short: highway-env's state cannot be copied, so
    the single-State view clones a state by replaying its history, and the API tests clone often."""
    return HighwayMergeGame(density, reward, intents, safety, comm_range, heterogeneous, end_on_crash, max_steps,
                            safety_horizon)
