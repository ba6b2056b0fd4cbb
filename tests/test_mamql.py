"""MAMQL and its baselines (IQ-Learn with a joint-action critic, behaviour cloning): the loss
against hand-computed values, the data path from `equilibria record`, checkpoints, bad configs,
and that each learns on Gems from a small expert dataset."""

import io

import numpy as np
import pytest
import torch
from needs import need

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.marl.demos import load_transitions
from equilibria.marl.mamql import MAMQL, chi2_phi, iq_loss, reward_recovery, soft_value
from equilibria.marl.registry import build_config, entry, make_with
from equilibria.scenarios.cli import main


def learner(name: str, game: str = "gems", seed: int = 0, **config) -> MAMQL:
    config = {"expert": "gems_planner", "transitions": 500, **config}
    return make_with(entry(name), games.load(game), build_config(name, config), seed=seed)


def test_soft_value_phi_and_the_loss_on_hand_computed_values():
    q = torch.tensor([[0.0, np.log(3.0)]])
    assert soft_value(q, 1.0).item() == pytest.approx(np.log(4.0))
    assert soft_value(q, 1e-3).item() == pytest.approx(np.log(3.0), abs=1e-2)  # alpha -> 0: the max
    x = torch.linspace(-4, 8, 121)
    assert x[chi2_phi(x, 1.0).argmax()].item() == pytest.approx(2.0)  # phi peaks at 2 alpha
    one = torch.ones(1)
    # value term (2 - 0.5 * 1) = 1.5; expert reward 3 - 0.5 * 2 = 2, phi(2) = 1 -> 0.5
    assert iq_loss(3 * one, 2 * one, 0 * one, 2 * one, one, 0 * one, 0.5, 1.0).item() == pytest.approx(0.5)
    # termination drops the bootstrap: value 2, expert reward 3, phi(3) = 0.75 -> 1.25
    assert iq_loss(3 * one, 2 * one, one, 2 * one, one, one, 0.5, 1.0).item() == pytest.approx(1.25)
    # the chi-squared term over the policy's implied rewards too: 1.5 - 2 + (4 + 1) / 2 / 4
    assert iq_loss(3 * one, 2 * one, 0 * one, 2 * one, one, 0 * one, 0.5, 1.0, one).item() == pytest.approx(0.125)


