"""Ride dispatch (games.dispatch, dispatch_city, dispatch_platform): hand-made situations (an
order dropped after its waiting limit, capacity, one-to-one assignment, the reward's terms on
worked examples), the Markov-game contract on a small city, files in and bad files out, and the
two baselines."""

from __future__ import annotations

import numpy as np
import pytest

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.games import dispatch
from equilibria.games.adapters.pettingzoo import to_pettingzoo
from equilibria.games.dispatch import (
    DELIVERED,
    DROPOFF,
    DROPPED,
    ONBOARD,
    PICKUP,
    RideDispatch,
    evaluate_pairs,
    order_reward,
)
from equilibria.games.dispatch_city import ROAD_PER_GRID, grid_city
from equilibria.games.dispatch_platform import Platform, assign, greedy_scores, run_episodes
from equilibria.games.testing import api_test, markov_api_test

# a grid whose blocks take exactly one minute: 250 m x 1.04 at 15.6 km/h
BLOCK, SPEED = 250.0, 250.0 * ROAD_PER_GRID / 60.0 * 3.6


def _orders(tmp_path, rows: list[tuple[float, int, int]], name: str = "orders.csv") -> str:
    path = tmp_path / name
    path.write_text("time,origin,destination\n" + "".join(f"{t},{o},{d}\n" for t, o, d in rows))
    return str(path)


def _game(tmp_path, rows, grid: int = 5, **kw) -> RideDispatch:
    params = dict(num_vehicles=1, grid=grid, block_m=BLOCK, speed_kmh=SPEED, orders=_orders(tmp_path, rows))
    return games.load({"name": "ride_dispatch", **params, **kw})


def _put(sim, **arrays) -> None:
    """Overwrite parts of the simulator's state through the public get/set_state."""
    state = sim.get_state()
    for key, value in arrays.items():
        state[key][...] = value
    sim.set_state(state)


def _step(sim, rows: list[int]):
    return sim.step({"vehicles": np.array([rows])}, autoreset=False)


def test_the_grid_is_calibrated_and_paths_follow_next_hops():
    city = grid_city(20, 400.0)
    edge = 400.0 * ROAD_PER_GRID / (16.6 / 3.6)
    assert city.time[0, 1] == pytest.approx(edge) and city.time[0, 399] == pytest.approx(38 * edge)
    assert city.dist[0, 399] == pytest.approx(38 * 400.0 * ROAD_PER_GRID)
    node, total = 0, 0.0
    while node != 399:
        nxt = int(city.next_hop[node, 399])
        total += city.time[node, nxt]
        node = nxt
    assert total == pytest.approx(city.time[0, 399])


def test_an_order_beyond_the_waiting_limit_is_dropped(tmp_path):
    # one vehicle at node 0; an order at the far corner (8 min away, radius 1.5 min) and one at node 1
    g = _game(tmp_path, [(0.0, 24, 23), (0.0, 1, 2)], max_wait=2.0, pickup_radius=1.5, max_steps=6)
    sim = g.simulator(1, seed=0)
    _put(sim, node=0)
    far, near = 0, 1  # order slots (the table sorted by time, stable)
    assert list(sim.candidates()["order"][0, 0, :2]) == [near, -1]
    res = _step(sim, [1])  # takes the near order
    assert res.info["assigned"][0, 0] and res.info["metrics"]["served"][0] == 1
    for t in (1, 2):  # waited 1 and 2 minutes: still open
        assert sim.open_orders()[0, far], t
        res = _step(sim, [0])
    assert not sim.open_orders()[0, far] and sim.o_status[0, far] == DROPPED  # waited 3 > 2 minutes
    assert res.info["metrics"]["dropped"][0] == 1
    assert sim.o_status[0, near] == DELIVERED  # 1 min to pick up, 1 min to ride


