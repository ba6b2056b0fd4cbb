"""Ride-sharing order dispatch (Zhao & Li 2025, "OSPO", arXiv 2507.15351) as a batched Markov game.

A fleet of `num_vehicles` shared autonomous vehicles (capacity 1 to 3) serves a stream of ride
orders in a city (games.dispatch_city: a networkx road graph turned into travel-time tables; a
Manhattan-sized grid calibrated on NYC routes by default, or any graph and order table from
files). Every decision step (`step_minutes`, 1 min as in the reference code) the platform
offers open orders to the vehicles that can take one, each vehicle that gets an order inserts
its pickup and drop-off into its route, and then the fleet drives for one step.

Rules (the reference code's, RS2002/OSPO @02ed2da, Platform.py / Worker.py / train.py):
- an order waits at most `max_wait` minutes (5) for a vehicle and is dropped after;
- a vehicle can take an order when it has a free seat and is not on its way to a pickup (the
  reference's state flag 4); so it picks up one order at a time, and pools by taking a new order
  while passengers are on board;
- a vehicle's route is its ordered list of pickups and drop-offs; a new order is inserted
  cheapest-first: of all feasible (pickup, drop-off) positions, the one that adds the least
  passenger time (the reward's "added time"), capacity respected at every point of the route;
- reward of a vehicle for an accepted order (Platform.reward_func_generator; beta = train.py's
  `--reward_parameter 3 1 3 1 3 5`, threshold = `--order_threshold 40`; units from the code: the
  fare distance in metres, times in minutes, the two time terms divided by 60, i.e. hours):
      r = b0 + b1 * trip_km - b2 * pickup_h - b3 * n_late - b4 * added_h - b5 * max(0, added_min - 40) / 60
  b0 = 3 fixed fee; b1 = 1 per km of the direct trip; b2 = 3 per hour the passenger waits for
  pickup; b3 = 1 per order on board (the new one included) whose time from assignment to
  drop-off would exceed 40 min (the lateness penalty); b4 = 3 per hour of passenger time the
  order adds (its own pickup wait and ride plus the delay it causes to orders on board);
  b5 = 5 per hour of added time beyond the 40-minute threshold.
  Vehicles without an order this step get 0.

Markov-game view (games.markov): one group "vehicles" of `num_vehicles` slots.
- Active mask (`active="choosing"`, the default): a vehicle is active when it can take an order
  and has at least one candidate within `pickup_radius` minutes, so only vehicles with a real
  choice act and are rewarded. The contract needs a mover at every step: where no vehicle has
  a choice, slot 0 is active with the single legal action "no order". A vehicle is active
  again after its busy spell; marl.runtime.agent_ends treats the gap as an absence (its
  trajectory ends at the acceptance), which suits OSPO/GRPO's one-step and group advantages.
  `active="fleet"`: every vehicle acts at every step (a busy vehicle's only legal action is
  "no order"), for learners whose critic should see a vehicle's trajectory run on through its
  busy spells, and for the PettingZoo view, which forbids an agent coming back once it has
  left. Either way `info["choosing"]` (and the action mask) says who had a choice.
- Observation (Composite): "self" [8] (position, free seats, passengers, remaining route time,
  episode progress, its cumulative reward and the fleet's mean, as the reference's worker
  state); "orders" [K+1, 12] entities: row 0 is "take no order" (the assignment's dummy
  column), rows 1..K the K nearest candidate orders (pickup time, origin, destination, trip
  length and time, waiting time, and what the cheapest insertion would cost: added time and
  late orders); "route" [2 * capacity, 5] the vehicle's planned stops.
- Action: `Candidates("orders")`: the row it takes. Chosen because the paper's policy is a score
  per (vehicle, order) pair: a Candidates head (marl.networks.GroupActor) scores every row with
  one shared network, which is exactly OSPO's f(order, vehicle), and the action mask is row
  presence; a Discrete action over all open orders would change size every step.
- The platform (games.dispatch_platform) turns scores of every row into a one-to-one
  assignment (Hungarian on the candidate matrix) and hands the simulator the assigned rows.
  The simulator itself accepts any actions: where several vehicles pick one order, the one with
  the shortest pickup time gets it (ties: the lower slot) and the others stay idle.
- `StepResult.info`: "assigned" [E, N] (who got an order: OSPO's group), "choosing" [E, N] (who
  had at least one candidate), "cum_reward" [E, N]
  (for the fairness term) and "metrics" (per environment: served, reward, pickup, confirmation
  and detour minutes, delivered, dropped), taken before any auto-reset.
"""

