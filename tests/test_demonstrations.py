"""Demonstrations (games/demonstrations.py): recorded episodes round-trip through Parquet, load
lazily, replay exactly, and bad datasets are one-line errors."""

import json
import sys

import numpy as np
import pytest
from needs import need
from toy_markov import PickBest

from equilibria import games, scenarios
from equilibria.common.config import ConfigError
from equilibria.games.core import ScriptedPolicy
from equilibria.games.demonstrations import Demonstrations, record, replay
from equilibria.scenarios.cli import main

need("pyarrow", "demos")
import pyarrow.parquet as pq  # noqa: E402

GRID = "grid_goals(num_agents=6, size=5, population=[2, 6])"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    # one MAPPO update is enough: the test is about the recording, not about learning
    s = scenarios.load("mappo-navigation", ["budget.steps=200", "eval.every_steps=200", "checkpoint_every_steps=200",
                                            "eval.episodes=2", "algorithm.config.num_envs=8"])
    return scenarios.run(s, out=tmp_path_factory.mktemp("run"), quiet=True).run_dir


def _grid(tmp_path, name="grid", episodes=6, seed=0):
    return record(games.load(GRID), ScriptedPolicy("random"), episodes, tmp_path / name, seed)


def test_a_trained_mappo_run_round_trips(trained_run, tmp_path, capsys):
    out = tmp_path / "nav"
    assert main(["record", str(trained_run), "--episodes", "8", "--out", str(out), "--seed", "5"]) == 0
    said = capsys.readouterr().out
    assert "recorded 8 episodes, 200 steps, mean return per agent" in said and str(out) in said
    demos = Demonstrations(out)
    game = demos.load_game()
    assert demos.groups == game.groups and demos.meta["policy"].startswith("mappo run")
    table = demos.episodes()
    assert table["seed"].tolist() == list(range(5, 13)) and table["returns"].shape == (8, 3)
    for i in range(8):
        ep = demos.episode(i)
        state = game.new_initial_state(ep["seed"])
        for t in range(ep["length"]):
            for p in range(3):
                np.testing.assert_array_equal(state.agent_observation(p), ep["obs"]["agents"][t, p])
            state.apply_actions([int(a) for a in ep["actions"]["agents"][t]])
        for p in range(3):  # the final-observation row
            np.testing.assert_array_equal(state.agent_observation(p), ep["obs"]["agents"][-1, p])
        assert state.is_terminal() and state.returns().tolist() == ep["returns"].tolist() == table["returns"][i].tolist()
        assert ep["rewards"]["agents"].sum(0).tolist() == pytest.approx(ep["returns"].tolist(), abs=1e-12)
        np.testing.assert_array_equal(replay(game, ep).returns(), ep["returns"])
    assert main(["replay", str(out)]) == 0 and capsys.readouterr().out.count("replays identically") == 8
    # (f) the same seed records the same dataset
    again = tmp_path / "again"
    assert main(["record", str(trained_run), "--episodes", "8", "--out", str(again), "--seed", "5"]) == 0
    for f in sorted(p.name for p in out.glob("*.parquet")):
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    meta, meta2 = (json.loads((d / "meta.json").read_text()) for d in (out, again))
    assert {k: v for k, v in meta.items() if k != "created"} == {k: v for k, v in meta2.items() if k != "created"}
    # (g) the learner of the run's best evaluation records too
    assert main(["record", str(trained_run), "--checkpoint", "best", "--episodes", "2", "--out", str(tmp_path / "best")]) == 0


def test_same_seed_same_dataset_other_seed_other_dataset(tmp_path):
    a, b, c = _grid(tmp_path, "a", seed=3), _grid(tmp_path, "b", seed=3), _grid(tmp_path, "c", seed=4)
    name = "agents_agents.parquet"
    assert (a.path / name).read_bytes() == (b.path / name).read_bytes() != (c.path / name).read_bytes()


def test_population_varying_game_marks_inactive_rows_masks_and_the_final_row(tmp_path):
    rec = _grid(tmp_path)
    demos = Demonstrations(rec.path)
    populations = []
    for i in range(len(demos)):
        ep = demos.episode(i)
        T, active, acts = ep["length"], ep["active"]["agents"], ep["actions"]["agents"]
        mask, rewards = ep["action_mask"]["agents"], ep["rewards"]["agents"]
        assert ep["obs"]["agents"].shape == (T + 1, 6, 4) and mask.shape == (T + 1, 6, 5) and acts.shape == (T, 6)
        populations.append(int(active[0].sum()))
        assert np.all(acts[~active[:-1]] == -1) and np.all(rewards[~active[:-1]] == 0)
        t, slot = np.nonzero(active[:-1])
        assert mask[t, slot, acts[t, slot]].all()  # every recorded action was legal under its recorded mask
        np.testing.assert_array_equal(mask[0], games.load(GRID).simulator(1, ep["seed"]).action_mask()["agents"][0])
    assert min(populations) < 6 and all(2 <= n <= 6 for n in populations)
    table = pq.read_table(rec.path / "agents_agents.parquet", columns=["episode", "t", "action", "reward"])
    rows = {c: table.column(c).to_numpy() for c in table.column_names}
    final = rows["t"] == demos.episodes()["length"][rows["episode"]]
    assert final.sum() == 6 * len(demos) and (rows["action"][final] == -1).all() and (rows["reward"][final] == 0).all()
    flags = pq.read_table(rec.path / "steps.parquet", columns=["terminated", "truncated"])
    assert flags.num_rows == rec.steps + len(demos)
    assert sum(flags.column(c).to_numpy().sum() for c in flags.column_names) == len(demos)  # the last step's rows
    assert pq.ParquetFile(rec.path / "steps.parquet").num_row_groups == len(demos)  # one row group per episode


