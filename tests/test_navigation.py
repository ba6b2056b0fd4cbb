import numpy as np
import pytest
from needs import need

from equilibria import games
from equilibria.games.navigation import NavigationSimulator


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


# ----------------------------------------------------------------------------- numpy reference
# The simulator's numpy implementation before the numba kernels, kept as the reference they must
# reproduce: whole-batch array expressions with [E, N, N, 2] pairwise temporaries.
DT, DAMPING, ACCEL, AGENT_SIZE, CONTACT_FORCE, CONTACT_MARGIN = 0.1, 0.25, 5.0, 0.15, 1e2, 1e-3
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)


class NumpyNavigation(NavigationSimulator):
    collisions = 0  # pairs in contact seen by _rewards, to check that the comparison covers collisions

    def _pairwise(self):
        delta = self.pos[:, :, None, :] - self.pos[:, None, :, :]  # [E, N, N, 2], i minus j
        return delta, np.sqrt((delta**2).sum(-1))

    def _step(self, actions):
        g = self.game
        force = MOVES[actions["agents"]] * ACCEL  # [E, N, 2]
        n = g.num_agents
        if n > 1:
            delta, dist = self._pairwise()
            penetration = np.logaddexp(0.0, -(dist - 2 * AGENT_SIZE) / CONTACT_MARGIN) * CONTACT_MARGIN
            safe = np.where(dist > 0, dist, 1.0)
            contact = CONTACT_FORCE * (delta / safe[..., None]) * penetration[..., None]
            contact[:, np.arange(n), np.arange(n)] = 0.0
            if g.population is not None:
                contact *= (self.present[:, :, None] & self.present[:, None, :])[..., None]
            force = force + contact.sum(axis=2)
        self.pos = self.pos + self.vel * DT
        self.vel = self.vel * (1.0 - DAMPING) + force * DT
        if g.population is not None:
            self.vel = np.where(self.present[..., None], self.vel, 0.0)
        return {"agents": self._rewards()}, np.zeros(self.num_envs, dtype=bool)

    def _rewards(self):
        g = self.game
        d = np.sqrt(((self.pos[:, None, :, :] - self.landmarks[:, :, None, :]) ** 2).sum(-1))  # [E, L, N]
        if g.population is not None:
            d = np.where(self.present[:, None, :], d, np.inf)
            global_r = -np.where(self.present, d.min(axis=2), 0.0).sum(axis=1)
        else:
            global_r = -d.min(axis=2).sum(axis=1)
        local = np.zeros((self.num_envs, g.num_agents))
        if g.num_agents > 1:
            _, dist = self._pairwise()
            hit = dist < 2 * AGENT_SIZE
            hit[:, np.arange(g.num_agents), np.arange(g.num_agents)] = False
            if g.population is not None:
                hit &= self.present[:, :, None] & self.present[:, None, :]
            self.collisions += int(hit.sum())
            local = -hit.sum(axis=2).astype(np.float64)
        return global_r[:, None] * (1.0 - g.local_ratio) + local * g.local_ratio

    def _observe(self):
        g = self.game
        e, n, m = self.num_envs, g.num_agents, g.num_landmarks
        obs = np.zeros((e, n, g.obs_dim), dtype=np.float32)
        obs[:, :, 0:2] = self.vel
        obs[:, :, 2:4] = self.pos
        rel_l = self.landmarks[:, None, :, :] - self.pos[:, :, None, :]  # [E, N, L, 2]
        if g.population is not None:
            rel_l = np.where(self.present[:, None, :, None], rel_l, 0.0)
        obs[:, :, 4:4 + 2 * m] = rel_l.reshape(e, n, 2 * m)
        if n > 1:
            rel_a = self.pos[:, None, :, :] - self.pos[:, :, None, :]  # [E, i, j, 2]: j relative to i
            if g.population is not None:
                rel_a = np.where(self.present[:, None, :, None], rel_a, 0.0)
            rel_o = rel_a[:, ~np.eye(n, dtype=bool)].reshape(e, n, n - 1, 2)
            obs[:, :, 4 + 2 * m:4 + 2 * m + 2 * (n - 1)] = rel_o.reshape(e, n, 2 * (n - 1))
        if g.population is not None:
            obs *= self.present[..., None]
        return {"agents": obs}


@pytest.mark.parametrize("spec", ["cooperative_navigation(num_agents=1, num_landmarks=2)",
                                  "cooperative_navigation(num_agents=3, num_landmarks=3)",
                                  "cooperative_navigation(num_agents=4, num_landmarks=2, max_steps=7, local_ratio=0.3)",
                                  "cooperative_navigation(num_agents=6, num_landmarks=6, population=[2, 6])"])
def test_kernels_match_the_numpy_reference(spec):
    """The compiled step and observation reproduce the numpy reference over several hundred steps
    of 16 environments with autoresets (and, with a population, absent agents)."""
    game = games.load(spec)
    sim, ref = game.simulator(16, seed=3), NumpyNavigation(game, 16, seed=3)
    n = game.num_agents
    np.testing.assert_allclose(sim.observe()["agents"], ref.observe()["agents"], atol=1e-5)
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(300):
        # drift agents together half the time so that contacts and collisions are frequent
        acts = rng.integers(0, 5, size=(16, n)) if rng.random() < 0.5 else np.tile(rng.integers(0, 5), (16, n))
        res, want = sim.step({"agents": acts}), ref.step({"agents": acts})
        np.testing.assert_allclose(res.obs["agents"], want.obs["agents"], atol=1e-5)
        np.testing.assert_allclose(res.rewards["agents"], want.rewards["agents"], atol=1e-5)
        np.testing.assert_array_equal(res.active["agents"], want.active["agents"])
        np.testing.assert_array_equal(res.truncated, want.truncated)
        assert (res.final_obs is None) == (want.final_obs is None)
        if res.final_obs is not None:
            resets += 1
            np.testing.assert_allclose(res.final_obs["agents"], want.final_obs["agents"], atol=1e-5)
            np.testing.assert_allclose(res.final_state, want.final_state, atol=1e-5)
        np.testing.assert_allclose(sim.global_state(), ref.global_state(), atol=1e-5)
    assert resets >= 10
    assert n == 1 or ref.collisions > 0


def test_landmark_actions_steer_to_the_named_landmark_and_assignment_decides_the_return():
    """actions='landmarks': an agent that names a landmark ends next to it, and the return ranks
    assignments as coverage should: one landmark each beats everyone on the same landmark."""
    g = games.load("cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0, actions='landmarks')")
    assert g.groups[0].action.n == 3

    def episode(choice: np.ndarray) -> tuple[float, np.ndarray]:
        sim = g.simulator(64, seed=5)
        total = 0.0
        for _ in range(25):
            total += sim.step({"agents": choice}, autoreset=False).rewards["agents"].mean()
        return total, np.linalg.norm(sim.pos - sim.landmarks[:, choice[0]], axis=-1)

    spread, dist = episode(np.tile(np.arange(3), (64, 1)))
    # the controller's bang-bang limit cycle stays within an agent's size, unless another agent's
    # body sits in the way (the controller does not plan around contacts)
    assert np.mean(dist < 0.2) > 0.9, np.sort(dist.ravel())[-10:]
    crowded, _ = episode(np.zeros((64, 3), dtype=np.int64))
    assert spread > crowded + 5
    with pytest.raises(ValueError, match="fixed population"):
        games.load("cooperative_navigation(num_agents=3, num_landmarks=3, population=[2, 3], actions='landmarks')")
