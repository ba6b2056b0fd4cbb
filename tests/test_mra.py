"""MRA-style policy sets (marl.mra) and the population-varying games they train on: entity
observations of cooperative navigation, resource occupation, the latent-assignment step under its
KL constraint, adaptation by first-order steps on the latent, learning on a small budget,
checkpoints, and the `populations` scenario kind end to end."""

import io

import numpy as np
import pytest
import torch

from equilibria import games, marl, scenarios
from equilibria.games.testing import markov_api_test
from equilibria.marl.mra import constrained_tilt, latent_score_gradient, with_population

NAV = 'cooperative_navigation(num_agents=3, observation="entities")'


# ----------------------------------------------------------------------------- games
@pytest.mark.parametrize("spec", [NAV, "resource_occupation(num_agents=4)", "resource_occupation(num_agents=1)",
                                  'cooperative_navigation(num_agents=5, num_landmarks=5, population=[2, 5], '
                                  'observation="entities")'])
def test_population_games_keep_the_markov_contract(spec):
    markov_api_test(games.load(spec))


def test_entity_observation_carries_the_mpe_observation():
    mpe = games.load("cooperative_navigation(num_agents=4, num_landmarks=4)").simulator(3, seed=5)
    ent = games.load('cooperative_navigation(num_agents=4, num_landmarks=4, observation="entities")').simulator(3, seed=5)
    rng = np.random.default_rng(0)
    for _ in range(6):
        a = rng.integers(0, 5, size=(3, 4))
        flat, parts = mpe.step({"agents": a}).obs["agents"], ent.step({"agents": a}).obs["agents"]
    np.testing.assert_array_equal(parts["self"], flat[..., :4])
    np.testing.assert_array_equal(parts["landmarks"][..., 1:3].reshape(3, 4, -1), flat[..., 4:12])
    np.testing.assert_array_equal(parts["agents"][..., 1:3].reshape(3, 4, -1), flat[..., 12:18])
    assert np.all(parts["landmarks"][..., 0] == 1) and np.all(parts["agents"][..., 0] == 1)
    # the crowd column counts the other agents within two agent radii of the landmark
    pos, lm = ent.pos, ent.landmarks
    d = np.linalg.norm(pos[:, None, :, None] - lm[:, None, None], axis=-1)  # [E, observer, agent, landmark]
    near = (d <= 0.3) & ~np.eye(4, dtype=bool)[None, :, :, None]
    np.testing.assert_array_equal(parts["landmarks"][..., 3], near.sum(2).astype(np.float32))
    # agents that see no one cannot count them either
    blind = games.load('cooperative_navigation(num_agents=4, num_landmarks=4, view_radius=0, observation="entities")')
    sim = blind.simulator(3, seed=5)
    sim.pos[:] = sim.landmarks  # everyone parked on a landmark
    obs = sim.observe()["agents"]
    assert np.all(obs["landmarks"][..., 3] == 0) and np.all(obs["agents"] == 0)


def test_resource_reward_is_the_occupied_fraction():
    g = games.load("resource_occupation(num_agents=3, num_resources=4, radius=0.2)")
    sim = g.simulator(16, seed=1)
    rng = np.random.default_rng(1)
    for _ in range(10):
        res = sim.step({"agents": rng.integers(0, 5, size=(16, 3))})
        d = np.linalg.norm(sim.pos[:, :, None] - sim.landmarks[:, None], axis=-1)  # [E, agent, resource]
        expected = (d <= 0.2).any(1).mean(1)
        np.testing.assert_allclose(res.rewards["agents"], np.repeat(expected[:, None], 3, 1))
    # an agent parked on every resource holds them all
    sim.pos[:, :3] = sim.landmarks[:, :3]
    sim.vel[:] = 0
    sim.landmarks[:, 3] = sim.landmarks[:, 0]
    assert np.allclose(sim.step({"agents": np.zeros((16, 3), int)}).rewards["agents"], 1.0)


def test_with_population_scales_landmarks_and_resources():
    nav = with_population(games.load(NAV), 7)
    assert nav.max_agents == 7 and nav.num_landmarks == 7 and nav.observation == "entities"
    res = with_population(games.load("resource_occupation(num_agents=3, num_resources=5)"), 6)
    assert res.max_agents == 6 and res.num_landmarks == 5  # an explicit resource count stays
    with pytest.raises(ValueError, match="entity"):
        marl.make("mra", games.load("cooperative_navigation"))


