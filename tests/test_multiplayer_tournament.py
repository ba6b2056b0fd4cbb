"""Tournaments beyond two players: drawn seats, Werewolf agents as lineup entries, per-seat
ratings whose role adjustment removes the luck of the deal."""

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from equilibria import scenarios
from equilibria.scenarios.tournament import draw_schedule
from equilibria.solvers.ratings import seat_ratings


def test_draw_schedule_is_seeded_and_extends_without_redrawing():
    ms = draw_schedule(3, 7, 40, seed=5)
    assert len({m.id for m in ms}) == 40 and all(len(m.seats) == 7 for m in ms)
    assert {s for m in ms for s in m.seats} == {0, 1, 2}
    assert draw_schedule(3, 7, 80, seed=5)[:40] == ms  # a longer run plays the same first matches
    assert draw_schedule(3, 7, 40, seed=6) != ms


def _team_game(rng, n_matches, deal_bias, skill):
    """Synthetic team game, 4 seats: seat roles ('a' x1, 'b' x3), team a wins with probability
    0.7 + skill of its player - mean skill of team b. Entry 0 is dealt role a with probability
    deal_bias (instead of 1/4 per seat)."""
    entries, returns, roles = [], [], []
    for _ in range(n_matches):
        seats = rng.integers(2, size=4)
        a_seat = int(np.flatnonzero(seats == 0)[0]) if (seats == 0).any() and rng.random() < deal_bias \
            else int(rng.integers(4))
        team_b = [s for s in range(4) if s != a_seat]
        p = 0.7 + skill[seats[a_seat]] - np.mean([skill[seats[s]] for s in team_b])
        a_wins = rng.random() < p
        for s in range(4):
            entries.append(int(seats[s]))
            roles.append("a" if s == a_seat else "b")
            returns.append(1.0 if (s == a_seat) == a_wins else -1.0)
    return entries, returns, roles


def test_role_adjusted_win_rate_cancels_the_deal_and_keeps_skill():
    rng = np.random.default_rng(0)
    # equal skill, but entry 0 is dealt the strong role far more often: raw win rates differ,
    # role-adjusted ones do not
    e, r, ro = _team_game(rng, 4000, deal_bias=0.9, skill=[0.0, 0.0])
    sr = seat_ratings(e, r, 4, 2, ro, seed=0)
    assert sr.win_rate[0] - sr.win_rate[1] > 0.1
    assert abs(sr.role_adjusted[0] - sr.role_adjusted[1]) < 0.03
    assert sr.roles == ["a", "b"] and sr.seats.sum() == 16000
    for k in range(2):  # the intervals contain the estimate
        assert sr.role_adjusted_interval[0, k] < sr.role_adjusted[k] < sr.role_adjusted_interval[1, k]
    # a real skill difference survives the adjustment, with separated intervals
    e, r, ro = _team_game(rng, 4000, deal_bias=0.25, skill=[0.1, -0.1])
    sr = seat_ratings(e, r, 4, 2, ro, seed=0)
    assert sr.role_adjusted[0] - sr.role_adjusted[1] > 0.05
    assert sr.role_adjusted_interval[0, 0] > sr.role_adjusted_interval[1, 1]


def test_seat_ratings_exact_on_a_tiny_table():
    # two 3-seat matches: in the first entry 0 wins alone, in the second all tie (nobody wins)
    sr = seat_ratings([0, 1, 1, 0, 1, 1], [2, -1, -1, 0, 0, 0], 3, 2, bootstrap=10)
    np.testing.assert_allclose(sr.mean_return, [1.0, -0.5])
    np.testing.assert_allclose(sr.win_rate, [0.5, 0.0])
    np.testing.assert_allclose(sr.pairwise_wins, [[0, 2], [0, 0]])
    assert sr.roles == [] and np.isnan(sr.role_adjusted).all()
    with pytest.raises(ValueError, match="3 seat rows per match"):
        seat_ratings([0, 1], [1.0, -1.0], 3, 2)