def test_capacity_is_never_exceeded_and_vehicles_pool():
    g = games.load("ride_dispatch(num_vehicles=12, grid=6, capacity=2, demand=1.5, max_steps=25)")
    sim = g.simulator(3, seed=1)
    rng = np.random.default_rng(0)
    pooled = 0
    for t in range(25):
        mask = sim.action_mask()["vehicles"]
        acts = np.argmax(rng.random(mask.shape) * mask, axis=-1) if t % 2 else Platform().actions(sim, greedy_scores(sim))["vehicles"]
        sim.step({"vehicles": acts}, autoreset=False)
        kinds = sim.stop_kind
        load = sim.onboard[..., None] + np.cumsum(np.where(kinds == PICKUP, 1, np.where(kinds == DROPOFF, -1, 0)), axis=2)
        assert np.all(sim.onboard <= 2) and np.all(load <= 2) and np.all(load >= 0)
        # passengers = the orders whose drop-off is ahead and whose pickup is not
        onboard_orders = [set(sim.stop_order[e, n][(kinds[e, n] == DROPOFF)]) - set(sim.stop_order[e, n][kinds[e, n] == PICKUP])
                          for e in range(3) for n in range(12)]
        assert [len(s) for s in onboard_orders] == list(sim.onboard.ravel())
        pooled += int(np.sum(sim.onboard == 2))
    assert pooled > 0  # the test saw shared rides


def test_assignment_is_one_to_one_and_optimal():
    # greedy row by row would give v0 o0 and v1 o1 (10 + 1); the optimum is v0 o1, v1 o0 (9 + 8)
    order = np.array([[0, 1], [0, 1], [1, -1]])
    scores = np.array([[0.0, 10.0, 9.0], [0.0, 8.0, 1.0], [0.0, 0.5, -np.inf]])
    for method in ("dense", "sparse"):
        assert list(assign(scores, order, method)) == [2, 1, 0]
    # a pair worth less than idling is not taken
    assert list(assign(np.array([[5.0, 4.0]]), np.array([[3]]))) == [0]
    rng = np.random.default_rng(0)
    for _ in range(20):  # dense and sparse agree on the optimum, and never give an order twice
        n, k = rng.integers(1, 30, size=2)
        # a vehicle's candidates are distinct orders, some rows empty
        order = np.stack([rng.permutation(40)[:k] for _ in range(n)])
        order = np.where(rng.random((n, k)) < 0.7, order, -1)
        scores = rng.normal(size=(n, k + 1))
        vals = []
        for method in ("dense", "sparse"):
            rows = assign(scores, order, method)
            taken = order[np.arange(n), np.maximum(rows - 1, 0)][rows > 0]
            assert len(set(taken)) == len(taken) and np.all(taken >= 0)
            vals.append(np.sum((scores[np.arange(n), rows] - scores[:, 0])[rows > 0]))
        assert vals[0] == pytest.approx(vals[1])


def _brute_insertion(T, node, lag, stops, onboard, cap, p, d, late_s):
    """Every (pickup, drop-off) position, each route driven stop by stop: {(i, j): (pickup, drop,
    added, late)} for the feasible ones. stops: [(node, kind, seconds since assigned)]."""
    def drive(seq):
        t, cur, load, out = lag, node, onboard, []
        for n, kind, _ in seq:
            t, cur = t + T[cur, n], n
            load += 1 if kind == PICKUP else -1
            out.append((t, load))
        return out

    before = drive(stops)
    found = {}
    for i in range(len(stops) + 1):
        for j in range(i, len(stops) + 1):
            seq = stops[:i] + [(p, PICKUP, 0.0)] + stops[i:j] + [(d, DROPOFF, 0.0)] + stops[j:]
            run = drive(seq)
            if max(load for _, load in run) > cap:
                continue
            old = [k for k in range(len(seq)) if k not in (i, j + 1)]
            drops = [(run[k][0], before[m][0], seq[k][2]) for m, k in enumerate(old) if seq[k][1] == DROPOFF]
            added = run[j + 1][0] + sum(new - was for new, was, _ in drops)
            late = sum(age + new > late_s for new, _, age in drops) + (run[j + 1][0] > late_s)
            found[(i, j)] = (run[i][0], run[j + 1][0], added, late)
    return found


