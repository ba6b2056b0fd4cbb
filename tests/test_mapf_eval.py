"""The lifelong MAPF evaluation grid: controllers and a follower run over maps x agent counts x
seeds, reported as average throughput against the number of agents; the Ray backend gives the
local table."""

from __future__ import annotations

import csv

import pytest
from needs import need

from equilibria import scenarios
from equilibria.common.config import ConfigError

GAMES = ("games: ['lifelong_mapf(num_agents=8, size=10, max_steps=24, obs_radius=3)', "
         "'lifelong_mapf(num_agents=16, size=10, max_steps=24, obs_radius=3)', "
         "'lifelong_mapf(num_agents=16, size=10, max_steps=24, obs_radius=3, map=maze)']\n")


@pytest.fixture(scope="module")
def follower_run(tmp_path_factory):
    s = scenarios.load("mapf-follower", [
        "game=lifelong_mapf(num_agents=8, size=10, max_steps=24, obs_radius=3)", "budget.steps=2000",
        "eval.every_steps=2000", "eval.episodes=2", "checkpoint_every_steps=2000", "algorithm.config.num_envs=2",
        "algorithm.config.agent_counts=[8]"])
    return scenarios.run(s, out=tmp_path_factory.mktemp("train"), quiet=True).run_dir


def grid(tmp_path, text: str):
    path = tmp_path / "grid.yaml"
    path.write_text("name: grid\nkind: evaluate\n" + text)
    return scenarios.load(str(path))


def lineup(run) -> str:
    return ("policies: [{name: random, controller: mapf_random}, "
            "{name: planner, controller: mapf_planner, config: {dynamic_cost: false}}, "
            f"{{name: pibt, controller: pibt}}, {{name: follower, run: '{run}'}}]\nseeds: 2\nepisodes: 2\nx: num_agents\n"
            "animate: true\n")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_reports_throughput_against_agents(follower_run, tmp_path):
    result = scenarios.run(grid(tmp_path, GAMES + lineup(follower_run)), out=tmp_path, quiet=True)
    table = rows(result.run_dir / "results.csv")
    assert len(table) == 3 * 4 * 2
    assert {r["evaluated_by"] for r in table} == {"controller", "learner"}  # batched: nothing through the engine
    for r in table:  # the score is the throughput: targets per step, all agents together
        agents = 8 if "num_agents=8" in r["game"] else 16
        assert float(r["score"]) == pytest.approx(float(r["mean_return"]) * agents / 24)
    report = (result.run_dir / "results.md").read_text()
    assert "Average throughput" in report and "num_agents = 16" in report
    assert (result.run_dir / "plots" / "curve.png").exists()
    svg = (result.run_dir / "animations" / "follower.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<circle") == 8 and "targets in 24 steps" in svg


def test_controllers_are_listed(capsys):
    from equilibria.scenarios import cli

    assert cli.main(["list", "controllers"]) == 0
    out = capsys.readouterr().out
    assert "mapf_planner" in out and "pibt" in out and "dynamic_cost = True" in out


def test_controllers_are_checked_before_anything_runs(tmp_path):
    bad = GAMES + "policies: [{name: p, controller: mapf_planer}]\n"
    with pytest.raises(ConfigError, match="unknown controller 'mapf_planer'; did you mean 'mapf_planner'"):
        scenarios.validate(grid(tmp_path, bad))
    bad = GAMES + "policies: [{name: p, controller: pibt, config: {radius: 2}}]\n"
    with pytest.raises(ConfigError, match="policies.0.config: controller 'pibt' has no parameter 'radius'"):
        scenarios.validate(grid(tmp_path, bad))
    bad = "games: [grid_goals]\npolicies: [{name: p, controller: pibt}]\n"
    with pytest.raises(ConfigError, match="MAPF controllers act in lifelong_mapf games"):
        scenarios.validate(grid(tmp_path, bad))
    bad = GAMES + "policies: [{name: p, controller: pibt}]\nx: num_agent\n"
    with pytest.raises(ConfigError, match="x: .* has no numeric parameter 'num_agent'"):
        scenarios.validate(grid(tmp_path, bad))


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray cluster at a time under pytest-xdist
def test_ray_backend_gives_the_local_table(follower_run, tmp_path):
    ray = need("ray", "rllib")
    try:
        local = scenarios.run(grid(tmp_path, GAMES + lineup(follower_run)), out=tmp_path / "local", quiet=True)
        remote = scenarios.run(grid(tmp_path, GAMES + lineup(follower_run) + "backend: ray\n"), out=tmp_path / "ray",
                               quiet=True)
    finally:
        ray.shutdown()
    assert remote.metrics == local.metrics
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows(local.run_dir / "results.csv")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows(remote.run_dir / "results.csv")]
