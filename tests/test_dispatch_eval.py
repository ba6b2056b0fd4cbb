"""Evaluating ride dispatch: the nearest and greedy platforms as controllers, one evaluation
shared with the OSPO learners (marl.dispatch_controllers.evaluate_scorer), the evaluate kind keeping
their per-episode measures (measures.md, measures.csv), the recorded episode and its animated
SVG, and the dispatch-eval built-in."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from equilibria import games, marl, scenarios
from equilibria.common.config import ConfigError
from equilibria.games.dispatch_platform import Platform, nearest_scores, run_episodes, summarize
from equilibria.marl import controllers
from equilibria.marl.dispatch_controllers import evaluate_scorer

SMALL = "ride_dispatch(num_vehicles=20, grid=6, max_steps=8)"
MEASURES = {"served", "reward", "pickup_min", "confirm_min", "detour_min", "delivered", "dropped", "income_std"}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grid(tmp_path, text: str, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text("name: grid\nkind: evaluate\n" + text)
    return scenarios.load(str(path))


@pytest.fixture(scope="module")
def ospo_run(tmp_path_factory):
    """A tiny OSPO train run (two updates of one 8-step episode) on the small city."""
    path = tmp_path_factory.mktemp("cfg") / "ospo.yaml"
    path.write_text(f"name: tiny-ospo\nkind: train\ngame: '{SMALL}'\nalgorithm:\n  name: ospo\n"
                    "  config: {batch_size: 16, updates_per_episode: 1, lr: 0.001}\n"
                    "budget: {steps: 16}\neval: {every_steps: 16, episodes: 2}\ncheckpoint_every_steps: 16\n")
    return scenarios.run(scenarios.load(str(path)), out=tmp_path_factory.mktemp("train"), quiet=True).run_dir


# ----------------------------------------------------------------------------- controllers
@pytest.mark.parametrize("name, rule", [("dispatch_nearest", "nearest"), ("dispatch_greedy", "greedy")])
def test_controllers_are_the_platform_baselines(name, rule):
    game = games.load(SMALL)
    c = controllers.make(name, game)
    m = c.evaluation_metrics(3, seed=7)
    assert set(m) == MEASURES | {"return"} and all(v.shape == (3,) for v in m.values())
    base = run_episodes(game, rule, episodes=3, seed=7)  # the same episodes through the benchmark loop
    for k in MEASURES:
        np.testing.assert_allclose(m[k], base[k])
    np.testing.assert_array_equal(c.evaluation_returns(3, seed=7), m["return"])
    assert m["served"].min() > 0 and np.all(m["return"] > 0)


def test_the_return_is_the_mean_over_vehicles_that_were_active():
    game = games.load("ride_dispatch(num_vehicles=20, grid=6, max_steps=8, demand=0.03, pickup_radius=3)")
    sim, platform = game.simulator(2, 3), Platform()
    totals, present = np.zeros((2, game.num_vehicles)), np.zeros((2, game.num_vehicles), dtype=bool)
    for _ in range(game.max_steps):
        present |= sim.active()["vehicles"]
        res = platform.step(sim, nearest_scores)
        totals += res.rewards["vehicles"]
    assert not present.all()  # some vehicles never had a choice: they do not dilute the mean
    m = evaluate_scorer(game, "nearest", 2, 3)
    np.testing.assert_allclose(m["return"], totals.sum(1) / present.sum(1))
    np.testing.assert_allclose(m["reward"], summarize(res.info)["reward"])


def test_ospo_is_evaluated_by_the_same_function():
    game = games.load(SMALL)
    learner = marl.make("ospo", game, seed=0)
    m = learner.evaluation_metrics(2, seed=5)
    ref = evaluate_scorer(game, learner.scorer(0.0, np.random.default_rng(5)), 2, 5)
    assert set(m) == set(ref) == MEASURES | {"return"}
    for k in m:
        np.testing.assert_array_equal(m[k], ref[k])


def test_controllers_refuse_other_games(tmp_path):
    with pytest.raises(ValueError, match="dispatch controllers act in ride_dispatch games, not lifelong_mapf"):
        controllers.make("dispatch_greedy", games.load("lifelong_mapf(num_agents=4, size=8, max_steps=8)"))
    bad = "games: [grid_goals]\npolicies: [{name: p, controller: dispatch_nearest}]\n"
    with pytest.raises(ConfigError, match="dispatch controllers act in ride_dispatch games"):
        scenarios.validate(grid(tmp_path, bad))
    assert {"dispatch_nearest", "dispatch_greedy"} <= set(controllers.registered())


# ----------------------------------------------------------------------------- recording and SVG
def test_recorded_episode_is_the_first_evaluated_one_and_draws_an_svg():
    game = games.load(SMALL)
    for player in (controllers.make("dispatch_greedy", game), marl.make("ospo", game, seed=0)):
        rec = player.record_episode(11)
        first = player.evaluation_metrics(1, seed=11)
        T, N = game.max_steps, game.num_vehicles
        assert rec["served"][-1] == first["served"][0] and rec["dropped"][-1] == first["dropped"][0]
        assert rec["positions"].shape == (T + 1, N, 2) and rec["onboard"].shape == (T + 1, N)
        assert len(rec["orders"]) == T + 1 and len(rec["assignments"]) == T
        # vehicles stand at (or head to) nodes of the city; orders wait at nodes
        nodes = {tuple(p) for p in game.city.xy.tolist()}
        assert all(tuple(p) in nodes for p in rec["positions"].reshape(-1, 2).tolist())
        assert all(tuple(p) in nodes for o in rec["orders"] for p in o.tolist())
        assert rec["onboard"].max() <= game.capacity and rec["onboard"][-1].sum() > 0
        # each decision's assignments are its newly served orders, from where each vehicle stood
        served = np.diff([0, *rec["served"]])
        assert [len(a) for a in rec["assignments"]] == served.tolist()
        for t, a in enumerate(rec["assignments"]):
            assert all(any(np.array_equal(p, q) for q in rec["positions"][t]) for p in a[:, 0])
        assert len(rec["edges"]) == 2 * 6 * 5  # the 6 x 6 street grid's blocks
    svg = game.animation(rec, "ospo <untrained>")
    root = ET.fromstring(svg)  # well-formed, the title escaped
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.count("<circle") == N + game.capacity + 1  # one per vehicle, and the legend's
    assert "ospo &lt;untrained&gt;" in svg and f"{rec['served'][-1]} orders served" in svg
    durs = {el.get("dur") for el in root.iter() if el.tag in (f"{ns}animate", f"{ns}animateTransform")}
    assert durs == {f"{T * 0.25:.2f}s"}  # mapf_render's pace: the HTML report's step slider fits
    steps = [el for el in root.iter(f"{ns}text") if (el.text or "").startswith("step ")]
    assert len(steps) == T and steps[-1].text.startswith(f"step {T - 1} / {T}: {rec['served'][-1]} served")


def test_the_svg_of_a_large_fleet_stays_small():
    # 1000 vehicles x 30 steps drawn from a synthetic record (no simulation): one element each
    rng = np.random.default_rng(0)
    xy = np.stack(np.meshgrid(np.arange(20) * 400.0, np.arange(20) * 400.0), -1).reshape(-1, 2)
    T, N = 30, 1000
    node = rng.integers(0, 400, size=(T + 1, N))
    rec = {"xy": xy, "edges": [(i, i + 1) for i in range(399) if (i + 1) % 20],
           "positions": xy[node], "onboard": rng.integers(0, 4, size=(T + 1, N)),
           "orders": [xy[rng.integers(0, 400, size=150)] for _ in range(T + 1)],
           "assignments": [xy[rng.integers(0, 400, size=(150, 2))] for _ in range(T)],
           "served": list(range(150, 150 * T + 1, 150)), "dropped": [0] * T, "capacity": 3}
    svg = games.load("ride_dispatch(num_vehicles=10, grid=4, max_steps=4)").animation(rec)
    assert svg.count("<circle") == N + 4
    assert len(svg) < 1_500_000  # below the HTML report's 2 MB embedding limit


# ----------------------------------------------------------------------------- the evaluate kind
def test_grid_keeps_the_dispatch_measures_and_animates(ospo_run, tmp_path):
    text = (f"games: ['{SMALL}']\npolicies: [{{name: nearest, controller: dispatch_nearest}}, "
            f"{{name: greedy, controller: dispatch_greedy}}, {{name: mine, run: '{ospo_run}'}}]\n"
            "seeds: 2\nepisodes: 3\nanimate: true\n")
    result = scenarios.run(grid(tmp_path, text), out=tmp_path / "runs", quiet=True)
    run = result.run_dir
    table = rows(run / "results.csv")
    assert len(table) == 6 and {r["evaluated_by"] for r in table} == {"controller", "learner"}
    for path in (run / "cells").glob("*.json"):
        cell = json.loads(path.read_text())
        assert set(cell["measures"]) == MEASURES and all(len(v) == 3 for v in cell["measures"].values())
    per_cell = rows(run / "measures.csv")
    assert len(per_cell) == 6 and set(per_cell[0]) == {"game", "policy", "seed", "episodes"} | MEASURES
    greedy = [c for c in per_cell if c["policy"] == "greedy" and c["seed"] == "0"][0]
    ref = controllers.make("dispatch_greedy", games.load(SMALL)).evaluation_metrics(3, seed=0)
    assert float(greedy["served"]) == pytest.approx(ref["served"].mean())
    report = (run / "measures.md").read_text()
    assert "| game | policy | served | reward |" in report
    lines = [ln for ln in report.splitlines() if ln.startswith("| ride_dispatch")]
    assert len(lines) == 3 and all(ln.count(" ± ") == len(MEASURES) for ln in lines)  # 6 episodes each: intervals
    for name in ("nearest", "greedy", "mine"):
        svg = (run / "animations" / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and svg.count("<circle") == 20 + 4


def test_players_without_measures_are_unaffected(tmp_path):
    text = "games: ['grid_goals(num_agents=2, size=4, max_steps=8)']\npolicies: [{name: r, scripted: random}]\n" \
           "seeds: 1\nepisodes: 2\n"
    run = scenarios.run(grid(tmp_path, text), out=tmp_path / "runs", quiet=True).run_dir
    assert not (run / "measures.md").exists() and not (run / "measures.csv").exists()
    cell = json.loads(next((run / "cells").glob("*.json")).read_text())
    assert "measures" not in cell and len(cell["returns"]) == 2


def test_the_builtin_validates():
    s = scenarios.load("dispatch-eval")
    scenarios.validate(s)
    cfg = s.config
    assert cfg.games == ["ride_dispatch(num_vehicles=1000)"] and (cfg.seeds, cfg.episodes, cfg.animate) == (5, 1, True)
    assert [e.controller for e in cfg.policies] == ["dispatch_nearest", "dispatch_greedy"]
    assert "--set 'policies=[" in s.description and "run: runs/dispatch-ospo-" in s.description


def test_a_scorer_evaluates_on_another_fleet_but_not_on_other_rows():
    small = games.load("ride_dispatch(num_vehicles=20, grid=6, max_steps=8)")
    learner = marl.make("ospo", small, seed=0)
    bigger = games.load("ride_dispatch(num_vehicles=40, grid=8, max_steps=8)")
    bound = learner.on_game(bigger)
    assert bound is not None
    m = bound.evaluation_metrics(2, seed=3)
    ref = evaluate_scorer(bigger, learner.scorer(0.0, np.random.default_rng(3)), 2, 3)
    for k in ("served", "reward", "return"):
        np.testing.assert_allclose(m[k], ref[k])
    assert learner.on_game(games.load("ride_dispatch(num_vehicles=20, grid=6, max_steps=8, max_candidates=4)")) is None
    assert learner.on_game(games.load("gems")) is None