def test_insertion_refuses_indices_outside_its_tables():
    """The insertion loop is compiled without bounds checks, so its inputs are checked first."""
    T, stops = np.zeros((4, 4)), np.zeros((1, 2), dtype=np.int64)

    def call(nstops=0, p=1):
        return evaluate_pairs(T, np.array([0]), np.array([0.0]), stops, stops, np.zeros((1, 2)), np.array([nstops]),
                              np.array([0]), 3, np.array([p]), np.array([2]), 600.0)

    assert call()["ok"].tolist() == [True]
    for bad in ({"nstops": 3}, {"p": 4}, {"p": -1}):
        with pytest.raises(ValueError, match="outside the city"):
            call(**bad)


def test_cheapest_insertion_matches_brute_force():
    city = grid_city(6, 300.0)
    rng = np.random.default_rng(0)
    cap, late_s, checked = 3, 15 * 60.0, 0
    for _ in range(150):
        # a feasible route: passengers' drop-offs and assigned orders' pickup-drop-off pairs
        onboard = int(rng.integers(0, cap + 1))
        stops = [(int(rng.integers(36)), DROPOFF, float(rng.uniform(0, 1200))) for _ in range(onboard)]
        for _ in range(int(rng.integers(0, cap - onboard + 1))):
            a = int(rng.integers(0, len(stops) + 1))
            b = int(rng.integers(a, len(stops) + 1))
            stops = stops[:a] + [(int(rng.integers(36)), PICKUP, 0.0)] + stops[a:b] + \
                [(int(rng.integers(36)), DROPOFF, float(rng.uniform(0, 600)))] + stops[b:]
        loads = onboard + np.cumsum([1 if k == PICKUP else -1 for _, k, _ in stops])
        if len(loads) and loads.max() > cap:
            continue
        node, lag = int(rng.integers(36)), float(rng.choice([0.0, rng.uniform(0, 60)]))
        p, d = rng.integers(36, size=2)
        brute = _brute_insertion(city.time, node, lag, stops, onboard, cap, int(p), int(d), late_s)
        cols = [np.array([[s[c] for s in stops] + [fill] * (2 * cap - len(stops))]) for c, fill in ((0, 0), (1, 0), (2, 0.0))]
        ev = evaluate_pairs(city.time, np.array([node]), np.array([lag]), *cols,
                            np.array([len(stops)]), np.array([onboard]), cap, np.array([p]), np.array([d]), late_s)
        assert bool(ev["ok"][0]) == bool(brute)
        if not brute:
            continue
        assert ev["added_s"][0] == pytest.approx(min(v[2] for v in brute.values()))
        pick, drop, added, late = brute[(int(ev["ins_i"][0]), int(ev["ins_j"][0]))]
        assert (ev["pickup_s"][0], ev["drop_s"][0], ev["n_late"][0]) == (pytest.approx(pick), pytest.approx(drop), late)
        checked += 1
    assert checked > 100


def test_the_simulator_gives_a_contested_order_to_the_nearest_vehicle(tmp_path):
    g = _game(tmp_path, [(0.0, 12, 13)], num_vehicles=3, pickup_radius=5.0)
    sim = g.simulator(1, seed=0)
    _put(sim, node=np.array([[0, 11, 2]]))  # 4, 1 and 2 minutes from node 12
    res = _step(sim, [1, 1, 1])
    assert list(res.info["assigned"][0]) == [False, True, False]
    assert list(res.rewards["vehicles"][0] != 0) == [False, True, False]
    # through the platform: every step's assigned orders are distinct
    g = games.load("ride_dispatch(num_vehicles=40, grid=6, demand=1.0, max_steps=10)")
    sim, platform = g.simulator(2, seed=3), Platform()
    for _ in range(10):
        acts = platform.actions(sim, greedy_scores(sim))["vehicles"]
        c = sim.candidates()
        for e in range(2):
            taken = c["order"][e, np.flatnonzero(acts[e]), acts[e][acts[e] > 0] - 1]
            assert len(set(taken)) == len(taken)
        res = sim.step({"vehicles": acts}, autoreset=False)
        assert np.array_equal(res.info["assigned"], acts > 0)


