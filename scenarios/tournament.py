"""Tournaments between policies in any game, with results in SQLite so a killed tournament
resumes without replaying finished matches.

A match is one game between a lineup of policies in fixed seats, fully determined by its
seed; its id is derived from (pairing, game index, seat rotation), so a resumed run finds
exactly the matches that are missing. Every seat assignment of a pairing is played (seats
rotate), `games_per_pairing` times each, as duplicate matches: every seat assignment of a
pairing replays the same deals, which removes most of the luck from the comparison.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from games.core import CHANCE, SIMULTANEOUS, Game, Policy, sample_action, sample_chance

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, spec TEXT);
CREATE TABLE IF NOT EXISTS matches (id TEXT PRIMARY KEY, seed INTEGER NOT NULL, seconds REAL NOT NULL,
                                    finished_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seat_returns (match_id TEXT NOT NULL REFERENCES matches(id), seat INTEGER NOT NULL,
                                         policy_id INTEGER NOT NULL REFERENCES policies(id), return REAL NOT NULL,
                                         PRIMARY KEY (match_id, seat));
"""


def play_match(game: Game, seats: Sequence[Policy], seed: int, max_steps: int = 100_000) -> np.ndarray:
    """Play one game with `seats[p]` acting for player p. Chance and the policies draw from two
    separate streams of `seed`, so the same seed deals the same cards whoever sits where."""
    chance_rng = np.random.default_rng([seed, 0])
    rng = np.random.default_rng([seed, 1])
    state = game.new_initial_state(seed=seed) if game.info.sampled_chance else game.new_initial_state()
    for _ in range(max_steps):
        if state.is_terminal():
            return np.asarray(state.returns(), dtype=np.float64)
        cur = state.current_player()
        if cur == CHANCE:
            state.apply_action(sample_chance(state, chance_rng))
        elif cur == SIMULTANEOUS:
            state.apply_actions([sample_action(seats[p].action_probabilities(state, p), rng)
                                 for p in range(game.num_players)])
        else:
            state.apply_action(sample_action(seats[cur].action_probabilities(state, cur), rng))
    raise RuntimeError(f"match did not end within {max_steps} steps")


@dataclass(frozen=True)
class Match:
    id: str
    seed: int
    seats: tuple[int, ...]  # lineup index in each seat


def schedule(num_policies: int, num_players: int, games_per_pairing: int, seed: int) -> list[Match]:
    """Round robin: every ordered seat assignment of distinct policies, `games_per_pairing` each."""
    if num_policies < num_players:
        raise ValueError(f"a {num_players}-player tournament needs at least {num_players} policies")
    out = []
    for seats in itertools.permutations(range(num_policies), num_players):
        for g in range(games_per_pairing):
            mid = "-".join(map(str, seats)) + f"#{g}"
            # independent of the order matches run in, and shared by every seat order of the
            # pairing (duplicate format: the same deals with the seats swapped)
            mseed = int(np.random.SeedSequence([seed, g, *sorted(seats)]).generate_state(1)[0])
            out.append(Match(mid, mseed, seats))
    return out


class ResultsDB:
    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)

    def register(self, names: Sequence[str], specs: Sequence[str]) -> list[int]:
        ids = []
        for name, spec in zip(names, specs):
            self.conn.execute("INSERT OR IGNORE INTO policies (name, spec) VALUES (?, ?)", (name, spec))
            ids.append(self.conn.execute("SELECT id FROM policies WHERE name = ?", (name,)).fetchone()[0])
        self.conn.commit()
        return ids

    def finished(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM matches")}

    def record(self, played: Sequence[tuple[Match, np.ndarray, float]], policy_ids: Sequence[int]) -> None:
        """Store finished matches in one transaction: all of them or none, so a kill never
        half-counts a match and a resumed run replays exactly the missing ones."""
        with self.conn:
            for match, returns, seconds in played:
                self.conn.execute("INSERT INTO matches (id, seed, seconds, finished_at) VALUES (?, ?, ?, ?)",
                                  (match.id, match.seed, seconds, time.time()))
                self.conn.executemany(
                    "INSERT INTO seat_returns (match_id, seat, policy_id, return) VALUES (?, ?, ?, ?)",
                    [(match.id, s, policy_ids[i], float(r)) for s, (i, r) in enumerate(zip(match.seats, returns))])

    def results(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, float]]]:
        """(payoff[i, j] = mean return of i against j, wins[i, j], pairwise results for Elo) for 2 players."""
        idx = {pid: k for k, pid in enumerate(self.register(names, [""] * len(names)))}
        n = len(names)
        total, count, wins = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
        pairs = []
        rows = self.conn.execute(
            "SELECT a.match_id, a.policy_id, a.return, b.policy_id, b.return FROM seat_returns a "
            "JOIN seat_returns b ON a.match_id = b.match_id AND a.seat = 0 AND b.seat = 1 ORDER BY a.match_id")
        for _, pa, ra, pb, rb in rows:
            i, j = idx[pa], idx[pb]
            for x, y, rx in ((i, j, ra), (j, i, rb)):
                total[x, y] += rx
                count[x, y] += 1
            score = 1.0 if ra > rb else (0.0 if ra < rb else 0.5)
            wins[i, j] += score
            wins[j, i] += 1.0 - score
            pairs.append((i, j, score))
        payoff = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        return payoff, wins, pairs

    def close(self) -> None:
        self.conn.close()


def play_chunk(game: Game, lineup: Sequence[Policy], matches: Sequence[Match]) -> list[tuple[Match, np.ndarray, float]]:
    """Play `matches` in order; a pure function of its arguments (the unit of work of every backend)."""
    out = []
    for m in matches:
        t0 = time.perf_counter()
        returns = play_match(game, [lineup[i] for i in m.seats], m.seed)
        out.append((m, returns, time.perf_counter() - t0))
    return out


def run_matches(game: Game, lineup: Sequence[Policy], matches: Sequence[Match], db: ResultsDB,
                policy_ids: Sequence[int], executor: Any = None, chunk: int = 200, stop: Any = None,
                on_stored: Any = None) -> int:
    """Play every match of `matches` not yet in the database, `chunk` matches per job, and store
    each finished chunk in one transaction as it arrives (any order). Returns how many were played.

    `executor` is a scenarios.executor backend (default: this process); `on_stored(n)` is
    called with the number of matches stored after each chunk."""
    from scenarios.executor import LocalExecutor

    executor = executor or LocalExecutor()
    done = db.finished()
    todo = [m for m in matches if m.id not in done]
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    shared_game, shared_lineup = executor.share(game), executor.share(list(lineup))
    played = 0
    for _, results in executor.run_unordered(play_chunk, [(shared_game, shared_lineup, c) for c in chunks], stop):
        db.record(results, policy_ids)
        played += len(results)
        if on_stored is not None:
            on_stored(len(done) + played)
    return played
