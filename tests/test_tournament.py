"""Tournaments: seeded matches, SQLite results that resume without replaying, ratings that can fail."""

import sqlite3

import numpy as np
import pytest

from equilibria import games, scenarios
from equilibria.games.engine import PolicyAgent, play_game
from equilibria.scenarios.tournament import ResultsDB, run_matches, schedule
from equilibria.solvers.ratings import bradley_terry, elo, meta_nash


def test_bradley_terry_recovers_known_strengths():
    rng = np.random.default_rng(0)
    true = np.array([1.0, 0.0, -1.0, 0.5])
    wins = np.zeros((4, 4))
    for _ in range(20000):
        i, j = rng.choice(4, 2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        if rng.random() < p:
            wins[i, j] += 1
        else:
            wins[j, i] += 1
    est = bradley_terry(wins, prior=0.0)
    np.testing.assert_allclose(est - est.mean(), true - true.mean(), atol=0.05)


def test_elo_orders_a_dominant_player_first_with_uncertainty():
    results = [(0, 1, 1.0)] * 30 + [(1, 2, 1.0)] * 30 + [(0, 2, 1.0)] * 30
    mean, sd = elo(results, 3, bootstrap=50)
    assert mean[0] > mean[1] > mean[2] and np.all(sd > 0)


def test_meta_nash_of_rock_paper_scissors_is_uniform():
    rps = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)
    np.testing.assert_allclose(meta_nash(rps), 1 / 3, atol=1e-9)
    np.testing.assert_allclose(meta_nash(rps, zero_sum=False, iters=20000), 1 / 3, atol=0.02)


def test_matches_are_seeded_and_seats_rotate():
    game = games.load("kuhn_poker")
    u = games.UniformRandomPolicy()

    def returns() -> list[float]:
        return play_game(game, [PolicyAgent(u), PolicyAgent(u)], 7)["outcome"]["returns"]

    assert returns() == returns()
    ms = schedule(3, 2, 4, seed=0)
    assert len(ms) == 3 * 2 * 4 and len({m.id for m in ms}) == len(ms)
    assert {m.seats for m in ms} == {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)}
    assert schedule(3, 2, 4, seed=0) == ms and schedule(3, 2, 4, seed=1) != ms
    by_id = {m.id: m.seed for m in ms}
    assert by_id["0-1#2"] == by_id["1-0#2"]  # duplicate format: swapped seats, same deals
    # same seed, swapped seats: the same cards are dealt
    from equilibria.games.core import sample_chance

    a = np.random.default_rng([by_id["0-1#2"], 0])
    s1, s2 = game.new_initial_state(), game.new_initial_state()
    b = np.random.default_rng([by_id["1-0#2"], 0])
    s1.apply_action(sample_chance(s1, a))
    s2.apply_action(sample_chance(s2, b))
    assert s1.history() == s2.history()


def test_interrupted_tournament_resumes_without_replaying(tmp_path):
    game = games.load("kuhn_poker")
    lineup = [games.UniformRandomPolicy(), games.UniformRandomPolicy()]
    ms = schedule(2, 2, 50, seed=0)
    db = ResultsDB(tmp_path / "r.sqlite")
    ids = db.register(["a", "b"], ["", ""])
    assert run_matches(game, lineup, ["a", "b"], ms[:30], db, ids) == 30
    assert run_matches(game, lineup, ["a", "b"], ms, db, ids) == len(ms) - 30  # only the missing ones
    assert run_matches(game, lineup, ["a", "b"], ms, db, ids) == 0
    n = sqlite3.connect(tmp_path / "r.sqlite").execute("SELECT COUNT(*) FROM seat_returns").fetchone()[0]
    assert n == 2 * len(ms)  # nothing counted twice


def test_tournament_kuhn_ranks_by_exploitability(tmp_path):
    s = scenarios.load("tournament-kuhn", ["games_per_pairing=300"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    ranking = result.metrics["ranking"].split(",")
    # 300 duplicate games per pairing separate the snapshots except the top two (exploitability
    # 9e-4 vs 8e-3, a few thousandths of a chip per hand apart), which may swap between seeds
    assert set(ranking[:2]) == {"cfr-1000", "cfr-100"}
    snapshots = [r for r in ranking if r.startswith("cfr-")]
    assert snapshots[2:] == ["cfr-10", "cfr-1"]
    assert (result.run_dir / "results.sqlite").exists() and (result.run_dir / "ranking.md").exists()
    assert sorted(p.name for p in result.plots) == ["payoff_heatmap.png", "ratings.png"]
    # resuming a finished tournament replays nothing and gives the same ranking
    again = scenarios.run(None, resume=result.run_dir, quiet=True)
    assert again.metrics["ranking"] == result.metrics["ranking"]


def test_tournament_refuses_bad_lineups():
    with pytest.raises(scenarios.ConfigError, match="exactly one of solver, scripted, run, agent or controller"):
        scenarios.load("tournament-kuhn", ["lineup=[{name: x}, {name: y, scripted: random}]"])
    mapf = scenarios.load("tournament-kuhn", ["game=lifelong_mapf(num_agents=2, size=4)",
                                              "lineup=[{name: x, controller: pibt}, {name: y, scripted: random}]"])
    with pytest.raises(scenarios.ConfigError, match="a controller holds every seat .* use it in kind: evaluate"):
        scenarios.validate(mapf)


def test_psro_solves_kuhn_and_improves_on_leduc():
    from equilibria import solvers

    kuhn = games.load("kuhn_poker")
    assert solvers.exploitability(kuhn, solvers.make("psro", kuhn).run(10).average_policy()) < 1e-9
    leduc = games.load("leduc_poker")
    s = solvers.make("psro", leduc).run(30)
    assert solvers.exploitability(leduc, s.average_policy()) < 1.0 < solvers.exploitability(
        leduc, games.UniformRandomPolicy())
    assert len(s.populations[0]) == 31


def test_psro_population_scenario_resumes(tmp_path, extend_run):
    s = scenarios.load("psro-leduc", ["budget.iterations=8", "checkpoint_every=3"])
    full = scenarios.run(s, out=tmp_path / "a", quiet=True)
    short = scenarios.run(scenarios.load("psro-leduc", ["budget.iterations=5", "checkpoint_every=3"]),
                          out=tmp_path / "b", quiet=True)
    # stretch the short run's budget and resume it: the checkpoint holds the populations
    extend_run(short.run_dir, "budget", "iterations", value=8)
    resumed = scenarios.run(None, resume=short.run_dir, quiet=True)
    assert resumed.metrics["iteration"] == 8
    assert resumed.metrics["exploitability"] == pytest.approx(full.metrics["exploitability"], abs=1e-12)
