"""Cheapest insertion of an order into a vehicle's route, for ride dispatch (games.dispatch).

A vehicle's route is its ordered stops after the node it is heading to; a new order's pickup
goes after ci of the old stops and its drop-off after cj >= ci, which delays the stops between
them and those after. `evaluate_pairs` finds, for many (vehicle, order) pairs at once, the
insertion that adds the least passenger time within the vehicle's capacity, and what it costs
(pickup and drop-off times, the time added to everyone on board, orders that end up late). The
loop is compiled (numba), one pair at a time.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PICKUP, DROPOFF = 1, 2  # stop kinds (0: empty slot)


def evaluate_pairs(T: np.ndarray, node: np.ndarray, lag: np.ndarray, stop_node: np.ndarray, stop_kind: np.ndarray,
                   stop_age: np.ndarray, nstops: np.ndarray, onboard: np.ndarray, capacity: int, p: np.ndarray,
                   d: np.ndarray, late_s: float) -> dict[str, np.ndarray]:
    """Cheapest insertion of P orders (pickup node p, drop-off node d) into P vehicles' routes.
    Per pair: the vehicle's node it is heading to and the seconds `lag` until it gets there, its
    stops [P, S] (node, kind, and for drop-offs the seconds since that order was assigned), stop
    count, passengers. Returns per pair `ok`, the insertion (`ins_i` old stops before the pickup,
    `ins_j` before the drop-off), `pickup_s` (from now), `drop_s`, `added_s` (passenger time
    added: the new order's pickup wait and ride plus the delays of orders on board) and `n_late`
    (orders on board, the new one included, whose assignment-to-drop-off time would exceed
    `late_s`). The cheapest feasible insertion wins, the first in (ins_i, ins_j) order on ties;
    a pair with none has ok False and the (0, 0) insertion's numbers."""
    P = len(p)
    out_i, out_j = np.zeros(P, dtype=np.int64), np.zeros(P, dtype=np.int64)
    out_f = np.zeros((4, P))  # pickup_s, drop_s, added_s, cost
    n_late = np.zeros(P, dtype=np.int64)
    if P:  # the compiled loop does not check bounds: refuse what would read outside the tables
        nodes = T.shape[0]
        if int(np.max(nstops)) > stop_node.shape[1] or min(np.min(node), np.min(p), np.min(d)) < 0 \
                or max(np.max(node), np.max(p), np.max(d), np.max(stop_node, initial=0)) >= nodes:
            raise ValueError(f"evaluate_pairs: a stop count beyond the {stop_node.shape[1]} stop columns or a node "
                             f"outside the city's {nodes}")
        _insert(np.ascontiguousarray(T, dtype=np.float64), np.asarray(node, dtype=np.int64),
                np.asarray(lag, dtype=np.float64), np.ascontiguousarray(stop_node, dtype=np.int64),
                np.ascontiguousarray(stop_kind, dtype=np.int64), np.ascontiguousarray(stop_age, dtype=np.float64),
                np.asarray(nstops, dtype=np.int64), np.asarray(onboard, dtype=np.int64), int(capacity),
                np.asarray(p, dtype=np.int64), np.asarray(d, dtype=np.int64), float(late_s), PICKUP, DROPOFF,
                out_i, out_j, out_f, n_late)
    return {"ok": np.isfinite(out_f[3]), "ins_i": out_i, "ins_j": out_j, "pickup_s": out_f[0], "drop_s": out_f[1],
            "added_s": out_f[2], "n_late": n_late}


@njit(cache=True)
def _insert(T, node, lag, stop_node, stop_kind, stop_age, nstops, onboard, capacity, p, d, late_s, pickup, dropoff,
            out_i, out_j, out_f, n_late):  # pragma: no cover - compiled
    """evaluate_pairs' loop, one pair at a time: the route R_0 = the vehicle's next node, R_1..R_L
    its stops; arrival A_k at R_k; a pickup after ci old stops and a drop-off after cj >= ci delay
    the stops between them by d1 and those after by d2. Summation order follows the formulas as
    written, so results do not depend on the other pairs."""
    S = stop_node.shape[1]
    R = np.empty(S + 2, dtype=np.int64)
    kind = np.zeros(S + 2, dtype=np.int64)
    A = np.empty(S + 2)
    leg = np.empty(S + 1)
    load = np.empty(S + 2, dtype=np.int64)
    cumdrop = np.empty(S + 2, dtype=np.int64)
    for r in range(len(p)):
        L = nstops[r]
        R[0] = node[r]  # kind[0] stays 0: the vehicle's next node is no stop
        for k in range(L):
            R[k + 1] = stop_node[r, k]
            kind[k + 1] = stop_kind[r, k]
        R[L + 1] = R[L]  # past the route's end: its last node, a zero-time leg
        kind[L + 1] = 0
        cum, dropped, on = 0.0, 0, onboard[r]
        A[0] = lag[r]
        cumdrop[0] = 0
        load[0] = on
        for k in range(L + 1):
            leg[k] = T[R[k], R[k + 1]]
            cum += leg[k]
            A[k + 1] = lag[r] + cum
            if kind[k + 1] == dropoff:
                dropped += 1
                on -= 1
            elif kind[k + 1] == pickup:
                on += 1
            cumdrop[k + 1] = dropped
            load[k + 1] = on
        total_drops = dropped
        pr, dr = p[r], d[r]
        t_pd = T[pr, dr]
        best = np.inf
        bi = bj = b_late = 0
        b_pick = b_drop = b_added = 0.0
        for ci in range(L + 1):
            t_ip = T[R[ci], pr]
            pick = A[ci] + t_ip
            d1 = t_ip + T[pr, R[ci + 1]] - leg[ci]
            seg = -1
            for cj in range(ci, L + 1):
                seg = max(seg, load[cj])
                if cj == ci:
                    drop = pick + t_pd
                    d2 = t_ip + t_pd + T[dr, R[cj + 1]] - leg[cj]
                    added = drop + (total_drops - cumdrop[cj]) * d2
                else:
                    t_jd = T[R[cj], dr]
                    drop = A[cj] + d1 + t_jd
                    d2 = d1 + t_jd + T[dr, R[cj + 1]] - leg[cj]
                    added = drop + (cumdrop[cj] - cumdrop[ci]) * d1 + (total_drops - cumdrop[cj]) * d2
                better = seg + 1 <= capacity and added < best
                if better or (ci == 0 and cj == 0):  # (0, 0) gives the numbers when nothing is feasible
                    late = 1 if drop > late_s else 0
                    for m in range(1, L + 1):
                        if kind[m] == dropoff:
                            delay = 0.0 if m <= ci else (d1 if m <= cj else d2)
                            if stop_age[r, m - 1] + A[m] + delay > late_s:
                                late += 1
                    b_pick, b_drop, b_added, b_late, bi, bj = pick, drop, added, late, ci, cj
                    if better:
                        best = added
        out_i[r], out_j[r], n_late[r] = bi, bj, b_late
        out_f[0, r], out_f[1, r], out_f[2, r], out_f[3, r] = b_pick, b_drop, b_added, best


__all__ = ["DROPOFF", "PICKUP", "evaluate_pairs"]