# ----------------------------------------------------------------------------- pure pieces
def test_constrained_tilt_meets_its_bound():
    prior = np.full(4, 0.25)
    scores = np.array([1.0, 3.0, 2.0, -1.0])
    for bound in (0.05, 0.3, 1.0):
        p = constrained_tilt(prior, scores, bound)
        kl = float(np.sum(p * np.log(p / prior)))
        assert kl == pytest.approx(bound, rel=1e-3) and np.argmax(p) == 1
        assert list(np.argsort(p)) == list(np.argsort(scores))  # the order of the scores
    np.testing.assert_allclose(constrained_tilt(prior, np.full(4, 2.0), 0.5), prior)  # nothing to prefer
    np.testing.assert_allclose(constrained_tilt(prior, scores, 0.0), prior)
    # an unscored mode sits at the mean score
    p = constrained_tilt(prior, np.array([0.0, np.nan, 2.0, 4.0]), 0.2)
    assert p[0] < p[1] < p[3]


def test_score_gradient_points_to_the_better_mode_at_any_population():
    rng = np.random.default_rng(0)
    top = {}
    for n in (1, 3, 9):
        z = rng.integers(0, 4, size=(256, n))
        returns = np.repeat((z == 2).mean(1, keepdims=True), n, 1)  # a shared reward: the share playing mode 2
        g = latent_score_gradient(z, returns, np.ones_like(z, bool), np.full(4, 0.25))
        assert np.argmax(g) == 2 and g[2] > 0 and np.all(np.delete(g, 2) < 0)
        top[n] = g[2]
    assert top[9] > 0.5 * top[1]  # the team's return carries every agent's draw: no 1/n shrinkage
    absent = np.zeros((256, 3), bool)
    absent[:, 0] = True
    g = latent_score_gradient(rng.integers(0, 4, size=(256, 3)), rng.random((256, 3)), absent, np.full(4, 0.25))
    assert np.all(np.isfinite(g))


def test_adaptation_moves_the_latent_to_the_mode_that_pays():
    learner = marl.make("mra", games.load(NAV), seed=0, num_envs=4, adapt_steps=20, adapt_episodes=8)

    def play(game, probs, episodes, seed, sample, record=False):  # mode 1 pays, whoever plays it
        z = np.random.default_rng(seed).choice(4, size=(episodes, game.max_agents), p=probs)
        return {"returns": (z == 1).astype(float), "present": np.ones_like(z, bool), "z": torch.as_tensor(z)}

    learner._play = play
    probs, curve = learner.adapt(with_population(learner.game, 5))
    assert probs[1] > 0.9 and curve[-1] > 0.8 > 0.4 > curve[0]


# ----------------------------------------------------------------------------- learning
def test_mra_learns_on_a_small_budget():
    learner = marl.make("mra", games.load(NAV), seed=0, num_envs=16, populations=[1, 2], lr=2e-3)
    game2 = with_population(learner.game, 2)
    before = learner.returns_on(game2, learner.prior, 64, deterministic=False).mean()
    for _ in range(60):
        stats = learner.train_step()
    assert {"disc_accuracy", "mi_bound", "mi_coef", "population"} <= set(stats)
    after = learner.returns_on(game2, learner.latent_probs[2], 64, deterministic=False).mean()
    assert after > before + 4.0, (before, after)  # measured: -29.5 -> -22.3
    assert all(abs(p.sum() - 1) < 1e-9 and p.min() >= 0 for p in learner.latent_probs.values())
    assert 0.0 <= stats["mi_coef"] <= learner.config.mi_coef_max


def test_discriminator_tells_distinct_modes_apart():
    learner = marl.make("mra", games.load(NAV), seed=0, num_envs=16, populations=[3], latent_init_std=3.0)
    torch.nn.init.normal_(learner.nets.actor[-1].weight, std=3.0)  # modes that act differently
    assert learner.discriminator_accuracy(learner.game, 32) < 0.4  # untrained: near chance (0.25)
    for i in range(15):
        batch = learner._play(learner.game, learner.prior, 32, i, sample=True, record=True)
        learner._update_discriminator({k: torch.as_tensor(v) for k, v in batch["obs"].items()}, batch["z"])
    assert learner.discriminator_accuracy(learner.game, 32) > 0.5  # measured: 0.69 on fresh episodes


