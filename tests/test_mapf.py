"""Lifelong MAPF: POGEMA's collision rules on hand-made cases, lifelong targets, observations,
the planner, PIBT and the maps (the step-for-step comparison with POGEMA itself is the slow
tests/test_mapf_pogema.py)."""

from __future__ import annotations

import numpy as np
import pytest

from equilibria import games
from equilibria.games.lifelong_mapf import LifelongMAPF
from equilibria.games.mapf_maps import components, load_map, make_task, maze, parse_movingai, shipped_maps
from equilibria.games.testing import markov_api_test
from equilibria.marl import controllers
from equilibria.marl.mapf.planner import BatchPlanner, PlannerConfig

WAIT, UP, DOWN, LEFT, RIGHT = range(5)


def _sim(obstacles: list[str], starts: list[tuple[int, int]], targets: list[tuple[int, int]] | None = None):
    grid = np.array([[c == "#" for c in row] for row in obstacles], dtype=np.int8)
    h, w = grid.shape
    n = len(starts)
    g = LifelongMAPF(num_agents=n, density=0.0, obs_radius=2, max_steps=50, height=h, width=w)
    sim = g.simulator(1, seed=0)
    far = targets or [(h - 1 - r, w - 1 - c) for r, c in starts]
    sim.load_task(grid, np.array(starts), np.array(far)[:, None, :])
    return sim


def _step(sim, actions: list[int]) -> list[tuple[int, int]]:
    sim.step({"agents": np.array([actions])})
    return [tuple(int(v) for v in rc) for rc in sim.to_rc(sim.pos[0])]


def test_swap_leaves_both_in_place():
    sim = _sim([".....", "....."], [(0, 1), (0, 2)], [(1, 4), (1, 0)])
    assert _step(sim, [RIGHT, LEFT]) == [(0, 1), (0, 2)]


def test_lowest_numbered_agent_enters_a_contested_free_cell():
    sim = _sim([".....", "....."], [(0, 1), (0, 3)], [(1, 4), (1, 0)])
    assert _step(sim, [RIGHT, LEFT]) == [(0, 2), (0, 3)]
    sim = _sim([".....", "....."], [(0, 3), (0, 1)], [(1, 4), (1, 0)])
    assert _step(sim, [LEFT, RIGHT]) == [(0, 2), (0, 1)]


def test_following_into_a_vacated_cell_and_chains_that_block():
    sim = _sim([".....", "#####"], [(0, 0), (0, 1), (0, 2)], [(0, 4), (0, 4), (0, 4)])
    assert _step(sim, [RIGHT, RIGHT, RIGHT]) == [(0, 1), (0, 2), (0, 3)]
    sim = _sim(["...#.", "#####"], [(0, 0), (0, 1), (0, 2)], [(0, 1), (0, 2), (0, 0)])
    assert _step(sim, [RIGHT, RIGHT, RIGHT]) == [(0, 0), (0, 1), (0, 2)]  # the wall blocks the whole chain
    sim = _sim([".....", "#####"], [(0, 0), (0, 1)], [(0, 4), (0, 4)])
    assert _step(sim, [RIGHT, WAIT]) == [(0, 0), (0, 1)]  # the occupant stays: no entry


def test_a_rotation_of_four_moves_and_walls_and_borders_block():
    sim = _sim(["..##", "..##"], [(0, 0), (0, 1), (1, 1), (1, 0)], [(1, 1), (1, 0), (0, 0), (0, 1)])
    assert _step(sim, [RIGHT, DOWN, LEFT, UP]) == [(0, 1), (1, 1), (1, 0), (0, 0)]
    sim = _sim([".#", ".."], [(0, 0)], [(1, 1)])
    assert _step(sim, [RIGHT]) == [(0, 0)]
    assert _step(sim, [UP]) == [(0, 0)]


