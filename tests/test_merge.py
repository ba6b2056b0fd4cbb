"""The on-ramp merge: the batched twin against highway-env (events, positions, rewards), the
safety module and intents, MAPPO-PIS learning, paired evaluation."""

import numpy as np
import pytest
from needs import need

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.games.merge import MAX_CAVS, draw_episode
from equilibria.games.merge_dynamics import CAV, MAIN_AB, RAMP_JK
from equilibria.marl import registry


def test_episodes_follow_the_density_counts_and_spawn_slots():
    rng = np.random.default_rng(0)
    for density, (cavs, hdvs) in {"easy": ((1, 3), (0, 1)), "medium": ((2, 4), (2, 4)), "hard": ((3, 6), (1, 4))}.items():
        for _ in range(50):
            ep = draw_episode(rng, density)
            kinds = [k for k, *_ in ep]
            assert cavs[0] <= kinds.count(CAV) <= cavs[1]
            assert hdvs[0] <= kinds.count(1) <= hdvs[1]
            assert kinds.count(2) == kinds.count(3) == 1  # one aggressive (ramp), one defensive (main)
            spots = [(lane, x) for _, lane, x, _ in ep]
            assert len(set(spots)) == len(spots)
            assert all(lane in (MAIN_AB, RAMP_JK) and 25 <= v <= 27 for _, lane, _, v in ep)


def test_twin_matches_highway_env_event_for_event():
    """A short run of the differential test (the full one: 100 episodes, slow): identical events,
    positions within 0.5 m, speeds within 0.1 m/s, rewards within 1e-6."""
    need("highway_env", "merge")
    from equilibria.games.merge_highway import differential

    out = differential(episodes=4, seed=3, decisions=60)
    assert out["identical"] == 4, [(r["only_highway"], r["only_twin"]) for r in out["rows"]]
    assert out["events"] >= 8  # lane changes, merges and crashes did happen
    assert out["max_position"] < 0.5 and out["max_speed"] < 0.1 and out["max_reward"] < 1e-6


@pytest.mark.slow
def test_twin_matches_highway_env_in_95_of_100_episodes():
    need("highway_env", "merge")
    from equilibria.games.merge_highway import differential

    out = differential(episodes=100, seed=1)
    assert out["identical"] >= 95
    assert out["max_position"] < 0.5 and out["max_speed"] < 0.1 and out["max_reward"] < 1e-6


def test_safety_module_cuts_crashes_of_random_driving():
    crashes = {}
    for safety in ("off", "shared"):
        sim = games.load(f"merge(density=medium, safety={safety})").simulator(64, seed=0)
        rng = np.random.default_rng(0)
        total = episodes = 0
        for _ in range(150):
            res = sim.step({"cavs": rng.integers(0, 5, size=(64, MAX_CAVS))})
            total += sim.events["crashes"].sum()
            episodes += res.done.sum()
        crashes[safety] = total / episodes
    assert crashes["shared"] < 0.75 * crashes["off"], crashes


def test_shared_intents_appear_only_in_neighbouring_cav_rows():
    with_intents = games.load("merge(density=hard, intents=true)").simulator(8, seed=1)
    without = games.load("merge(density=hard)").simulator(8, seed=1)
    a, b = (sim.observe()["cavs"].reshape(8, MAX_CAVS, 5, 10) for sim in (with_intents, without))
    assert np.array_equal(a[:, :, 0], b[:, :, 0]) and np.array_equal(a[..., :6], b[..., :6])
    assert not b[:, :, 1:, 6:].any()
    cav_rows = a[:, :, 1:, 5] == 1
    assert np.abs(a[:, :, 1:, 6:]).sum(-1)[cav_rows].min() > 0  # every neighbouring CAV shares its plan
    assert not a[:, :, 1:, 6:][~cav_rows].any()  # HDVs share nothing


def test_bad_parameters_are_named():
    with pytest.raises((ValueError, ConfigError), match="density"):
        games.load("merge(density=crowded)")
    with pytest.raises((ValueError, ConfigError), match="safety"):
        games.load("merge(safety=sometimes)")


def test_mappo_pis_learns_to_merge():
    """From its random initialisation, 14 updates (22k steps) lift the return of the sampled
    policy on 32 paired episodes by 15 (about -50 to -20..+7 on two seeds)."""
    learner = registry.make("mappo_pis", games.load("merge(density=medium)"), seed=0, num_envs=16)
    before = learner.evaluation_metrics(32, seed=5, deterministic=False)
    for _ in range(14):
        learner.train_step()
    after = learner.evaluation_metrics(32, seed=5, deterministic=False)
    assert np.mean(after["return"]) > np.mean(before["return"]) + 15, (np.mean(before["return"]), np.mean(after["return"]))
    assert learner.game.intents and learner.game.safety == "shared"


