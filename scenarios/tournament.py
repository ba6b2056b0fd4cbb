"""Tournaments between lineup entries in any game, with results in SQLite so a killed
tournament resumes without replaying finished matches.

Every match is one game played by the engine (games.engine.play_game): policies (solver
snapshots, trained actors, scripted bots) play through `PolicyAgent`, agents (scripted Werewolf
players, language models, people) are built from their spec for every seat of every match. A
match is fully determined by its seed; its id comes from the schedule, so a resumed run finds
exactly the matches that are missing. Three schedules:
- `schedule` (rotated seats): every seat assignment of distinct entries, `games_per_pairing`
  times each, as duplicate matches (every seat assignment of a pairing replays the same
  deals, which removes most of the luck from the comparison);
- `draw_schedule` (drawn seats): each seat of each match drawn from the lineup with
  replacement, for many-player games such as Werewolf;
- `fixed_schedule` (fixed seats): the same multiset of entries every match (`seats` each),
  shuffled over the seats by the match seed.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from equilibria.common.config import ConfigError
from equilibria.common.executor import LocalExecutor
from equilibria.games.core import Game
from equilibria.games.engine import GameStopped, PolicyAgent, play_game
from equilibria.scenarios.rundir import atomic_write_bytes

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, spec TEXT);
CREATE TABLE IF NOT EXISTS matches (id TEXT PRIMARY KEY, seed INTEGER NOT NULL, seconds REAL NOT NULL,
                                    finished_at REAL NOT NULL, outcome TEXT);
CREATE TABLE IF NOT EXISTS seat_returns (match_id TEXT NOT NULL REFERENCES matches(id), seat INTEGER NOT NULL,
                                         policy_id INTEGER NOT NULL REFERENCES policies(id), return REAL NOT NULL,
                                         PRIMARY KEY (match_id, seat));
CREATE TABLE IF NOT EXISTS seat_details (match_id TEXT NOT NULL REFERENCES matches(id), seat INTEGER NOT NULL,
                                         role TEXT, decisions INTEGER NOT NULL, fallbacks INTEGER NOT NULL,
                                         tokens INTEGER, model_seconds REAL, PRIMARY KEY (match_id, seat));
"""


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


def fixed_schedule(seats_per_entry: Sequence[int], games: int, seed: int) -> list[Match]:
    """`games` matches, each seating entry i in `seats_per_entry[i]` seats, shuffled by the match
    seed; match g depends on (seed, g) only."""
    pool = [i for i, k in enumerate(seats_per_entry) for _ in range(k)]
    out = []
    for g in range(games):
        mseed = int(np.random.SeedSequence([seed, g]).generate_state(1)[0])
        order = np.random.default_rng([mseed, 7]).permutation(len(pool))
        out.append(Match(f"g{g:06d}", mseed, tuple(pool[i] for i in order)))
    return out


@dataclass(frozen=True)
class AgentSpec:
    """A lineup entry that is an agent (llm_agents.agents.make_agent spec, as JSON). A fresh agent
    is built for every seat of every match, so one entry can fill several seats of a game and
    any worker process can build it (language models are cached per process)."""

    spec: str
    label: str  # the lineup's name for the entry, written into replays

    def build(self) -> Any:
        from equilibria.llm_agents.agents import make_agent

        return make_agent(json.loads(self.spec))


class SeatDetail(NamedTuple):
    role: str | None
    decisions: int
    fallbacks: int
    tokens: int
    model_seconds: float


class SeatRow(NamedTuple):
    match_id: str
    seat: int
    entry: int
    ret: float
    role: str | None
    decisions: int
    fallbacks: int
    tokens: int
    model_seconds: float


class Played(NamedTuple):
    match: Match
    returns: np.ndarray
    seconds: float
    details: list[SeatDetail]
    outcome: str | None  # the game's outcome fields beyond returns (JSON), e.g. the winning side
    record: dict | None = None  # the JSON-ready game record, when replays are kept


