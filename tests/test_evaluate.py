"""The evaluate kind (a grid of games x policies x seeds), `equilibria eval` on any learner's run,
and joint policies in the engine."""

import csv
import json

import numpy as np
import pytest
from needs import need

from equilibria import games, scenarios
from equilibria.common.config import ConfigError
from equilibria.games.core import CorrelatedPolicy
from equilibria.games.engine import PolicyAgent, play_game
from equilibria.games.markov import MarkovState
from equilibria.scenarios import cli
from equilibria.scenarios.kinds import evaluate as evaluate_kind
from equilibria.scenarios.tournament import play_one

NAV = "cooperative_navigation(num_agents=3, num_landmarks=3)"
NAV_POPULATION = "cooperative_navigation(num_agents=3, num_landmarks=3, population=[2, 3])"
COORDINATION = "matrix(row=[[1, 0], [0, 1]], col=[[1, 0], [0, 1]])"


@pytest.fixture(scope="module")
def ippo_run(tmp_path_factory):
    """A tiny IPPO train run (one update of 100 steps) of mappo-navigation."""
    s = scenarios.load("mappo-navigation", ["algorithm.name=ippo", "budget.steps=100", "eval.every_steps=100",
                                            "eval.episodes=2", "checkpoint_every_steps=100",
                                            "algorithm.config.num_envs=4", "algorithm.config.ppo_epochs=1"])
    return scenarios.run(s, out=tmp_path_factory.mktemp("train"), quiet=True).run_dir


