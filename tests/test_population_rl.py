"""PSRO with PPO best responses on a Markov game, and trained MARL checkpoints in tournament lineups."""

import numpy as np
import pytest

from equilibria import games, scenarios
from equilibria.marl.population import AgainstMixture, payoff_entry, train_best_response


def test_pursuit_is_zero_sum_and_a_chasing_pursuer_beats_random():
    g = games.load("pursuit")
    sim = g.simulator(500, seed=0)
    obs = sim.observe()
    rng = np.random.default_rng(0)
    total = np.zeros((500, 2))
    for _ in range(g.max_steps):
        rel = obs["pursuer"][:, 0, 4:6]  # evader relative to pursuer
        chase = np.where(np.abs(rel[:, 0]) > np.abs(rel[:, 1]), np.where(rel[:, 0] < 0, 1, 2),
                         np.where(rel[:, 1] < 0, 3, 4))
        res = sim.step({"pursuer": chase[:, None], "evader": rng.integers(0, 5, (500, 1))})
        total += np.concatenate([res.rewards["pursuer"], res.rewards["evader"]], axis=1)
        obs = res.obs
    np.testing.assert_allclose(total.sum(axis=1), 0.0, atol=1e-9)
    assert total[:, 0].mean() > payoff_entry(g, None, None, 64, 500, seed=0) + 10


def test_against_mixture_draws_one_opponent_per_episode():
    g = games.load("pursuit", max_steps=5)
    game = AgainstMixture(g, 0, [None, None, None], np.array([0.6, 0.4, 0.0]))
    assert [x.name for x in game.groups] == ["pursuer"] and game.max_agents == 1
    env = game.simulator(4000, seed=1)
    assert abs(np.mean(env.which == 0) - 0.6) < 0.03 and not np.any(env.which == 2)
    before = env.which.copy()
    zeros = {"pursuer": np.zeros((4000, 1), dtype=np.int64)}
    for _ in range(4):
        env.step(zeros)
    assert np.array_equal(env.which, before)  # kept within the episode
    res = env.step(zeros)  # episodes end and redraw
    assert not np.array_equal(env.which, before) and res.final_obs["pursuer"].shape == (4000, 1, 8)


def test_ppo_best_response_learns_against_a_fixed_opponent():
    g = games.load("pursuit")
    br = train_best_response(g, 0, [None], np.ones(1), steps=30_000, config={}, seed=0)
    uniform = payoff_entry(g, None, None, 64, 400, seed=5)
    learned = payoff_entry(g, br["weights"], None, 64, 400, seed=5)
    assert learned > uniform + 10, (learned, uniform)  # measured: about -25 -> -5


def test_psro_rl_scenario_resumes_and_shrinks_the_best_response_gain(tmp_path, extend_run):
    sets = ["solver.config.best_response_steps=12000", "solver.config.eval_episodes=100"]
    full = scenarios.run(scenarios.load("psro-pursuit", sets + ["budget.iterations=2"]), out=tmp_path / "a",
                         quiet=True)
    rows = scenarios.RunContext(scenarios.load("psro-pursuit"), resume=full.run_dir).read_metrics()
    assert [r["generation"] for r in rows] == [1, 2]
    # the first best responses exploit the uniform policies by a wide margin, the second by less
    assert rows[0]["nash_conv_estimate"] > 15 and rows[1]["nash_conv_estimate"] < rows[0]["nash_conv_estimate"]
    short = scenarios.run(scenarios.load("psro-pursuit", sets + ["budget.iterations=1"]), out=tmp_path / "b",
                          quiet=True)
    extend_run(short.run_dir, "budget", "iterations", value=2)
    resumed = scenarios.run(None, resume=short.run_dir, quiet=True)
    assert resumed.metrics["population"] == 3
    assert resumed.metrics["meta_value"] == pytest.approx(full.metrics["meta_value"], abs=1e-9)


def test_trained_marl_run_plays_in_a_tournament(tmp_path):
    train = scenarios.run(scenarios.load("mappo-navigation", [
        "game=pursuit", "budget.steps=48000", "eval.every_steps=48000", "checkpoint_every_steps=48000",
        "name=pursuit-selfplay"]), out=tmp_path, quiet=True)
    lineup = f"lineup=[{{name: ppo, run: '{train.run_dir}'}}, {{name: random, scripted: random}}]"
    t = scenarios.run(scenarios.load("tournament-kuhn", ["game=pursuit", lineup, "games_per_pairing=60"]),
                      out=tmp_path, quiet=True)
    # self-play MAPPO (48k steps, one actor per role) beats random by ~3 per episode over both seats
    assert t.metrics["matches"] == 120 and t.metrics["top"] == "ppo"
    bad = f"lineup=[{{name: ppo, run: '{train.run_dir}'}}, {{name: random, scripted: random}}]"
    with pytest.raises(scenarios.ConfigError, match="not on this tournament's game"):
        scenarios.run(scenarios.load("tournament-kuhn", ["game=pursuit(max_steps=10)", bad]), out=tmp_path,
                      quiet=True)