def test_reward_terms_on_a_worked_example_with_a_detour(tmp_path):
    # 5 x 5 grid, node r*5+c, one minute and 260 m per block. The vehicle at node 0 carries a
    # passenger (assigned 38 min ago) to node 4 (4 min). New order: node 5 -> node 10.
    g = _game(tmp_path, [(0.0, 0, 4), (0.0, 5, 10)], pickup_radius=10.0)
    sim = g.simulator(1, seed=0)
    _put(sim, node=0, onboard=1, nstops=1, stop_node=np.array([4, 0, 0, 0, 0, 0]),
         stop_kind=np.array([DROPOFF, 0, 0, 0, 0, 0]), stop_order=np.array([0, -1, -1, -1, -1, -1]),
         o_status=np.array([[ONBOARD, 0]]), o_assign=np.array([[-38 * 60.0, 0.0]]))
    c = sim.candidates()
    assert c["order"][0, 0, 0] == 1
    # insertions: (a) 0 -> 5 -> 10 -> 4: new drop at 2, old at 8 (4 min later): added 2 + 4 = 6
    # (b) 0 -> 4 -> 5 -> 10: new drop at 4 + 5 + 1 = 10, old on time: added 10
    # (c) 0 -> 5 -> 4 -> 10: new drop at 1 + 5 + 6 = 12, old at 6: added 14. Cheapest: (a).
    pickup_min, added_min, trip_km = 1.0, 6.0, 0.26  # the trip 5 -> 10 is one block
    n_late = 1  # the old order: 38 + 8 = 46 > 40 min; the new one: 2 min
    by_hand = 3.0 + 1.0 * trip_km - 3.0 * pickup_min / 60 - 1.0 * n_late - 3.0 * added_min / 60 - 5.0 * 0.0
    assert by_hand == pytest.approx(1.91)
    assert c["pickup_s"][0, 0, 0] == pytest.approx(60.0) and c["added_s"][0, 0, 0] == pytest.approx(360.0)
    assert c["n_late"][0, 0, 0] == n_late and c["trip_m"][0, 0, 0] == pytest.approx(260.0)
    assert c["reward"][0, 0, 0] == pytest.approx(by_hand)
    assert sim.observe()["vehicles"]["orders"][0, 0, 1, 10] == pytest.approx(6.0 / 30.0)  # added time, /30 min
    res = _step(sim, [1])
    assert res.rewards["vehicles"][0, 0] == pytest.approx(by_hand)
    # after one minute the pickup at node 5 is done; the drop-offs at 10, then 4 remain
    assert list(sim.stop_node[0, 0, :2]) == [10, 4] and list(sim.stop_kind[0, 0, :2]) == [DROPOFF, DROPOFF]
    assert sim.onboard[0, 0] == 2 and sim.o_status[0, 1] == ONBOARD


def test_reward_terms_beyond_the_threshold(tmp_path):
    # 20 x 20 grid: an empty vehicle at node 0, an order at (0, 19) -> (19, 0): 19 min to pick up,
    # a 38-min ride; added time 57 min, 17 beyond the 40-min threshold; the order itself is late
    g = _game(tmp_path, [(0.0, 19, 380)], grid=20, pickup_radius=30.0)
    sim = g.simulator(1, seed=0)
    _put(sim, node=0)
    by_hand = 3.0 + 1.0 * 38 * 0.26 - 3.0 * 19 / 60 - 1.0 * 1 - 3.0 * 57 / 60 - 5.0 * 17 / 60
    assert by_hand == pytest.approx(6.663333, abs=1e-6)
    assert order_reward(38 * 260.0, 19 * 60.0, 1, 57 * 60.0) == pytest.approx(by_hand)
    assert sim.candidates()["reward"][0, 0, 0] == pytest.approx(by_hand)
    assert _step(sim, [1]).rewards["vehicles"][0, 0] == pytest.approx(by_hand)