def test_a_dataset_recorded_by_equilibria_record_is_the_same_data_as_the_expert_played_directly(tmp_path):
    need("pyarrow", "demos")
    out = tmp_path / "gems-demos"
    assert main(["record", "gems_planner", "--game", "gems", "--episodes", "20", "--out", str(out), "--seed", "3"]) == 0
    game = games.load("gems")
    recorded = load_transitions(game, path=str(out), transitions=400)
    played = load_transitions(game, expert="gems_planner", transitions=400, seed=3)
    for field in ("obs", "actions", "rewards", "next_obs", "next_actions", "terminated", "ends"):
        assert torch.equal(getattr(recorded, field), getattr(played, field)), field
    mamql = learner("mamql", demonstrations=str(out), expert=None, transitions=400, num_envs=2, rollout_length=2)
    before = [p.detach().clone() for p in mamql.critics.parameters()]
    stats = mamql.train_step()
    assert stats["env_steps"] == 4 and np.isfinite(stats["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, mamql.critics.parameters()))
    with pytest.raises(ConfigError, match="fewer than the 5000 transitions"):
        load_transitions(game, path=str(out), transitions=5000)
    with pytest.raises(ConfigError, match="differs from"):
        load_transitions(games.load("gems(view=grid)"), path=str(out))
    with pytest.raises(ConfigError, match="differs from"):  # the same spaces, other rules
        load_transitions(games.load("gems(max_steps=100)"), path=str(out))


def test_bad_configs_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="either a dataset directory or an expert"):
        build_config("mamql", {"expert": "gems_planner", "demonstrations": "x"})
    with pytest.raises(ConfigError, match="loss: bc"):
        build_config("bc", {"expert": "gems_planner", "online": True})
    with pytest.raises(ConfigError, match="unknown expert 'gems_plannr'.*did you mean 'gems_planner'"):
        load_transitions(games.load("gems"), expert="gems_plannr")
    with pytest.raises(ValueError, match="one agent group"):
        make_with(entry("mamql"), games.load("pursuit"), build_config("mamql", {"expert": "gems_planner"}))


def test_checkpoints_round_trip_through_weights_only_loading():
    a = learner("mamql", num_envs=2, rollout_length=3, target_tau=0.5)
    for _ in range(3):
        a.train_step()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = learner("mamql", num_envs=2, rollout_length=3, target_tau=0.5, seed=1)
    b.load_state_dict(torch.load(buf, weights_only=True))
    obs = a.expert.obs[:32]
    assert torch.equal(a.action_probs(obs), b.action_probs(obs))
    assert all(torch.equal(x, y) for x, y in zip(a.targets.parameters(), b.targets.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.targets.parameters(), a.critics.parameters()))
    assert b.env_steps == a.env_steps == 18 and b.updates == 3
    # the same simulator, observations and generator: the next rollout is the same (the replay
    # buffer itself is not saved; a resumed run refills it)
    pa, pb = a.buffer.ptr, b.buffer.ptr
    a._rollout(), b._rollout()
    for field in ("actions", "obs", "rewards"):
        assert torch.equal(getattr(a.buffer, field)[pa:pa + 6], getattr(b.buffer, field)[pb:pb + 6]), field


def test_rollouts_fill_next_actions_and_ends_even_when_the_buffer_wraps():
    m = learner("mamql", "gems(max_steps=2)", num_envs=3, rollout_length=1, buffer_capacity=4)
    m._rollout()  # t = 0 of envs 0, 1, 2 -> rows 0, 1, 2
    m._rollout()  # t = 1 (each episode's last step) -> rows 3, 0, 1, after rows 0..2 learned their next actions
    b = m.buffer
    assert b.ptr == 2 and b.size == 4
    assert torch.equal(b.next_actions[2], b.actions[1])  # env 2: its t = 0 row points at its t = 1 row
    assert torch.equal(b.next_actions[[0, 1, 3]], torch.full((3, 2), -1))  # last steps: no next action
    assert torch.equal(b.ends[[0, 1, 3]], torch.ones(3)) and torch.equal(b.terminated[[0, 1, 3]], torch.zeros(3))
    assert b.ends[2] == 0


def test_agents_that_leave_stop_bootstrapping():
    """grid_goals: an agent that arrives leaves (its slot turns inactive); its last transition
    must not bootstrap V on the absent agent's zero observation."""
    from equilibria.games.core import ScriptedPolicy
    from equilibria.games.demonstrations import play_episode
    from equilibria.marl.demos import episodes_to_transitions

    game = games.load("grid_goals(num_agents=3, size=4)")
    t = episodes_to_transitions([play_episode(game, ScriptedPolicy("random"), s) for s in range(20)], "agents")
    left = (t.actions >= 0) & ~t.next_active
    assert left.any() and not t.terminated[left.any(1)].all()  # some leave before their episode ends
    m = make_with(entry("mamql_offline"), game, build_config("mamql_offline", {"demonstrations": "unused"}), seed=0)
    m.expert = t  # (demonstrations load lazily: these instead)
    r = m.recovered_rewards(t)
    e, i = (int(x) for x in left.nonzero()[0])
    with torch.no_grad():
        q = m.q(i, t.obs[e:e + 1])[0, t.actions[e, i]]
    assert r["q"][e, i] == pytest.approx(q.item(), rel=1e-5)  # Q - gamma * 0: no bootstrap past leaving
    assert np.isfinite(m.update()["loss"])


def test_the_joint_critic_averages_over_the_other_agents_policy():
    iql = learner("iql_joint")
    obs = load_transitions(games.load("gems"), expert="gems_planner", transitions=64, seed=9).obs
    with torch.no_grad():
        p = iql.action_probs(obs)
    assert p.shape == (64, 2, 5) and torch.allclose(p.sum(-1), torch.ones(64, 2))
    # Q_0(o, a_1, .) = a_1-dependent: agent 0's policy follows what agent 1 is likely to do
    with torch.no_grad():
        for w in iql.critics[0].parameters():
            w.zero_()
        net = iql.critics[0]  # Linear, ELU, Linear, ELU, Linear: route a_1's one-hot (inputs 26..30) through
        net[0].weight[:5, 26:] = torch.eye(5)
        net[2].weight[:5, :5] = torch.eye(5)
        net[4].weight[:, :5] = torch.eye(5) * 5  # Q_0(a_0 | a_1) = 5 [a_0 == a_1]
        iql.critics[1][-1].bias[:] = torch.tensor([0.0, 0.0, 0.0, 0.0, 8.0])  # agent 1 plays 4
        p = iql.action_probs(obs)
    assert p[:, 0].argmax(-1).eq(4).all() and p[:, 1].argmax(-1).eq(4).all()


def test_recovered_rewards_have_both_forms_and_bc_defines_none():
    m = learner("mamql_offline")
    for _ in range(5):
        m.train_step()
    t = m.expert
    r = m.recovered_rewards(t)
    assert set(r) == {"q", "v"} and r["q"].shape == (len(t), 2)
    with torch.no_grad():
        q0 = m.q(0, t.obs[:1])
        v_next = soft_value(m.q(0, t.next_obs[:1]), 1.0) * (1 - t.terminated[:1])
        expected = q0[0, t.actions[0, 0]] - 0.99 * v_next[0]
    assert r["q"][0, 0] == pytest.approx(expected.item(), rel=1e-5)
    metrics = reward_recovery(r, t)
    assert set(metrics) == {"reward_mse_q", "reward_corr_q", "reward_mse_v", "reward_corr_v"}
    with pytest.raises(ValueError, match="no reward"):
        learner("bc").recovered_rewards(t)


@pytest.fixture(scope="module")
def gems_demos():
    return load_transitions(games.load("gems"), expert="gems_planner", transitions=5000, seed=0)


@pytest.mark.parametrize("name, updates, threshold", [("bc", 1000, 6.0), ("mamql", 800, 2.0)])
def test_learns_gems_from_5000_expert_transitions(gems_demos, name, updates, threshold):
    """Random play earns 0.3 per agent, the expert 28; the thresholds sit below what seeds 0 and 1
    reach (bc 9.5 to 12, mamql 3.3 to 4.0) and far above random."""
    m = learner(name, transitions=5000)
    m.expert = gems_demos
    while m.updates < updates:
        m.train_step()
    assert m.evaluate(64)[0] > threshold


def test_a_game_paying_the_recovered_reward_pays_exactly_it_and_keeps_the_games_own():
    from equilibria.games.reward_model import RewardModelGame

    m = learner("mamql_offline", "gems(max_steps=1)")
    for _ in range(3):
        m.train_step()
    game = games.load("gems(max_steps=1)")  # every step ends its episode: the next observation is the final one
    paid = RewardModelGame(game, m.reward_model("q"), "mamql").simulator(8, seed=4)
    own = game.simulator(8, seed=4)
    obs = torch.as_tensor(own.observe()["agents"])
    actions = np.random.default_rng(0).integers(0, 5, (8, 2))
    res, ref = paid.step({"agents": actions}), own.step({"agents": actions})
    assert np.array_equal(res.info["game_rewards"]["agents"], ref.rewards["agents"])
    assert ref.final_obs is not None and not np.array_equal(ref.final_obs["agents"], ref.obs["agents"])
    final = torch.as_tensor(ref.final_obs["agents"])
    with torch.no_grad():
        for i in range(2):
            q = m.q(i, obs).gather(1, torch.as_tensor(actions[:, i:i + 1])).squeeze(1)
            v_final = soft_value(m.q(i, final), 1.0)  # truncated, not terminated: bootstraps on the final observation
            assert np.allclose(res.rewards["agents"][:, i], (q - 0.99 * v_final).numpy(), atol=1e-5)
    assert not np.allclose(res.rewards["agents"], ref.rewards["agents"])
