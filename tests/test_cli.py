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
