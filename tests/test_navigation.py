import numpy as np
import pytest
from needs import need

from equilibria import games


def test_batched_reset_and_step_shapes():
    g = games.load("cooperative_navigation(num_agents=4, num_landmarks=2)")
    sim = g.simulator(8, seed=0)
    obs = sim.observe()["agents"]
    assert obs.shape == (8, 4, g.obs_dim) and obs.dtype == np.float32
    res = sim.step({"agents": np.zeros((8, 4), dtype=int)})
    assert res.rewards["agents"].shape == (8, 4) and res.terminated.shape == (8,)
    assert sim.global_state().shape == (8, *g.state_shape)
    assert res.active["agents"].all()


def test_autoreset_keeps_final_observation():
    g = games.load("cooperative_navigation(max_steps=3)")
    sim = g.simulator(2, seed=1)
    ones = {"agents": np.ones((2, 3), dtype=int)}
    for _ in range(2):
        assert sim.step(ones).final_obs is None
    res = sim.step(ones)
    assert res.truncated.all() and not res.terminated.any()
    assert res.final_obs is not None and not np.allclose(res.final_obs["agents"], res.obs["agents"])
    assert res.final_active["agents"].all() and res.final_state.shape == (2, *g.state_shape)
    assert np.all(sim.t == 0)


def test_single_state_view_matches_batched():
    g = games.load("cooperative_navigation")
    rng = np.random.default_rng(0)
    state = g.new_initial_state(seed=5)
    sim = g.simulator(1, seed=5)
    for _ in range(25):
        joint = rng.integers(0, 5, size=3)
        state.apply_actions(joint.tolist())
        res = sim.step({"agents": joint[None]}, autoreset=False)
        np.testing.assert_array_equal(state.observation(1), res.obs["agents"][0, 1])
        np.testing.assert_array_equal(state.rewards(), res.rewards["agents"][0])
    assert state.is_terminal() and state.truncated


def test_identical_to_mpe2_simple_spread():
    """Differential: same world state and actions give the same observations and rewards as mpe2."""
    simple_spread = need("mpe2.simple_spread_v3", "mpe")
    g = games.load("cooperative_navigation")
    for seed in range(3):
        env = simple_spread.parallel_env(N=3, local_ratio=0.5, max_cycles=25, continuous_actions=False)
        obs, _ = env.reset(seed=seed)
        world = env.unwrapped.world
        sim = g.simulator(1, seed=0)
        st = sim.get_state()
        st["pos"] = np.array([[a.state.p_pos for a in world.agents]])
        st["vel"] = np.array([[a.state.p_vel for a in world.agents]])
        st["landmarks"] = np.array([[lm.state.p_pos for lm in world.landmarks]])
        sim.set_state(st)
        rng = np.random.default_rng(seed)
        for _ in range(25):
            acts = rng.integers(0, 5, size=3)
            obs, rew, _, trunc, _ = env.step({a: int(x) for a, x in zip(env.agents, acts)})
            res = sim.step({"agents": acts[None]}, autoreset=False)
            np.testing.assert_allclose(res.obs["agents"][0], np.stack([obs[a] for a in env.possible_agents]), atol=1e-6)
            np.testing.assert_allclose(res.rewards["agents"][0], [rew[a] for a in env.possible_agents], atol=1e-9)
        assert res.truncated[0] and all(trunc.values())


def test_bad_actions_are_rejected():
    sim = games.load("cooperative_navigation").simulator(2, seed=0)
    with pytest.raises(ValueError, match="shape"):
        sim.step({"agents": np.zeros((3, 3), dtype=int)})
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        sim.step({"agents": np.full((2, 3), 7)})
    with pytest.raises(ValueError, match="missing"):
        sim.step({})


def test_population_varies_per_episode_and_absent_agents_take_no_part():
    g = games.load("cooperative_navigation(num_agents=8, num_landmarks=8, population=[2, 8])")
    sim = g.simulator(256, seed=0)
    counts = sim.active()["agents"].sum(1)
    assert counts.min() == 2 and counts.max() == 8 and len(np.unique(counts)) == 7
    # the present agents are the first n slots; absent ones observe zeros and are never rewarded
    active = sim.active()["agents"]
    assert np.all(active == (np.arange(8)[None] < counts[:, None]))
    acts = np.random.default_rng(0).integers(0, 5, size=(256, 8))
    res = sim.step({"agents": acts})
    assert np.all(res.obs["agents"][~active] == 0) and np.all(res.rewards["agents"][~active] == 0)
    # an absent agent's action changes nothing
    other = g.simulator(256, seed=0)
    res2 = other.step({"agents": np.where(active, acts, 4 - acts)})
    np.testing.assert_array_equal(res.obs["agents"], res2.obs["agents"])
    # the same world with the absent slots removed gives the same rewards for a 2-agent episode
    e = int(np.flatnonzero(counts == 2)[0])
    two = games.load("cooperative_navigation(num_agents=2, num_landmarks=2)").simulator(1, seed=0)
    st = two.get_state()
    before = g.simulator(256, seed=0).get_state()  # the world before the step
    st["pos"], st["vel"] = before["pos"][[e], :2], before["vel"][[e], :2]
    st["landmarks"] = before["landmarks"][[e], :2]
    two.set_state(st)
    r2 = two.step({"agents": acts[[e], :2]})
    np.testing.assert_allclose(r2.rewards["agents"][0], res.rewards["agents"][e, :2])
    np.testing.assert_allclose(r2.obs["agents"][0, :, :4], res.obs["agents"][e, :2, :4])