def test_variants_configure_intents_and_the_safety_module():
    game = games.load("merge")
    sem = registry.make("mappo_sem", game, num_envs=2)
    plain = registry.make("mappo_merge", game, num_envs=2)
    assert (sem.game.intents, sem.game.safety) == (False, "assume_idle")
    assert (plain.game.intents, plain.game.safety) == (False, "off")
    with pytest.raises(ValueError, match="merge game"):
        registry.make("mappo_pis", games.load("cooperative_navigation"))


def test_paired_evaluation_is_the_same_in_the_twin_and_in_highway_env():
    need("highway_env", "merge")
    from equilibria.marl import controllers

    twin = controllers.make("merge_idle", games.load("merge(density=medium)")).evaluation_metrics(3, seed=7)
    ref = controllers.make("merge_idle", games.load("merge_highway(density=medium)")).evaluation_metrics(3, seed=7)
    for k in twin:
        np.testing.assert_allclose(twin[k], ref[k], atol=1e-6, err_msg=k)
    assert np.isfinite(twin["speed"]).all() and (twin["speed"] > 15).all()


def test_a_trained_policy_evaluates_in_highway_env_with_its_intents():
    need("highway_env", "merge")
    learner = registry.make("mappo_pis", games.load("merge"), num_envs=2)
    bound = learner.on_game(games.load("merge_highway(safety=off)"))
    assert bound.game.intents and bound.game.safety == "off"
    m = bound.evaluation_metrics(2, seed=3)
    assert set(m) >= {"return", "collision", "collisions_per_step", "speed", "merge_success", "headway"}
    sim = bound.game.simulator(1)
    sim.load_episode(0, draw_episode(np.random.default_rng([3, 0]), "hard"))
    obs = sim.observe()["cavs"][0].reshape(MAX_CAVS, 5, 10)
    cav_rows = obs[:, 1:, 5] == 1
    assert cav_rows.any() and (np.abs(obs[:, 1:, 6:]).sum(-1)[cav_rows] > 0).all()  # intents, in highway-env


def _alone(vehicles):
    sim = games.load("merge").simulator(1)
    sim.load_episode(0, vehicles)
    rewards, res = [], None
    for _ in range(100):
        res = sim.step({"cavs": np.ones((1, MAX_CAVS), dtype=np.int64)}, autoreset=False)
        rewards.append(res.rewards["cavs"][0, 0])
        if res.done[0]:
            break
    return rewards, res, sim


def test_reward_of_a_free_cav_at_top_speed_is_one_and_it_leaves_at_the_road_end():
    rewards, res, sim = _alone([(CAV, MAIN_AB, 200.0, 30.0)])
    assert rewards[0] == pytest.approx(1.0)  # speed term 1, no merging cost, no vehicle within 60 m
    assert res.terminated[0] and not res.truncated[0]  # every CAV left the road
    assert len(rewards) == pytest.approx((520 - 200) / 30 * 5, abs=2)
    assert not sim.active()["cavs"].any()


def test_a_ramp_cav_that_never_merges_hits_the_obstacle_and_ends_the_episode():
    rewards, res, sim = _alone([(CAV, RAMP_JK, 100.0, 25.0)])
    assert res.terminated[0] and len(rewards) < 100
    assert rewards[-1] < -190 and sim.events["crashes"][0] == 1
    assert sim.F[0, 0, 0] == pytest.approx(420, abs=6)  # at the merge lane's end


def test_headway_cost_follows_the_released_code():
    """A CAV 20 m behind an HDV at 25 m/s: 4 log(20 / (1.2 * 25)) below the free reward."""
    sim = games.load("merge(heterogeneous=false)").simulator(1)
    sim.load_episode(0, [(CAV, MAIN_AB, 100.0, 25.0), (1, MAIN_AB, 120.0, 25.0)])
    from equilibria.games.merge import cav_rewards

    out = np.zeros((1, sim.F.shape[1]))
    active = sim.cav_active()
    cav_rewards(sim.F, sim.S, active, np.zeros_like(out), out)
    assert out[0, 0] == pytest.approx((25 - 10) / 20 + 4 * np.log(20 / 30))


def test_record_of_a_mappo_pis_run_plays_the_game_the_policy_acts_in(tmp_path, monkeypatch):
    # the learner rebuilds the scenario's merge game with its intents and safety module; a recording on the
    # scenario's plain game would feed the policy observations without the intents it was trained on
    import json
    from pathlib import Path

    from cli_runner import cli_in_process

    need("pyarrow", "demos")
    run = Path(__file__).resolve().parents[1] / "scenarios" / "builtin" / "merge-runs" / "mappo_pis"
    res = cli_in_process("record", str(run), "--episodes", "1", "--out", str(tmp_path / "demos"), cwd=tmp_path,
                         monkeypatch=monkeypatch)
    assert res.returncode == 0, res.stderr
    game = json.loads((tmp_path / "demos" / "meta.json").read_text())["game"]
    assert "intents=True" in game and "safety='shared'" in game
