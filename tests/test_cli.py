import os
import subprocess
import sys


def test_list_games_prints_every_game():
    out = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "list", "games"], capture_output=True, text=True,
                         check=True).stdout
    for name in ("kuhn_poker", "leduc_poker", "goofspiel", "cooperative_navigation", "rock_paper_scissors"):
        assert name in out
    assert "zero_sum" in out and "simultaneous" in out


def test_every_list_command_prints_a_table():
    for what, expected in (("solvers", ["cfr+", "inpo", "online-ipo", "preference games"]),
                           ("scenarios", ["quickstart", "tournament-werewolf"]), ("kinds", ["solve", "play"])):
        res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "list", what], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "250"})
        assert res.returncode == 0, res.stderr
        for name in expected:
            assert name in res.stdout, (what, name)


def test_the_openspiel_adapter_is_listed_as_itself():
    out = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "list", "games"], capture_output=True, text=True,
                         check=True, env={**os.environ, "COLUMNS": "250"}).stdout
    row = next(line for line in out.splitlines() if "openspiel" in line)
    assert "any" in row and "zero_sum" not in row


def test_the_cli_starts_without_torch_and_every_kind_module_is_a_builtin_kind():
    """Kinds load when first asked for: `equilibria --help` and a solve scenario import no torch."""
    import pkgutil

    from equilibria.scenarios import kinds
    from equilibria.scenarios.registry import BUILTIN_KINDS, registered_kinds

    assert sorted(m.name for m in pkgutil.iter_modules(kinds.__path__)) == sorted(BUILTIN_KINDS)
    assert sorted(registered_kinds()) == sorted(BUILTIN_KINDS)
    probe = ("import sys\nfrom equilibria.scenarios.cli import main\nmain(['validate', 'quickstart'])\n"
             "print('torch' in sys.modules, 'equilibria.scenarios.kinds.train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["False", "False"], out


def test_a_kind_cannot_take_a_built_in_kinds_name_before_it_loads():
    import pytest

    from equilibria.scenarios.registry import kind, register_kind

    with pytest.raises(ValueError, match="'train' is registered twice"):
        register_kind("train", dict, prepare=lambda s: s, description="impostor")(lambda plan, ctx: {})
    assert kind("train").description != "impostor"


def test_bench_lists_the_benchmarks_and_runs_one_or_refuses_in_one_line():
    run = [sys.executable, "-m", "equilibria.scenarios.cli", "bench"]
    env = {**os.environ, "COLUMNS": "250"}
    listed = subprocess.run(run, capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    for name in ("solvers", "mccfr", "marl", "pogema", "follower_authors", "merge"):
        assert f"│ {name} " in listed.stdout, name
    assert "peer_venv" not in listed.stdout and "_worker" not in listed.stdout
    for bad in ("nosuch", "peer_venv"):
        res = subprocess.run([*run, bad], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"bench {bad}: no such benchmark" in res.stderr
    helped = subprocess.run([*run, "pogema", "--help"], capture_output=True, text=True)  # the script's own help
    assert helped.returncode == 0 and "--diff" in helped.stdout, helped.stderr


def test_bench_runs_only_listed_names_and_takes_solver_options_on_either_side():
    run = [sys.executable, "-m", "equilibria.scenarios.cli", "bench"]
    for bad in ("../README", "/tmp/x", "../benchmarks/peer_venv"):
        res = subprocess.run([*run, bad], capture_output=True, text=True)
        assert res.returncode == 2 and "no such benchmark" in res.stderr, (bad, res.stderr)
    res = subprocess.run([*run, "--quick", "pogema"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "go after its name" in res.stderr
