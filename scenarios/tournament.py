"""Tournaments between policies in any game, with results in SQLite so a killed tournament
resumes without replaying finished matches.

A match is one game between lineup entries in fixed seats, fully determined by its seed; its
id is derived from the schedule, so a resumed run finds exactly the matches that are missing.
Two schedules:
- `schedule` (rotated seats): every seat assignment of distinct entries, `games_per_pairing`
  times each, as duplicate matches: every seat assignment of a pairing replays the same
  deals, which removes most of the luck from the comparison.
- `draw_schedule` (drawn seats): each match fills every seat with an entry drawn uniformly
  (with replacement), for many-player games such as Werewolf where a lineup of a few agent
  types fills seven seats.

Entries are policies (`Policy.action_probabilities`, played by `play_match`) or, for
Werewolf, agents of the text-game protocol (`AgentSpec`, played by llm_agents.protocol, with
validation, retries and fallbacks recorded per seat).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from equilibria.common.config import ConfigError
from equilibria.games.core import CHANCE, SIMULTANEOUS, Game, Policy, sample_action, sample_chance

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, spec TEXT);
CREATE TABLE IF NOT EXISTS matches (id TEXT PRIMARY KEY, seed INTEGER NOT NULL, seconds REAL NOT NULL,
                                    finished_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seat_returns (match_id TEXT NOT NULL REFERENCES matches(id), seat INTEGER NOT NULL,
                                         policy_id INTEGER NOT NULL REFERENCES policies(id), return REAL NOT NULL,
                                         PRIMARY KEY (match_id, seat));
CREATE TABLE IF NOT EXISTS seat_details (match_id TEXT NOT NULL REFERENCES matches(id), seat INTEGER NOT NULL,
                                         role TEXT, decisions INTEGER NOT NULL, fallbacks INTEGER NOT NULL,
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


def draw_schedule(num_entries: int, num_players: int, games: int, seed: int) -> list[Match]:
    """`games` matches, each seat filled by an entry drawn uniformly with replacement. Match g's
    seats and seed depend on (seed, g) only, so a resumed or extended run draws the same ones."""
    out = []
    for g in range(games):
        ss = np.random.SeedSequence([seed, g])
        seats = tuple(int(x) for x in np.random.default_rng(ss.spawn(1)[0]).integers(num_entries, size=num_players))
        out.append(Match(f"g{g:06d}", int(ss.generate_state(1)[0]), seats))
    return out


@dataclass(frozen=True)
class AgentSpec:
    """A lineup entry that is a text-game agent (llm_agents.werewolf_agents.make_agent spec, as
    JSON). A fresh agent is built for every seat of every match, so one entry can fill several
    seats of a game and any worker process can build it (language models are cached per process)."""

    spec: str
    label: str  # the lineup's name for the entry, written into replays

    def build(self) -> Any:
        from equilibria.llm_agents.werewolf_agents import make_agent

        return make_agent(json.loads(self.spec))


class SeatDetail(NamedTuple):
    role: str | None
    decisions: int
    fallbacks: int


class Played(NamedTuple):
    match: Match
    returns: np.ndarray
    seconds: float
    details: list[SeatDetail] | None = None  # agent games: each seat's role, decisions and fallbacks
    record: dict | None = None  # agent games with replays kept: the JSON-ready game record


class ResultsDB:
    def __init__(self, path: Path, fresh_hint: str = ""):
        self.path = path
        try:
            self.conn = sqlite3.connect(path)
            self.conn.executescript(SCHEMA)
            self.conn.execute("SELECT COUNT(*) FROM matches").fetchone()
        except sqlite3.DatabaseError as err:
            hint = f"start over with: {fresh_hint}, or " if fresh_hint else ""
            raise ConfigError(f"{path} is not a readable results database ({err}); {hint}delete it to play "
                              "every match again") from None

    def register(self, names: Sequence[str], specs: Sequence[str]) -> list[int]:
        ids = []
        for name, spec in zip(names, specs):
            self.conn.execute("INSERT OR IGNORE INTO policies (name, spec) VALUES (?, ?)", (name, spec))
            ids.append(self.conn.execute("SELECT id FROM policies WHERE name = ?", (name,)).fetchone()[0])
        self.conn.commit()
        return ids

    def finished(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM matches")}

    def record(self, played: Sequence[Played], policy_ids: Sequence[int]) -> None:
        """Store finished matches in one transaction: all of them or none, so a kill never
        half-counts a match and a resumed run replays exactly the missing ones."""
        with self.conn:
            for p in played:
                match = p.match
                self.conn.execute("INSERT INTO matches (id, seed, seconds, finished_at) VALUES (?, ?, ?, ?)",
                                  (match.id, match.seed, p.seconds, time.time()))
                self.conn.executemany(
                    "INSERT INTO seat_returns (match_id, seat, policy_id, return) VALUES (?, ?, ?, ?)",
                    [(match.id, s, policy_ids[i], float(r)) for s, (i, r) in enumerate(zip(match.seats, p.returns))])
                if p.details is not None:
                    self.conn.executemany(
                        "INSERT INTO seat_details (match_id, seat, role, decisions, fallbacks) VALUES (?, ?, ?, ?, ?)",
                        [(match.id, s, *d) for s, d in enumerate(p.details)])

    def seat_rows(self, names: Sequence[str]) -> list[tuple[str, int, int, float, str | None, int, int]]:
        """Every stored seat as (match id, seat, entry index, return, role, decisions, fallbacks),
        ordered by match and seat; role is None and the counts 0 for policy games."""
        idx = {pid: k for k, pid in enumerate(self.register(names, [""] * len(names)))}
        rows = self.conn.execute(
            "SELECT r.match_id, r.seat, r.policy_id, r.return, d.role, COALESCE(d.decisions, 0), "
            "COALESCE(d.fallbacks, 0) FROM seat_returns r LEFT JOIN seat_details d "
            "ON d.match_id = r.match_id AND d.seat = r.seat ORDER BY r.match_id, r.seat")
        return [(m, s, idx[pid], float(ret), role, dec, fb) for m, s, pid, ret, role, dec, fb in rows]

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


def play_agent_match(game: Game, seats: Sequence[AgentSpec], seed: int, max_retries: int = 2,
                     keep_record: bool = False, stop: Callable[[], bool] | None = None
                     ) -> tuple[np.ndarray, list[SeatDetail], dict | None]:
    """One game between text-game agents through the validating engine (llm_agents.protocol)."""
    from equilibria.llm_agents.protocol import play_game

    record = play_game(game, [entry.build() for entry in seats], seed, max_retries, labels=[e.label for e in seats],
                       stop=stop)
    details = [SeatDetail(p["role"], 0, 0) for p in record["players"]]
    for t in record["turns"]:
        d = details[t["seat"]]
        details[t["seat"]] = d._replace(decisions=d.decisions + 1, fallbacks=d.fallbacks + int(t["fallback"]))
    return np.asarray(record["outcome"]["returns"], dtype=np.float64), details, record if keep_record else None


def play_chunk(game: Game, lineup: Sequence[Any], matches: Sequence[Match], max_retries: int = 2,
               keep_records: bool = False, stop: Callable[[], bool] | None = None) -> list[Played]:
    """Play `matches` in order; a pure function of its arguments (the unit of work of every backend).
    `stop` (this process only) ends the chunk between decisions; the finished matches are returned."""
    from equilibria.llm_agents.protocol import GameStopped

    out = []
    for m in matches:
        if stop is not None and stop():
            break
        seated = [lineup[i] for i in m.seats]
        t0 = time.perf_counter()
        if isinstance(seated[0], AgentSpec):
            try:
                returns, details, record = play_agent_match(game, seated, m.seed, max_retries, keep_records, stop)
            except GameStopped:
                break
            out.append(Played(m, returns, time.perf_counter() - t0, details, record))
        else:
            returns = play_match(game, seated, m.seed)
            out.append(Played(m, returns, time.perf_counter() - t0))
    return out


def run_matches(game: Game, lineup: Sequence[Any], matches: Sequence[Match], db: ResultsDB,
                policy_ids: Sequence[int], executor: Any = None, chunk: int = 200, stop: Any = None,
                on_stored: Any = None, max_retries: int = 2, replay_dir: Path | None = None) -> int:
    """Play every match of `matches` not yet in the database, `chunk` matches per job, and store
    each finished chunk in one transaction as it arrives (any order). Returns how many were played.

    `executor` is a scenarios.executor backend (default: this process); `on_stored(n)` is
    called with the number of matches stored after each chunk. Agent games write a JSON replay
    per match into `replay_dir` when given (before the chunk is stored, so a match replayed
    after a kill overwrites its replay with an identical one)."""
    from equilibria.scenarios.core import atomic_write_bytes
    from equilibria.scenarios.executor import LocalExecutor

    executor = executor or LocalExecutor()
    done = db.finished()
    todo = [m for m in matches if m.id not in done]
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    shared_game, shared_lineup = executor.share(game), executor.share(list(lineup))
    # a local chunk can stop between decisions; a remote one (Ray) finishes its chunk
    local_stop = stop if executor.name == "local" else None
    jobs = [(shared_game, shared_lineup, c, max_retries, replay_dir is not None, local_stop) for c in chunks]
    played = 0
    for _, results in executor.run_unordered(play_chunk, jobs, stop):
        if replay_dir is not None:
            for p in results:
                if p.record is not None:
                    atomic_write_bytes(replay_dir / f"match_{p.match.id}.json", json.dumps(p.record, indent=1).encode())
        db.record(results, policy_ids)
        played += len(results)
        if on_stored is not None:
            on_stored(len(done) + played)
    return played