def grid(tmp_path, text: str, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text("name: grid\nkind: evaluate\n" + text)
    return scenarios.load(str(path))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- equilibria eval
def test_eval_works_for_an_ippo_run(ippo_run, capsys):
    from equilibria.scenarios.learning import load_trained

    assert load_trained(ippo_run)[2].config.critic == "local"  # ippo's variant, rebuilt from the run's config
    assert cli.main(["eval", str(ippo_run), str(ippo_run), "--episodes", "4"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "mean episode return" in ln]
    assert len(lines) == 2 and lines[0] == lines[1] and "4 deterministic episodes" in lines[0]


def test_eval_of_an_rllib_run_says_it_keeps_no_checkpoint(tmp_path, capsys):
    from pathlib import Path

    run = tmp_path / "rllib-run"
    run.mkdir()
    builtin = Path(__file__).resolve().parents[1] / "scenarios" / "builtin" / "rllib-navigation.yaml"
    (run / "config.yaml").write_text(builtin.read_text())
    assert cli.main(["eval", str(run)]) == 2
    assert "trained by RLlib (backend: rllib), which keeps no checkpoint" in capsys.readouterr().err


def test_a_lineup_entry_naming_an_rllib_run_is_refused_at_validation(tmp_path):
    from pathlib import Path

    run = tmp_path / "rllib-run"
    run.mkdir()
    builtin = Path(__file__).resolve().parents[1] / "scenarios" / "builtin" / "rllib-navigation.yaml"
    (run / "config.yaml").write_text(builtin.read_text())
    text = (f"name: e\nkind: evaluate\ngames: [cooperative_navigation]\n"
            f"policies: [{{name: ppo, run: {run}}}]\n")
    (tmp_path / "e.yaml").write_text(text)
    with pytest.raises(ConfigError, match="trained by RLlib"):
        scenarios.validate(scenarios.load(str(tmp_path / "e.yaml")))


def test_eval_of_several_runs_says_which_cannot_be_evaluated_and_evaluates_the_others(ippo_run, tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "nowhere"), str(ippo_run), "--episodes", "2"]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"error: {tmp_path / 'nowhere'} is not a run directory (no config.yaml)"
    assert f"{ippo_run}: mean episode return" in out


def test_a_train_run_keeps_the_learner_of_its_best_evaluation(ippo_run, tmp_path):
    from equilibria.scenarios.learning import load_trained

    evaluated = [(int(r["env_steps"]), float(r["eval_return"])) for r in read_csv(ippo_run / "metrics.csv")
                 if r.get("eval_return")]
    assert len(evaluated) == 2  # at the start and after the one update
    best = json.loads((ippo_run / "checkpoints" / "best.json").read_text())
    steps, value = max(evaluated, key=lambda x: x[1])
    assert (best["env_steps"], best["eval_return"]) == (steps, pytest.approx(value))
    assert load_trained(ippo_run, "best")[2].env_steps == steps
    assert cli.main(["eval", str(ippo_run), "--checkpoint", "best", "--episodes", "2"]) == 0
    s = grid(tmp_path, f"games: ['{NAV}']\npolicies: [{{name: best, run: {ippo_run}, checkpoint: best}}]\n"
                       "seeds: 1\nepisodes: 2\n")
    assert read_csv(scenarios.run(s, out=tmp_path / "runs", quiet=True).run_dir / "results.csv")
    with pytest.raises(ConfigError, match="only a run entry has checkpoints"):
        grid(tmp_path, "games: [kuhn_poker]\npolicies: [{name: r, scripted: random, checkpoint: best}]\n", "bad.yaml")


# ----------------------------------------------------------------------------- the evaluate kind
def test_grid_writes_csv_table_and_plot(ippo_run, tmp_path):
    s = grid(tmp_path, f"games: ['{NAV}', '{NAV_POPULATION}']\npolicies: [{{name: ippo, run: {ippo_run}}}, "
                       "{name: random, scripted: random}]\nseeds: 2\nepisodes: 6\n")
    result = scenarios.run(s, out=tmp_path / "runs", quiet=True)
    rows = read_csv(result.run_dir / "results.csv")
    assert len(rows) == 2 * 2 * 2 and {r["seed"] for r in rows} == {"0", "1"}
    by = {(r["game"], r["policy"]): r["evaluated_by"] for r in rows}
    # the run on its own game goes through its learner's batched loop; elsewhere its actors play in the engine
    assert by == {(NAV, "ippo"): "learner", (NAV_POPULATION, "ippo"): "engine", (NAV, "random"): "engine",
                  (NAV_POPULATION, "random"): "engine"}
    assert all(int(r["episodes"]) == 6 and np.isfinite(float(r["mean_return"])) for r in rows)
    table = (result.run_dir / "results.md").read_text()
    assert "| game | policy | mean ± 95% CI across episodes | mean ± 95% CI across seeds | episodes | seeds |" in table
    assert table.count(f"| {NAV_POPULATION} |") == 2 and "| 12 | 2 |" in table and " ± " in table
    assert "interval n/a: 2 seeds, needs at least 5" in table  # too few seeds for an interval across them
    assert [p.name for p in result.plots] == ["returns.png"] and result.plots[0].stat().st_size > 10_000
    summary = read_csv(result.run_dir / "metrics.csv")
    assert len(summary) == 4 and result.metrics["cells"] == 8 and result.metrics["episodes"] == 48
    pooled = [float(r["mean_return"]) for r in rows if r["game"] == NAV and r["policy"] == "random"]
    assert result.metrics[f"random @ {NAV}"] == pytest.approx(np.mean(pooled))


def test_resume_computes_only_the_missing_cells(tmp_path, extend_run, monkeypatch):
    calls = []
    real = evaluate_kind.evaluate_cell

    def counted(*args, **kwargs):
        calls.append(args[4])  # the cell's seed
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_kind, "evaluate_cell", counted)
    text = ("games: ['cooperative_navigation(num_agents=2, num_landmarks=2, max_steps=8)', "
            "'grid_goals(num_agents=2, size=4, max_steps=8)']\n"
            "policies: [{name: random, scripted: random}, {name: first, scripted: first_action}]\nepisodes: 4\n")
    full = scenarios.run(grid(tmp_path, text + "seeds: [0, 1]\n", "full.yaml"), out=tmp_path / "a", quiet=True)
    assert len(calls) == 8
    # a run killed after its seed-0 cells: the same directory, asked for both seeds
    calls.clear()
    short = scenarios.run(grid(tmp_path, text + "seeds: [0]\n", "short.yaml"), out=tmp_path / "b", quiet=True)
    extend_run(short.run_dir, "seeds", value=[0, 1])
    calls.clear()
    resumed = scenarios.run(None, resume=short.run_dir, quiet=True)
    assert sorted(calls) == [1, 1, 1, 1]  # only the seed-1 cells
    assert resumed.metrics == full.metrics
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(full.run_dir / "results.csv")]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(resumed.run_dir / "results.csv")] == strip
    # a finished run resumes to the same report without evaluating anything; a lost cell is recomputed alone
    calls.clear()
    assert scenarios.run(None, resume=short.run_dir, quiet=True).metrics == full.metrics and calls == []
    sorted((short.run_dir / "cells").glob("*.json"))[0].unlink()
    assert scenarios.run(None, resume=short.run_dir, quiet=True).metrics == full.metrics and len(calls) == 1


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray cluster at a time under pytest-xdist
def test_ray_backend_gives_the_local_results(ippo_run, tmp_path):
    ray = need("ray", "rllib")
    text = (f"games: ['{NAV}', '{NAV_POPULATION}']\npolicies: [{{name: ippo, run: {ippo_run}}}, "
            "{name: random, scripted: random}]\nseeds: 2\nepisodes: 4\n")
    try:
        local = scenarios.run(grid(tmp_path, text), out=tmp_path / "local", quiet=True)
        remote = scenarios.run(grid(tmp_path, text + "backend: ray\n"), out=tmp_path / "ray", quiet=True)
    finally:
        ray.shutdown()
    assert remote.metrics == local.metrics