def test_composite_candidates_observations_round_trip_with_their_shapes(tmp_path):
    game = PickBest(num_agents=2, max_candidates=6)
    rec = record(game, ScriptedPolicy("random"), 4, tmp_path / "pick", seed=1)
    demos = Demonstrations(rec.path)
    assert demos.groups == game.groups
    assert demos.meta["groups"][0]["observation"]["parts"]["orders"] == {"shape": [6, 3], "layout": "entities"}
    names = pq.ParquetFile(rec.path / "agents_drivers.parquet").schema_arrow.names
    assert "obs.self" in names and "obs.orders" in names
    for i in range(4):
        ep = demos.episode(i)
        obs = ep["obs"]["drivers"]
        assert obs["self"].shape == (2, 2, 2) and obs["orders"].shape == (2, 2, 6, 3)
        sim = game.simulator(1, ep["seed"])
        np.testing.assert_array_equal(obs["orders"][0], sim.observe()["drivers"]["orders"][0])
        replay(game, ep)
    batch = next(demos.steps("drivers", ["obs.orders", "action"]))
    assert set(batch) == {"obs.orders", "action"} and batch["obs.orders"].shape == (4, 6, 3)


def test_loading_is_lazy_and_a_missing_file_is_one_line(tmp_path):
    rec = _grid(tmp_path, episodes=2)
    for f in rec.path.glob("*.parquet"):
        f.unlink()
    demos = Demonstrations(rec.path)
    assert len(demos) == 2 and demos.groups[0].size == 6 and demos.meta["steps"] == rec.steps
    with pytest.raises(ConfigError, match=r"steps\.parquet: missing") as err:
        demos.episode(0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "meta.json").write_text(json.dumps({**json.loads((d / "meta.json").read_text()), "version": 99})),
     "meta.json: version 99; this equilibria reads version 1"),
    (lambda d: (d / "meta.json").write_text("{not json"), "meta.json: not JSON"),
    (lambda d: (d / "meta.json").write_text('{"format": "something.else", "version": 1}'),
     "meta.json: format 'something.else', expected 'equilibria.demonstrations'"),
    (lambda d: (d / "steps.parquet").write_bytes((d / "steps.parquet").read_bytes()[:100]),
     "steps.parquet: not a readable Parquet file"),
])
def test_bad_datasets_are_one_line_errors_and_exit_2(tmp_path, capsys, damage, message):
    rec = _grid(tmp_path, episodes=2)
    damage(rec.path)
    with pytest.raises(ConfigError, match=message) as err:
        Demonstrations(rec.path).episode(0)
    assert "\n" not in str(err.value)
    assert main(["replay", str(rec.path)]) == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and message in said and "Traceback" not in said


def test_record_refuses_bad_input_with_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    existing = _grid(tmp_path, "taken", episodes=1).path
    cases = [(["random", "--episodes", "2", "--out", str(tmp_path / "x")], "give the game with --game"),
             (["rando", "--game", GRID, "--episodes", "2", "--out", str(tmp_path / "x")], "did you mean 'random'"),
             (["random", "--game", "kuhn_poker", "--episodes", "2", "--out", str(tmp_path / "x")], "Markov games"),
             (["random", "--game", GRID, "--episodes", "0", "--out", str(tmp_path / "x")], "--episodes must be >= 1"),
             (["random", "--game", GRID, "--episodes", "2", "--out", str(existing)], "exists")]
    for args, message in cases:
        assert main(["record", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if the extra were not installed
    assert main(["record", "random", "--game", GRID, "--episodes", "2", "--out", str(tmp_path / "x")]) == 2
    assert "record needs pyarrow: pip install 'equilibria[demos]'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_crash_mid_recording_leaves_no_dataset(tmp_path):
    class Failing(ScriptedPolicy):
        calls = 0

        def action_probabilities(self, state, player=None):
            Failing.calls += 1
            if Failing.calls > 200:
                raise RuntimeError("boom")
            return super().action_probabilities(state, player)

    with pytest.raises(RuntimeError, match="boom"):
        record(games.load(GRID), Failing("random"), 20, tmp_path / "half")
    assert list(tmp_path.iterdir()) == []