def test_the_markov_contract_on_a_small_city():
    markov_api_test(games.load("ride_dispatch(num_vehicles=8, grid=5, max_steps=6, demand=0.5)"))
    markov_api_test(games.load("ride_dispatch(num_vehicles=10, grid=4, max_steps=5, capacity=1, max_wait=0.5)"))
    example = games.load(games.registry.entry("ride_dispatch").example)  # every vehicle active: the PettingZoo view
    api_test(example, num_games=5)
    from pettingzoo.test import parallel_api_test

    parallel_api_test(to_pettingzoo(example), num_cycles=50)
    g = games.load("ride_dispatch(num_vehicles=8, grid=5, max_steps=6, demand=0.5)")
    sim = g.simulator(2, seed=0)
    for _ in range(6):  # "choosing": the active vehicles are the ones with a candidate (or slot 0)
        c = sim.candidates()
        assert np.array_equal(c["active"][:, 1:], c["choosing"][:, 1:])
        sim.step({"vehicles": np.zeros((2, 8), dtype=np.int64)})
    assert g.state_shape == sim.global_state().shape[1:]


def test_a_city_and_orders_from_files(tmp_path):
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("id,lat,lon\na,40.750,-73.990\nb,40.752,-73.990\nc,40.752,-73.986\nd,40.760,-73.900\n")
    edges = tmp_path / "edges.csv"
    edges.write_text("u,v,length_m,oneway\na,b,230,0\nb,c,350,0\nc,a,420,1\nd,a,900,1\n")  # d cannot be reached
    orders = _orders(tmp_path, [(0.5, "a", "c"), (1.0, "c", "b")])
    g = games.load(f"ride_dispatch(num_vehicles=3, city='{edges}', nodes='{nodes}', orders='{orders}', max_steps=4)")
    assert g.city.n == 3 and g.city.dropped == 1 and g.max_orders == 2
    assert g.city.time[2, 0] == pytest.approx(420 / (16.6 / 3.6))  # the one-way c -> a
    markov_api_test(g)
    bad = [("time,origin,destination\n0,a,c\n1,a,zz\n", "orders.csv:3: destination 'zz' is not a node"),
           ("time,origin,destination\n0,a,c\nsoon,a,b\n", "orders.csv:3: time 'soon' is not a number"),
           ("minute_of_day,from,to\n0,a,c\n", "orders.csv:1: no column 'time'")]
    for text, message in bad:
        (tmp_path / "orders.csv").write_text(text)
        with pytest.raises(ConfigError, match=message):
            games.load(f"ride_dispatch(city='{edges}', nodes='{nodes}', orders='{tmp_path / 'orders.csv'}')")
    edges.write_text("u,v,length_m\na,b,230\nb,q,350\n")
    with pytest.raises(ConfigError, match="edges.csv:3: v 'q' is not a node"):
        games.load(f"ride_dispatch(city='{edges}', nodes='{nodes}')")
    with pytest.raises(ConfigError, match="needs nodes="):
        games.load(f"ride_dispatch(city='{edges}')")
    with pytest.raises(ConfigError, match="missing.csv: no such file"):
        games.load(f"ride_dispatch(orders='{tmp_path / 'missing.csv'}')")


def test_orders_from_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "trips.parquet"
    pq.write_table(pa.table({"time": [0.0, 2.0], "origin": [3, 7], "destination": [8, 1]}), path)
    g = games.load(f"ride_dispatch(num_vehicles=2, grid=4, orders='{path}')")
    assert g.order_table[:, 1:].tolist() == [[3, 8], [7, 1]]
    pq.write_table(pa.table({"time": [0.0, 2.0], "origin": [3, 99], "destination": [8, 1]}), path)
    with pytest.raises(ConfigError, match="trips.parquet: origin row 2 '99' is not a node"):
        games.load(f"ride_dispatch(num_vehicles=2, grid=4, orders='{path}')")


