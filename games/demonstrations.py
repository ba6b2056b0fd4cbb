"""Demonstrations: episodes of any policy on any Markov game, recorded to Parquet and loaded lazily.

    rec = record(game, policy, episodes=100, out=Path("demos/nav"), seed=0)
    demos = Demonstrations("demos/nav")        # reads meta.json, nothing else
    ep = demos.episode(3)                      # numpy arrays shaped like the simulator's
    for batch in demos.steps("agents", ["obs", "action", "reward"]): ...   # one episode at a time
    replay(demos.load_game(), ep)              # the recorded actions again: same observations, rewards

Learners from demonstrations (imitation, IQ-Learn, MAMQL) and replays read these datasets.

Why Parquet through pyarrow: every data tool reads it without equilibria (pandas, polars,
DuckDB, Spark, R's arrow), it is columnar (a learner that wants observations and actions reads
only those columns) and splits into row groups that load on their own, and it needs no service
running. Hugging Face `datasets` is Arrow underneath but a much heavier dependency; a dataset
written here loads there too (`datasets.load_dataset("parquet", data_files=...)`).

A dataset is a directory:

    meta.json               {"format": "equilibria.demonstrations", "version": 1, "game": a registry
                            string, "groups" with their spaces, "state_shape", "seats", "policy",
                            "seed", "episodes", "steps", "created"}
    episodes.parquet        one row per episode: episode, seed, length, terminated, truncated,
                            returns (one per seat, in seat order)
    steps.parquet           one row per (episode, t), t = 0..length: global_state (flattened,
                            float32), terminated, truncated
    agents_<group>.parquet  one row per (episode, t, slot): active, action, reward, action_mask
                            (bool per action), the observation flattened to float32: `obs`, or one
                            column `obs.<part>` per part of a Composite observation (shapes in
                            meta.json)

Row t holds what the agents saw at step t, what they did and got for it; `terminated` /
`truncated` at row t say that the step taken at t ended the episode. The row t = length holds
the observation after the last step (action -1, reward 0, both flags false), so learners that
need the next observation have it. Inactive slots have action -1 and reward 0. Episode i is
row group i of every per-step file, so loading one episode reads one row group of each. A
dataset is written to a temporary directory beside `out` and renamed into place when complete:
a crash leaves no directory that looks like a dataset.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equilibria.common.config import ConfigError
from equilibria.common.yamlio import read_text_file
from equilibria.games.core import Policy, sample_action
from equilibria.games.markov import MarkovGame, MarkovState, flatten_obs
from equilibria.games.spaces import Box, Candidates, Composite, Discrete, Group, index_obs, map_obs

FORMAT, VERSION = "equilibria.demonstrations", 1
META, EPISODES, STEPS = "meta.json", "episodes.parquet", "steps.parquet"
# The policy's draws come from their own stream, so they are not correlated with the game's
# draws from the same episode seed (the simulator seeds its generator with the seed alone).
ACTION_STREAM = 0x6163


def require_pyarrow(what: str) -> Any:
    """pyarrow (the `demos` extra), or a one-line ConfigError saying how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs pyarrow: pip install 'equilibria[demos]'") from None
    return pyarrow


def agents_file(group: str) -> str:
    return f"agents_{group}.parquet"


# ----------------------------------------------------------------------------- spaces in meta.json
def _box_json(box: Box) -> dict[str, Any]:
    return {"shape": list(box.shape), "layout": box.layout}


def group_to_json(group: Group) -> dict[str, Any]:
    obs = group.observation
    observation = ({"type": "composite", "parts": {k: _box_json(b) for k, b in obs.parts.items()}}
                   if isinstance(obs, Composite) else {"type": "box", **_box_json(obs)})
    action = ({"type": "candidates", "field": group.action.field} if isinstance(group.action, Candidates)
              else {"type": "discrete", "n": group.action.n})
    return {"name": group.name, "size": group.size, "num_actions": group.num_actions, "observation": observation,
            "action": action}


def group_from_json(data: dict[str, Any]) -> Group:
    obs = data["observation"]
    observation = (Composite({k: Box(tuple(b["shape"]), b["layout"]) for k, b in obs["parts"].items()})
                   if obs["type"] == "composite" else Box(tuple(obs["shape"]), obs["layout"]))
    act = data["action"]
    action = Candidates(act["field"]) if act["type"] == "candidates" else Discrete(int(act["n"]))
    return Group(data["name"], int(data["size"]), observation, action)