from __future__ import annotations

import inspect
import time
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import NonNegativeFloat, PositiveFloat, PositiveInt, Probability
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.dispatch_city import (
    SPEED_KMH,
    City,
    expected_orders,
    grid_city,
    load_city,
    load_orders,
    synthetic_orders,
    zone_demand,
)
from equilibria.games.dispatch_routes import DROPOFF, PICKUP, evaluate_pairs
from equilibria.games.markov import ArraySimulator, MarkovGame, StepResult
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Candidates, Composite, Group

BETA = (3.0, 1.0, 3.0, 1.0, 3.0, 5.0)  # reference train.py --reward_parameter
LATE_THRESHOLD_MIN = 40.0  # reference train.py --order_threshold
WAITING, ASSIGNED, ONBOARD, DELIVERED, DROPPED = 0, 1, 2, 3, 4  # order status
SELF_F, ORDER_F, STOP_F, BINS = 8, 12, 5, 8
EPS = 1e-6  # seconds: travel-time sums that differ by rounding only are equal
SCAN_ENTRIES = 2_000_000  # (node, order) pairs per chunk of the candidate scan: bounds its temporaries (20 B each)
METRICS = ("served", "reward", "pickup_min", "confirm_min", "detour_min", "delivered", "dropped")


def order_reward(trip_m: Any, pickup_s: Any, n_late: Any, added_s: Any, beta: tuple[float, ...] = BETA,
                 threshold_min: float = LATE_THRESHOLD_MIN) -> np.ndarray:
    """The reference's reward for one accepted order (module docstring); arrays broadcast."""
    b = beta
    added_min = np.asarray(added_s, dtype=np.float64) / 60.0
    return (b[0] + b[1] * np.asarray(trip_m) / 1000.0 - b[2] * np.asarray(pickup_s) / 3600.0 - b[3] * np.asarray(n_late)
            - b[4] * added_min / 60.0 - b[5] * np.maximum(0.0, added_min - threshold_min) / 60.0)