# ----------------------------------------------------------------------------- joint policies
class Coordinated(CorrelatedPolicy):
    """Both seats play (0, 0) or (1, 1), each with probability 1/2."""

    def joint_action_probabilities(self, state):
        return {(0, 0): 0.5, (1, 1): 0.5}


class MarginalsOnly:
    """The same policy without its joint distribution: every seat plays its marginal on its own."""

    def __init__(self, policy):
        self.policy = policy

    def action_probabilities(self, state, player=None):
        return self.policy.action_probabilities(state, player)


def test_a_joint_policy_holding_every_seat_coordinates():
    game = games.load(COORDINATION)
    joint = Coordinated()
    state = game.new_initial_state()
    assert joint.action_probabilities(state, 0) == joint.action_probabilities(state, 1) == {0: 0.5, 1: 0.5}
    # the tournament's match runner: one entry in both seats draws joint actions, two entries play marginals
    together = [play_one(game, [joint, joint], ["j", "j"], seed)[0]["outcome"]["returns"] for seed in range(200)]
    apart = [play_one(game, [joint, Coordinated()], ["a", "b"], seed)[0]["outcome"]["returns"] for seed in range(200)]
    assert np.mean(together) == 1.0
    assert 0.4 < np.mean(apart) < 0.6


def test_the_evaluate_kind_uses_the_joint_distribution(tmp_path, monkeypatch):
    built = {"joint": Coordinated(), "marginals": MarginalsOnly(Coordinated())}
    monkeypatch.setattr(evaluate_kind, "build_entry", lambda entry, game, run=None: built[entry.name])
    s = grid(tmp_path, f"games: ['{COORDINATION}']\npolicies: [{{name: joint, scripted: random}}, "
                       "{name: marginals, scripted: random}]\nseeds: 2\nepisodes: 100\n")
    metrics = scenarios.run(s, out=tmp_path, quiet=True).metrics
    assert metrics[f"joint @ {COORDINATION}"] == 1.0
    assert 0.4 < metrics[f"marginals @ {COORDINATION}"] < 0.6


class SameMove(CorrelatedPolicy):
    """Every seat moves the same way; it names an action even for seats that are absent."""

    def joint_action_probabilities(self, state):
        n = state.game.num_players
        return {(0,) * n: 0.5, (1,) * n: 0.5}


def test_seats_without_legal_actions_pass_none_in_joint_play(monkeypatch):
    game = games.load("grid_goals(num_agents=4, size=4, max_steps=6, population=[1, 3])")
    seen = []
    real = MarkovState.apply_actions

    def record(self, actions):
        seen.append([(a, bool(self.legal_actions(p))) for p, a in enumerate(actions)])
        real(self, actions)

    monkeypatch.setattr(MarkovState, "apply_actions", record)
    policy = SameMove()
    for seed in range(4):
        play_game(game, [PolicyAgent(policy)] * 4, seed=seed, keep_turns=False)
    absent = [a for step in seen for a, legal in step if not legal]
    present = {a for step in seen for a, legal in step if legal}
    assert absent and set(absent) == {None} and present <= {0, 1}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, fragments", [
    ("games: []\npolicies: [{name: r, scripted: random}]\n", ["games: the grid is empty"]),
    ("policies: [{name: r, scripted: random}]\n", ["games: the grid is empty"]),
    (f"games: ['{NAV}']\npolicies: []\n", ["policies: the grid is empty"]),
    (f"game: {NAV}\ngames: ['{NAV}']\npolicies: [{{name: r, scripted: random}}]\n", ["game:", "games: [spec, ...]"]),
    (f"games: ['{NAV}', 'cooperative_navigaton']\npolicies: [{{name: r, scripted: random}}]\n",
     ["games.1:", "unknown game 'cooperative_navigaton'"]),
    (f"games: ['{NAV}']\npolicies: [{{name: r, scripted: randm}}]\n", ["policies.0.scripted:", "'random'"]),
    (f"games: ['{NAV}']\npolicies: [{{name: r, run: no_such_run}}]\n", ["policies.0.run:", "no_such_run"]),
    (f"games: ['{NAV}']\npolicies: [{{name: r, scripted: random, seats: 3}}]\n", ["policies.0.seats:", "every seat"]),
    (f"games: ['{NAV}']\npolicies: [{{name: r, scripted: random}}]\nseeds: [1, 1]\n", ["seeds:", "each once"]),
])
def test_bad_grids_are_one_line_errors_naming_the_field(text, fragments, tmp_path):
    with pytest.raises(scenarios.ConfigError) as err:
        scenarios.validate(grid(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_a_run_for_another_game_is_refused(ippo_run, tmp_path, capsys):
    path = tmp_path / "other.yaml"
    path.write_text(f"name: g\nkind: evaluate\ngames: [pursuit]\npolicies: [{{name: ippo, run: {ippo_run}}}]\n")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "policies.0.run:" in err and "cannot hold the seats of pursuit" in err