def test_reaching_a_target_pays_one_and_draws_a_new_target_in_the_component():
    g = games.load("lifelong_mapf(num_agents=8, size=8, density=0.3, max_steps=64)")
    sim = g.simulator(16, seed=3)
    labels = {e: components(sim.obstacles(e))[0] for e in range(16)}
    total = 0.0
    for _ in range(64):
        before_target = sim.target.copy()
        planner_free = np.random.default_rng(0).integers(0, 5, size=(16, 8))
        res = sim.step({"agents": planner_free}, autoreset=False)
        arrived = res.rewards["agents"] > 0
        total += arrived.sum()
        assert np.all(sim.target[arrived] != before_target[arrived])
        assert np.all(sim.target[~arrived] == before_target[~arrived])
        assert np.all(sim.target != sim.pos)
        for e in range(16):
            pos, tgt = sim.to_rc(sim.pos[e]), sim.to_rc(sim.target[e])
            assert np.all(labels[e][pos[:, 0], pos[:, 1]] == labels[e][tgt[:, 0], tgt[:, 1]])
    assert total > 0


def test_loaded_tasks_are_checked_before_anything_changes():
    sim = _sim(["...#.", "#####"], [(0, 0), (0, 1)], [(0, 2), (0, 2)])
    before = sim.get_state()
    grid = np.array([[0, 0, 0, 1, 0], [1, 1, 1, 1, 1]], dtype=np.int8)
    for targets, message in [([[[0, 2]], [[5, 0]]], "agent 1: target 0 \\[5, 0\\] lies outside the 2x5 map"),
                             ([[[0, 2]], [[1, 1]]], "agent 1: target 0 \\[1, 1\\] is an obstacle"),
                             ([[[0, 2]], [[0, 4]]], "agent 1: target 0 \\[0, 4\\] cannot be reached")]:
        with pytest.raises(ValueError, match=message):
            sim.load_task(grid, np.array([[0, 0], [0, 1]]), np.array(targets))
    with pytest.raises(ValueError, match="starts must be distinct"):
        sim.load_task(grid, np.array([[0, 0], [0, 0]]), np.array([[[0, 2]], [[0, 2]]]))
    after = sim.get_state()
    assert all(np.array_equal(before[k], after[k]) for k in ("grid", "pos", "target", "task_id"))


def test_an_environment_draws_the_same_targets_however_many_share_the_simulator():
    g = games.load("lifelong_mapf(num_agents=16, size=10, density=0.2, max_steps=64)")
    traces = []
    for envs in (1, 3):
        sim = g.simulator(envs, seed=4)
        rng = np.random.default_rng(0)
        trace = []
        for _ in range(64):
            actions = rng.integers(0, 5, (3, 16))[:envs]
            sim.step({"agents": actions}, autoreset=False)
            trace.append(sim.target[0].copy())
        traces.append(np.array(trace))
    assert np.array_equal(traces[0], traces[1])


def test_targets_follow_a_loaded_sequence_and_cycle():
    sim = _sim(["...."], [(0, 0)], [(0, 1)])
    sim.load_task(np.zeros((1, 4), dtype=np.int8), np.array([[0, 0]]), np.array([[[0, 1], [0, 0]]]))  # K = 2
    seen = []
    for a in [RIGHT, LEFT, RIGHT]:
        res = sim.step({"agents": np.array([[a]])})
        seen.append((float(res.rewards["agents"][0, 0]), tuple(sim.to_rc(sim.target[0])[0])))
    assert seen == [(1.0, (0, 0)), (1.0, (0, 1)), (1.0, (0, 0))]


def test_observation_channels_and_the_target_projection():
    sim = _sim(["#....", ".....", "....."], [(1, 1), (1, 2)], [(2, 4), (0, 4)])
    obs = sim.observe()["agents"][0, 0]  # radius 2 around (1, 1)
    assert obs.shape == (3, 5, 5)
    assert obs[0, 1, 1] == 1  # the obstacle at (0, 0)
    assert obs[0, 0].all() and obs[0, :, 0].all()  # the wall around the map
    far = _sim(["....", "....", "....", "...."], [(0, 0)], [(3, 3)]).observe()["agents"][0, 0, 0]  # radius 2 at a corner
    assert far[1, 1:].all() and far[1:, 1].all() and not far[0].any() and not far[:, 0].any()  # free beyond the wall
    assert obs[1, 2, 2] == 1 and obs[1, 2, 3] == 1 and obs[1].sum() == 2  # itself and its neighbour
    assert obs[2].sum() == 1 and obs[2, 3, 4] == 1  # the target (2, 4) projected onto the border


