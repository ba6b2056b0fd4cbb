"""Overcooked (games/overcooked.py) on the `overcooked` package, and its scripted expert
(games/overcooked_expert.py): the Markov-game contract, the soup rules and rewards on a scripted
kitchen, the planner's soups per 400 steps, demonstrations that replay, and the one-line error
without the package."""

import subprocess
import sys

import numpy as np
import pytest
from needs import need

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.games.overcooked import INSTALL, SOUP
from equilibria.games.testing import api_test, markov_api_test

N, S, E, W, STAY, INTERACT = range(6)
SOUP_STATES = ("empty", "filling", "full", "cooking", "ready")  # the pot one-hot, features 24..28


def _pot(obs: np.ndarray) -> str:
    return SOUP_STATES[int(np.argmax(obs[24:29]))]


def test_the_game_keeps_the_markov_and_state_contracts():
    need("overcooked", "overcooked")
    game = games.load("overcooked(horizon=30)")  # the registry-wide tests run the default 400 steps
    api_test(game, num_games=3)
    markov_api_test(game, num_envs=3)
    state = game.simulator(2, seed=0).get_state()
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if k != "rng")  # arrays, nothing pickled


def test_a_soup_is_cooked_only_when_started_served_counted_and_rewarded():
    need("overcooked", "overcooked")
    games.load("overcooked(layout='long_cook_time')")  # reconfigures the package's global recipes (cook time 100)
    game = games.load("overcooked()")
    assert game.report_metric == ("soups", 1 / 20)
    sim = game.simulator(1, seed=0)
    total, soups, t = np.zeros(2), 0, 0

    def act(a0: int, a1: int) -> None:
        nonlocal total, soups, t
        res = sim.step({"agents": np.array([[a0, a1]])})
        assert res.rewards["agents"][0, 0] == res.rewards["agents"][0, 1]  # one team reward, both chefs
        total, soups, t = total + res.rewards["agents"][0], soups + int(res.info["soups"][0]), t + 1

    # chef 1 (by the right onion dispenser) brings three onions: turn to it, take, step to the pot, face it, drop
    for _ in range(3):
        for a in (E, INTERACT, W, N, INTERACT):
            act(STAY, a)
    for _ in range(3):  # a full pot does not start by itself
        act(STAY, STAY)
    assert _pot(sim.observe()["agents"][0, 1]) == "full"
    started = t
    act(STAY, INTERACT)  # started by an empty-handed chef
    assert _pot(sim.observe()["agents"][0, 1]) == "cooking"
    # chef 0 takes a dish below it and goes to the pot once chef 1 stepped aside
    for a0, a1 in ((S, STAY), (INTERACT, E), (N, STAY), (E, STAY), (N, STAY)):
        act(a0, a1)
    while _pot(sim.observe()["agents"][0, 0]) != "ready":
        act(STAY, STAY)
    assert t - started == 20  # the soup cooks 20 steps, the one that started it included
    assert total.tolist() == [0, 0] and soups == 0
    for a0 in (INTERACT, S, E, S):  # take the soup; down and around chef 1 to the serving window, face it
        act(a0, STAY)
    assert soups == 0 and int(sim.held[0, 0, 0]) == SOUP  # holding the soup, nothing delivered yet
    act(INTERACT, STAY)
    assert total.tolist() == [20.0, 20.0] and soups == 1


def test_the_planner_delivers_at_least_8_soups_per_400_steps():
    need("overcooked", "overcooked")
    from equilibria.games.demonstrations import play_episode
    from equilibria.games.experts import expert_policy
    from equilibria.games.overcooked_expert import run_planner

    game = games.load("overcooked()")
    batched = run_planner(game, episodes=2, seed=3, epsilon=0.05)
    assert batched.min() >= 8, batched
    ep = play_episode(game, expert_policy("overcooked_planner", game), seed=5)  # as `equilibria record` plays it
    assert ep["length"] == 400 and ep["returns"].tolist()[0] == ep["returns"].tolist()[1] >= 8 * 20
    with pytest.raises(ConfigError, match="plays overcooked, not grid_goals"):
        expert_policy("overcooked_planner", games.load("grid_goals"))


def test_recorded_planner_episodes_replay_with_the_same_rewards(tmp_path):
    need("overcooked", "overcooked")
    need("pyarrow", "demos")
    from equilibria.games.demonstrations import Demonstrations, record, replay
    from equilibria.games.experts import expert_policy

    game = games.load("overcooked()")
    rec = record(game, expert_policy("overcooked_planner", game), 2, tmp_path / "demos", seed=0)
    assert rec.steps == 800 and rec.mean_return >= 8 * 20
    demos = Demonstrations(rec.path)
    eps = [demos.episode(i) for i in range(2)]
    assert not np.array_equal(eps[0]["actions"]["agents"], eps[1]["actions"]["agents"])  # the random moves differ
    for ep in eps:
        final = replay(demos.load_game(), ep)  # raises at the first observation or reward that differs
        np.testing.assert_array_equal(final.returns(), ep["returns"])
        assert ep["rewards"]["agents"].sum(0).tolist() == ep["returns"].tolist()


def test_layouts_are_checked():
    need("overcooked", "overcooked")
    with pytest.raises(ConfigError, match="did you mean 'cramped_room'"):
        games.load("overcooked(layout=cramped_rom)")
    with pytest.raises(ConfigError, match="unknown layout"):  # layout files are eval'd: only the shipped names
        games.load("overcooked(layout='../layouts/cramped_room')")


def test_without_the_package_games_import_and_loading_says_how_to_install():
    probe = ("import sys; sys.modules['overcooked'] = None\n"  # as if the package were not installed
             "from equilibria import games\n"
             "assert 'overcooked' in games.registered() and not games.registry.available('overcooked')\n"
             "try:\n    games.load('overcooked()')\nexcept games.registry.ConfigError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"overcooked() needs the overcooked package: {INSTALL}\n"