def obs_columns(group: Group) -> dict[str, Box]:
    """The observation's Parquet columns and the Box each one flattens."""
    obs = group.observation
    return {f"obs.{k}": b for k, b in obs.parts.items()} if isinstance(obs, Composite) else {"obs": obs}


# ----------------------------------------------------------------------------- playing
def _act(policy: Policy, state: MarkovState, player: int, rng: np.random.Generator) -> int | None:
    if not state.is_active(player):
        return None
    probs = policy.action_probabilities(state, player)
    return int(sample_action(probs, rng)) if probs else None


def _stack(values: list[Any]) -> Any:
    """Per-step observations (arrays or dicts of parts) stacked along a new leading axis."""
    if isinstance(values[0], dict):
        return {k: np.stack([v[k] for v in values]) for k in values[0]}
    return np.stack(values)


def play_episode(game: MarkovGame, policy: Policy, seed: int) -> dict[str, Any]:
    """One episode of `policy` on `game.new_initial_state(seed)`, its actions drawn from a
    generator seeded by (ACTION_STREAM, seed), as the arrays `Demonstrations.episode` returns."""
    rng = np.random.default_rng((ACTION_STREAM, seed))
    state = game.new_initial_state(seed)
    sim, names = state.sim, [g.name for g in game.groups]
    frames: list[tuple[dict, dict, dict, np.ndarray]] = []

    def snapshot() -> None:  # copies: a simulator may hand out its own arrays and change them later
        obs, active, mask = sim.observe(), sim.active(), sim.action_mask()
        frames.append(({k: map_obs(index_obs(obs[k], 0), np.array) for k in names},
                       {k: np.array(active[k][0]) for k in names}, {k: np.array(mask[k][0]) for k in names},
                       np.array(sim.global_state()[0], dtype=np.float32)))

    snapshot()
    actions, rewards = [], []
    while not state.is_terminal():
        joint = [_act(policy, state, p, rng) for p in range(game.max_agents)]
        state.apply_actions(joint)
        actions.append([-1 if a is None else a for a in joint])
        rewards.append(state.rewards())
        snapshot()
    length = len(actions)
    bounds = np.cumsum([0] + [g.size for g in game.groups])
    acts = np.asarray(actions, dtype=np.int64).reshape(length, -1)
    rews = np.asarray(rewards, dtype=np.float64).reshape(length, -1)
    return {
        "seed": seed, "length": length, "terminated": not state.truncated, "truncated": state.truncated,
        "returns": state.returns(),
        "obs": {k: _stack([f[0][k] for f in frames]) for k in names},
        "active": {k: np.stack([f[1][k] for f in frames]) for k in names},
        "action_mask": {k: np.stack([f[2][k] for f in frames]) for k in names},
        "actions": {k: acts[:, bounds[i]:bounds[i + 1]] for i, k in enumerate(names)},
        "rewards": {k: rews[:, bounds[i]:bounds[i + 1]] for i, k in enumerate(names)},
        "state": np.stack([f[3] for f in frames]),
    }


def replay(game: MarkovGame, ep: dict[str, Any]) -> MarkovState:
    """Play a recorded episode's actions again on `game.new_initial_state(seed)` and return the
    final state; ValueError at the first step whose observations or rewards differ from the
    recording (another game, or a game that is not deterministic given its seed)."""
    state = game.new_initial_state(ep["seed"])
    seats = game.seats()
    for t in range(ep["length"] + 1):
        for p, (k, slot) in enumerate(seats):
            if not np.array_equal(flatten_obs(state.agent_observation(p)), flatten_obs(index_obs(ep["obs"][k], (t, slot)))):
                raise ValueError(f"episode {ep['episode']} diverges at t={t}: {k}_{slot}'s observation differs")
        if t == ep["length"]:
            break
        joint = [int(ep["actions"][k][t, slot]) for k, slot in seats]
        state.apply_actions([None if a < 0 else a for a in joint])
        recorded = np.concatenate([ep["rewards"][g.name][t] for g in game.groups])
        if not np.array_equal(state.rewards(), recorded):
            raise ValueError(f"episode {ep['episode']} diverges at t={t}: the rewards differ")
    return state


