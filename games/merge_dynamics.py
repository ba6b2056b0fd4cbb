"""The on-ramp merge's vehicle models, as numba kernels: highway-env 1.12's models, ported.

games.merge (the batched twin) steps every environment with these kernels; games.merge_highway
(highway-env itself) is the reference they are tested against event for event. What is ported,
from highway-env's `vehicle/` and `road/` packages (the names below are theirs):

- the road: a single-lane main road a->b->c->d (220 + 100 m, the 100 m merge section b->c, 100 m
  after), an on-ramp j->k (220 m) and a sine section k->b (100 m) that ends in the parallel merge
  lane b->c (lane 1, forbidden to enter from the main road) with an obstacle at its end;
  lanes 4 m wide, speed limit 30 m/s; `get_closest_lane_index` (distance plus heading error),
  `next_lane`, `side_lanes`, `is_reachable_from`, `after_end`, and `neighbour_vehicles` with
  `neighbour_vehicles_connected_lanes` (vehicles on the next and previous sections are seen);
- `Vehicle.step`: the kinematic bicycle (slip angle beta = arctan(tan(delta) / 2)), speed bounds,
  crashed vehicles braking to a stop, impacts applied one step later;
- `ControlledVehicle` / `MDPVehicle` (the CAVs): the five meta-actions, target speeds
  10/15/20/25/30 (the released code's; highway-env's default is 20/25/30), the cascaded lateral
  controller and the proportional speed controller;
- `IDMVehicle` (HDVs): IDM acceleration, MOBIL lane changes every LANE_CHANGE_DELAY seconds and
  the abort rule; `LinearVehicle`'s `AggressiveVehicle` and `DefensiveVehicle` (linear
  acceleration and steering models) for the heterogeneous HDVs;
- `Road.step`'s collision handling: rotated-rectangle separating-axis tests with the predicted
  displacement, in the same pair order (so the same impacts win).

State of a batch: floats F [E, N, NF] and integer status S [E, N, NS] (columns below); kind -1 marks an
empty slot. The obstacle is not a slot: index N stands for it wherever a vehicle index is expected.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------------------------------- state
X, Y, H, V, TSPEED, TIMER, IMPX, IMPY, STEER, ACC = range(10)
NF = 10
KIND, LANE, TLANE, SIDX, CRASHED, HASIMP = range(6)
NS = 6
CAV, IDM, AGGRESSIVE, DEFENSIVE = 0, 1, 2, 3
IDLE_ACTION = 1  # LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER
ACTION_NAMES = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")

# ----------------------------------------------------------------------------------------- road
ENDS = (220.0, 100.0, 100.0, 100.0)  # before, converging, merge, after (the paper's merge_env_v1)
LANE_WIDTH = 4.0
AMPLITUDE = 3.25
RAMP_Y = LANE_WIDTH + 6.5
SPEED_LIMIT = 30.0
MERGE_END = ENDS[0] + ENDS[1] + ENDS[2]  # x of the obstacle that closes the merge lane
ROAD_END = sum(ENDS)
# lanes in highway-env's graph order (argmin ties break the same way): (a,b,0) (b,c,0) (b,c,1)
# (c,d,0) (j,k,0) (k,b,0)
LANE_NAMES = (("a", "b", 0), ("b", "c", 0), ("b", "c", 1), ("c", "d", 0), ("j", "k", 0), ("k", "b", 0))
MAIN_AB, MAIN_BC, MERGE_LANE, MAIN_CD, RAMP_JK, RAMP_KB = range(6)
_pulsation = 2 * np.pi / (2 * ENDS[1])
_sine_start_y = RAMP_Y - AMPLITUDE  # StraightLane.position(ends[0], -amplitude) on the ramp (lateral axis +y)
_merge_y = _sine_start_y + AMPLITUDE * np.sin(_pulsation * ENDS[1] + np.pi / 2)
START = np.array([[0.0, 0.0], [ENDS[0] + ENDS[1], 0.0], [ENDS[0] + ENDS[1], _merge_y], [MERGE_END, 0.0],
                  [0.0, RAMP_Y], [ENDS[0], _sine_start_y]])
END = np.array([[ENDS[0] + ENDS[1], 0.0], [MERGE_END, 0.0], [MERGE_END, _merge_y], [ROAD_END, 0.0],
                [ENDS[0], RAMP_Y], [ENDS[0] + ENDS[1], _sine_start_y]])
LENGTH = np.array([np.linalg.norm(END[i] - START[i]) for i in range(6)])
DIRECTION = (END - START) / LENGTH[:, None]
LATERAL = np.stack([-DIRECTION[:, 1], DIRECTION[:, 0]], axis=1)
HEADING = np.array([np.arctan2(END[i, 1] - START[i, 1], END[i, 0] - START[i, 0]) for i in range(6)])
SINE = np.array([[0.0, 0.0, 0.0]] * 5 + [[AMPLITUDE, _pulsation, np.pi / 2]])  # amplitude, pulsation, phase
FORBIDDEN = np.array([False, False, True, False, True, True])
NEXT_LANE = np.array([MAIN_BC, MAIN_CD, MAIN_CD, MAIN_CD, RAMP_KB, MERGE_LANE])
# neighbour_vehicles with connected lanes: (lane, offset) searched in order, -1 padding
SEARCH = np.array([[[0, 0], [1, 320], [-1, 0], [-1, 0]],
                   [[1, 0], [3, 100], [0, -320], [5, -100]],
                   [[2, 0], [3, 100], [0, -320], [5, -100]],
                   [[3, 0], [1, -100], [-1, 0], [-1, 0]],
                   [[4, 0], [5, 220], [-1, 0], [-1, 0]],
                   [[5, 0], [1, 100], [4, -220], [-1, 0]]], dtype=np.float64)
SIDE_LANE = np.array([-1, MERGE_LANE, MAIN_BC, -1, -1, -1])  # the other lane of road b->c
OBSTACLE = np.array([MERGE_END, _merge_y])
OBSTACLE_LANE = MERGE_LANE

# ------------------------------------------------------------------------------------- vehicles
DT = 1.0 / 15.0
FRAMES = 3  # simulation steps per decision (15 Hz simulation, 5 Hz policy)
VEHICLE_LENGTH, VEHICLE_WIDTH = 5.0, 2.0
OBSTACLE_SIZE = 2.0
MAX_SPEED = 40.0
# the released code's MDPVehicle (SPEED_COUNT 5, SPEED_MIN 10, SPEED_MAX 30; highway-env's default is
# 20/25/30): with 20 m/s as the slowest target a CAV cannot follow a slower human driver and rear-ends it
TARGET_SPEEDS = np.linspace(10.0, 30.0, 5)
TAU_PURSUIT, KP_A, KP_HEADING, KP_LATERAL = 0.1, 1 / 0.6, 1 / 0.2, 1 / 0.6
MAX_STEERING = np.pi / 3
ACC_MAX, COMFORT_ACC_MAX, COMFORT_ACC_MIN = 6.0, 3.0, -5.0
DISTANCE_WANTED, DELTA = 5.0 + VEHICLE_LENGTH, 4.0
LANE_CHANGE_MAX_BRAKING, LANE_CHANGE_DELAY = 2.0, 1.0
# per kind (CAV, IDM, aggressive, defensive): TIME_WANTED, LANE_CHANGE_MIN_ACC_GAIN, linear model?
TIME_WANTED = np.array([1.5, 1.5, 2.5, 2.5])
MIN_ACC_GAIN = np.array([0.2, 0.2, 1.0, 1.0])
LINEAR_ACC = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                       [0.8 / (0.25 * 30), 0.8 / (0.75 * 30), 0.5],
                       [1.2 / (0.25 * 30), 1.2 / (0.75 * 30), 2.0]])
LINEAR_STEER = np.array([KP_HEADING, KP_HEADING * KP_LATERAL])


@njit(cache=True)
def not_zero(x):
    if abs(x) > 1e-2:
        return x
    return 1e-2 if x >= 0 else -1e-2


@njit(cache=True)
def wrap_to_pi(x):
    return ((x + np.pi) % (2 * np.pi)) - np.pi


@njit(cache=True)
def local_coordinates(lane, px, py):
    dx, dy = px - START[lane, 0], py - START[lane, 1]
    s = dx * DIRECTION[lane, 0] + dy * DIRECTION[lane, 1]
    r = dx * LATERAL[lane, 0] + dy * LATERAL[lane, 1]
    if SINE[lane, 0] != 0.0:
        r = r - SINE[lane, 0] * np.sin(SINE[lane, 1] * s + SINE[lane, 2])
    return s, r


@njit(cache=True)
def heading_at(lane, s):
    if SINE[lane, 0] != 0.0:
        return HEADING[lane] + np.arctan(SINE[lane, 0] * SINE[lane, 1] * np.cos(SINE[lane, 1] * s + SINE[lane, 2]))
    return HEADING[lane]


@njit(cache=True)
def closest_lane(px, py, heading):
    best, best_d = 0, np.inf
    for lane in range(6):
        s, r = local_coordinates(lane, px, py)
        d = abs(r) + max(s - LENGTH[lane], 0.0) + max(0.0 - s, 0.0) + abs(wrap_to_pi(heading - heading_at(lane, s)))
        if d < best_d:
            best, best_d = lane, d
    return best


@njit(cache=True)
def reachable(lane, px, py):
    if FORBIDDEN[lane]:
        return False
    s, r = local_coordinates(lane, px, py)
    return abs(r) <= 2 * LANE_WIDTH and 0 <= s < LENGTH[lane] + VEHICLE_LENGTH


@njit(cache=True)
def _xy(F, e, j):
    if j == F.shape[1]:
        return OBSTACLE[0], OBSTACLE[1]
    return F[e, j, X], F[e, j, Y]


@njit(cache=True)
def _speed(F, e, j):
    return 0.0 if j == F.shape[1] else F[e, j, V]


@njit(cache=True)
def _heading(F, e, j):
    return 0.0 if j == F.shape[1] else F[e, j, H]


@njit(cache=True)
def neighbours(F, S, e, i, lane):
    """highway-env's Road.neighbour_vehicles(vehicle i, lane) with connected lanes: (front, rear),
    -1 for none; vehicles in slot order, then the obstacle (index N)."""
    n = F.shape[1]
    s, _ = local_coordinates(lane, F[e, i, X], F[e, i, Y])
    front, rear = -1, -1
    s_front, s_rear = 0.0, 0.0
    for j in range(n + 1):
        if j == i or (j < n and S[e, j, KIND] < 0):
            continue
        px, py = _xy(F, e, j)
        for k in range(4):
            sl = int(SEARCH[lane, k, 0])
            if sl < 0:
                break
            sv, lat = local_coordinates(sl, px, py)
            if not (abs(lat) <= LANE_WIDTH / 2 + 1.0 and -VEHICLE_LENGTH <= sv < LENGTH[sl] + VEHICLE_LENGTH):
                continue
            sv += SEARCH[lane, k, 1]
            if s <= sv and (front < 0 or sv <= s_front):
                s_front, front = sv, j
            if sv < s and (rear < 0 or sv > s_rear):
                s_rear, rear = sv, j
            break
    return front, rear


@njit(cache=True)
def lane_distance(F, S, e, i, j):
    """Vehicle i's lane_distance_to(j): along i's current lane."""
    lane = OBSTACLE_LANE if i == F.shape[1] else S[e, i, LANE]
    xi, yi = _xy(F, e, i)
    xj, yj = _xy(F, e, j)
    return local_coordinates(lane, xj, yj)[0] - local_coordinates(lane, xi, yi)[0]


@njit(cache=True)
def desired_gap(F, e, kind, ego, front):
    he, hf = _heading(F, e, ego), _heading(F, e, front)
    ve, vf = _speed(F, e, ego), _speed(F, e, front)
    ce, se = np.cos(he), np.sin(he)
    dv = (ve * ce - vf * np.cos(hf)) * ce + (ve * se - vf * np.sin(hf)) * se
    ab = -COMFORT_ACC_MAX * COMFORT_ACC_MIN
    return DISTANCE_WANTED + ve * TIME_WANTED[kind] + ve * dv / (2 * np.sqrt(ab))


@njit(cache=True)
def acceleration(F, S, e, kind, ego, front):
    """The acceleration vehicle model `kind` predicts for `ego` behind `front` (IDM, or the linear
    model of the aggressive and defensive HDVs): IDMVehicle/LinearVehicle.acceleration."""
    n = F.shape[1]
    if ego < 0 or ego == n:  # no vehicle, or the obstacle: IDM returns 0 for a non-Vehicle; the linear
        return 0.0  # model would not, but no MOBIL query on this road has the obstacle as a follower
    v = F[e, ego, V]
    if kind >= AGGRESSIVE:
        vt = F[e, ego, TSPEED] - v
        dv, dp = 0.0, 0.0
        if front >= 0:
            d_safe = DISTANCE_WANTED + max(v, 0.0) * TIME_WANTED[kind]
            d = lane_distance(F, S, e, ego, front)
            dv = min(_speed(F, e, front) - v, 0.0)
            dp = min(d - d_safe, 0.0)
        return LINEAR_ACC[kind, 0] * vt + LINEAR_ACC[kind, 1] * dv + LINEAR_ACC[kind, 2] * dp
    target = min(max(F[e, ego, TSPEED], 0.0), SPEED_LIMIT)
    acc = COMFORT_ACC_MAX * (1 - np.power(max(v, 0.0) / abs(not_zero(target)), DELTA))
    if front >= 0:
        d = lane_distance(F, S, e, ego, front)
        acc -= COMFORT_ACC_MAX * np.power(desired_gap(F, e, kind, ego, front) / not_zero(d), 2)
    return acc


@njit(cache=True)
def steering_control(F, e, i, lane):
    """ControlledVehicle.steering_control (CAVs, IDM HDVs)."""
    v, h = F[e, i, V], F[e, i, H]
    s, r = local_coordinates(lane, F[e, i, X], F[e, i, Y])
    future_heading = heading_at(lane, s + v * TAU_PURSUIT)
    heading_command = np.arcsin(min(max(-KP_LATERAL * r / not_zero(v), -1.0), 1.0))
    heading_ref = future_heading + min(max(heading_command, -np.pi / 4), np.pi / 4)
    rate = KP_HEADING * wrap_to_pi(heading_ref - h)
    slip = np.arcsin(min(max(VEHICLE_LENGTH / 2 / not_zero(v) * rate, -1.0), 1.0))
    steer = np.arctan(2 * np.tan(slip))
    return min(max(steer, -MAX_STEERING), MAX_STEERING)


@njit(cache=True)
def linear_steering(F, e, i, lane):
    """LinearVehicle.steering_control (aggressive and defensive HDVs)."""
    v, h = F[e, i, V], F[e, i, H]
    s, r = local_coordinates(lane, F[e, i, X], F[e, i, Y])
    future_heading = heading_at(lane, s + v * TAU_PURSUIT)
    f0 = wrap_to_pi(future_heading - h) * VEHICLE_LENGTH / not_zero(v)
    f1 = -r * VEHICLE_LENGTH / (not_zero(v) ** 2)
    return LINEAR_STEER[0] * f0 + LINEAR_STEER[1] * f1


@njit(cache=True)
def follow_road(F, S, e, i):
    lane = S[e, i, TLANE]
    s, _ = local_coordinates(lane, F[e, i, X], F[e, i, Y])
    if s > LENGTH[lane] - VEHICLE_LENGTH / 2:
        S[e, i, TLANE] = NEXT_LANE[lane]


@njit(cache=True)
def speed_to_index(v):
    x = (v - TARGET_SPEEDS[0]) / (TARGET_SPEEDS[-1] - TARGET_SPEEDS[0])
    return int(min(max(np.round(x * (TARGET_SPEEDS.size - 1)), 0), TARGET_SPEEDS.size - 1))


@njit(cache=True)
def cav_act(F, S, e, i, action):
    """MDPVehicle.act(action) (action -1: the low-level control only, as Road.act calls it)."""
    if action == 3 or action == 4:
        idx = speed_to_index(F[e, i, V]) + (1 if action == 3 else -1)
        idx = min(max(idx, 0), TARGET_SPEEDS.size - 1)
        S[e, i, SIDX] = idx
        F[e, i, TSPEED] = TARGET_SPEEDS[idx]
        action = -1
    follow_road(F, S, e, i)
    if action == 0 or action == 2:
        side = SIDE_LANE[S[e, i, TLANE]]
        # ids clip to the road's lanes: only road b->c has two (0 main, 1 merge)
        if side >= 0 and ((action == 0 and S[e, i, TLANE] == MERGE_LANE) or (action == 2 and S[e, i, TLANE] == MAIN_BC)):
            if reachable(side, F[e, i, X], F[e, i, Y]):
                S[e, i, TLANE] = side
    F[e, i, STEER] = min(max(steering_control(F, e, i, S[e, i, TLANE]), -MAX_STEERING), MAX_STEERING)
    F[e, i, ACC] = KP_A * (F[e, i, TSPEED] - F[e, i, V])


@njit(cache=True)
def mobil(F, S, e, i, lane):
    kind = S[e, i, KIND]
    new_front, new_rear = neighbours(F, S, e, i, lane)
    new_rear_pred_a = acceleration(F, S, e, kind, new_rear, i)
    if new_rear_pred_a < -LANE_CHANGE_MAX_BRAKING:
        return False
    old_front, old_rear = neighbours(F, S, e, i, S[e, i, LANE])
    self_pred_a = acceleration(F, S, e, kind, i, new_front)
    self_a = acceleration(F, S, e, kind, i, old_front)
    # politeness 0: the followers' terms vanish
    return self_pred_a - self_a >= MIN_ACC_GAIN[kind]


@njit(cache=True)
def change_lane_policy(F, S, e, i):
    n = F.shape[1]
    lane, target = S[e, i, LANE], S[e, i, TLANE]
    kind = S[e, i, KIND]
    if lane != target:
        if SIDE_LANE[lane] == target:  # same road, changing lane: abort if someone is changing into it close ahead
            for j in range(n):
                if j == i or S[e, j, KIND] < 0:
                    continue
                if S[e, j, LANE] != target and S[e, j, TLANE] == target:
                    d = lane_distance(F, S, e, i, j)
                    if 0 < d < desired_gap(F, e, kind, i, j):
                        S[e, i, TLANE] = lane
                        break
        return
    if not LANE_CHANGE_DELAY < F[e, i, TIMER]:
        return
    F[e, i, TIMER] = 0.0
    side = SIDE_LANE[lane]
    if side < 0 or not reachable(side, F[e, i, X], F[e, i, Y]) or abs(F[e, i, V]) < 1:
        return
    if mobil(F, S, e, i, side):
        S[e, i, TLANE] = side


@njit(cache=True)
def hdv_act(F, S, e, i):
    """IDMVehicle.act / LinearVehicle.act."""
    if S[e, i, CRASHED]:
        return
    kind = S[e, i, KIND]
    follow_road(F, S, e, i)
    change_lane_policy(F, S, e, i)
    lane, target = S[e, i, LANE], S[e, i, TLANE]
    steer = linear_steering(F, e, i, target) if kind >= AGGRESSIVE else steering_control(F, e, i, target)
    F[e, i, STEER] = min(max(steer, -MAX_STEERING), MAX_STEERING)
    front, _ = neighbours(F, S, e, i, lane)
    acc = acceleration(F, S, e, kind, i, front)
    if lane != target:
        front, _ = neighbours(F, S, e, i, target)
        acc = min(acc, acceleration(F, S, e, kind, i, front))
    F[e, i, ACC] = min(max(acc, -ACC_MAX), ACC_MAX)


@njit(cache=True)
def vehicle_step(F, S, e, i, dt):
    """Vehicle.step (with IDMVehicle's timer)."""
    if S[e, i, KIND] != CAV:
        F[e, i, TIMER] += dt
    v = F[e, i, V]
    steer, acc = F[e, i, STEER], F[e, i, ACC]
    if S[e, i, CRASHED]:
        steer, acc = 0.0, -1.0 * v
        F[e, i, STEER], F[e, i, ACC] = steer, acc
    if v > MAX_SPEED:
        acc = min(acc, 1.0 * (MAX_SPEED - v))
    elif v < -MAX_SPEED:
        acc = max(acc, 1.0 * (-MAX_SPEED - v))
    beta = np.arctan(1 / 2 * np.tan(steer))
    h = F[e, i, H]
    F[e, i, X] += v * np.cos(h + beta) * dt
    F[e, i, Y] += v * np.sin(h + beta) * dt
    if S[e, i, HASIMP]:
        F[e, i, X] += F[e, i, IMPX]
        F[e, i, Y] += F[e, i, IMPY]
        S[e, i, CRASHED] = 1
        S[e, i, HASIMP] = 0
    F[e, i, H] = h + v * np.sin(beta) / (VEHICLE_LENGTH / 2) * dt
    F[e, i, V] = v + acc * dt
    S[e, i, LANE] = closest_lane(F[e, i, X], F[e, i, Y], F[e, i, H])


@njit(cache=True)
def _corners(x, y, h, length, width, out):
    c, s = np.cos(h), np.sin(h)
    pts = ((-length / 2, -width / 2), (-length / 2, width / 2), (length / 2, width / 2), (length / 2, -width / 2))
    for k in range(4):
        out[k, 0] = c * pts[k][0] - s * pts[k][1] + x
        out[k, 1] = s * pts[k][0] + c * pts[k][1] + y


@njit(cache=True)
def _project(poly, nx, ny):
    lo, hi = np.inf, -np.inf
    for k in range(4):
        p = poly[k, 0] * nx + poly[k, 1] * ny
        lo, hi = min(lo, p), max(hi, p)
    return lo, hi


@njit(cache=True)
def _interval_distance(min_a, max_a, min_b, max_b):
    return min_b - max_a if min_a < min_b else min_a - max_b


@njit(cache=True)
def polygons_intersecting(a, b, dax, day, dbx, dby):
    """utils.are_polygons_intersecting: (intersecting, will intersect, translation x, y)."""
    intersecting, will = True, True
    min_distance = np.inf
    tx, ty = 0.0, 0.0
    ca_x, ca_y = a[:, 0].mean(), a[:, 1].mean()
    cb_x, cb_y = b[:, 0].mean(), b[:, 1].mean()
    for which in range(2):
        poly = a if which == 0 else b
        for k in range(4):
            p1x, p1y = poly[k, 0], poly[k, 1]
            p2x, p2y = poly[(k + 1) % 4, 0], poly[(k + 1) % 4, 1]
            nx, ny = -p2y + p1y, p2x - p1x
            norm = np.sqrt(nx * nx + ny * ny)
            nx, ny = nx / norm, ny / norm
            min_a, max_a = _project(a, nx, ny)
            min_b, max_b = _project(b, nx, ny)
            if _interval_distance(min_a, max_a, min_b, max_b) > 0:
                intersecting = False
            vp = nx * (dax - dbx) + ny * (day - dby)
            if vp < 0:
                min_a += vp
            else:
                max_a += vp
            distance = _interval_distance(min_a, max_a, min_b, max_b)
            if distance > 0:
                will = False
            if not intersecting and not will:
                return False, False, 0.0, 0.0
            if abs(distance) < min_distance:
                min_distance = abs(distance)
                sign = 1.0 if (ca_x - cb_x) * nx + (ca_y - cb_y) * ny > 0 else -1.0
                tx, ty = sign * nx, sign * ny
    if will:
        return intersecting, will, min_distance * tx, min_distance * ty
    return intersecting, will, 0.0, 0.0


@njit(cache=True)
def handle_collision(F, S, e, i, j, dt, pa, pb):
    """RoadObject.handle_collisions(i, j) for vehicle i and vehicle or obstacle j."""
    n = F.shape[1]
    xi, yi = F[e, i, X], F[e, i, Y]
    xj, yj = _xy(F, e, j)
    diag_i = np.sqrt(VEHICLE_LENGTH**2 + VEHICLE_WIDTH**2)
    diag_j = np.sqrt(2 * OBSTACLE_SIZE**2) if j == n else diag_i
    if np.sqrt((xj - xi) ** 2 + (yj - yi) ** 2) > (diag_i + diag_j) / 2 + F[e, i, V] * dt:
        return
    hi, vi = F[e, i, H], F[e, i, V]
    _corners(xi, yi, hi, VEHICLE_LENGTH, VEHICLE_WIDTH, pa)
    if j == n:
        _corners(xj, yj, 0.0, OBSTACLE_SIZE, OBSTACLE_SIZE, pb)
        dbx, dby = 0.0, 0.0
    else:
        hj, vj = F[e, j, H], F[e, j, V]
        _corners(xj, yj, hj, VEHICLE_LENGTH, VEHICLE_WIDTH, pb)
        dbx, dby = vj * np.cos(hj) * dt, vj * np.sin(hj) * dt
    inter, will, tx, ty = polygons_intersecting(pa, pb, vi * np.cos(hi) * dt, vi * np.sin(hi) * dt, dbx, dby)
    if will:
        if j == n:
            F[e, i, IMPX], F[e, i, IMPY] = tx, ty
            S[e, i, HASIMP] = 1
        else:
            F[e, i, IMPX], F[e, i, IMPY] = tx / 2, ty / 2
            F[e, j, IMPX], F[e, j, IMPY] = -tx / 2, -ty / 2
            S[e, i, HASIMP] = 1
            S[e, j, HASIMP] = 1
    if inter:
        S[e, i, CRASHED] = 1
        if j < n:
            S[e, j, CRASHED] = 1


@njit(cache=True)
def simulate_frame(F, S, e, actions, pa, pb):
    """One simulation step of environment e (AbstractEnv._simulate's loop body): the CAVs' meta-
    actions where actions[i] >= 0 (a decision frame), Road.act, Road.step."""
    n = F.shape[1]
    for i in range(n):
        if S[e, i, KIND] == CAV and actions[i] >= 0:
            cav_act(F, S, e, i, actions[i])
    for i in range(n):
        k = S[e, i, KIND]
        if k == CAV:
            cav_act(F, S, e, i, -1)
        elif k > CAV:
            hdv_act(F, S, e, i)
    for i in range(n):
        if S[e, i, KIND] >= 0:
            vehicle_step(F, S, e, i, DT)
    for i in range(n):
        if S[e, i, KIND] < 0:
            continue
        for j in range(i + 1, n):
            if S[e, j, KIND] >= 0:
                handle_collision(F, S, e, i, j, DT, pa, pb)
        handle_collision(F, S, e, i, n, DT, pa, pb)


@njit(cache=True)
def simulate_decision(F, S, e, actions, none, pa, pb):
    """One decision (FRAMES simulation steps) of environment e; `none` is a buffer of -1s."""
    simulate_frame(F, S, e, actions, pa, pb)
    for _ in range(FRAMES - 1):
        simulate_frame(F, S, e, none, pa, pb)


@njit(cache=True)
def step_batch(F, S, actions):
    """One decision in every environment: actions [E, N] meta-actions of the CAV slots."""
    pa, pb = np.empty((4, 2)), np.empty((4, 2))
    none = -np.ones(F.shape[1], dtype=np.int64)
    for e in range(F.shape[0]):
        simulate_decision(F, S, e, actions[e], none, pa, pb)