class ResultsDB:
    def __init__(self, path: Path, fresh_hint: str = ""):
        self.path = path
        try:
            self.conn = sqlite3.connect(path)
            self.conn.executescript(SCHEMA)
            self.conn.execute("SELECT COUNT(*) FROM matches").fetchone()
            self._add_columns()
        except sqlite3.DatabaseError as err:
            hint = f"start over with: {fresh_hint}, or " if fresh_hint else ""
            raise ConfigError(f"{path} is not a readable results database ({err}); {hint}delete it to play "
                              "every match again") from None

    def _add_columns(self) -> None:
        """Databases written before these columns existed still resume: add them, empty."""
        for table, column, kind in (("matches", "outcome", "TEXT"), ("seat_details", "tokens", "INTEGER"),
                                    ("seat_details", "model_seconds", "REAL")):
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.conn.commit()

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
                self.conn.execute("INSERT INTO matches (id, seed, seconds, finished_at, outcome) VALUES (?, ?, ?, ?, ?)",
                                  (match.id, match.seed, p.seconds, time.time(), p.outcome))
                self.conn.executemany(
                    "INSERT INTO seat_returns (match_id, seat, policy_id, return) VALUES (?, ?, ?, ?)",
                    [(match.id, s, policy_ids[i], float(r)) for s, (i, r) in enumerate(zip(match.seats, p.returns))])
                self.conn.executemany(
                    "INSERT INTO seat_details (match_id, seat, role, decisions, fallbacks, tokens, model_seconds) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", [(match.id, s, *d) for s, d in enumerate(p.details)])

    def seat_rows(self, names: Sequence[str]) -> list[SeatRow]:
        """Every stored seat, ordered by match and seat (role None where the game deals none)."""
        idx = {pid: k for k, pid in enumerate(self.register(names, [""] * len(names)))}
        rows = self.conn.execute(
            "SELECT r.match_id, r.seat, r.policy_id, r.return, d.role, COALESCE(d.decisions, 0), "
            "COALESCE(d.fallbacks, 0), COALESCE(d.tokens, 0), COALESCE(d.model_seconds, 0.0) "
            "FROM seat_returns r LEFT JOIN seat_details d "
            "ON d.match_id = r.match_id AND d.seat = r.seat ORDER BY r.match_id, r.seat")
        return [SeatRow(m, s, idx[pid], float(ret), role, dec, fb, tok, sec)
                for m, s, pid, ret, role, dec, fb, tok, sec in rows]

    def outcomes(self) -> list[dict]:
        """Each stored match's outcome as the game reported it (e.g. {"winner": ..., "rounds": ...})."""
        return [json.loads(o) for (o,) in self.conn.execute("SELECT outcome FROM matches ORDER BY id") if o]

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


def play_one(game: Game, entries: Sequence[Any], labels: Sequence[str], seed: int, max_retries: int = 2,
             keep_record: bool = False, stop: Callable[[], bool] | None = None) -> tuple[dict[str, Any], list[SeatDetail]]:
    """One match through the engine: agent specs are built, policies wrapped as agents."""
    agents = [e.build() if isinstance(e, AgentSpec) else PolicyAgent(e, label) for e, label in zip(entries, labels)]
    record = play_game(game, agents, seed, max_retries, labels=list(labels), stop=stop, keep_turns=keep_record)
    roles = [p.get("role") for p in record["players"]]
    details = [SeatDetail(roles[s], int(record["decisions"][s]), int(record["seat_fallbacks"][s]),
                          int(record["usage"][s]["completion_tokens"]), float(record["usage"][s]["model_seconds"]))
               for s in range(len(agents))]
    return record, details


def play_chunk(game: Game, lineup: Sequence[Any], labels: Sequence[str], matches: Sequence[Match],
               max_retries: int = 2, keep_records: bool = False, stop: Callable[[], bool] | None = None) -> list[Played]:
    """Play `matches` in order; a pure function of its arguments (the unit of work of every backend).
    `stop` (this process only) ends the chunk between decisions; the finished matches are returned."""
    out = []
    for m in matches:
        if stop is not None and stop():
            break
        t0 = time.perf_counter()
        try:
            record, details = play_one(game, [lineup[i] for i in m.seats], [labels[i] for i in m.seats], m.seed,
                                       max_retries, keep_records, stop)
        except GameStopped:
            break
        extra = {k: v for k, v in record["outcome"].items() if k != "returns"}
        out.append(Played(m, np.asarray(record["outcome"]["returns"], dtype=np.float64), time.perf_counter() - t0,
                          details, json.dumps(extra) if extra else None, record if keep_records else None))
    return out


def iter_matches(game: Game, lineup: Sequence[Any], labels: Sequence[str], matches: Sequence[Match],
                 db: ResultsDB, policy_ids: Sequence[int], executor: Any = None, chunk: int = 200,
                 stop: Any = None, max_retries: int = 2, replay_dir: Path | None = None) -> Iterator[int]:
    """Play every match not yet in the database, `chunk` matches per job, store each finished
    chunk in one transaction as it arrives (any order), and yield the number stored so far.
    Agent games write a JSON replay per match into `replay_dir` when given (before the chunk is
    stored, so a match replayed after a kill overwrites its replay with an identical one)."""
    executor = executor or LocalExecutor()
    done = db.finished()
    todo = [m for m in matches if m.id not in done]
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    shared_game, shared_lineup = executor.share(game), executor.share(list(lineup))
    # a local chunk can stop between decisions; a remote one (Ray) finishes its chunk
    local_stop = stop if executor.name == "local" else None
    jobs = [(shared_game, shared_lineup, list(labels), c, max_retries, replay_dir is not None, local_stop)
            for c in chunks]
    stored = len(done)
    for _, results in executor.run_unordered(play_chunk, jobs, stop):
        if replay_dir is not None:
            for p in results:
                if p.record is not None:
                    atomic_write_bytes(replay_dir / f"match_{p.match.id}.json", json.dumps(p.record, indent=1).encode())
        db.record(results, policy_ids)
        stored += len(results)
        yield stored


def run_matches(game: Game, lineup: Sequence[Any], labels: Sequence[str], matches: Sequence[Match], db: ResultsDB,
                policy_ids: Sequence[int], executor: Any = None, chunk: int = 200, stop: Any = None,
                max_retries: int = 2, replay_dir: Path | None = None) -> int:
    """Play and store every missing match (iter_matches to the end); returns how many were played."""
    before = len(db.finished())
    *_, stored = before, *iter_matches(game, lineup, labels, matches, db, policy_ids, executor, chunk, stop,
                                       max_retries, replay_dir)
    return stored - before
