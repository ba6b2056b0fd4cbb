import subprocess
import sys


def test_list_games_prints_every_game():
    out = subprocess.run([sys.executable, "-m", "scenarios.cli", "list", "games"], capture_output=True, text=True,
                         check=True).stdout
    for name in ("kuhn_poker", "leduc_poker", "goofspiel", "cooperative_navigation", "rock_paper_scissors"):
        assert name in out
    assert "zero_sum" in out and "simultaneous" in out