def test_baselines_serve_orders_and_greedy_earns_at_least_nearest():
    # enough vehicles for the demand (no order dropped): greedy by immediate reward takes the
    # same orders with better insertions; measured reward ratio greedy / nearest 1.02-1.03
    g = games.load("ride_dispatch(num_vehicles=100, grid=10, demand=0.15, max_steps=30)")
    nearest = run_episodes(g, "nearest", episodes=4, seed=0)
    greedy = run_episodes(g, "greedy", episodes=4, seed=0)
    for r in (nearest, greedy):
        assert np.all(r["served"] > 400) and np.all(r["delivered"] > 200)
        assert np.all(r["pickup_min"] <= g.radius_s / 60)
    assert np.all(greedy["reward"] >= nearest["reward"])
    assert np.all(greedy["pickup_min"] >= nearest["pickup_min"])  # nearest minimises pickup time
    # too few vehicles (orders dropped): the myopic greedy rule spends them on far pickups and
    # long trips, and nearest serves more (measured: 12 % more orders, 4 % more reward), the
    # gap a learned dispatcher is meant to close
    g = games.load("ride_dispatch(num_vehicles=60, grid=10, demand=0.3, max_steps=30)")
    nearest = run_episodes(g, "nearest", episodes=4, seed=0)
    greedy = run_episodes(g, "greedy", episodes=4, seed=0)
    assert np.all(nearest["dropped"] > 50) and np.all(nearest["served"] > greedy["served"])


def _candidates_brute_force(sim) -> np.ndarray:
    """The per-vehicle scan: every free vehicle's pickup time lag + T of every open order
    (float32, as the simulator's table), a stable sort (equal times in order-slot order), the K
    nearest, those beyond the pickup radius cut."""
    g = sim.game
    T32 = g.city.time.astype(np.float32)
    order = np.full((sim.num_envs, g.num_vehicles, g.K), -1, dtype=np.int64)
    avail, open_ = sim.available(), sim.open_orders()
    for e in range(sim.num_envs):
        V, W = np.flatnonzero(avail[e]), np.flatnonzero(open_[e])
        for v in V:  # a loop over vehicles and a full sort: the reference, not fast
            pt = np.float32(sim.lag[e, v]) + T32[sim.node[e, v], sim.o_origin[e, W]]
            rank = np.argsort(pt, kind="stable")[:g.K]
            order[e, v, :len(rank)] = np.where(pt[rank] <= g.radius_s + dispatch.EPS, W[rank], -1)
    return order


@pytest.mark.parametrize("spec, scan_entries", [
    ("ride_dispatch(num_vehicles=300, grid=6, max_steps=8)", None),  # ~8 vehicles per node, 45 orders a minute
    ("ride_dispatch(num_vehicles=300, grid=6, max_steps=8)", 50),  # the scan in chunks of one node
    ("ride_dispatch(num_vehicles=40, grid=4, demand=0.05, max_steps=8, max_candidates=4)", None),  # at most K orders
])
def test_candidates_per_node_match_the_per_vehicle_scan(spec, scan_entries, monkeypatch):
    # candidates are ranked once per distinct node (vehicles heading to one node share the ranking);
    # they must be exactly the per-vehicle scan's, ties included, at every step of an episode
    if scan_entries is not None:
        monkeypatch.setattr(dispatch, "SCAN_ENTRIES", scan_entries)
    g = games.load(spec)
    sim, platform = g.simulator(2, seed=3), Platform()
    shared = moving = few = 0
    for _ in range(g.max_steps):
        got, want = sim.candidates()["order"], _candidates_brute_force(sim)
        np.testing.assert_array_equal(got, want)
        has = want[..., 0] >= 0
        for e in range(sim.num_envs):
            _, count = np.unique(sim.node[e][has[e]], return_counts=True)
            shared += int(np.sum(count > 1))
        moving += int(np.sum(has & (sim.lag > 0)))
        few += int(np.sum(sim.open_orders().sum(axis=1) <= g.K))
        platform.step(sim, greedy_scores)
    # the episode covered what the per-node ranking could get wrong
    assert shared > 0 and moving > 0
    if g.K == 4:
        assert few > 0