def test_three_player_kuhn_tournament_has_the_closed_form_returns(tmp_path):
    # always-bet against two always-pass players: whoever is to act folds to the bet, so the
    # bettor wins both antes (+2) in every seat and the others lose theirs (-1)
    s = scenarios.load("tournament-kuhn", [
        "game=kuhn_poker(players=3)", "seating=rotate", "games_per_pairing=5",
        "lineup=[{name: bet, scripted: last_action}, {name: pass-a, scripted: first_action}, "
        "{name: pass-b, scripted: first_action}]"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["matches"] == 6 * 5 and result.metrics["top"] == "bet"
    assert result.metrics["mean_return_bet"] == 2.0
    assert result.metrics["mean_return_pass-a"] == result.metrics["mean_return_pass-b"] == -1.0
    assert "mean return" in (result.run_dir / "ranking.md").read_text()


def test_werewolf_agents_in_a_tournament(tmp_path, extend_run):
    result = scenarios.run(scenarios.load("tournament-werewolf", ["games=500"]), out=tmp_path / "a", quiet=True)
    m = result.metrics
    assert m["matches"] == 500 and m["ranking"].split(",")[0] == "rule"
    # at 500 matches the interval half-widths are ~0.015: rule-based play beats random play
    assert m["role_adjusted_win_rate_rule"] - m["role_adjusted_win_rate_random"] > 0.03
    conn = sqlite3.connect(result.run_dir / "results.sqlite")
    roles = conn.execute("SELECT role, COUNT(*) FROM seat_details GROUP BY role").fetchall()
    assert dict(roles) == {"werewolf": 1000, "seer": 500, "doctor": 500, "villager": 1500}
    assert conn.execute("SELECT SUM(decisions), SUM(fallbacks) FROM seat_details").fetchone()[1] == 0
    ranking = (result.run_dir / "ranking.md").read_text()
    assert "role-adjusted win rate" in ranking and "as werewolf" in ranking
    assert (result.run_dir / "plots" / "ratings.png").exists()
    # a killed run resumes with the same draws and ends with the same ratings
    short = scenarios.run(scenarios.load("tournament-werewolf", ["games=200"]), out=tmp_path / "b", quiet=True)
    extend_run(short.run_dir, "games", value=500)
    assert scenarios.run(None, resume=short.run_dir, quiet=True).metrics == m


def test_werewolf_tournament_replays_name_the_lineup_entries(tmp_path):
    s = scenarios.load("tournament-werewolf", ["games=6", "replays=all"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    files = sorted((result.run_dir / "replays").glob("match_*.json"))
    assert len(files) == 6
    res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "replay", str(files[0])], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "Night 1" in res.stdout
    assert any(name in res.stdout for name in ("cautious", "random", "rule"))


@pytest.mark.parametrize("override, message", [
    (["game=kuhn_poker", "lineup=[{name: a, agent: rule}, {name: b, scripted: random}]"],
     "lineup.0.agent: agent type 'rule' plays werewolf, not kuhn_poker"),
    (["lineup=[{name: a, agent: {type: rule, bogus: 1}}, {name: b, agent: random}]"], "lineup.0.agent: "),
    (["lineup=[{name: a, agent: robot}, {name: b, agent: random}]"], "unknown agent type 'robot'"),
    (["lineup=[{name: a, agent: {type: rule, no_evidence_vote: maybe}}, {name: b, agent: random}]"],
     "no_evidence_vote must be 'random' or 'abstain'"),
    (["seating=rotate"], "seating: rotated seats need at least 7 distinct entries"),
    (["seating=fixed"], "lineup: the lineup fills 3 seats but the game has 7 players"),
])
def test_bad_werewolf_tournaments_are_refused(override, message):
    with pytest.raises(scenarios.ConfigError, match=message):
        scenarios.validate(scenarios.load("tournament-werewolf", override))


def test_bad_lineup_from_the_command_line_exits_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "run", "tournament-werewolf", "--out", str(tmp_path),
                          "--set", "lineup=[{name: a, agent: robot}, {name: b, agent: rule}]"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "lineup.0.agent" in res.stderr


def test_policies_and_agents_share_one_match_runner(tmp_path):
    """A scripted policy sits at Werewolf beside agents, and an agent plays Kuhn beside a
    solver snapshot: every entry plays through the same engine."""
    ww = scenarios.run(scenarios.load("tournament-werewolf", [
        "games=20", "lineup=[{name: rule, agent: rule}, {name: bot, scripted: random}]"]), out=tmp_path / "w", quiet=True)
    assert ww.metrics["matches"] == 20 and ww.metrics["fallback_rate_bot"] == 0.0
    kuhn = scenarios.run(scenarios.load("tournament-kuhn", [
        "games_per_pairing=20", "lineup=[{name: cfr, solver: cfr, iterations: 50}, {name: rnd, agent: random}]"]),
        out=tmp_path / "k", quiet=True)
    assert kuhn.metrics["matches"] == 40 and kuhn.metrics["top"] == "cfr"
