"""OSPO, GRPO and dispatch_ppo (marl.ospo) on the ride-dispatch game: the advantages and the
asymmetric clip on hand-computed examples, the scores the platform receives, the stored
behaviour log-probabilities, checkpoints through torch.load(weights_only=True), and a short
learning check on a small city."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from equilibria import games, marl
from equilibria.games.dispatch_platform import run_episodes
from equilibria.marl import ospo  # registers ospo, grpo, dispatch_ppo
from equilibria.marl.networks import as_tensors
from equilibria.marl.runtime import ppo_clip_loss

TINY = "ride_dispatch(num_vehicles=10, grid=5, max_steps=6, demand=0.5)"
FAST = dict(num_envs=2, batch_size=32, updates_per_episode=2, lr=1e-3)


def _cumulative(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    after = np.cumsum(rewards, axis=0)
    return after - rewards, after


# ----------------------------------------------------------------------------- advantages
def test_ospo_advantage_group_normalisation_and_fairness_by_hand():
    # env 0: vehicles 0, 1, 3 got orders worth 3, 1, 2 (vehicle 2 none): group mean 2, std
    # sqrt(2/3); the fleet's income spread goes from 0 to std([3, 1, 0, 2]) = sqrt(1.25).
    # env 1: two vehicles got 5 each (std 0 -> normalised 0), spread 0 -> std([1, 6, 6, 1]) = 2.5
    rewards = np.array([[[3.0, 1.0, 0.0, 2.0], [0.0, 5.0, 5.0, 0.0]]])
    assigned = np.array([[[True, True, False, True], [False, True, True, False]]])
    before = np.array([[[0.0] * 4, [1.0] * 4]])
    after = before + rewards
    z = np.sqrt(1.5)  # (3 - 2) / sqrt(2/3)
    np.testing.assert_allclose(ospo.group_normalize(rewards, assigned)[0, 0], [z, -z, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ospo.fairness_change(before, after), [[np.sqrt(1.25), 2.5]])
    adv = ospo.ospo_advantages(rewards, assigned, before, after)
    np.testing.assert_allclose(adv[0, 0], [z - np.sqrt(1.25), -z - np.sqrt(1.25), 0.0, -np.sqrt(1.25)], atol=1e-6)
    np.testing.assert_allclose(adv[0, 1], [0.0, -2.5, -2.5, 0.0], atol=1e-6)
    half = ospo.ospo_advantages(rewards, assigned, before, after, fairness_weight=0.5)
    np.testing.assert_allclose(half[0, 0], [z - 0.5 * np.sqrt(1.25), -z - 0.5 * np.sqrt(1.25), 0.0, -0.5 * np.sqrt(1.25)], atol=1e-6)


def test_grpo_reward_to_go_reverses_a_one_step_preference_by_hand():
    # two vehicles, three steps, gamma 0.5. Vehicle 0 earns 3 now and 8 two steps later; vehicle 1
    # earns 4 now and nothing more. Reward-to-go at t=0: 3 + 0.25 * 8 = 5 against 4.
    rewards = np.array([[[3.0, 4.0]], [[0.0, 0.0]], [[8.0, 0.0]]])
    assigned = rewards > 0
    before, after = _cumulative(rewards)
    np.testing.assert_allclose(ospo.reward_to_go(rewards, 0.5)[:, 0], [[5.0, 4.0], [4.0, 0.0], [8.0, 0.0]])
    # income spread: 0 -> std([3, 4]) = 0.5 at t=0, unchanged at t=1, -> std([11, 4]) = 3.5 at t=2
    np.testing.assert_allclose(ospo.fairness_change(before, after)[:, 0], [0.5, 0.0, 3.0])
    grpo = ospo.grpo_advantages(rewards, assigned, before, after, gamma=0.5)
    one_step = ospo.ospo_advantages(rewards, assigned, before, after)
    # the group of t=0 is {0, 1}: normalised reward-to-go (5, 4) -> (1, -1); one-step (3, 4) -> (-1, 1)
    np.testing.assert_allclose(grpo[0, 0], [1.0 - 0.5, -1.0 - 0.5], rtol=1e-6)
    np.testing.assert_allclose(one_step[0, 0], [-1.0 - 0.5, 1.0 - 0.5], rtol=1e-6)
    # a group of one normalises to 0, leaving the fairness term; nobody assigned at t=1
    np.testing.assert_allclose(grpo[2, 0], [-3.0, 0.0], atol=1e-6)
    assert np.all(grpo[1] == 0.0)


# ----------------------------------------------------------------------------- loss terms
def test_asymmetric_clip_on_a_worked_example():
    # ratios 1.5, 1.25, 0.5, 0.5 with advantages +1, +1, -1, +1; eps 0.2, ceil rate 1.4: the
    # ratio is clipped to [0.8, 1.28]. Surrogates min(r A, clip(r) A): 1.28, 1.25, -0.8, 0.5
    ratios = torch.tensor([1.5, 1.25, 0.5, 0.5])
    adv = torch.tensor([1.0, 1.0, -1.0, 1.0])
    old = torch.zeros(4)
    logp = ratios.log().requires_grad_()
    loss, frac = ospo.asymmetric_clip_loss(logp, old, adv, 0.2, 1.4)
    assert loss.item() == pytest.approx(-(1.28 + 1.25 - 0.8 + 0.5) / 4)
    assert frac.item() == pytest.approx(0.75)  # 1.5 and both 0.5s are outside
    loss.backward()
    # 1.25 is inside the asymmetric clip, so it still pulls (a symmetric clip at 1.2 stops it)
    np.testing.assert_allclose(logp.grad.numpy(), [0.0, -1.25 / 4, 0.0, -0.5 / 4], rtol=1e-6)
    symmetric, _ = ppo_clip_loss(ratios.log(), old, adv, 0.2)
    assert symmetric.item() == pytest.approx(-(1.2 + 1.2 - 0.8 + 0.5) / 4)
    same, _ = ospo.asymmetric_clip_loss(ratios.log(), old, adv, 0.2, 1.0)  # ceil rate 1 is plain PPO
    assert same.item() == pytest.approx(symmetric.item())


def test_kl_and_entropy_ignore_masked_rows():
    cur = torch.log(torch.tensor([[0.5, 0.5, 0.0]])).clamp(min=-1e9)
    tgt = torch.log(torch.tensor([[0.25, 0.75, 0.0]])).clamp(min=-1e9)
    # averaged over the two covered rows, as the reference's .mean() over a vehicle's orders
    expected = (0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)) / 2
    assert ospo.kl_divergence(cur, tgt).item() == pytest.approx(expected, rel=1e-6)
    assert ospo.kl_divergence(cur, cur).item() == 0.0
    assert ospo.entropy(cur).item() == pytest.approx(np.log(2.0))


# ----------------------------------------------------------------------------- the learner
def test_variants_defaults_and_preflight():
    c = marl.build_config("ospo")
    # the reference code's settings (train.py, Worker.train)
    assert (c.lr, c.lr_decay, c.batch_size, c.updates_per_episode, c.max_grad_norm) == (1e-5, 0.99, 256, 10, 1.0)
    assert (c.clip, c.clip_ceil_rate, c.kl_coef, c.kl_limit, c.entropy_coef) == (0.2, 1.4, 0.5, None, 0.05)
    assert (c.target_update, c.eval_every) == ("best", 10)
    assert (c.epsilon, c.epsilon_decay, c.epsilon_final, c.fairness_weight, c.hidden) == (1.0, 0.99, 0.0005, 1.0, 128)
    assert marl.build_config("grpo").advantage == "reward_to_go"
    ppo = marl.build_config("dispatch_ppo")
    assert (ppo.advantage, ppo.clip_ceil_rate, ppo.kl_coef, ppo.fairness_weight) == ("gae", 1.0, 0.0, 0.0)
    learner = marl.make("ospo", games.load(TINY))
    assert learner.epsilon == pytest.approx(0.99)  # decayed once before the first episode, as train.py
    learner.updates = 2000
    assert learner.epsilon == 0.0005
    with pytest.raises(ValueError, match="ride_dispatch"):
        marl.make("ospo", games.load("cooperative_navigation"))


def test_the_target_is_the_best_evaluated_scorer_and_kl_starts_when_evaluation_stalls():
    learner = marl.make("ospo", games.load(TINY), seed=0, eval_every=1, lr=1e-2, lr_decay=1.0)
    assert not learner.kl_on
    stats = learner.train_step()  # the first held-out evaluation always improves on -inf
    assert stats["heldout_reward"] == learner.best_reward and not learner.kl_on
    for tp, p in zip(learner.target.parameters(), learner.actor.parameters()):
        assert torch.equal(tp, p)
    learner.best_reward = float("inf")  # nothing can improve on it now
    before = [t.clone() for t in learner.target.parameters()]
    learner.train_step()
    assert learner.kl_on  # train.py's flag: KL to the best scorer from now on
    assert all(torch.equal(a, b) for a, b in zip(before, learner.target.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(before, learner.actor.parameters()))
    state = learner.state_dict()
    fresh = marl.make("ospo", games.load(TINY), seed=0, eval_every=1)
    fresh.load_state_dict(state)
    assert fresh.kl_on and fresh.best_reward == float("inf")


@pytest.mark.parametrize("limit", [1e-12, None])
def test_the_kl_limit_skips_steps_only_when_set(limit):
    learner = marl.make("ospo", games.load(TINY), seed=0, eval_every=1, lr=1e-2, lr_decay=1.0, kl_limit=limit)
    learner.train_step()  # the first evaluation copies the scorer into the target
    learner.best_reward = float("inf")
    learner.train_step()  # the scorer moves away from the target; this evaluation turns the KL term on
    assert learner.kl_on
    before = [p.clone() for p in learner.actor.parameters()]
    stats = learner.train_step()
    moved = any(not torch.equal(a, p) for a, p in zip(before, learner.actor.parameters()))
    if limit is None:
        assert moved and stats["skipped"] == 0
    else:  # Worker.train's "Too Large KL": every step of the update skipped, the scorer where it was
        assert not moved and stats["skipped"] == learner.config.updates_per_episode


def test_scores_exploration_and_stored_log_probabilities():
    learner = marl.make("ospo", games.load(TINY), seed=0, **FAST)
    sim = learner.game.simulator(3, seed=1)
    order = sim.candidates()["order"]
    has = order >= 0
    assert has.any()
    scores = learner.scorer()(sim)
    # the policy's probabilities over each vehicle's candidates; "no order" scores 0
    assert np.all(scores[..., 0] == 0.0) and np.all(scores[..., 1:][~has] == 0.0)
    rows_with = has.any(-1)
    np.testing.assert_allclose(scores[..., 1:].sum(-1)[rows_with], 1.0, rtol=1e-5)
    explored = learner.scorer(1.0, np.random.default_rng(0))(sim)
    assert np.all(explored[..., 1:][has] == ospo.EXPLORE_SCORE)
    # the samples are the vehicles that got an order; their stored log-probabilities are the
    # actor's at the observation they were scored on
    batch = learner.collect()
    t, e, n = np.nonzero(batch["assigned"])
    assert len(t) > 0 and np.all(batch["rows"][t, e, n] > 0) and np.all(batch["rows"][~batch["assigned"]] == 0)
    obs = as_tensors({p: v[t, e, n] for p, v in batch["obs"].items()})
    with torch.no_grad():
        logp = learner._log_probs(learner.actor, obs)
    chosen = logp.gather(-1, torch.as_tensor(batch["rows"][t, e, n]).unsqueeze(-1)).squeeze(-1).numpy()
    np.testing.assert_allclose(chosen, batch["logp"][t, e, n], atol=1e-5)
    assert np.all(np.isfinite(chosen)) and np.all(chosen <= 0)


@pytest.mark.parametrize("name", ["ospo", "grpo", "dispatch_ppo"])
def test_checkpoint_round_trip_with_weights_only(name):
    game = games.load(TINY)
    a = marl.make(name, game, seed=0, **FAST)
    a.train_step()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = marl.make(name, game, seed=123, **FAST)
    b.load_state_dict(torch.load(buf, weights_only=True))
    sa, sb = a.train_step(), b.train_step()
    sa.pop("steps_per_second"), sb.pop("steps_per_second")
    assert sa == sb and sa["env_steps"] == 2 * 2 * 6
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters()):
        assert torch.equal(pa, pb)
    assert a.evaluate(4) == b.evaluate(4)
    m = a.evaluation_metrics(4)
    assert {"served", "reward", "pickup_min", "income_std", "return"} <= set(m) and m["return"].shape == (4,)


def test_ospo_learns_to_dispatch_on_a_small_city():
    """50 vehicles on a 10 x 10 grid (4 km across), 30 one-minute steps; 20 updates of 4
    episodes each, lr 1e-3 without decay, epsilon 0.2 x 0.9 per update (the paper's 1e-5 and
    epsilon 1.0 x 0.99 are for a thousand updates). Evaluation: 16 episodes from seed 10,000,
    total reward per episode. Measured (seeds 0 and 1): untrained 550.2 / 549.7, trained 764.1 /
    782.2, nearest vehicle 915.7 (greedy 932.7); trained / nearest 0.83 / 0.85, trained /
    untrained 1.39 / 1.42. With the advantage's sign flipped training ends at 530.5 / 526.2.
    Thresholds: trained >= 1.25 x untrained and >= 0.8 x nearest."""
    game = games.load("ride_dispatch(num_vehicles=50, grid=10, demand=0.15)")
    nearest = run_episodes(game, "nearest", episodes=16, seed=10_000)["reward"].mean()
    learner = marl.make("ospo", game, seed=0, num_envs=4, lr=1e-3, lr_decay=1.0, epsilon=0.2, epsilon_decay=0.9)
    untrained = learner.evaluation_metrics(16)["reward"].mean()
    for _ in range(20):
        stats = learner.train_step()
    assert stats["samples"] > 500 and np.isfinite(stats["policy_loss"])
    trained = learner.evaluation_metrics(16)
    assert trained["reward"].mean() >= 1.25 * untrained, (trained["reward"].mean(), untrained)
    assert trained["reward"].mean() >= 0.8 * nearest, (trained["reward"].mean(), nearest)