# ----------------------------------------------------------------------------- episodes as tables
def _schemas(pa: Any, game: MarkovGame) -> dict[str, Any]:
    def flat(dtype: Any, size: int) -> Any:
        return pa.list_(dtype, size)  # a fixed-size list: every reader sees one vector per row

    keys = [("episode", pa.int64()), ("t", pa.int32())]
    out = {STEPS: pa.schema([*keys, ("global_state", flat(pa.float32(), int(np.prod(game.state_shape)))),
                             ("terminated", pa.bool_()), ("truncated", pa.bool_())])}
    for g in game.groups:
        out[agents_file(g.name)] = pa.schema(
            [*keys, ("slot", pa.int32()), ("active", pa.bool_()), ("action", pa.int64()), ("reward", pa.float64()),
             ("action_mask", flat(pa.bool_(), g.num_actions)),
             *[(col, flat(pa.float32(), box.size)) for col, box in obs_columns(g).items()]])
    return out


def _episode_tables(pa: Any, schemas: dict[str, Any], game: MarkovGame, index: int, ep: dict[str, Any]) -> dict:
    rows = ep["length"] + 1

    def flat(values: np.ndarray, n: int) -> Any:
        v = np.ascontiguousarray(values).reshape(n, -1)
        return pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])

    ended = np.zeros(rows, dtype=bool)
    ended[-2:-1] = True  # the last step's row; the final row after it has both flags false
    tables = {STEPS: pa.Table.from_arrays(
        [pa.array(np.full(rows, index, np.int64)), pa.array(np.arange(rows, dtype=np.int32)),
         flat(ep["state"], rows), pa.array(ended & ep["terminated"]), pa.array(ended & ep["truncated"])],
        schema=schemas[STEPS])}
    for g in game.groups:
        k, n = g.name, g.size
        tail = np.full((1, n), -1, np.int64)
        obs = ep["obs"][k]
        parts = [obs[c.split(".", 1)[1]] for c in obs_columns(g)] if isinstance(obs, dict) else [obs]
        tables[agents_file(k)] = pa.Table.from_arrays(
            [pa.array(np.full(rows * n, index, np.int64)), pa.array(np.repeat(np.arange(rows, dtype=np.int32), n)),
             pa.array(np.tile(np.arange(n, dtype=np.int32), rows)), pa.array(ep["active"][k].ravel()),
             pa.array(np.concatenate([ep["actions"][k], tail]).ravel()),
             pa.array(np.concatenate([ep["rewards"][k], np.zeros((1, n))]).ravel()),
             flat(ep["action_mask"][k], rows * n), *[flat(p.astype(np.float32), rows * n) for p in parts]],
            schema=schemas[agents_file(k)])
    return tables


def check_target(out: Path) -> None:
    """ConfigError unless `out` can become a new dataset (absent, or an empty directory)."""
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ConfigError(f"{out} exists; demonstrations go to a new directory (remove it or choose another)")


@dataclass
class Recorded:
    path: Path
    episodes: int
    steps: int
    mean_return: float  # per agent that took part, averaged over episodes (as `equilibria eval` reports)