def test_markov_contract_and_reproducibility():
    markov_api_test(games.load("lifelong_mapf(num_agents=6, size=8, max_steps=12)"))
    g = games.load("lifelong_mapf(num_agents=16, size=12, max_steps=20, map=maze)")
    runs = []
    for _ in range(2):
        sim = g.simulator(3, seed=5)
        rng = np.random.default_rng(1)
        trace = [sim.step({"agents": rng.integers(0, 5, (3, 16))}).rewards["agents"].sum() for _ in range(40)]
        runs.append((trace, sim.pos.copy()))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])


def test_pogema_random_maps_and_placement():
    obstacles, starts, targets = make_task("random", 7, 20, 16, 16, 0.3)
    assert np.array_equal(obstacles, np.random.default_rng(7).binomial(1, 0.3, (16, 16)))
    labels = components(obstacles)[0]
    cells = {tuple(c) for c in starts} | {tuple(c) for c in targets}
    assert len(cells) == 40  # starts and targets are 40 distinct free cells
    assert np.all(labels[starts[:, 0], starts[:, 1]] == labels[targets[:, 0], targets[:, 1]])
    with pytest.raises(ValueError, match="hold at most"):
        make_task("random", 0, 200, 8, 8, 0.3)


def test_a_map_too_large_for_the_machine_is_refused_before_anything_is_allocated():
    with pytest.raises(ValueError, match="1 environment.* of .*lifelong_mapf.* needs about .* of memory"):
        games.load("lifelong_mapf(num_agents=1000, size=100000)").simulator(1, seed=0)


def test_maze_and_movingai_maps():
    m = maze(3, 21, 21)
    assert components(m)[1][1:].max() == (m == 0).sum()  # one connected corridor system
    assert shipped_maps()
    for name in shipped_maps():
        grid = load_map(name)
        game = games.load(f"lifelong_mapf(num_agents=16, map={name}, max_steps=8)")
        assert (game.height, game.width) == grid.shape
    text = "type octile\nheight 2\nwidth 3\nmap\n.@.\nGTS\n"
    assert parse_movingai(text).tolist() == [[0, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="line 5, column 2: unknown cell 'x'"):
        parse_movingai("type octile\nheight 1\nwidth 3\nmap\n.x.\n", "bad.map")
    with pytest.raises(ValueError, match="height is 3 but 1 rows"):
        parse_movingai("type octile\nheight 3\nwidth 1\nmap\n.\n")


def test_planner_paths_are_shortest_without_costs_and_pibt_moves_are_conflict_free():
    sim = _sim(["......", ".####.", "......"], [(0, 0)], [(2, 0)])
    planner = BatchPlanner(sim, PlannerConfig(static_cost=False, dynamic_cost=False))
    planner.plan()
    path = [tuple(rc) for rc in sim.to_rc(planner.path[0, 0, :planner.path_len[0, 0]])]
    assert path == [(0, 0), (1, 0), (2, 0)]
    g = games.load("lifelong_mapf(num_agents=48, size=16, density=0.2, max_steps=32)")
    sim = g.simulator(2, seed=0)
    choose = controllers.make("pibt", g).chooser(sim, seed=0)
    for _ in range(32):
        actions = choose()
        planned = sim.pos + sim.deltas[actions]
        sim.step({"agents": actions}, autoreset=False)
        assert np.array_equal(sim.pos, planned)  # nothing PIBT plans is undone by the collision rules


def test_baselines_rank_as_expected_on_a_small_grid():
    g = games.load("lifelong_mapf(num_agents=32, size=16, density=0.2, max_steps=64)")
    score = {name: controllers.make(name, g, **params).evaluation_returns(6, seed=1).mean()
             for name, params in [("mapf_random", {}), ("mapf_planner", {"dynamic_cost": False}), ("pibt", {})]}
    assert score["mapf_random"] < 0.5 * score["mapf_planner"]
    assert score["mapf_planner"] < score["pibt"]
    with pytest.raises(ValueError, match="no parameter 'dynamic'"):
        controllers.make("mapf_planner", g, dynamic=False)
