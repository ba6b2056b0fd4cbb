"""The platform of the ride-dispatch game (games.dispatch): scores -> one-to-one assignment.

Every decision step the platform
1. takes the candidate (vehicle, order) pairs the simulator generated (each free vehicle's K
   nearest open orders within the pickup radius: per environment, the open orders are ranked
   once for every distinct node the free vehicles head to, one vectorised scan of that
   (node, order) matrix, and each vehicle takes its node's list and its own pickup times; see
   `DispatchSimulator.candidates`);
2. scores every pair, `scores [E, N, K+1]`, row 0 being "no order" (from a policy: the logits or
   probabilities of the Candidates head; or from a baseline rule below);
3. solves the assignment on the candidate graph: vehicle i matched to order j is worth
   `score[i, j] - score[i, 0]`; each vehicle also has a "no order" column worth 0 (the
   reference's zero-padded columns, RS2002/OSPO Platform.assign), so a vehicle whose every
   pair is worth less than nothing idles. `scipy.optimize.linear_sum_assignment` on the dense
   candidate matrix for small problems; `scipy.sparse.csgraph.min_weight_full_bipartite_matching`
   on the sparse candidate graph when the matrix has more than DENSE_LIMIT entries (from about
   200 vehicles on the default game). Pairs worth nothing are left out of the graph first. No
   Python loop runs over pairs.
4. returns the actions: each vehicle's assigned row (0 = none), one-to-one by construction.

Baselines (`nearest_scores`, `greedy_scores`): nearest vehicle (score = -pickup time; "no order"
scores below every candidate, so the matching serves as many orders as it can with the least
total pickup time) and greedy by immediate reward (score = the reward the simulator predicts
for the pair; "no order" = 0, so only orders worth taking now are taken, maximising the step's
total reward). `run_episodes` rolls a scorer out and reports the evaluation measures with
timings (marl.dispatch_controllers.evaluate_scorer gives them per episode with the mean return
per vehicle, the evaluation of the dispatch controllers and learners); `record_episode` keeps
one episode's frames for the animation (games.dispatch_render).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from equilibria.games.dispatch import RideDispatch

Method = Literal["auto", "dense", "sparse"]
# entries of the dense matrix (vehicles x (orders + vehicles)) above which "auto" goes sparse: where
# the two solvers break even on the default game (benchmarks/dispatch_scaling.py; dense is 2-3x
# slower at 200,000 entries, 4-8x at 1,000 vehicles, 15-25x at 5,000)
DENSE_LIMIT = 30_000
Scorer = Callable[[Any], np.ndarray]  # simulator -> scores [E, N, K+1]


def assign(scores: np.ndarray, order: np.ndarray, method: Method = "auto") -> np.ndarray:
    """One environment: `scores` [N, K+1] (row 0 "no order"), `order` [N, K] candidate order ids
    (-1: none). Returns each vehicle's row [N] (0: no order), no order to two vehicles, the sum of
    `scores[i, row] - scores[i, 0]` maximal."""
    n_veh = order.shape[0]
    out = np.zeros(n_veh, dtype=np.int64)
    v, c = np.nonzero(order >= 0)
    with np.errstate(invalid="ignore"):
        gain = scores[v, c + 1] - scores[v, 0]
    keep = np.isfinite(gain) & (gain > 0)  # a pair worth no more than idling never needs to be in the graph
    v, c, gain = v[keep], c[keep], gain[keep]
    if not len(v):
        return out
    rows, r = np.unique(v, return_inverse=True)
    cols, k = np.unique(order[v, c], return_inverse=True)
    nr, nc = len(rows), len(cols)
    if method == "dense" or (method == "auto" and nr * (nc + nr) <= DENSE_LIMIT):
        forbid = -(np.abs(gain).sum() + 1.0)  # worse than any assignment without it: never chosen
        m = np.full((nr, nc + nr), forbid)
        m[r, k] = gain
        m[:, nc:] = 0.0  # the "no order" columns
        ri, ci = linear_sum_assignment(m, maximize=True)
    else:
        # every row is matched exactly once (its own dummy column at worst), so adding 1 to all
        # weights keeps the optimum and makes them the non-zero weights the sparse solver needs
        w = np.concatenate([gain + 1.0, np.ones(nr)])
        g = csr_matrix((w, (np.concatenate([r, np.arange(nr)]), np.concatenate([k, nc + np.arange(nr)]))),
                       shape=(nr, nc + nr))
        ri, ci = min_weight_full_bipartite_matching(g, maximize=True)
    got = ci < nc
    ri, ci = ri[got], ci[got]
    # back from (row, column) to the candidate row of that pair
    key = r * nc + k
    srt = np.argsort(key)
    pos = srt[np.searchsorted(key[srt], ri * nc + ci)]
    out[rows[ri]] = c[pos] + 1
    return out


class Platform:
    """Assignment for every environment of a simulator, with timings (seconds, summed)."""

    def __init__(self, method: Method = "auto"):
        self.method = method
        self.timings = {"scoring": 0.0, "assignment": 0.0}

    def actions(self, sim: Any, scores: np.ndarray) -> dict[str, np.ndarray]:
        """Scores [E, N, K+1] -> {"vehicles": rows [E, N]}; inactive vehicles get 0."""
        t0 = time.perf_counter()
        cand = sim.candidates()
        order = np.where(cand["active"][..., None], cand["order"], -1)
        acts = np.stack([assign(scores[e], order[e], self.method) for e in range(sim.num_envs)])
        self.timings["assignment"] += time.perf_counter() - t0
        return {"vehicles": acts}

    def step(self, sim: Any, scorer: Scorer) -> Any:
        """Score, assign and step the simulator once (no auto-reset); returns the StepResult."""
        sim.candidates()  # generated (and timed) by the simulator, so scoring is timed alone
        t0 = time.perf_counter()
        scores = scorer(sim)
        self.timings["scoring"] += time.perf_counter() - t0
        return sim.step(self.actions(sim, scores), autoreset=False)


# ----------------------------------------------------------------------------- baselines
def nearest_scores(sim: Any) -> np.ndarray:
    """Nearest vehicle: -pickup minutes; "no order" below every candidate."""
    c = sim.candidates()
    K = c["order"].shape[2]
    out = np.full((*c["order"].shape[:2], K + 1), -np.inf)
    out[..., 1:] = np.where(c["order"] >= 0, -c["pickup_s"] / 60.0, -np.inf)
    out[..., 0] = -(sim.game.radius_s / 60.0 + 1.0)
    return out


def greedy_scores(sim: Any) -> np.ndarray:
    """Greedy by immediate reward: the pair's predicted reward; "no order" 0."""
    c = sim.candidates()
    out = np.zeros((*c["order"].shape[:2], c["order"].shape[2] + 1))
    out[..., 1:] = np.where(c["order"] >= 0, c["reward"], -np.inf)
    return out


