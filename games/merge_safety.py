"""MAPPO-PIS's intention generator and safety-enhanced module, on the merge's numba state.

Both look ahead by simulating a copy of one environment with the vehicle models themselves
(games.merge_dynamics) for `LOOKAHEAD_FRAMES` simulation steps (1 s, the released code's
n_points = 15): HDVs follow their own models, CAVs their meta-actions.

- Intents (`intents`): each CAV's planned trajectory over the next second under its current plan
  (its target lane and target speed, i.e. the meta-action it committed to), at `INTENT_FRAMES`.
  CAVs within range share them; the policy observes its neighbours' intents (games.merge).
- Safety (`safety_module`): CAVs are taken in priority order (ramp vehicles nearest the merge end
  first, then by time headway); for each, the lookahead runs with its chosen action and the other
  CAVs' actions, which are known when intents are shared (`shared=True`) and otherwise assumed
  IDLE (keep lane and speed). If the CAV is predicted to crash, every meta-action is scored by its
  safety room (over the lookahead, the smallest longitudinal bumper gap to any vehicle ahead or
  behind that overlaps it laterally, |dy| < 2.5 m, capped by the room left before the merge lane's
  end; a predicted crash scores below any gap) and the best
  replaces the chosen one (when every action crashes, the chosen one stays). Each CAV is replaced
  at most once; with shared intents, later CAVs predict it with its replacement.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from equilibria.games.merge_dynamics import (
    CAV,
    CRASHED,
    HASIMP,
    IDLE_ACTION,
    KIND,
    LANE,
    MERGE_END,
    MERGE_LANE,
    NEXT_LANE,
    RAMP_JK,
    RAMP_KB,
    VEHICLE_LENGTH,
    V,
    X,
    Y,
    simulate_frame,
)

LOOKAHEAD_FRAMES = 15
INTENT_FRAMES = (7, 14)  # the shared waypoints: about 0.5 s and 1 s ahead (frame index, 0-based)
ROOM_CAP = 60.0
HEADWAY_CAP = 60.0
CRASH_ROOM = -100.0


@njit(cache=True)
def on_ramp(lane):
    return lane == RAMP_JK or lane == RAMP_KB or lane == MERGE_LANE


@njit(cache=True)
def headway_distance(F, S, e, i):
    """The released code's `_compute_headway_distance`: the x-gap to the nearest vehicle ahead on
    the CAV's lane or on the lane that follows it (not from the merge lane), capped at 60 m."""
    lane = S[e, i, LANE]
    x = F[e, i, X]
    best = HEADWAY_CAP
    for j in range(F.shape[1]):
        if j == i or S[e, j, KIND] < 0:
            continue
        other = S[e, j, LANE]
        if (other == lane or (lane != MERGE_LANE and other == NEXT_LANE[lane])) and F[e, j, X] > x:
            best = min(best, F[e, j, X] - x)
    return best


@njit(cache=True)
def time_headway(F, S, e, i):
    """Headway distance over own speed [s]; inf without a vehicle ahead within the 60 m cap."""
    h = headway_distance(F, S, e, i)
    if h >= HEADWAY_CAP:
        return np.inf
    return h / max(F[e, i, V], 1e-3)


@njit(cache=True)
def _lookahead(F, S, e, actions, scratch_f, scratch_i, ego, pa, pb, none, horizon):
    """Simulate a copy of environment e for `horizon` frames; returns (ego crashed, its safety room)."""
    scratch_f[0] = F[e]
    scratch_i[0] = S[e]
    room = ROOM_CAP
    for t in range(horizon):
        simulate_frame(scratch_f, scratch_i, 0, actions if t == 0 else none, pa, pb)
        if scratch_i[0, ego, CRASHED] or scratch_i[0, ego, HASIMP]:
            return True, CRASH_ROOM
        x, y = scratch_f[0, ego, X], scratch_f[0, ego, Y]
        for j in range(F.shape[1]):
            if j == ego or scratch_i[0, j, KIND] < 0:
                continue
            if abs(scratch_f[0, j, Y] - y) < 2.5:
                room = min(room, abs(scratch_f[0, j, X] - x) - VEHICLE_LENGTH)
        if on_ramp(scratch_i[0, ego, LANE]):
            room = min(room, MERGE_END - x - VEHICLE_LENGTH / 2 - 1.0)
    return False, room


