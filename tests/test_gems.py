"""Gems (the MAMQL paper's game): its rules on hand-made situations, its observations, its expert."""

import numpy as np
import pytest

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.games.demonstrations import play_episode
from equilibria.games.experts import expert_policy
from equilibria.games.gems import GemsPlanner, planned_action
from equilibria.games.testing import markov_api_test

STAY, UP, DOWN, LEFT, RIGHT = range(5)


def situation(view: str = "offsets"):
    """One environment with the agents at (5, 5) and (9, 9), every gem far from both."""
    sim = games.load(f"gems(view={view!r})").simulator(1, seed=0)
    sim.pos[0] = [[5, 5], [9, 9]]
    sim.own[0] = [[[0, 0], [0, 1], [0, 2]], [[14, 14], [14, 13], [14, 12]]]
    sim.purple[0] = [[2, 14], [3, 14], [4, 14]]
    return sim


def step(sim, a0: int, a1: int):
    return sim.step({"agents": np.array([[a0, a1]])}, autoreset=False)


def test_an_own_gem_pays_its_owner_once_and_reappears():
    sim = situation()
    sim.own[0, 0, 1] = [5, 6]  # agent 0's gem right of it
    sim.own[0, 1, 0] = [5, 4]  # agent 1's gem left of agent 0: worth nothing to agent 0
    res = step(sim, RIGHT, STAY)
    assert res.rewards["agents"][0].tolist() == [1.0, 0.0]
    assert sim.collected[0] == 1 and sim.own[0, 0, 1].tolist() != [5, 6]  # redrawn (elsewhere, with seed 0)
    res = step(sim, LEFT, STAY)  # back, then onto agent 1's gem
    res = step(sim, LEFT, STAY)
    assert res.rewards["agents"][0].tolist() == [0.0, 0.0]


def test_purple_gems_pay_both_only_when_both_stand_on_one():
    sim = situation()
    sim.purple[0] = [[5, 6], [9, 8], [0, 14]]
    res = step(sim, RIGHT, STAY)  # only agent 0 on a purple gem
    assert res.rewards["agents"][0].tolist() == [0.0, 0.0] and sim.collected[0] == 0
    res = step(sim, STAY, LEFT)  # now both, on different gems: both pay 6, two gems used
    assert res.rewards["agents"][0].tolist() == [6.0, 6.0] and sim.collected[0] == 2
    assert not any(np.array_equal(p, q) for p in sim.purple[0] for q in ([5, 6], [9, 8]))


def test_meeting_on_one_purple_gem_uses_one_gem_and_seven_gems_end_the_episode():
    sim = situation()
    sim.pos[0] = [[5, 5], [5, 7]]
    sim.purple[0, 0] = [5, 6]
    sim.collected[0] = 6
    res = step(sim, RIGHT, LEFT)
    assert res.rewards["agents"][0].tolist() == [6.0, 6.0]
    assert sim.collected[0] == 7 and res.terminated[0] and not res.truncated[0]


def test_moves_off_the_grid_stay_put_and_the_horizon_truncates():
    sim = situation()
    sim.pos[0] = [[0, 0], [14, 14]]
    step(sim, UP, DOWN)
    step(sim, LEFT, RIGHT)
    assert sim.pos[0].tolist() == [[0, 0], [14, 14]]
    sim = games.load("gems(max_steps=3)").simulator(1, seed=0)
    dones = [bool(step(sim, STAY, STAY).truncated[0]) for _ in range(3)]
    assert dones == [False, False, True]


def test_offsets_and_grid_views_describe_the_same_situation():
    sim = situation("offsets")
    obs = sim.observe()["agents"][0, 0] * 15
    assert obs[:2].tolist() == [4, 4]  # the other agent
    assert obs[2:4].tolist() == [-5, -3]  # own gems, nearest first: (0, 2)
    # purple gems, the one both reach soonest first: (4, 14) is 10 from agent 0 and 10 from agent 1
    assert obs[8:12].tolist() == [-1, 9, -5, 5]
    grid = situation("grid").observe()["agents"][0]
    assert grid.shape == (2, 5, 15, 15)
    assert grid[0, 0, 5, 5] == 1 and grid[0, 1, 9, 9] == 1 and grid[1, 0, 9, 9] == 1 and grid[1, 1, 5, 5] == 1
    assert grid[0, 2].sum() == 3 and grid[1, 3].sum() == 3 and grid[0, 4, 2, 14] == 1


def test_contract():
    markov_api_test(games.load("gems"))
    with pytest.raises(ConfigError, match="view"):
        games.load("gems(view=planes)")


def test_the_planner_meets_on_the_same_purple_gem_and_beats_random_play_by_far():
    sim = situation()
    sim.purple[0] = [[7, 7], [0, 0], [14, 0]]
    assert planned_action(sim.pos[0], sim.own[0], sim.purple[0], 0) in (DOWN, RIGHT)
    assert planned_action(sim.pos[0], sim.own[0], sim.purple[0], 1) in (UP, LEFT)
    game = games.load("gems")
    expert = np.mean([play_episode(game, GemsPlanner(), s)["returns"].mean() for s in range(30)])
    random = np.mean([play_episode(game, expert_policy("gems_planner", game).__class__(epsilon=1.0), s)["returns"].mean()
                      for s in range(30)])
    assert expert > 20 and random < 2, (expert, random)
    with pytest.raises(ConfigError, match="plays gems, not kuhn_poker"):
        expert_policy("gems_planner", games.load("kuhn_poker"))
