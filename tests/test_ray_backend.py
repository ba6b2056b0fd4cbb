"""The Ray backend: same results as local for the same seeds, and a worker killed mid-match is
retried with nothing lost or counted twice."""

import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from needs import need

from equilibria import games, scenarios
from equilibria.common.executor import RayExecutor
from equilibria.scenarios.tournament import ResultsDB, run_matches, schedule

ray = need("ray", "rllib")
pytestmark = pytest.mark.xdist_group("ray")  # one Ray cluster at a time under pytest-xdist


@pytest.fixture(scope="module")
def executor():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ex = RayExecutor()
    yield ex
    ray.shutdown()


class SlowPolicy:
    """Uniform random, a few milliseconds per decision, so a chunk is still running when the worker is killed."""

    def action_probabilities(self, state, player=None):
        time.sleep(0.004)
        legal = state.legal_actions(player)
        return {a: 1.0 / len(legal) for a in legal}


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces


def _task_pids(name: str) -> list[int]:
    """This test's Ray workers running task `name` (descendants of this process: the cluster that
    ray.init started here, not another session's)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if not (d / "cmdline").read_bytes().startswith(f"ray::{name}".encode()):
                    continue
                pid = int(d.name)
                while pid > 1 and pid != os.getpid():
                    pid = _parent(pid)
                if pid == os.getpid():
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _payoffs(path, names, game, lineup, matches, executor=None):
    db = ResultsDB(path)
    ids = db.register(names, [""] * len(names))
    played = run_matches(game, lineup, names, matches, db, ids, executor, chunk=25)
    payoff = db.results(names)[0]
    db.close()
    return played, payoff


def test_ray_tournament_matches_local(tmp_path, executor):
    s = scenarios.load("tournament-kuhn", ["games_per_pairing=40", "batch=100"])
    local = scenarios.run(s, out=tmp_path / "local", quiet=True)
    s = scenarios.load("tournament-kuhn", ["games_per_pairing=40", "batch=100", "backend=ray"])
    remote = scenarios.run(s, out=tmp_path / "ray", quiet=True)
    assert remote.metrics == local.metrics
    a = sqlite3.connect(local.run_dir / "results.sqlite").execute(
        "SELECT match_id, seat, return FROM seat_returns ORDER BY match_id, seat").fetchall()
    b = sqlite3.connect(remote.run_dir / "results.sqlite").execute(
        "SELECT match_id, seat, return FROM seat_returns ORDER BY match_id, seat").fetchall()
    assert a == b and len(a) == 2 * 30 * 40


def test_ray_werewolf_tournament_matches_local(tmp_path, executor):
    # agents are built inside the workers from their specs; the draws, deals and agents' seeds
    # are functions of the match seed, so every seat's role and result are the same
    over = ["games=60", "batch=20"]
    local = scenarios.run(scenarios.load("tournament-werewolf", over), out=tmp_path / "local", quiet=True)
    remote = scenarios.run(scenarios.load("tournament-werewolf", over + ["backend=ray"]), out=tmp_path / "ray",
                           quiet=True)
    assert remote.metrics == local.metrics
    query = ("SELECT r.match_id, r.seat, r.policy_id, r.return, d.role, d.decisions FROM seat_returns r "
             "JOIN seat_details d USING (match_id, seat) ORDER BY r.match_id, r.seat")
    a = sqlite3.connect(local.run_dir / "results.sqlite").execute(query).fetchall()
    assert a == sqlite3.connect(remote.run_dir / "results.sqlite").execute(query).fetchall() and len(a) == 7 * 60


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray workers through /proc")
def test_killed_worker_is_retried_without_loss_or_double_counting(tmp_path, executor):
    game = games.load("kuhn_poker")
    lineup = [SlowPolicy(), games.UniformRandomPolicy(), SlowPolicy()]
    names = ["slow-a", "uniform", "slow-b"]
    matches = schedule(3, 2, 20, seed=3)  # 120 matches, 5 chunks of 25 on two workers
    killed: list[int] = []

    def kill_one_worker_mid_chunk() -> None:
        deadline = time.time() + 60
        while not killed and time.time() < deadline:
            pids = _task_pids("play_chunk")
            if pids:
                time.sleep(0.05)  # well inside the chunk (25 matches take ~0.2 s)
                try:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                except ProcessLookupError:
                    continue
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_worker_mid_chunk)
    killer.start()
    played, payoff = _payoffs(tmp_path / "ray.sqlite", names, game, lineup, matches, executor)
    killer.join()
    assert killed, "the test did not manage to kill a worker mid-chunk"
    assert played == len(matches)
    conn = sqlite3.connect(tmp_path / "ray.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0] == len(matches)
    assert conn.execute("SELECT COUNT(*) FROM seat_returns").fetchone()[0] == 2 * len(matches)
    # the retried chunk replays the same seeds: identical to an undisturbed local run
    _, local = _payoffs(tmp_path / "local.sqlite", names, game, lineup, matches)
    np.testing.assert_array_equal(payoff, local)
