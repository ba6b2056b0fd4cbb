"""Scenarios: built-ins, the real CLI on bad input, run directories, interruption and resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import cli_in_process

from equilibria import scenarios
from equilibria.common.yamlio import load_yaml

BAD = Path(__file__).parent / "bad_scenarios"
CLI = [sys.executable, "-m", "equilibria.scenarios.cli"]

# file -> (line the error must name or None, fragments the one-line message must contain)
EXPECTED = {
    "malformed_yaml.yaml": (4, ["malformed YAML"]),
    "not_a_mapping.yaml": (None, ["must be a YAML mapping"]),
    "missing_kind.yaml": (None, ["missing required field 'kind'"]),
    "unknown_kind.yaml": (2, ["kind: unknown kind 'solv'", "did you mean 'solve'"]),
    "unknown_game.yaml": (3, ["game:", "unknown game 'kuhn_pokr'", "kuhn_poker"]),
    "bad_game_param.yaml": (3, ["game:", "playerz: unknown field", "did you mean 'players'"]),
    "unknown_solver.yaml": (4, ["solver.name:", "unknown solver 'cfr++'", "cfr+"]),
    "unknown_solver_param.yaml": (7, ["solver.config.regret_maching_plus:", "regret_matching_plus"]),
    "wrong_type_solver_param.yaml": (7, ["solver.config.alternating_updates:", "must be true or false"]),
    "negative_budget.yaml": (6, ["budget.iterations:", "must be >= 1, got -5"]),
    "wrong_type_budget.yaml": (6, ["budget.iterations:", "must be an integer, got 'lots'"]),
    "unknown_top_field.yaml": (5, ["budgett:", "did you mean 'budget'"]),
    "no_budget.yaml": (None, ["budget", "needs budget.iterations or budget.seconds"]),
    "solver_not_applicable.yaml": (4, ["solver:", "two-player zero-sum"]),
    "bad_eval_policy.yaml": (7, ["eval.policy:", "did you mean 'average'"]),
    "zero_eval_every.yaml": (7, ["eval.every:", "must be >= 1"]),
    "bad_backend.yaml": (6, ["backend:", "must be 'local', 'ray' or 'rllib'"]),
    "bad_name.yaml": (1, ["name:", "names the run directory", "'../escape'"]),
    "out_of_range_solver.yaml": (6, ["solver.config.epsilon:", "must lie in (0, 1], got 1.5"]),
    "unknown_preference_algorithm.yaml": (6, ["algorithms.1.name:", "unknown exact algorithm 'sppp'", "sppo"]),
}


def _cli(*args, cwd=None, **kw):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, **kw)


def test_every_bad_scenario_file_is_covered():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_scenarios_exit_2_with_one_line(name, tmp_path, monkeypatch):
    line, fragments = EXPECTED[name]
    for command in (["validate", str(BAD / name)], ["run", str(BAD / name), "--out", str(tmp_path)]):
        res = cli_in_process(*command, cwd=Path.cwd(), monkeypatch=monkeypatch)
        assert res.returncode == 2, res.stderr
        err = res.stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        assert name in err
        if line is not None:
            assert f"{name}:{line}:" in err, err
        for frag in fragments:
            assert frag in err, err
    assert list(tmp_path.iterdir()) == []  # no run directory left behind


@pytest.mark.parametrize("args, fragment", [
    (["validate", "no_such_file.yaml"], "no such scenario file"),
    (["validate", "quickstrat"], "did you mean 'quickstart'"),
    (["validate", "quickstart", "--set", "solver.config.alhpa=1"], "(--set solver.config.alhpa)"),
    (["validate", "quickstart", "--set", "budget.iterations=-1"], "must be >= 1"),
    (["validate", "quickstart", "--set", "novalue"], "expected key.path=value"),
    (["run", "--resume", "/nonexistent/run"], "is not a run directory"),
])
def test_cli_usage_errors_exit_2(args, fragment):
    res = _cli(*args)
    assert res.returncode == 2 and fragment in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("name", ["quickstart", "kuhn-cfr", "leduc-cfr-plus", "leduc-mmd", "rps-extragradient",
                                  "preference-rps", "preference-random", "preference-tiny-lm", "mappo-navigation",
                                  "tournament-kuhn", "psro-leduc", "mamql-gems", "mamql-overcooked",
                                  "mra-populations", "merge-mappo-pis", "merge-eval"])
def test_builtins_validate(name):
    scenario = scenarios.load(name)
    scenarios.validate(scenario)
    assert scenario.description


def test_a_run_records_its_commit_and_whether_the_checkout_had_changes(monkeypatch):
    from equilibria.scenarios import rundir

    root = str(Path(rundir.__file__).resolve().parents[1])

    def fake_git(status: str | None, top: str = root):
        def run(cmd, **kwargs):
            answers = {"--show-toplevel": top, "HEAD": "abc123", "--porcelain": status}
            out = next(v for k, v in answers.items() if k in cmd)
            return subprocess.CompletedProcess(cmd, 0 if out is not None else 128, stdout=out or "", stderr="")
        return run

    monkeypatch.setattr(rundir.subprocess, "run", fake_git(""))
    assert rundir._git_sha() == "abc123"
    monkeypatch.setattr(rundir.subprocess, "run", fake_git(" M games/merge.py\n"))
    assert rundir._git_sha() == "abc123-dirty"
    monkeypatch.setattr(rundir.subprocess, "run", fake_git(None))  # git status failed: the commit is still known
    assert rundir._git_sha() == "abc123-unknown"
    monkeypatch.setattr(rundir.subprocess, "run", fake_git("", top="/somebody/elses/repo"))  # an installed copy
    assert rundir._git_sha() is None


def test_quickstart_through_the_python_api(tmp_path):
    result = scenarios.run(scenarios.load("quickstart"), out=tmp_path, quiet=True)
    assert result.metrics["iteration"] == 500
    assert result.metrics["exploitability"] < 1e-3
    assert result.metrics["value_p0"] == pytest.approx(-0.0856, abs=2e-3)  # Leduc's game value
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path and run_dir.name.startswith("quickstart-")
    cfg, _ = load_yaml((run_dir / "config.yaml").read_text(), "config.yaml")
    assert cfg["equilibria_version"] and cfg["solver"]["name"] == "cfr+" and "git_sha" in cfg
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,seconds,exploitability") and len(rows) == 1 + 51
    assert json.loads(result.summary_path.read_text())["metrics"]["iteration"] == 500
    assert [p.name for p in result.plots] == ["exploitability.png"] and result.plots[0].stat().st_size > 10_000
    assert (run_dir / "checkpoints" / "latest.npz").exists()


def test_set_overrides_reach_the_resolved_config(tmp_path):
    s = scenarios.load("rps-extragradient", ["budget.iterations=20", "solver.config.eta=0.2"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    cfg, _ = load_yaml((result.run_dir / "config.yaml").read_text(), "config.yaml")
    assert cfg["budget"]["iterations"] == 20 and cfg["solver"]["config"]["eta"] == 0.2


def _final(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path):
    """SIGKILL a kuhn-cfr run after its first checkpoint; --resume finishes it with the same numbers."""
    args = ["--set", "budget.iterations=60000", "--set", "checkpoint_every=2000", "--quiet"]
    full = _cli("run", "kuhn-cfr", "--out", str(tmp_path / "full"), *args)
    assert full.returncode == 0, full.stderr
    (full_dir,) = (tmp_path / "full").iterdir()

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([*CLI, "run", "kuhn-cfr", "--out", str(tmp_path / "killed"), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed").glob("*/checkpoints/latest.npz"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.005)
    assert ckpt is not None and proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = ckpt.parents[1]
    assert not (run_dir / "summary.json").exists()
    resumed = _cli("run", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    a, b = _final(full_dir), _final(run_dir)
    assert a["iteration"] == b["iteration"] == 60000
    assert a["exploitability"] == b["exploitability"]
    full_rows = (full_dir / "metrics.csv").read_text().splitlines()
    resumed_rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(full_rows) == len(resumed_rows)  # no duplicated or missing evaluations


def test_sigint_checkpoints_and_exits_130(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([*CLI, "run", "leduc-cfr-plus", "--out", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/metrics.csv")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with: equilibria run --resume" in err
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "checkpoints" / "latest.npz").exists()


def test_leftover_partial_checkpoint_does_not_break_resume(tmp_path):
    result = scenarios.run(scenarios.load("rps-extragradient", ["budget.iterations=100"]), out=tmp_path, quiet=True)
    # a kill during a checkpoint write leaves only the temp file half-written
    (result.run_dir / "checkpoints" / ".latest.npz.tmp").write_bytes(b"\x93NUMPY garbage")
    again = scenarios.run(None, resume=result.run_dir, quiet=True)
    assert again.metrics["iteration"] == 100


def test_a_run_resumed_without_its_plots_folder_draws_them_again(tmp_path):
    # built-in runs are shipped with their checkpoints and without plots/; resuming one must not crash at the end
    result = scenarios.run(scenarios.load("rps-extragradient", ["budget.iterations=100"]), out=tmp_path, quiet=True)
    shutil.rmtree(result.run_dir / "plots")
    again = scenarios.run(None, resume=result.run_dir, quiet=True)
    assert again.metrics["iteration"] == 100 and again.plots and all(p.exists() for p in again.plots)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    result = scenarios.run(scenarios.load("rps-extragradient", ["budget.iterations=10"]), out=tmp_path, quiet=True)
    (result.run_dir / "checkpoints" / "latest.npz").write_bytes(b"not a zip")
    res = _cli("run", "--resume", str(result.run_dir))
    assert res.returncode == 2 and "unreadable" in res.stderr and "Traceback" not in res.stderr


def test_preference_comparison_run_and_resume(tmp_path):
    s = scenarios.load("preference-random", ["budget.iterations=100", "seeds=[0, 1]"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["final_egpo"] < 1e-8 and result.metrics["final_nash-mp"] < 1e-8
    assert result.metrics["final_nash-md (constant eta)"] > 1e-5  # the constant-step bias floor
    table = (result.run_dir / "comparison.md").read_text()
    assert "| egpo |" in table and "2/2" in table
    assert [p.name for p in result.plots] == ["gap_vs_queries.png"]
    # resume after losing the last unit's rows: only that unit is recomputed, same result
    lines = (result.run_dir / "metrics.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    last = rows[-1].split(",")[0:2]
    kept = [r for r in rows if r.split(",")[0:2] != last]
    (result.run_dir / "metrics.csv").write_text("\n".join([header, *kept]) + "\n")
    again = scenarios.run(None, resume=result.run_dir, quiet=True)
    assert again.metrics == result.metrics


def test_preference_rps_shows_cycling_against_convergence(tmp_path):
    result = scenarios.run(scenarios.load("preference-rps", ["budget.iterations=2000"]), out=tmp_path, quiet=True)
    m = result.metrics
    assert m["final_sppo (last iterate)"] > 0.3
    assert m["final_sppo (average)"] < 0.05
    assert m["final_egpo"] < 1e-6 and m["final_nash-mp"] < 1e-6


def test_train_run_writes_curve_tensorboard_and_evaluates(tmp_path):
    s = scenarios.load("mappo-navigation", ["budget.steps=4000", "eval.every_steps=2000", "eval.episodes=4",
                                            "checkpoint_every_steps=2000", "algorithm.config.num_envs=8"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["env_steps"] == 4000
    assert [p.name for p in result.plots] == ["learning_curve.png"]
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    res = _cli("eval", str(result.run_dir), "--episodes", "4")
    assert res.returncode == 0 and "mean episode return" in res.stdout, res.stderr
    bad = _cli("eval", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and "not a run directory" in bad.stderr


def test_corrupt_best_checkpoint_is_a_clear_error(tmp_path):
    s = scenarios.load("mappo-navigation", ["budget.steps=100", "eval.every_steps=100", "eval.episodes=2",
                                            "checkpoint_every_steps=100", "algorithm.config.num_envs=4",
                                            "algorithm.config.ppo_epochs=1"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["best_env_steps"] in (0, 100)
    best = result.run_dir / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])  # torn
    res = _cli("run", "--resume", str(result.run_dir))
    assert res.returncode == 2 and "best.pt" in res.stderr and "Traceback" not in res.stderr
