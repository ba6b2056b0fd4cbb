"""Bad input, corrupt run files and misbehaving chat servers, tried through the real CLI.

Every case asserts the stated exit status, a single-line message naming the field or file,
and that nothing was written outside the directory the command ran in (or the run directory).
Each CLI call has a timeout and each test an alarm: guards against hangs, not timing tests.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chat_server import ChatServer, closed_port
from cli_runner import cli_in_process

from equilibria import scenarios
from equilibria.common.yamlio import dump_yaml, load_yaml

ROOT = Path(__file__).resolve().parents[1]
SOLVE = """name: t
kind: solve
game: kuhn_poker
solver: {name: cfr}
budget: {iterations: 20}
checkpoint_every: 10
eval: {every: 10}
"""


@pytest.fixture(autouse=True)
def _alarm():
    """No case may hang: a hard limit per test (the CLI calls have their own timeouts)."""
    def expired(*_):
        raise TimeoutError("test exceeded its 240 s guard")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def work(tmp_path):
    """The directory commands run in; afterwards nothing may exist beside it in tmp_path."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    yield cwd
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"], "something was written outside the working dir"


def cli(*args: str, cwd: Path, timeout: float = 90, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


@pytest.fixture
def here(monkeypatch):
    """`cli` in this interpreter (tests/cli_runner.py): the same checks without a process start."""
    return lambda *args, cwd: cli_in_process(*args, cwd=cwd, monkeypatch=monkeypatch)


def one_line(res: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """The command exited with `code` and said one line (no traceback) holding every fragment."""
    assert res.returncode == code, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def write(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- section 2: bad scenario files
def _alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n" + SOLVE


BAD_FILES = {
    # YAML
    "alias_bomb": (_alias_bomb(), ["alias bomb", "100,000 values"]),
    "deep_flow": ("name: t\nkind: solve\ngame: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nesting deeper than 64"]),
    "deep_block": ("".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n",
                   ["nesting deeper than 64"]),
    "duplicate_key": (SOLVE + "seed: 1\nseed: 2\n", [":9:", "duplicate key 'seed' (lines 8 and 9)"]),
    "yaml11_boolean": (SOLVE.replace("{name: cfr}", "{name: cfr, config: {alternating_updates: yes}}"),
                       ["solver.config.alternating_updates: must be true or false, got 'yes'"]),
    "tab_indent": ("name: t\nkind: solve\ngame:\n\t- kuhn_poker\n", [":4:", "malformed YAML"]),
    # numbers: NaN and infinity in float fields
    "nan_budget_seconds": (SOLVE.replace("{iterations: 20}", "{seconds: .nan}"),
                           ["budget.seconds: must be a finite number, got nan"]),
    "inf_solver_eta": ("name: t\nkind: solve\ngame: rock_paper_scissors\nsolver: {name: mwu, config: {eta: .inf}}\n"
                       "budget: {iterations: 5}\n", ["solver.config.eta: must be a finite number, got inf"]),
    "nan_mmd_alpha": ("name: t\nkind: solve\ngame: leduc_poker\nsolver: {name: mmd, config: {alpha: .nan}}\n"
                      "budget: {iterations: 5}\n", ["solver.config.alpha: must be a finite number"]),
    "nan_learning_rate": ("name: t\nkind: train\ngame: cooperative_navigation\n"
                          "algorithm: {name: mappo, config: {lr: .nan}}\nbudget: {steps: 100}\n",
                          ["algorithm.config.lr: must be a finite number"]),
    "inf_preference_lr": ("name: t\nkind: preference\ngame: preference(oracle=tokens, vocab=2, length=2)\nmode: sampled\n"
                          "policy: tabular\nalgorithms: [{name: nash-md, config: {lr: .inf, mixture_coef: 0.1}}]\n"
                          "budget: {iterations: 3}\n", ["algorithms.0.config.lr: must be a finite number"]),
    "nan_temperature_beta": ("name: t\nkind: preference\ngame: preference(oracle=random)\n"
                             "algorithms: [{name: inpo, config: {beta: .nan}}]\nbudget: {iterations: 3}\n",
                             ["algorithms.0.config.beta: must be a finite number"]),
    "nan_fallback_rate": ("name: t\nkind: tournament\ngame: werewolf\nseating: fixed\n"
                          "lineup: [{name: r, agent: rule, seats: 7}]\nmax_fallback_rate: .nan\n",
                          ["max_fallback_rate: must be a finite number"]),
    "nan_in_game_string": ("name: t\nkind: solve\ngame: {name: matrix, row: [[.nan, 1], [1, 0]]}\nsolver: {name: lp}\n"
                           "budget: {iterations: 1}\n", ["game:", "must be a finite number"]),
    # numbers: zero or negative where only positive makes sense
    "zero_checkpoint_steps": ("name: t\nkind: train\ngame: cooperative_navigation\ncheckpoint_every_steps: 0\n"
                              "budget: {steps: 100}\n", ["checkpoint_every_steps: must be >= 1, got 0"]),
    "negative_budget_steps": ("name: t\nkind: train\ngame: cooperative_navigation\nbudget: {steps: -5}\n",
                              ["budget.steps: must be >= 1, got -5"]),
    "zero_batch": ("name: t\nkind: tournament\ngame: kuhn_poker\nlineup: [{name: a, scripted: random}, "
                   "{name: b, scripted: first_action}]\nbatch: 0\n", ["batch: must lie in [1, 1000000], got 0"]),
    "negative_eta": ("name: t\nkind: solve\ngame: rock_paper_scissors\nsolver: {name: mwu, config: {eta: -0.1}}\n"
                     "budget: {iterations: 5}\n", ["solver.config.eta: must be > 0, got -0.1"]),
    "probability_out_of_range": ("name: t\nkind: preference\ngame: preference(oracle=random)\nmode: sampled\n"
                                 "algorithms: [{name: nash-md, config: {mixture_coef: 1.5}}]\nbudget: {iterations: 3}\n",
                                 ["algorithms.0.config.mixture_coef: must lie in [0, 1], got 1.5"]),
    # numbers: integers past what the field can hold, counts allocated up front
    "seed_past_int64": (SOLVE + "seed: 123456789012345678901234567890\n", ["seed:", "123456789012345678901234567890"]),
    "huge_int_in_list": ("name: t\nkind: preference\ngame: preference(oracle=random)\nseeds: [1, 99999999999999999999999]\n"
                         "algorithms: [{name: inpo}]\nbudget: {iterations: 3}\n", ["seeds.1:", "99999999999999999999999"]),
    "games_per_pairing_huge": ("name: t\nkind: tournament\ngame: kuhn_poker\nlineup: [{name: a, scripted: random}, "
                               "{name: b, scripted: first_action}]\ngames_per_pairing: 1000000000000\n",
                               ["games_per_pairing: must lie in [1, 10000000]"]),
    "schedule_total_too_big": ("name: t\nkind: tournament\ngame: kuhn_poker(players=3)\nseating: rotate\nlineup: ["
                               + ", ".join(f"{{name: p{i}, scripted: random}}" for i in range(60))
                               + "]\ngames_per_pairing: 100\n", ["games_per_pairing:", "205,320 seat assignments"]),
    "num_envs_huge": ("name: t\nkind: train\ngame: cooperative_navigation\n"
                      "algorithm: {name: mappo, config: {num_envs: 1000000000}}\nbudget: {steps: 100}\n",
                      ["algorithm.config.num_envs: must lie in [1, 65536]"]),
    "eval_episodes_huge": ("name: t\nkind: train\ngame: cooperative_navigation\neval: {episodes: 1e9}\n"
                           "budget: {steps: 100}\n", ["eval.episodes: must lie in [1, 100000], got 1000000000"]),
    "games_float": ("name: t\nkind: tournament\ngame: werewolf\nseating: fixed\n"
                    "lineup: [{name: r, agent: rule, seats: 7}]\ngames: 2.5\n", ["games: must be an integer, got 2.5"]),
    # sizes: estimated before allocating
    "payoff_tensor_too_big": ("name: t\nkind: solve\ngame: random_zero_sum(n=100000)\nsolver: {name: lp}\n"
                              "budget: {iterations: 1}\n", ["game:", "needs about", "GB of memory; this machine has"]),
    "general_sum_too_big": ("name: t\nkind: solve\ngame: random_general_sum(n=100, players=8)\nsolver: {name: mwu}\n"
                            "budget: {iterations: 1}\n", ["game:", "needs about"]),
    "leduc_tree_too_big": ("name: t\nkind: solve\ngame: leduc_poker(num_ranks=1000)\nsolver: {name: cfr}\n"
                           "budget: {iterations: 1}\n", ["solver:", "5.99e+11 histories", "mccfr"]),
    "openspiel_tree_too_big": ("name: t\nkind: solve\ngame: openspiel(game=phantom_ttt)\nsolver: {name: cfr}\n"
                               "budget: {iterations: 1}\n", ["solver:", "histories", "limit of 20,000,000"]),
    "unknown_openspiel_game": ("name: t\nkind: solve\ngame: openspiel(game=kuhn_pokr)\nsolver: {name: cfr}\n"
                               "budget: {iterations: 1}\n", ["unknown OpenSpiel game 'kuhn_pokr'", "'kuhn_poker'"]),
    "markov_game_too_big": ("name: t\nkind: train\ngame: cooperative_navigation(num_agents=20000)\n"
                            "budget: {steps: 100}\n", ["algorithm.config:", "needs about", "of memory"]),
    # where runs write
    "output_absolute": (SOLVE + "output: /etc\n", ["output:", "'/etc' points outside it"]),
    "output_parent": (SOLVE + "output: ../../x\n", ["output:", "'../../x' points outside it"]),
    "output_hidden_parent": (SOLVE + "output: runs/../../x\n", ["output:", "points outside it"]),
    "name_too_long": (SOLVE.replace("name: t", "name: " + "n" * 300), ["name:", "at most 100 characters"]),
    "name_with_slash": (SOLVE.replace("name: t", "name: a/b"), ["name:", "names the run directory"]),
    # files a scenario points at
    "missing_model_dir": ("name: t\nkind: tournament\ngame: werewolf\nseating: fixed\nlineup: [{name: lm, agent: "
                          "{type: transformers, model: /nonexistent/model}}, {name: r, agent: rule, seats: 6}]\n",
                          ["lineup.0.agent:", "/nonexistent/model is not a local model directory"]),
    "missing_train_run": ("name: t\nkind: tournament\ngame: pursuit\nlineup: [{name: a, run: no_such_run}, "
                          "{name: b, scripted: random}]\n", ["lineup.0.run:", "no_such_run"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_scenario_files_exit_2_with_one_line_and_write_nothing(here, case, work):
    text, fragments = BAD_FILES[case]
    path = write(work, f"{case}.yaml", text)
    for command in (["validate", path.name], ["run", path.name]):
        one_line(here(*command, cwd=work), 2, f"{case}.yaml", *fragments)
    assert sorted(p.name for p in work.iterdir()) == [path.name]  # no run directory, nothing else


@pytest.mark.parametrize("case", ["duplicate_key", "nan_learning_rate", "alias_bomb", "deep_flow",
                                  "payoff_tensor_too_big", "markov_game_too_big"])
def test_bad_scenario_files_through_the_interpreter(case, work):
    """The same through `python -m equilibria.scenarios.cli`: the exit status and the single line
    are the process's, and the cases that guard time and memory run where a regression would cost
    one test (a timeout, a killed child), not the test process."""
    text, fragments = BAD_FILES[case]
    path = write(work, f"{case}.yaml", text)
    for command in (["validate", path.name], ["run", path.name]):
        one_line(cli(*command, cwd=work), 2, f"{case}.yaml", *fragments)
    assert sorted(p.name for p in work.iterdir()) == [path.name]


@pytest.mark.parametrize("make, fragment", [
    (lambda w: Path("/dev/zero"), "not a regular file"),
    (lambda w: (os.mkfifo(w / "pipe.yaml"), w / "pipe.yaml")[1], "not a regular file"),
    (lambda w: (w / "big.yaml").write_bytes(b"# x\n" * 300_000) and w / "big.yaml", "may be at most 1.0 MB"),
    (lambda w: (w / "binary.yaml").write_bytes(b"name: \xff\xfe\n") and w / "binary.yaml", "is not UTF-8 text"),
    (lambda w: (w / "adir.yaml").mkdir() or w / "adir.yaml", "is a directory"),
])
def test_scenario_paths_that_are_not_small_text_files_are_refused_without_reading(make, fragment, work):
    path = make(work)
    before = sorted(p.name for p in work.iterdir())
    one_line(cli("validate", str(path), cwd=work, timeout=30), 2, str(path), fragment)
    assert sorted(p.name for p in work.iterdir()) == before


def test_set_reads_yaml_12_numbers_and_refuses_bad_ones(here, work):
    res = here("validate", "quickstart", "--set", "budget.iterations=1e3", cwd=work)
    assert res.returncode == 0, res.stderr  # 1e3 is a number (YAML 1.2), and a whole one fits an int field
    one_line(here("validate", "quickstart", "--set", "budget.iterations=1.5e3x", cwd=work), 2,
             "(--set budget.iterations)", "budget.iterations: must be an integer, got '1.5e3x'")
    one_line(here("validate", "quickstart", "--set", "solver.config.averaging_power=.nan", cwd=work), 2,
             "solver.config.averaging_power: must be a finite number")
    one_line(here("validate", "quickstart", "--set", "budget.iterations=2.5", cwd=work), 2,
             "budget.iterations: must be an integer, got 2.5")


def test_an_explicit_out_may_write_anywhere_but_a_too_long_one_is_refused(here, work, tmp_path):
    write(work, "s.yaml", SOLVE)
    elsewhere = tmp_path / "work" / "sub" / "elsewhere"
    res = here("run", "s.yaml", "--out", str(elsewhere), "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    assert len(list(elsewhere.iterdir())) == 1
    deep = work / (("d" * 200 + "/") * 25)
    one_line(here("run", "s.yaml", "--out", str(deep), cwd=work), 2, "longer than 4000 characters")
    assert not (work / ("d" * 200)).exists()


# ----------------------------------------------------------------------------- section 3: corrupt run files
def _solve_run(work: Path, iterations: int = 20) -> Path:
    result = scenarios.run(scenarios.load(str(write(work, "s.yaml", SOLVE.replace("20", str(iterations))))),
                           out=work / "runs", quiet=True)
    return result.run_dir


def _extend(run_dir: Path, iterations: int) -> None:
    path = run_dir / "config.yaml"
    cfg, _ = load_yaml(path.read_text(), str(path))
    cfg["budget"]["iterations"] = iterations
    path.write_text(dump_yaml(cfg))


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is unreadable"),
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: np.savez(p.with_suffix(""), regret=np.zeros(3), cum_policy=np.zeros(3), policy=np.zeros(3),
                        iteration=10, solver="cfr", seconds=0.0), "does not fit this run"),
    (lambda p: np.savez(p.with_suffix(""), iteration=10), "does not fit this run (checkpoint lacks array 'regret'"),
])
def test_damaged_npz_checkpoint_is_one_line_with_what_to_do(here, damage, fragment, work):
    run_dir = _solve_run(work)
    ckpt = run_dir / "checkpoints" / "latest.npz"
    damage(ckpt)
    _extend(run_dir, 30)
    line = one_line(here("run", "--resume", str(run_dir), cwd=work), 2, str(ckpt), fragment, "--fresh")
    assert "delete" in line
    # --fresh starts the run over in the same directory and finishes it
    res = here("run", "--resume", str(run_dir), "--fresh", "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    assert json.loads((run_dir / "summary.json").read_text())["metrics"]["iteration"] == 30


def _train_run(work: Path) -> Path:
    text = ("name: tr\nkind: train\ngame: cooperative_navigation\nalgorithm: {name: mappo, config: {num_envs: 4, "
            "rollout_length: 25, ppo_epochs: 1}}\neval: {every_steps: 100, episodes: 2}\ncheckpoint_every_steps: 100\n"
            "budget: {steps: 100}\n")
    return scenarios.run(scenarios.load(str(write(work, "tr.yaml", text))), out=work / "runs", quiet=True).run_dir


def test_damaged_or_foreign_torch_checkpoints_are_one_line_and_never_unpickled(here, work):
    import pickle

    import torch

    run_dir = _train_run(work)
    ckpt = run_dir / "checkpoints" / "latest.pt"
    good = ckpt.read_bytes()
    cfg_path = run_dir / "config.yaml"
    cfg, _ = load_yaml(cfg_path.read_text(), str(cfg_path))
    cfg["budget"]["steps"] = 200
    cfg_path.write_text(dump_yaml(cfg))
    ckpt.write_bytes(good[: len(good) // 3])  # truncated
    one_line(here("run", "--resume", str(run_dir), cwd=work), 2, str(ckpt), "is unreadable", "--fresh")
    one_line(here("eval", str(run_dir), cwd=work), 2, str(ckpt), "is unreadable")
    # an object that is not a tensor or plain container: refused without unpickling, and
    # without torch's advice to pass weights_only=False
    marker = work / "unpickled"
    torch.save({"actor": _Sneaky(str(marker))}, ckpt, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    line = one_line(here("run", "--resume", str(run_dir), cwd=work), 2, str(ckpt),
                    "holds objects other than tensors and plain containers")
    assert "weights_only" not in line and not marker.exists()
    # a valid checkpoint of a different network (another hidden size): does not fit
    ckpt.write_bytes(good)
    cfg["algorithm"]["config"]["hidden"] = 32
    cfg_path.write_text(dump_yaml(cfg))
    one_line(here("run", "--resume", str(run_dir), cwd=work), 2, str(ckpt), "does not fit this run")


class _Sneaky:
    """Unpickling this would create a file: the test checks it never happens."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_corrupt_results_database_and_torn_metrics_line(here, work):
    text = ("name: k\nkind: tournament\ngame: kuhn_poker\nlineup: [{name: a, scripted: random}, "
            "{name: b, scripted: first_action}]\ngames_per_pairing: 20\n")
    run_dir = scenarios.run(scenarios.load(str(write(work, "k.yaml", text))), out=work / "runs", quiet=True).run_dir
    metrics = (run_dir / "metrics.csv").read_bytes()
    # resuming a finished tournament changes nothing (no second ranking appended)
    assert here("run", "--resume", str(run_dir), "--quiet", cwd=work).returncode == 0
    assert (run_dir / "metrics.csv").read_bytes() == metrics
    # a deleted results database is said aloud, then every match is played again
    (run_dir / "results.sqlite").unlink()
    res = here("run", "--resume", str(run_dir), "--quiet", cwd=work)
    assert res.returncode == 0 and "results.sqlite is missing: all 40 matches will be played again" in res.stdout
    assert (run_dir / "metrics.csv").read_bytes() == metrics  # the same seeds give the same table
    (run_dir / "results.sqlite").write_bytes(b"this is not a database" * 100)
    one_line(here("run", "--resume", str(run_dir), cwd=work), 2, "results.sqlite is not a readable results database",
             "--fresh")
    # a torn last line of metrics.csv (a kill mid-write) is dropped, said aloud, and the run goes on
    solve_dir = _solve_run(work, 20)
    path = solve_dir / "metrics.csv"
    path.write_bytes(path.read_bytes() + b"30,0.01,0.2")
    _extend(solve_dir, 40)
    res = here("run", "--resume", str(solve_dir), "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "dropped a torn last line" in res.stdout
    rows = path.read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "10", "20", "30", "40"]
    # a malformed line in the middle is one line naming the file and what to do
    path.write_text(rows[0] + "\n" + rows[1] + ",extra,fields\n" + "\n".join(rows[2:]) + "\n")
    _extend(solve_dir, 50)
    one_line(here("run", "--resume", str(solve_dir), cwd=work), 2, str(path), "line 2 does not match its header")


def test_missing_metrics_file_is_said_aloud_on_resume(here, work):
    run_dir = _solve_run(work, 20)
    (run_dir / "metrics.csv").unlink()
    _extend(run_dir, 30)
    res = here("run", "--resume", str(run_dir), "--quiet", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "metrics.csv is missing: the rows written before the checkpoint are lost" in res.stdout


def test_a_second_process_resuming_the_same_run_is_refused(work):
    run_dir = _solve_run(work, 20)
    _extend(run_dir, 30)
    with open(run_dir / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write("4242")
        held.flush()
        one_line(cli("run", "--resume", str(run_dir), cwd=work), 2, str(run_dir),
                 "is in use by another equilibria process (pid 4242)")
    assert cli("run", "--resume", str(run_dir), "--quiet", cwd=work).returncode == 0  # released: it runs


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(work, monkeypatch):
    import errno

    import equilibria.scenarios.rundir as core

    run_dir = _solve_run(work, 20)
    ckpt = run_dir / "checkpoints" / "latest.npz"
    before = ckpt.read_bytes()
    _extend(run_dir, 30)
    real = os.fsync

    def full(fd):
        if "latest.npz" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(core.os, "fsync", full)
    with pytest.raises(scenarios.RunFailed, match="No space left on device.*the previous version is intact"):
        scenarios.run(None, resume=run_dir, quiet=True)
    assert ckpt.read_bytes() == before
    assert not list((run_dir / "checkpoints").glob(".*tmp"))


def test_intervals_over_too_few_samples_are_not_available_never_nan(here, work):
    run_dir = _train_run(work)
    res = here("eval", str(run_dir), "--episodes", "1", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "interval n/a: 1 episodes, needs at least 5" in res.stdout and "nan" not in res.stdout
    text = ("name: w\nkind: tournament\ngame: werewolf\nlineup: [{name: rule, agent: rule}, {name: random, agent: random}]\n"
            "games: 2\n")
    result = scenarios.run(scenarios.load(str(write(work, "w.yaml", text))), out=work / "runs", quiet=True)
    ranking = (result.run_dir / "ranking.md").read_text()
    assert "interval n/a: 2 matches" in ranking and "nan" not in ranking
    json.loads((result.run_dir / "summary.json").read_text())  # valid JSON: no NaN literals
    assert "NaN" not in (result.run_dir / "summary.json").read_text()


# ----------------------------------------------------------------------------- section 4: chat servers
def _openai_agent(url: str, **config):
    from equilibria.llm_agents.agents import make_agent

    return make_agent({"type": "openai", "base_url": url, "model": "m", "retries": 0, **config})


def _play(work: Path, url: str, games: int = 2, extra: str = "", agent: str = "timeout: 2, retries: 0") -> Path:
    return write(work, "play.yaml", f"""name: p
kind: tournament
game: werewolf
seating: fixed
games: {games}
batch: 1
replays: all
lineup:
  - {{name: api, agent: {{type: openai, base_url: "{url}", model: m, {agent}}}}}
  - {{name: rule, agent: rule, seats: 6}}
{extra}""")


def test_slow_drip_server_is_cut_at_the_total_deadline():
    server = ChatServer("drip")
    try:
        backend = _openai_agent(server.url, timeout=1.5).backend
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="no complete answer within 1.5 s"):
            backend.complete([{"role": "user", "content": "hi"}], 5, 0.0)
        assert time.monotonic() - t0 < 10  # a per-read timeout would wait for the whole drip (minutes)
    finally:
        server.close()


def test_unreachable_server_fails_the_match_at_once_with_one_line(work):
    with closed_port() as port:
        path = _play(work, f"http://127.0.0.1:{port}/v1", games=3)
        t0 = time.monotonic()
        res = cli("run", path.name, "--quiet", cwd=work, timeout=60)
    line = one_line(res, 1, "is unreachable", "ConnectionRefusedError", "finished matches are stored")
    assert time.monotonic() - t0 < 30, line


def test_a_server_that_never_answers_ends_the_match_after_repeated_failures(work):
    server = ChatServer("hang")
    try:
        path = _play(work, server.url, games=2, agent="timeout: 0.5, retries: 0, max_consecutive_failures: 2")
        one_line(cli("run", path.name, "--quiet", cwd=work, timeout=60), 1, "failed 2 requests in a row",
                 "no complete answer within 0.5 s")
    finally:
        server.close()


def _first_decision():
    from equilibria import games
    from equilibria.games.core import CHANCE, sample_chance

    state, rng = games.load("werewolf").new_initial_state(), np.random.default_rng(0)
    while state.current_player() == CHANCE:
        state.apply_action(sample_chance(state, rng))
    return state


def test_oversized_replies_long_answers_and_bad_usage():
    from equilibria.games.engine import ask
    from equilibria.games.werewolf_text import observe

    state = _first_decision()
    for mode, check in [
        ("huge", lambda rec: rec["fallback"] and "larger than" in rec["attempts"][0]["error"]),
        ("long", lambda rec: rec["attempts"][0]["tokens"].get("truncated") is True
         and len(rec["attempts"][0]["raw"]) == 8000),
        ("bad_usage", lambda rec: not rec["fallback"] and rec["attempts"][0]["tokens"]["usage"] == "unknown"
         and rec["attempts"][0]["tokens"]["completion_tokens"] is None),
    ]:
        server = ChatServer(mode)
        try:
            agent = _openai_agent(server.url, timeout=10)
            _, rec = ask(agent, observe(state, state.current_player()), max_retries=0)
            assert check(rec), (mode, rec)
        finally:
            server.close()


def test_too_many_fallbacks_exit_1_unless_allowed(work):
    server = ChatServer("garbage")
    try:
        path = _play(work, server.url, games=2)
        res = cli("run", path.name, "--quiet", cwd=work, timeout=120)
        assert res.returncode == 1, res.stderr
        assert "warning: api's answers fell back to the legal default" in res.stderr
        summary = json.loads(next((work / "runs").glob("p-*/summary.json")).read_text())
        assert summary["alarms"] and "max_fallback_rate 0.1" in summary["alarms"][0]
        allowed = _play(work, server.url, games=2, extra="max_fallback_rate: 1.0\n")
        assert cli("run", allowed.name, "--quiet", cwd=work, timeout=120).returncode == 0
    finally:
        server.close()


def test_ctrl_c_stops_a_game_between_decisions_and_keeps_finished_games(work):
    server = ChatServer("ok", delay=0.05)
    try:
        path = _play(work, server.url, games=30)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "equilibria.scenarios.cli", "run", path.name, "--quiet"], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the first finished match (batch 1: stored at once)
            replays = list((work / "runs").glob("p-*/replays/*.json"))
            if replays:
                break
            time.sleep(0.2)
        requests = len(server.requests)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted at iteration" in err and "resume with" in err
        assert len(server.requests) - requests < 10  # it stopped between decisions, not at the end of the game
        run_dir = replays[0].parent.parent
        import sqlite3

        finished = sqlite3.connect(run_dir / "results.sqlite").execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        assert finished >= 1 and len(list((run_dir / "replays").glob("*.json"))) == finished
    finally:
        server.close()


def test_the_in_process_cli_reports_what_a_process_would_print(here, work, monkeypatch):
    """cli_in_process shows warnings, log records and sys.exit messages on stderr, so a second
    line makes one_line fail here as it would for the real process."""
    import logging
    import warnings

    def noisy(*_args, **_kw):
        warnings.warn("something odd", UserWarning, stacklevel=1)
        logging.getLogger("equilibria.test").warning("logged too")
        raise scenarios.ConfigError("x.yaml: the real error")

    monkeypatch.setattr(scenarios, "load", noisy)
    res = here("validate", "x.yaml", cwd=work)
    assert res.returncode == 2 and "something odd" in res.stderr and "logged too" in res.stderr
    with pytest.raises(AssertionError):
        one_line(res, 2, "the real error")

    def leaves(*_args, **_kw):
        raise SystemExit("bye")

    monkeypatch.setattr(scenarios, "load", leaves)
    res = here("validate", "x.yaml", cwd=work)
    assert (res.returncode, res.stderr.strip()) == (1, "bye")