def record(game: MarkovGame, policy: Policy, episodes: int, out: str | os.PathLike, seed: int = 0, *,
           policy_name: str | None = None, progress: Callable[[int, str], None] | None = None) -> Recorded:
    """Play `episodes` episodes of `policy` (episode i on `game.new_initial_state(seed + i)`) and
    write them as a dataset at `out`, which must not exist yet (or be an empty directory).
    `progress(done, text)` is called after each episode."""
    pa = require_pyarrow("record")
    import pyarrow.parquet as pq

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    out = Path(out)
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    writers: dict[str, Any] = {}
    try:
        schemas = _schemas(pa, game)
        writers = {name: pq.ParquetWriter(tmp / name, schema) for name, schema in schemas.items()}
        summary: dict[str, list] = {c: [] for c in ("episode", "seed", "length", "terminated", "truncated", "returns")}
        per_agent = []
        for i in range(episodes):
            ep = play_episode(game, policy, seed + i)
            for name, table in _episode_tables(pa, schemas, game, i, ep).items():
                writers[name].write_table(table, row_group_size=table.num_rows)  # one row group per episode
            for c in summary:
                summary[c].append(i if c == "episode" else ep[c])
            took_part = np.concatenate([ep["active"][g.name].any(0) for g in game.groups])
            per_agent.append(float(ep["returns"][took_part].sum() / max(took_part.sum(), 1)))
            if progress is not None:
                progress(i + 1, f"return {per_agent[-1]:.3g}")
        for w in writers.values():
            w.close()
        pq.write_table(pa.table({**{c: summary[c] for c in summary if c != "returns"},
                                 "returns": pa.array([list(r) for r in summary["returns"]],
                                                     pa.list_(pa.float64(), game.max_agents))}), tmp / EPISODES)
        steps = int(sum(summary["length"]))
        meta = {"format": FORMAT, "version": VERSION, "game": repr(game),
                "groups": [group_to_json(g) for g in game.groups], "state_shape": list(game.state_shape),
                "seats": game.agent_names(), "policy": policy_name or type(policy).__name__, "seed": seed,
                "episodes": episodes, "steps": steps,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
        for f in tmp.iterdir():  # on disk before the rename makes the dataset visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, out)
    except BaseException:
        for w in writers.values():
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Recorded(out, episodes, steps, float(np.mean(per_agent)) if per_agent else float("nan"))


# ----------------------------------------------------------------------------- loading
def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


class Demonstrations:
    """A recorded dataset, read lazily: the constructor reads meta.json only; each method reads
    the files and row groups it needs. Malformed input is a one-line ConfigError naming the file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: {'not a directory' if self.path.exists() else 'no such directory'}; "
                              "demonstrations are a directory")
        meta_path = self.path / META
        if not meta_path.exists():
            raise ConfigError(f"{meta_path}: missing; {self.path} is not a demonstrations dataset")
        try:
            meta = json.loads(read_text_file(meta_path, what="meta.json"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{meta_path}: not JSON ({err.msg} at line {err.lineno})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ConfigError(f"{meta_path}: format {found!r}, expected {FORMAT!r}")
        if meta.get("version") != VERSION:
            raise ConfigError(f"{meta_path}: version {meta.get('version')!r}; this equilibria reads version {VERSION}")
        try:
            self.groups = tuple(group_from_json(g) for g in meta["groups"])
            self.state_shape = tuple(int(d) for d in meta["state_shape"])
            self.num_episodes, self.seats = int(meta["episodes"]), list(meta["seats"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{meta_path}: malformed ({type(err).__name__}: {err})") from None
        self.meta = meta
        self._files: dict[str, Any] = {}
        self._episodes: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.num_episodes

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise ConfigError(f"{self.path}: no group {name!r} (groups: {', '.join(g.name for g in self.groups)})")

    def load_game(self) -> MarkovGame:
        """The recorded game rebuilt from its registry string (ConfigError for unregistered games)."""
        from equilibria.games.registry import load

        return load(self.meta["game"])

    def _file(self, name: str) -> Any:
        """The opened Parquet file (its footer read once; row groups are read on demand)."""
        if name not in self._files:
            require_pyarrow("reading demonstrations")
            import pyarrow as pa
            import pyarrow.parquet as pq

            path = self.path / name
            if not path.is_file():
                raise ConfigError(f"{path}: missing; the dataset is incomplete")
            try:
                self._files[name] = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as err:
                raise ConfigError(f"{path}: not a readable Parquet file ({_first_line(err)})") from None
        return self._files[name]

    def _read(self, name: str, row_group: int | None = None, columns: Sequence[str] | None = None) -> Any:
        import pyarrow as pa

        f = self._file(name)
        try:
            return f.read(columns) if row_group is None else f.read_row_group(row_group, columns)
        except (pa.ArrowException, OSError) as err:
            raise ConfigError(f"{self.path / name}: unreadable ({_first_line(err)})") from None

    def _shapes(self, name: str) -> dict[str, tuple[int, ...]]:
        """The shape of one row of each list column of the file `name`."""
        if name == EPISODES:
            return {"returns": (len(self.seats),)}
        if name == STEPS:
            return {"global_state": self.state_shape}
        g = self.group(name[len("agents_"):-len(".parquet")])
        return {"action_mask": (g.num_actions,), **{c: b.shape for c, b in obs_columns(g).items()}}

    def _columns(self, name: str, table: Any) -> dict[str, np.ndarray]:
        shapes, out = self._shapes(name), {}
        for col in table.column_names:
            arr = table.column(col).combine_chunks()
            if col in shapes:
                values = arr.flatten().to_numpy(zero_copy_only=False)
                if values.size != len(arr) * int(np.prod(shapes[col])):
                    raise ConfigError(f"{self.path / name}: column {col!r} does not hold {list(shapes[col])} per row "
                                      "as meta.json says")
                out[col] = values.reshape(len(arr), *shapes[col])
            else:
                out[col] = arr.to_numpy(zero_copy_only=False)
        return out

    def episodes(self) -> dict[str, np.ndarray]:
        """The episode table: episode, seed, length, terminated, truncated [E]; returns [E, seats]."""
        if self._episodes is None:
            table = self._columns(EPISODES, self._read(EPISODES))
            if len(table["episode"]) != self.num_episodes:
                raise ConfigError(f"{self.path / EPISODES}: {len(table['episode'])} rows; meta.json says "
                                  f"{self.num_episodes} episodes")
            self._episodes = table
        return self._episodes

    def steps(self, group: str | None = None, columns: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """The rows of agents_<group>.parquet (steps.parquet without a group), one episode at a
        time, as {column: array}; list columns are shaped [rows, *shape]. `columns` picks a few
        (episode, t, slot, active, action, reward, action_mask, obs or obs.<part>)."""
        name = STEPS if group is None else agents_file(self.group(group).name)
        names = self._file(name).schema_arrow.names
        for c in columns or ():
            if c not in names:
                raise ConfigError(f"{self.path / name}: no column {c!r} (columns: {', '.join(names)})")
        for i in range(self._file(name).num_row_groups):
            yield self._columns(name, self._read(name, i, columns))

    def episode(self, i: int) -> dict[str, Any]:
        """Episode i as arrays shaped like the simulator's (T = length): obs {group: [T+1, n, *obs]
        (a dict of parts for a Composite)}, active {group: [T+1, n]}, action_mask {group:
        [T+1, n, A]}, actions and rewards {group: [T, n]} (action -1 where inactive), state
        [T+1, *state_shape]; and episode, seed, length, terminated, truncated, returns [seats]."""
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} is not in {self.path} ({self.num_episodes} episodes)")
        steps = self._columns(STEPS, self._read(STEPS, i))
        rows = len(steps["t"])
        if rows < 1 or np.any(steps["episode"] != i):
            raise ConfigError(f"{self.path / STEPS}: row group {i} does not hold episode {i}")
        head = self.episodes()
        out: dict[str, Any] = {"episode": i, "length": rows - 1, "state": steps["global_state"],
                               **{c: head[c][i].item() for c in ("seed", "terminated", "truncated")},
                               "returns": head["returns"][i]}
        for key in ("obs", "active", "action_mask", "actions", "rewards"):
            out[key] = {}
        for g in self.groups:
            name = agents_file(g.name)
            cols = self._columns(name, self._read(name, i))
            if len(cols["t"]) != rows * g.size or np.any(cols["episode"] != i):
                raise ConfigError(f"{self.path / name}: row group {i} does not hold episode {i}'s {rows} x {g.size} rows")
            # rows are (t, slot) in order: [rows * n, ...] -> [T+1, n, ...]
            per_slot = {c: v.reshape(rows, g.size, *v.shape[1:]) for c, v in cols.items()}
            obs = {c: per_slot[c] for c in obs_columns(g)}
            out["obs"][g.name] = obs["obs"] if "obs" in obs else {c[len("obs."):]: v for c, v in obs.items()}
            out["active"][g.name] = per_slot["active"]
            out["action_mask"][g.name] = per_slot["action_mask"]
            out["actions"][g.name] = per_slot["action"][:-1]  # the final row's -1 is no action
            out["rewards"][g.name] = per_slot["reward"][:-1]
        return out


__all__ = ["Demonstrations", "Recorded", "agents_file", "check_target", "group_from_json", "group_to_json", "obs_columns",
           "play_episode", "record", "replay", "require_pyarrow"]