BASELINES: dict[str, Scorer] = {"nearest": nearest_scores, "greedy": greedy_scores}


def summarize(info: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-environment evaluation measures from a StepResult's info (dispatch.METRICS): served
    orders, total reward, mean pickup / confirmation minutes per served order, mean detour
    minutes per delivered order, delivered, dropped, and fairness: the standard deviation of the
    vehicles' cumulative rewards (drivers' income spread)."""
    m = info["metrics"]
    served, delivered = np.maximum(m["served"], 1), np.maximum(m["delivered"], 1)
    return {"served": m["served"], "reward": m["reward"], "pickup_min": m["pickup_min"] / served,
            "confirm_min": m["confirm_min"] / served, "detour_min": m["detour_min"] / delivered,
            "delivered": m["delivered"], "dropped": m["dropped"], "income_std": info["cum_reward"].std(axis=1)}


def run_episodes(game: RideDispatch, scorer: Scorer | str, episodes: int = 1, seed: int = 0,
                 method: Method = "auto") -> dict[str, Any]:
    """Roll `episodes` environments for one episode with a scorer (a baseline's name or a
    function of the simulator); returns summarize()'s measures and per-step timings (ms):
    candidate generation, scoring, assignment, simulation (moving the fleet, serving stops)."""
    fn = BASELINES[scorer] if isinstance(scorer, str) else scorer
    sim = game.simulator(episodes, seed)
    platform = Platform(method)
    t0 = time.perf_counter()
    for _ in range(game.max_steps):
        res = platform.step(sim, fn)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = summarize(res.info)
    steps = game.max_steps
    out["ms_per_step"] = {"candidates": 1e3 * sim.timings["candidates"] / steps,
                          "scoring": 1e3 * platform.timings["scoring"] / steps,
                          "assignment": 1e3 * platform.timings["assignment"] / steps,
                          "simulate": 1e3 * sim.timings["simulate"] / steps, "total": 1e3 * wall / steps}
    out["steps_per_s"] = steps / wall
    return out


def street_edges(city: Any) -> np.ndarray:
    """[M, 2] node pairs (u < v) of the streets the fleet drives: every first hop of a fastest path
    (a road on no fastest path is left out), each street once whatever its directions."""
    n = city.n
    adj = np.zeros((n, n), dtype=bool)
    adj[np.arange(n)[:, None], city.next_hop] = True
    adj |= adj.T
    u, v = np.nonzero(np.triu(adj, 1))
    return np.stack([u, v], axis=1)


def record_episode(game: RideDispatch, scorer: Scorer | str, seed: int = 10_000, method: Method = "auto") -> dict[str, Any]:
    """One episode (the first of marl.dispatch_controllers.evaluate_scorer(game, scorer, 1, seed):
    the same orders and fleet) for games.dispatch_render.episode_svg. Frame t is the state before decision t (t = 0..T,
    T = max_steps): `positions` [T + 1, N, 2] metres (a vehicle between nodes is at the node it
    heads to), `onboard` [T + 1, N] passengers, `orders` T + 1 arrays [M_t, 2] (the open orders'
    pickup points); per decision t: `assignments` [A_t, 2, 2] (the vehicle's point, the order's
    pickup point), and after it the episode's cumulative `served`, `dropped` and `reward`.
    Also the city (`xy` [n, 2] metres, `edges` [M, 2]), `capacity` and `step_minutes`."""
    fn = BASELINES[scorer] if isinstance(scorer, str) else scorer
    sim, name, platform = game.simulator(1, seed), game.groups[0].name, Platform(method)
    xy = np.asarray(game.city.xy, dtype=np.float64)

    def frame() -> None:
        positions.append(xy[sim.node[0]])
        onboard.append(sim.onboard[0].copy())
        orders.append(xy[sim.o_origin[0, np.flatnonzero(sim.open_orders()[0])]])

    positions: list[np.ndarray] = []
    onboard: list[np.ndarray] = []
    orders: list[np.ndarray] = []
    assignments, served, dropped, reward = [], [], [], []
    frame()
    for _ in range(game.max_steps):
        cand = sim.candidates()
        rows = platform.actions(sim, fn(sim))[name]
        res = sim.step({name: rows}, autoreset=False)
        v = np.flatnonzero(res.info["assigned"][0])
        o = cand["order"][0, v, rows[0, v] - 1]
        assignments.append(np.stack([positions[-1][v], xy[sim.o_origin[0, o]]], axis=1))
        m = res.info["metrics"]
        served.append(int(m["served"][0]))
        dropped.append(int(m["dropped"][0]))
        reward.append(float(m["reward"][0]))
        frame()
    return {"xy": xy, "edges": street_edges(game.city), "positions": np.stack(positions), "onboard": np.stack(onboard),
            "orders": orders, "assignments": assignments, "served": served, "dropped": dropped, "reward": reward,
            "capacity": game.capacity, "step_minutes": game.step_s / 60.0}


__all__ = ["BASELINES", "Platform", "assign", "greedy_scores", "nearest_scores", "record_episode",
           "run_episodes", "street_edges", "summarize"]
