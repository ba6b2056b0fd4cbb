import numpy as np
import pytest

from equilibria import games


def test_batched_reset_and_step_shapes():
    g = games.load("cooperative_navigation(num_agents=4, num_landmarks=2)")
    obs = g.reset(num_envs=8, seed=0)
    assert obs.shape == (8, 4, g.obs_dim) and obs.dtype == np.float32
    res = g.step(np.zeros((8, 4), dtype=int))
    assert res.rewards.shape == (8, 4) and res.terminated.shape == (8,)
    assert g.global_state().shape[0] == 8


def test_autoreset_keeps_final_observation():
    g = games.load("cooperative_navigation(max_steps=3)")
    g.reset(num_envs=2, seed=1)
    for _ in range(2):
        assert g.step(np.ones((2, 3), dtype=int)).final_obs is None
    res = g.step(np.ones((2, 3), dtype=int))
    assert res.truncated.all() and not res.terminated.any()
    assert res.final_obs is not None and not np.allclose(res.final_obs, res.obs)
    assert np.all(g.t == 0)


def test_single_state_view_matches_batched():
    g = games.load("cooperative_navigation")
    rng = np.random.default_rng(0)
    state = g.new_initial_state(seed=5)
    sim = g.spawn()
    sim.reset(1, seed=5)
    for _ in range(25):
        joint = rng.integers(0, 5, size=3)
        state.apply_actions(joint.tolist())
        res = sim.step(joint[None], autoreset=False)
        np.testing.assert_array_equal(state.observation(1), res.obs[0, 1])
        np.testing.assert_array_equal(state.rewards(), res.rewards[0])
    assert state.is_terminal() and state.truncated


def test_identical_to_mpe2_simple_spread():
    """Differential: same world state and actions give the same observations and rewards as mpe2."""
    simple_spread = pytest.importorskip("mpe2.simple_spread_v3")
    for seed in range(3):
        env = simple_spread.parallel_env(N=3, local_ratio=0.5, max_cycles=25, continuous_actions=False)
        obs, _ = env.reset(seed=seed)
        world = env.unwrapped.world
        g = games.load("cooperative_navigation")
        g.reset(1, seed=0)
        st = g.get_state()
        st["pos"] = np.array([[a.state.p_pos for a in world.agents]])
        st["vel"] = np.array([[a.state.p_vel for a in world.agents]])
        st["landmarks"] = np.array([[lm.state.p_pos for lm in world.landmarks]])
        g.set_state(st)
        rng = np.random.default_rng(seed)
        for _ in range(25):
            acts = rng.integers(0, 5, size=3)
            obs, rew, _, trunc, _ = env.step({a: int(x) for a, x in zip(env.agents, acts)})
            res = g.step(acts[None], autoreset=False)
            np.testing.assert_allclose(res.obs[0], np.stack([obs[a] for a in env.possible_agents]), atol=1e-6)
            np.testing.assert_allclose(res.rewards[0], [rew[a] for a in env.possible_agents], atol=1e-9)
        assert res.truncated[0] and all(trunc.values())


def test_bad_actions_are_rejected():
    g = games.load("cooperative_navigation")
    g.reset(2, seed=0)
    with pytest.raises(ValueError, match="shape"):
        g.step(np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        g.step(np.full((2, 3), 7))