def _nearest(T32: np.ndarray, nodes: np.ndarray, origin: np.ndarray, K: int) -> np.ndarray:
    """For each of `nodes`, the positions in `origin` of its min(K, len(origin)) nearest origins by
    T32[node, origin], nearest first, equal travel times in position order; vectorised over
    nodes, in chunks of at most SCAN_ENTRIES (node, origin) pairs."""
    W = len(origin)
    k = min(K, W)
    out = np.empty((len(nodes), k), dtype=np.int64)
    pos = np.arange(W, dtype=np.int64)
    chunk = max(1, SCAN_ENTRIES // W)
    for s in range(0, len(nodes), chunk):
        t = T32[nodes[s:s + chunk, None], origin[None, :]]
        # one distinct integer per (time, position), ordered as they are: a non-negative float32's
        # bits read as an int32 keep its order, the position breaks ties
        key = (t.view(np.int32).astype(np.int64) << 32) | pos
        part = np.argpartition(key, k - 1, axis=1)[:, :k] if W > k else np.broadcast_to(pos, key.shape)
        out[s:s + chunk] = np.take_along_axis(part, np.argsort(np.take_along_axis(key, part, axis=1), axis=1), axis=1)
    return out


class RideDispatch(MarkovGame):
    masks_actions = True

    def __init__(self, city: City, num_vehicles: int = 1000, capacity: int = 3, max_steps: int = 30,
                 step_minutes: float = 1.0, max_wait: float = 5.0, pickup_radius: float = 10.0, max_candidates: int = 8,
                 demand: float = 0.15, start_hour: float = 19.0, trip_scale_km: float = 2.8,
                 orders: np.ndarray | None = None, order_sample_rate: float = 1.0, city_seed: int = 0,
                 reward: tuple[float, ...] = BETA, late_threshold: float = LATE_THRESHOLD_MIN,
                 active: str = "choosing", parameters: dict[str, Any] | None = None):
        if not 1 <= capacity <= 3:
            raise ValueError(f"ride_dispatch: capacity must be 1, 2 or 3, got {capacity}")
        if active not in ("choosing", "fleet"):
            raise ValueError(f"ride_dispatch: active must be 'choosing' or 'fleet', got {active!r}")
        if len(reward) != 6:
            raise ValueError(f"ride_dispatch: reward needs the six coefficients b0..b5, got {list(reward)}")
        self.city, self.num_vehicles, self.capacity, self.max_steps = city, num_vehicles, capacity, max_steps
        self.step_s, self.max_wait_s, self.radius_s = 60.0 * step_minutes, 60.0 * max_wait, 60.0 * pickup_radius
        self.K, self.demand_rate, self.start_hour = max_candidates, demand, start_hour
        self.beta, self.late_threshold, self.late_s = tuple(float(b) for b in reward), late_threshold, 60.0 * late_threshold
        self.order_table, self.order_sample_rate, self.active_mode = orders, order_sample_rate, active
        self.zones = zone_demand(city, city_seed, trip_scale_km) if orders is None else None
        self.mean_per_step = expected_orders(demand * num_vehicles, start_hour, max_steps, self.step_s)
        lam = float(self.mean_per_step.sum())
        self.max_orders = len(orders) if orders is not None else int(np.ceil(lam + 8 * np.sqrt(lam) + 16))
        S = 2 * capacity
        obs = Composite({"self": Box((SELF_F,)), "orders": Box((max_candidates + 1, ORDER_F), "entities"),
                         "route": Box((S, STOP_F), "entities")})
        self.groups = (Group("vehicles", num_vehicles, obs, Candidates("orders")),)
        self.state_shape = (3 * BINS * BINS + 1,)
        self.size_estimate = SizeEstimate(bytes=city.n * city.n * 16.0, bytes_per_env=_bytes_per_env(
            num_vehicles, capacity, max_candidates, self.max_orders))
        # per-order reward bounds (one order per vehicle and step), whatever the coefficients' signs
        t_max, b = float(city.time.max()), np.abs(self.beta)
        added_h = (4 * S + 3) * t_max / 3600.0  # lag + every leg of the longest route, and every stop's delay
        best = b[0] + b[1] * float(city.dist.max()) / 1000.0
        worst = best + b[2] * (self.radius_s / 3600.0 + (S + 1) * t_max / 3600.0) + b[3] * (capacity + 1) \
            + (b[4] + b[5]) * added_h
        self.info = GameInfo(
            name="ride_dispatch", num_players=num_vehicles, dynamics="simultaneous", chance=True, information="imperfect",
            utility="general", min_utility=-max_steps * worst, max_utility=max_steps * best,
            max_game_length=max_steps, num_distinct_actions=max_candidates + 1, utility_sum=None, sampled_chance=True,
            reward_model="step", parameters=parameters or {"num_vehicles": num_vehicles},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> DispatchSimulator:
        return DispatchSimulator(self, num_envs, seed)

    def animation(self, record: dict, title: str = "") -> str:
        """An animated SVG of a recorded episode (games.dispatch_platform.record_episode;
        drawn by games.dispatch_render)."""
        from equilibria.games.dispatch_render import episode_svg

        return episode_svg(record, title)


def _bytes_per_env(num_vehicles: int, capacity: int, k: int, max_orders: int) -> float:
    """Vehicle arrays (stops, candidates and their evaluations), float32 observations, orders."""
    s = 2 * capacity
    obs = 4 * (SELF_F + (k + 1) * ORDER_F + s * STOP_F)
    return float(num_vehicles * (obs + 17 * s + 8 * 9 * k + 64) + max_orders * 64)


class DispatchSimulator(ArraySimulator):
    state_keys = ("node", "lag", "stop_node", "stop_kind", "stop_order", "nstops", "onboard", "cum_reward",
                  "o_time", "o_origin", "o_dest", "o_status", "o_assign", "o_pickup", "metrics")
    game: RideDispatch

    def __init__(self, game: RideDispatch, num_envs: int = 1, seed: int | None = None):
        self._T32 = game.city.time.astype(np.float32)  # the candidate scan's table (halves memory traffic)
        lo, hi = game.city.xy.min(0), game.city.xy.max(0)
        self._xy = ((game.city.xy - lo) / np.maximum(hi - lo, 1.0)).astype(np.float32)
        self.timings = {"candidates": 0.0, "simulate": 0.0}
        self._cache: dict[str, np.ndarray] | None = None
        self._info: dict[str, Any] = {}
        super().__init__(game, num_envs, seed)

    # -- state ----------------------------------------------------------------------------
    def _allocate(self) -> None:
        E, N, S, M = self.num_envs, self.game.num_vehicles, 2 * self.game.capacity, self.game.max_orders
        self.node = np.zeros((E, N), dtype=np.int64)
        self.lag = np.zeros((E, N))
        self.stop_node = np.zeros((E, N, S), dtype=np.int64)
        self.stop_kind = np.zeros((E, N, S), dtype=np.int64)
        self.stop_order = np.full((E, N, S), -1, dtype=np.int64)
        self.nstops = np.zeros((E, N), dtype=np.int64)
        self.onboard = np.zeros((E, N), dtype=np.int64)
        self.cum_reward = np.zeros((E, N))
        self.o_time = np.full((E, M), np.inf)  # padding never appears
        self.o_origin = np.zeros((E, M), dtype=np.int64)
        self.o_dest = np.zeros((E, M), dtype=np.int64)
        self.o_status = np.full((E, M), DROPPED, dtype=np.int64)
        self.o_assign = np.zeros((E, M))
        self.o_pickup = np.zeros((E, M))
        self.metrics = np.zeros((E, len(METRICS)))
        self._cache = None

    def _reset_envs(self, idx: np.ndarray) -> None:
        g = self.game
        for e in idx:
            if g.order_table is not None:
                keep = self.rng.random(len(g.order_table)) < g.order_sample_rate
                table = g.order_table[keep & (g.order_table[:, 0] <= (g.max_steps - 1) * g.step_s)]
            else:
                table = synthetic_orders(self.rng, g.zones, g.mean_per_step, g.step_s, g.max_orders)
            m = len(table)
            self.o_time[e], self.o_status[e] = np.inf, DROPPED
            self.o_time[e, :m], self.o_status[e, :m] = table[:, 0], WAITING
            self.o_origin[e, :m], self.o_dest[e, :m] = table[:, 1], table[:, 2]
            self.o_assign[e], self.o_pickup[e] = 0.0, 0.0
        self.node[idx] = self.rng.integers(0, g.city.n, size=(len(idx), g.num_vehicles))
        self.lag[idx], self.nstops[idx], self.onboard[idx], self.cum_reward[idx] = 0.0, 0, 0, 0.0
        self.stop_node[idx], self.stop_kind[idx], self.stop_order[idx] = 0, 0, -1
        self.metrics[idx] = 0.0
        self._cache = None

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._cache = None

    # -- candidates -------------------------------------------------------------------------
    def available(self) -> np.ndarray:
        """[E, N]: a free seat and no pickup ahead (the reference's state flag)."""
        return (self.onboard < self.game.capacity) & ~np.any(self.stop_kind == PICKUP, axis=2)

    def open_orders(self) -> np.ndarray:
        """[E, O]: appeared, not yet taken, waited at most max_wait."""
        now = self.t[:, None] * self.game.step_s
        return (self.o_status == WAITING) & (self.o_time <= now) & (now - self.o_time <= self.game.max_wait_s)

    def candidates(self) -> dict[str, np.ndarray]:
        """The current candidate pairs, computed once per state: `order` [E, N, K] (order slot,
        -1 none, nearest pickup first, equal travel times in slot order), `pickup_s`, `drop_s`,
        `added_s`, `n_late`, `trip_m`, `reward` (the immediate reward of taking it), `ins_i`,
        `ins_j`, and `active` [E, N]."""
        if self._cache is None:
            t0 = time.perf_counter()
            self._cache = self._candidates()
            self.timings["candidates"] += time.perf_counter() - t0
        return self._cache

    def _candidates(self) -> dict[str, np.ndarray]:
        g, E, N, K = self.game, self.num_envs, self.game.num_vehicles, self.game.K
        avail, open_ = self.available(), self.open_orders()
        order = np.full((E, N, K), -1, dtype=np.int64)
        for e in range(E):  # per environment: one vectorised scan of its (distinct vehicle node, open order) matrix
            V, W = np.flatnonzero(avail[e]), np.flatnonzero(open_[e])
            if not len(V) or not len(W):
                continue
            # a vehicle's pickup time of an order is lag + T[node, origin], its lag the same for every
            # order: the vehicles heading to one node rank the orders alike, so they are ranked once
            # per node (the scan grows with the city's nodes, not the fleet), then each vehicle's
            # own pickup times decide the radius
            node = self.node[e, V]
            nodes, which = np.unique(node, return_inverse=True)
            part = _nearest(self._T32, nodes, self.o_origin[e, W], K)[which]  # [V, min(K, |W|)] positions in W
            near = self.lag[e, V, None].astype(np.float32) + self._T32[node[:, None], self.o_origin[e, W[part]]]
            order[e, V, :part.shape[1]] = np.where(near <= g.radius_s + EPS, W[part], -1)
        out = {k: np.zeros((E, N, K)) for k in ("pickup_s", "drop_s", "added_s", "trip_m", "reward")}
        out.update({k: np.zeros((E, N, K), dtype=np.int64) for k in ("n_late", "ins_i", "ins_j")})
        e, n, c = np.nonzero(order >= 0)
        if len(e):
            o = order[e, n, c]
            now = self.t[e] * g.step_s
            so = self.stop_order[e, n]
            age = np.where(so >= 0, now[:, None] - self.o_assign[e[:, None], np.maximum(so, 0)], 0.0)
            ev = evaluate_pairs(g.city.time, self.node[e, n], self.lag[e, n], self.stop_node[e, n], self.stop_kind[e, n],
                                age, self.nstops[e, n], self.onboard[e, n], g.capacity, self.o_origin[e, o],
                                self.o_dest[e, o], g.late_s)
            bad = ~ev["ok"]
            order[e[bad], n[bad], c[bad]] = -1
            trip = g.city.dist[self.o_origin[e, o], self.o_dest[e, o]].astype(np.float64)
            rew = order_reward(trip, ev["pickup_s"], ev["n_late"], ev["added_s"], g.beta, g.late_threshold)
            for key, val in (("trip_m", trip), ("reward", rew), *((k, ev[k]) for k in ("pickup_s", "drop_s", "added_s",
                                                                                        "n_late", "ins_i", "ins_j"))):
                out[key][e, n, c] = val
        out["order"] = order
        out["choosing"] = order.max(axis=2) >= 0
        if g.active_mode == "fleet":
            out["active"] = np.ones((E, N), dtype=bool)
        else:
            out["active"] = out["choosing"].copy()
            # the contract wants a mover at every step: where no vehicle has a choice, vehicle 0
            # acts with its only legal action, "no order" (reward 0, no gradient for a learner)
            out["active"][~out["active"].any(axis=1), 0] = True
        return out

    # -- views ------------------------------------------------------------------------------
    def active(self) -> dict[str, np.ndarray]:
        return {"vehicles": self.candidates()["active"].copy()}

    def action_mask(self) -> dict[str, np.ndarray]:
        c = self.candidates()
        return {"vehicles": np.concatenate([np.ones((*c["order"].shape[:2], 1), dtype=bool), c["order"] >= 0], axis=2)}

    def _route_eta(self) -> np.ndarray:
        """[E, N, S] seconds from now until each planned stop."""
        T, S = self.game.city.time, self.stop_node.shape[2]
        prev = np.concatenate([self.node[..., None], self.stop_node[..., :-1]], axis=2)
        legs = np.where(np.arange(S) < self.nstops[..., None], T[prev, self.stop_node], 0.0)
        return self.lag[..., None] + np.cumsum(legs, axis=2)

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        g, c = self.game, self.candidates()
        E, N, K, S = self.num_envs, g.num_vehicles, g.K, 2 * g.capacity
        eta = self._route_eta()
        present = np.arange(S) < self.nstops[..., None]
        pending = np.sum(self.stop_kind == PICKUP, axis=2)
        me = np.zeros((E, N, SELF_F), dtype=np.float32)
        me[..., :2] = self._xy[self.node]
        me[..., 2] = (g.capacity - self.onboard - pending) / g.capacity
        me[..., 3] = self.onboard / g.capacity
        me[..., 4] = np.where(self.nstops > 0, eta[np.arange(E)[:, None], np.arange(N), np.maximum(self.nstops - 1, 0)], 0.0) / 1800.0
        me[..., 5] = self.t[:, None] / g.max_steps
        me[..., 6] = self.cum_reward / 10.0
        me[..., 7] = self.cum_reward.mean(axis=1, keepdims=True) / 10.0
        rows = np.zeros((E, N, K + 1, ORDER_F), dtype=np.float32)
        rows[..., 0, :2] = 1.0  # the "no order" row: present, flagged
        has = c["order"] >= 0
        o = np.maximum(c["order"], 0)
        ei = np.arange(E)[:, None, None]
        now = self.t[:, None, None] * g.step_s
        feats = [np.ones_like(c["pickup_s"]), np.zeros_like(c["pickup_s"]), c["pickup_s"] / 600.0,
                 *np.moveaxis(self._xy[self.o_origin[ei, o]], -1, 0), *np.moveaxis(self._xy[self.o_dest[ei, o]], -1, 0),
                 c["trip_m"] / 10_000.0, g.city.time[self.o_origin[ei, o], self.o_dest[ei, o]] / 1800.0,
                 (now - self.o_time[ei, o]) / max(g.max_wait_s, g.step_s), c["added_s"] / 1800.0, c["n_late"] / g.capacity]
        rows[..., 1:, :] = np.where(has[..., None], np.stack(feats, axis=-1), 0.0)
        route = np.zeros((E, N, S, STOP_F), dtype=np.float32)
        route[..., 0] = present
        route[..., 1:3] = self._xy[self.stop_node] * present[..., None]
        route[..., 3] = (self.stop_kind == PICKUP) & present
        route[..., 4] = np.where(present, eta, 0.0) / 1800.0
        return {"vehicles": {"self": me, "orders": rows, "route": route}}

    def global_state(self) -> np.ndarray:
        """Coarse maps (BINS x BINS) of free vehicles, busy vehicles and open orders' origins
        (fractions of the fleet), and the episode progress: a size that does not grow with N."""
        E, N = self.num_envs, self.game.num_vehicles
        cell = np.minimum((self._xy * BINS).astype(np.int64), BINS - 1)
        cell = cell[:, 0] * BINS + cell[:, 1]
        out = np.zeros((E, 3, BINS * BINS), dtype=np.float32)
        free = self.available()
        eidx = np.repeat(np.arange(E), N)
        for ch, where in ((0, free), (1, ~free)):
            np.add.at(out, (eidx[where.ravel()], ch, cell[self.node][where]), 1.0 / N)
        eo, oo = np.nonzero(self.open_orders())
        np.add.at(out, (eo, 2, cell[self.o_origin[eo, oo]]), 1.0 / N)
        return np.concatenate([out.reshape(E, -1), (self.t[:, None] / self.game.max_steps).astype(np.float32)], axis=1)

    # -- dynamics -----------------------------------------------------------------------------
    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        res = super().step(actions, autoreset)
        res.info.update(self._info)
        return res

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        g, c = self.game, self.candidates()
        t0 = time.perf_counter()
        E, N = self.num_envs, g.num_vehicles
        rewards = np.zeros((E, N))
        a = np.asarray(actions["vehicles"])
        e, n = np.nonzero(c["active"] & (a > 0))
        slot = a[e, n] - 1
        o = c["order"][e, n, slot]
        # one order, one vehicle: the shortest pickup wins, then the lower slot
        first = np.lexsort((n, c["pickup_s"][e, n, slot], o, e))
        e, n, slot, o = e[first], n[first], slot[first], o[first]
        keep = np.ones(len(e), dtype=bool)
        keep[1:] = (e[1:] != e[:-1]) | (o[1:] != o[:-1])
        e, n, slot, o = e[keep], n[keep], slot[keep], o[keep]
        now = self.t[e] * g.step_s
        r = c["reward"][e, n, slot]
        rewards[e, n] = r
        self.cum_reward[e, n] += r
        self._insert(e, n, o, c["ins_i"][e, n, slot], c["ins_j"][e, n, slot])
        self.o_status[e, o], self.o_assign[e, o] = ASSIGNED, now
        for col, val in ((0, 1.0), (1, r), (2, c["pickup_s"][e, n, slot] / 60.0), (3, (now - self.o_time[e, o]) / 60.0)):
            self.metrics[:, col] += np.bincount(e, weights=np.broadcast_to(val, e.shape), minlength=E)
        assigned = np.zeros((E, N), dtype=bool)
        assigned[e, n] = True
        self._drive(g.step_s)
        end = (self.t[:, None] + 1) * g.step_s  # orders that have now waited too long are dropped
        late = (self.o_status == WAITING) & (end - self.o_time > g.max_wait_s)
        self.o_status[late] = DROPPED
        self.metrics[:, 6] += late.sum(axis=1)
        self._cache = None
        self._info = {"assigned": assigned, "choosing": c["choosing"].copy(), "cum_reward": self.cum_reward.copy(),
                      "metrics": {k: self.metrics[:, i].copy() for i, k in enumerate(METRICS)}}
        self.timings["simulate"] += time.perf_counter() - t0
        return {"vehicles": rewards}, np.zeros(E, dtype=bool)

    def _insert(self, e: np.ndarray, n: np.ndarray, o: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
        """Put order o's pickup after i and its drop-off after j of the vehicle's current stops."""
        S = self.stop_node.shape[2]
        q = np.arange(S)[None, :]
        i, j = i[:, None], j[:, None]
        src = np.where(q < i, q, np.where(q <= j, q - 1, q - 2))  # old stop at new position q
        is_p, is_d = q == i, q == j + 1
        valid = (src < self.nstops[e, n][:, None]) & ~is_p & ~is_d
        src = np.clip(src, 0, S - 1)
        for arr, p_val, d_val, empty in ((self.stop_node, self.o_origin[e, o], self.o_dest[e, o], 0),
                                         (self.stop_kind, PICKUP, DROPOFF, 0), (self.stop_order, o, o, -1)):
            old = arr[e, n][np.arange(len(e))[:, None], src]
            new = np.where(valid, old, empty)
            new = np.where(is_p, np.reshape(p_val, (-1, 1)), np.where(is_d, np.reshape(d_val, (-1, 1)), new))
            arr[e, n] = new
        self.nstops[e, n] += 2

    def _drive(self, seconds: float) -> None:
        """Every vehicle drives its route for `seconds` along the fastest paths, edge by edge
        (next_hop), serving the stops it reaches; vectorised over vehicles, one iteration per edge
        or stop event."""
        g = self.game
        T, hop, S = g.city.time, g.city.next_hop, self.stop_node.shape[2]
        E, N = self.num_envs, g.num_vehicles
        node, lag, nst = self.node.reshape(-1), self.lag.reshape(-1), self.nstops.reshape(-1)
        sn, sk, so = (a.reshape(-1, S) for a in (self.stop_node, self.stop_kind, self.stop_order))
        budget = np.full(E * N, seconds)
        start = np.repeat(self.t * g.step_s, N)
        for _ in range(10**6):  # each round serves a stop or finishes an edge (or the budget) per vehicle
            arrive = np.flatnonzero((nst > 0) & (lag == 0.0) & (node == sn[:, 0]))
            if len(arrive):
                self._serve(arrive, sn, sk, so, nst, start[arrive] + seconds - budget[arrive])
            move = np.flatnonzero((nst > 0) & (budget > 0.0))
            if not len(move) and not len(arrive):
                return
            new = move[lag[move] == 0.0]
            nxt = hop[node[new], sn[new, 0]]
            lag[new], node[new] = T[node[new], nxt], nxt
            use = np.minimum(lag[move], budget[move])
            left = lag[move] - use
            lag[move] = np.where(left < EPS, 0.0, left)  # a microsecond short of a node is at it (rounding)
            budget[move] -= use
        raise RuntimeError("ride_dispatch: vehicles did not finish a step's driving (a zero-time cycle in the city?)")

    def _serve(self, v: np.ndarray, sn: np.ndarray, sk: np.ndarray, so: np.ndarray, nst: np.ndarray,
               when: np.ndarray) -> None:
        """Vehicles v (flat) at their first stop: pick up or drop off, then pop the stop."""
        E, N = self.num_envs, self.game.num_vehicles
        e, o, kind = v // N, so[v, 0], sk[v, 0]
        onboard = self.onboard.reshape(-1)
        up, down = kind == PICKUP, kind == DROPOFF
        onboard[v[up]] += 1
        self.o_status[e[up], o[up]], self.o_pickup[e[up], o[up]] = ONBOARD, when[up]
        onboard[v[down]] -= 1
        ed, od = e[down], o[down]
        self.o_status[ed, od] = DELIVERED
        direct = self.game.city.time[self.o_origin[ed, od], self.o_dest[ed, od]]
        self.metrics[:, 4] += np.bincount(ed, weights=(when[down] - self.o_pickup[ed, od] - direct) / 60.0, minlength=E)
        self.metrics[:, 5] += np.bincount(ed, minlength=E)
        for arr, empty in ((sn, 0), (sk, 0), (so, -1)):
            arr[v, :-1] = arr[v, 1:]
            arr[v, -1] = empty
        nst[v] -= 1


# ----------------------------------------------------------------------------- registry
def _size(num_vehicles: int = 1000, grid: int = 20, capacity: int = 3, max_candidates: int = 8, demand: float = 0.15,
          max_steps: int = 30, city: str = "grid", **_: object) -> SizeEstimate:
    n = grid * grid if city == "grid" else 0  # a file's node count is known once it is read
    orders = demand * num_vehicles * max_steps * 1.5 + 64
    return SizeEstimate(bytes=n * n * 24.0, bytes_per_env=_bytes_per_env(num_vehicles, capacity, max_candidates, int(orders)))


@register("ride_dispatch", size=_size, example="ride_dispatch(num_vehicles=6, grid=4, max_steps=6, demand=0.5, active=fleet)")
def ride_dispatch(num_vehicles: PositiveInt = 1000, grid: Annotated[int, Field(ge=2, le=70)] = 20,
                  block_m: PositiveFloat = 400.0, speed_kmh: PositiveFloat = SPEED_KMH,
                  capacity: Annotated[int, Field(ge=1, le=3)] = 3, max_steps: PositiveInt = 30,
                  step_minutes: PositiveFloat = 1.0, max_wait: NonNegativeFloat = 5.0, pickup_radius: PositiveFloat = 10.0,
                  max_candidates: PositiveInt = 8, demand: PositiveFloat = 0.15,
                  start_hour: Annotated[float, Field(ge=0, lt=24)] = 19.0, trip_scale_km: PositiveFloat = 2.8,
                  city: str = "grid", nodes: str | None = None, orders: str | None = None,
                  order_sample_rate: Probability = 1.0, city_seed: Annotated[int, Field(ge=0)] = 0,
                  reward: list[float] | None = None, late_threshold: PositiveFloat = LATE_THRESHOLD_MIN,
                  active: Literal["choosing", "fleet"] = "choosing") -> RideDispatch:
    """Ride-sharing order dispatch (OSPO): a fleet with pooling on a road graph, a seeded order
    stream, the paper's reward; a Manhattan-sized grid calibrated on NYC routes, or a city and an
    order table from CSV.

    City: `grid` x `grid` intersections `block_m` apart driven at `speed_kmh` (defaults: 58 km2,
    NYC's median route speed), or `city="edges.csv"` with `nodes="nodes.csv"`. Fleet:
    `num_vehicles` of `capacity` seats, placed uniformly at random. Orders: synthetic at `demand`
    orders per minute per vehicle at `start_hour` (scaled by the time-of-day profile; trips decay
    with `trip_scale_km`; the zones' hotspots come from `city_seed`), or `orders="table.csv"` /
    ".parquet" (time in minutes, origin, destination), of which each episode keeps a random
    `order_sample_rate` share. Episode: `max_steps` decisions `step_minutes` apart; an order waits
    at most `max_wait` minutes; candidates are the `max_candidates` nearest open orders within
    `pickup_radius` minutes. Reward: `reward` = b0..b5 and `late_threshold` minutes (paper
    defaults). `active`: "choosing" (vehicles with a candidate) or "fleet" (every vehicle)."""
    given = dict(locals())
    # the parameters that differ from the defaults (num_vehicles always): repr(game) rebuilds it
    params = {k: v for k, v in given.items() if k == "num_vehicles" or v != _DEFAULTS[k]}
    the_city = grid_city(grid, block_m, speed_kmh) if city == "grid" else load_city(city, nodes, speed_kmh)
    table = None if orders is None else load_orders(orders, the_city)
    return RideDispatch(the_city, num_vehicles, capacity, max_steps, step_minutes, max_wait, pickup_radius, max_candidates,
                        demand, start_hour, trip_scale_km, table, order_sample_rate, city_seed,
                        tuple(reward) if reward is not None else BETA, late_threshold, active, params)


_DEFAULTS = {k: p.default for k, p in inspect.signature(ride_dispatch).parameters.items()}

__all__ = ["BETA", "LATE_THRESHOLD_MIN", "METRICS", "DispatchSimulator", "RideDispatch", "evaluate_pairs", "order_reward",
           "ride_dispatch"]