def test_checkpoint_round_trip_and_unimodal_variant():
    a = marl.make("mra", games.load(NAV), seed=3, num_envs=4)
    a.train_step()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = marl.make("mra", games.load(NAV), seed=9, num_envs=4)
    b.load_state_dict(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(a.evaluation_returns(8), b.evaluation_returns(8))
    assert a.train_step()["episode_return"] == b.train_step()["episode_return"]
    state = a.game.new_initial_state(seed=0)
    for player in range(3):  # the policy set acts for single seats (tournaments, evaluation grids)
        probs = a.policy().action_probabilities(state, player)
        assert sorted(probs) == list(range(5)) and sum(probs.values()) == pytest.approx(1.0)
        assert sorted(a.policy(deterministic=True).action_probabilities(state, player).values()) == [0, 0, 0, 0, 1]
    u = marl.make("mra_unimodal", games.load(NAV), seed=0, num_envs=4)
    assert u.config.num_latents == 1 and "disc_accuracy" not in u.train_step() and u.extra_evaluation(4) == {}


# ----------------------------------------------------------------------------- the scenario kind
def test_populations_scenario_errors_name_the_field():
    with pytest.raises(scenarios.ConfigError, match="game.*entity"):
        scenarios.validate(scenarios.load("mra-populations", ["game=cooperative_navigation"]))
    with pytest.raises(scenarios.ConfigError, match="mra.*num_latents"):
        scenarios.validate(scenarios.load("mra-populations", ["mra.num_latents=0"]))
    with pytest.raises(scenarios.ConfigError, match="heldout"):
        scenarios.validate(scenarios.load("mra-populations", ["heldout=[]"]))
    with pytest.raises(scenarios.ConfigError, match="heldout.*unseen"):
        scenarios.validate(scenarios.load("mra-populations", ["heldout=[4, 6]"]))
    with pytest.raises(scenarios.ConfigError, match="heldout.*memory"):  # refused before any training
        scenarios.validate(scenarios.load("mra-populations", ["heldout=[4, 100000]"]))
    with pytest.raises(scenarios.ConfigError, match="train.*memory"):
        scenarios.validate(scenarios.load("mra-populations", ["train=[3, 6000]"]))
    with pytest.raises(scenarios.ConfigError, match="mra.populations"):
        scenarios.validate(scenarios.load("mra-populations", ["mra.populations=[3]"]))


def test_populations_scenario_runs_resumes_and_reports(tmp_path):
    s = scenarios.load("mra-populations", [
        "budget.steps=200", "seeds=1", "heldout=[4]", "eval_episodes=4", "mra.num_envs=4", "mra.adapt_steps=2",
        "mra.num_latents=3",
        "mra.adapt_episodes=2", f"game={NAV}"])
    res = scenarios.run(s, out=tmp_path)
    text = (res.run_dir / "results.md").read_text()
    assert "4 (held out)" in text and "random latent" in text
    assert (res.run_dir / "plots" / "returns.png").exists() and (res.run_dir / "plots" / "adaptation.png").exists()
    jobs = sorted(p.name for p in (res.run_dir / "seeds").rglob("*.json"))
    assert jobs == ["mra.json", "reference_4.json", "unimodal.json"]
    import json

    stored = {j: json.loads((res.run_dir / "seeds" / "0" / j).read_text()) for j in jobs}
    assert [stored[j]["num_latents"] for j in jobs] == [3, 1, 1]  # the baselines have no latent
    header = (res.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "seed,population,mra,random latent,unimodal,reference,disc_accuracy"
    stamp = (res.run_dir / "seeds" / "0" / "mra.json").stat().st_mtime_ns
    scenarios.run(None, resume=res.run_dir)
    assert (res.run_dir / "seeds" / "0" / "mra.json").stat().st_mtime_ns == stamp  # nothing finished is redone