@njit(cache=True)
def safety_module(F, S, actions, active, shared, horizon=LOOKAHEAD_FRAMES):
    """Replace unsafe meta-actions in place: actions [E, N] (CAV slots), active [E, N] bool;
    conflicts are predicted over `horizon` simulation frames. Returns the number of replacements
    per environment."""
    E, n = F.shape[0], F.shape[1]
    scratch_f = np.empty((1, n, F.shape[2]))
    scratch_i = np.empty((1, n, S.shape[2]), dtype=S.dtype)
    pa, pb = np.empty((4, 2)), np.empty((4, 2))
    none = -np.ones(n, dtype=np.int64)
    trial = np.empty(n, dtype=np.int64)
    replaced = np.zeros(E, dtype=np.int64)
    for e in range(E):
        cavs = [i for i in range(n) if active[e, i] and S[e, i, KIND] == CAV]
        if not cavs:
            continue
        keys = np.empty(len(cavs))
        for k in range(len(cavs)):
            i = cavs[k]
            if on_ramp(S[e, i, LANE]):
                keys[k] = (MERGE_END - F[e, i, X]) / 1000.0  # ramp first, nearest the merge end first
            else:
                keys[k] = 1.0 + min(time_headway(F, S, e, i), ROOM_CAP)
        order = np.argsort(keys, kind="mergesort")
        for k in order:
            i = cavs[k]
            if S[e, i, CRASHED] or S[e, i, HASIMP]:  # nothing left to avoid
                continue
            for j in range(n):
                trial[j] = -1
                if S[e, j, KIND] == CAV and active[e, j]:
                    trial[j] = actions[e, j] if shared else IDLE_ACTION
            trial[i] = actions[e, i]
            crashed, _ = _lookahead(F, S, e, trial, scratch_f, scratch_i, i, pa, pb, none, horizon)
            if not crashed:
                continue
            best, best_room = actions[e, i], CRASH_ROOM  # replaced only by an action with more room
            for a in range(5):
                trial[i] = a
                _, room = _lookahead(F, S, e, trial, scratch_f, scratch_i, i, pa, pb, none, horizon)
                if room > best_room:
                    best, best_room = a, room
            if best != actions[e, i]:
                actions[e, i] = best
                replaced[e] += 1
    return replaced


@njit(cache=True)
def intents(F, S, active, out):
    """out [E, N, len(INTENT_FRAMES), 2]: every CAV's planned positions under its current plan
    (all CAVs keep their targets; HDVs follow their models); zeros for other slots."""
    E, n = F.shape[0], F.shape[1]
    scratch_f = np.empty((1, n, F.shape[2]))
    scratch_i = np.empty((1, n, S.shape[2]), dtype=S.dtype)
    pa, pb = np.empty((4, 2)), np.empty((4, 2))
    none = -np.ones(n, dtype=np.int64)
    out[:] = 0.0
    for e in range(E):
        if not active[e].any():
            continue
        scratch_f[0] = F[e]
        scratch_i[0] = S[e]
        w = 0
        for t in range(LOOKAHEAD_FRAMES):
            simulate_frame(scratch_f, scratch_i, 0, none, pa, pb)
            if w < len(INTENT_FRAMES) and t == INTENT_FRAMES[w]:
                for i in range(n):
                    if active[e, i] and S[e, i, KIND] == CAV:
                        out[e, i, w, 0] = scratch_f[0, i, X]
                        out[e, i, w, 1] = scratch_f[0, i, Y]
                w += 1
