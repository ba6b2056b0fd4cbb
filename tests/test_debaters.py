"""Debaters trained by self-play PPO (marl.debate.debaters) on small debates with a linear judge:
self-play beats a random debater clearly (against the current self and against a frozen copy), a
confuser trained against a weak fixed debater wins more often than that debater's self-play
partner, the PPO debaters' exploitability on a debate CFR solves falls far below the uniform
policy's, and the extensive-form policy sees exactly what the batched game shows."""

import numpy as np
import pytest
import torch

from equilibria import games, solvers
from equilibria.common.config import ConfigError, build
from equilibria.games.debate import case_sampler, gaussian_sampler, random_chooser, random_linear_judge
from equilibria.games.debate_batched import BatchedDebate
from equilibria.marl.debate.debaters import (
    Debaters,
    DebatersConfig,
    VersusFixed,
    as_game_policy,
    batched_of,
    exploitability,
    head_to_head,
    robustness,
    sample_cases,
    train_confuser,
    train_debaters,
)

# small and fast: 32 hidden units, one minibatch, a larger step than the paper's 5e-4
FAST = DebatersConfig(hidden=32, num_envs=128, lr=3e-3, num_minibatches=1)
SMALL_DEBATE = "debate(num_features=5, num_arguments=3)"  # 6 cases, 3 decisions, random starter


@pytest.fixture(scope="module")
def batched():
    """6 features, 3 decisions, 2 arguments, fresh N(0, 1) cases, a random linear judge; and 2000
    held-out cases."""
    game = BatchedDebate(gaussian_sampler(6, 3), random_linear_judge(6, 3, np.random.default_rng(0)), 6, 3,
                         num_arguments=2)
    return game, *sample_cases(game, 2000, seed=123)


def payoff_vs_random(game, debaters, x, a) -> float:
    """The debaters' mean payoff against a uniformly random debater, over both sides."""
    return float(np.mean([head_to_head(game, debaters.chooser(s), random_chooser(np.random.default_rng(1)), s, x, a,
                                       seed=2)["payoff"] for s in (0, 1)]))


# ----------------------------------------------------------------------------- learning
def test_self_play_beats_a_random_debater(batched):
    game, x, a = batched
    assert abs(payoff_vs_random(game, Debaters.initial(game, 32, seed=0), x, a)) < 0.1  # measured: -0.01
    debaters = train_debaters(game, FAST.replace(opponent="current", updates=150), seed=0)
    # measured over seeds 0-4: 0.37 to 0.50 (the optimal greedy reveal under this judge: 0.63)
    assert payoff_vs_random(game, debaters, x, a) > 0.3
    assert debaters.stats["updates"] == 150 and debaters.stats["env_steps"] == 150 * 128 * 2
    assert len(debaters.history) == 150 and debaters.sides == (0, 1)


def test_frozen_copy_self_play_learns_and_refreshes(batched):
    game, x, a = batched
    seen = []
    debaters = train_debaters(game, FAST.replace(opponent="frozen", updates=100, generation_updates=5), seed=1,
                              progress=lambda done, stats: seen.append(done))
    assert seen == list(range(1, 101))
    assert debaters.stats["generations"] == 20  # the initial copy, then after updates 5, 10, ..., 95
    assert payoff_vs_random(game, debaters, x, a) > 0.2  # measured over seeds 0-4 at 150 updates: 0.35 to 0.43


def test_confuser_beats_a_weak_debater_more_than_its_self_play_partner(batched):
    game, x, a = batched
    weak = Debaters.initial(game, 32, seed=5)  # random weights: a fixed, arbitrary debater
    confuser = train_confuser(game, weak, side=0, config=FAST.replace(updates=60), seed=0)
    assert confuser.sides == (1,)
    with pytest.raises(ValueError, match="side"):
        confuser.chooser(0)
    r = robustness(game, weak, confuser, x, a, side=0)
    # measured: the partner wins 0.48, the confuser 0.69
    assert r["loss_rate_vs_confuser"] > r["loss_rate_vs_self"] + 0.1
    assert r["drop"] == pytest.approx(r["win_rate_vs_self"] - r["win_rate_vs_confuser"])


# ----------------------------------------------------------------------------- exploitability
def test_uniform_actor_has_the_uniform_policys_exploitability():
    game = games.load(SMALL_DEBATE)
    uniform = Debaters.initial(batched_of(game), 16, seed=0)
    last = uniform.actor.heads[0][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    state = game.new_initial_state()
    for action in (0, 1):  # case 0, player 1 starts
        state.apply_action(action)
    assert as_game_policy(uniform, game).action_probabilities(state) == pytest.approx({i: 0.2 for i in range(5)})
    assert as_game_policy(uniform, game).action_probabilities(state, 0) == {}
    expected = solvers.exploitability(game, games.UniformRandomPolicy())
    assert exploitability(uniform, game) == pytest.approx(expected, abs=1e-9)  # 0.374


def test_ppo_exploitability_falls_far_below_uniform():
    game = games.load(SMALL_DEBATE)
    uniform = solvers.exploitability(game, games.UniformRandomPolicy())
    debaters = train_debaters(batched_of(game), FAST.replace(opponent="current", updates=60), seed=0)
    stochastic, greedy = exploitability(debaters, game), exploitability(debaters, game, deterministic=True)
    # measured: uniform 0.374, PPO 0.0014 (stochastic) and 0 (greedy) after 100 updates; CFR < 1e-3
    assert stochastic < 0.1 * uniform and greedy < 0.1 * uniform


def test_the_game_policy_sees_what_the_batched_game_shows():
    game = games.load("debate(num_features=5, num_decisions=3, num_cases=4, num_arguments=3, seed=2)")
    twin = batched_of(game)
    debaters = Debaters.initial(twin, 16, seed=3)
    policy = as_game_policy(debaters, game)
    sim = twin.simulator(16, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(2):
        obs, mask = sim.observe()["debaters"], sim.action_mask()["debaters"]
        mover = (sim.first + sim.mask.sum(1)) % 2
        for e in range(16):
            case = int(np.flatnonzero((game.cases_x == sim.x[e]).all(1))[0])  # the twin deals the game's cases
            assert (game.cases_a[case] == sim.a[e]).all()
            state = game.new_initial_state()
            for move in [case, int(sim.first[e]), *sim.order[e][sim.order[e] >= 0]]:
                state.apply_action(int(move))
            side = int(mover[e])
            parts = {k: v[e:e + 1, side] for k, v in obs.items()}
            p = debaters.probabilities(parts, mask[e:e + 1, side], side)[0]
            got = policy.action_probabilities(state, side)
            assert sorted(got) == np.flatnonzero(mask[e, side]).tolist()
            np.testing.assert_allclose([got[i] for i in sorted(got)], p[sorted(got)], rtol=1e-6)
        sim.step({"debaters": np.argmax(rng.random(mask.shape) * mask, axis=-1)})


def test_case_sampler_deals_the_cases_with_their_probabilities():
    x, a = np.arange(6.0).reshape(3, 2), np.array([[0, 1], [1, 0], [1, 2]])
    draw = case_sampler(x, a, [0.2, 0.0, 0.8])
    xs, as_ = draw(np.random.default_rng(0), 5000)
    rows = xs[:, 0].astype(int) // 2
    assert set(rows) == {0, 2} and abs((rows == 2).mean() - 0.8) < 0.03
    np.testing.assert_array_equal(as_, a[rows])
    with pytest.raises(ValueError, match="probs"):
        case_sampler(x, a, [0.5, 0.5])


# ----------------------------------------------------------------------------- the wrapper, checkpoints, config
def test_versus_fixed_runs_only_the_learners_seat(batched):
    game = batched[0]
    fixed = Debaters.initial(game, 16, seed=0)
    env = VersusFixed(game, fixed.actor, learner_side=1, deterministic=True)
    sim = env.simulator(32, seed=0)
    assert sim.active()["debaters"].tolist() == [[False, True]] * 32
    obs, mask = sim.observe()["debaters"], sim.action_mask()["debaters"]
    starts = sim.inner.first == 0  # where the fixed seat (0) reveals first
    expected = fixed.chooser(0)({k: v[starts, 0] for k, v in obs.items()}, mask[starts, 0], 0)
    res = sim.step({"debaters": np.argmax(mask, axis=-1)})
    assert (sim.inner.order[starts, 0] == expected).all()
    res = sim.step({"debaters": np.argmax(sim.action_mask()["debaters"], axis=-1)})
    assert res.terminated.all() and not res.rewards["debaters"][:, 0].any()
    np.testing.assert_array_equal(res.rewards["debaters"][:, 1], -res.info["payoff"])
    assert res.final_active["debaters"].tolist() == [[False, True]] * 32


def test_save_load_round_trip(batched, tmp_path):
    game, x, a = batched
    debaters = train_debaters(game, FAST.replace(updates=2, num_envs=8), seed=0)
    path = tmp_path / "debaters.pt"
    debaters.save(path)
    state = torch.load(path, weights_only=True)
    assert state["format"] == "equilibria.debate.debaters"
    loaded = Debaters.load(path, game)
    assert loaded.config == debaters.config and loaded.stats == debaters.stats and loaded.sides == (0, 1)
    assert len(loaded.history) == 2
    for side in (0, 1):
        out = [head_to_head(game, d.chooser(side), random_chooser(np.random.default_rng(0)), side, x[:200], a[:200])
               for d in (debaters, loaded)]
        assert out[0] == out[1]
    with pytest.raises(ValueError, match="debaters.pt: these debaters play"):
        Debaters.load(path, games.load(SMALL_DEBATE))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        Debaters.load(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="no such"):
        Debaters.load(tmp_path / "missing.pt")


def test_config_defaults_and_determinism(batched):
    c = DebatersConfig()
    assert (c.lr, c.gamma, c.gae_lambda, c.clip, c.entropy_coef, c.vf_coef, c.hidden) == (5e-4, 0.9, 0.7, 0.1, 0.01,
                                                                                          0.5, 512)
    ippo = c.ippo(num_arguments=6)
    assert ippo["rollout_length"] == 6 and ippo["critic"] == "local" and ippo["value_coef"] == 1.0
    with pytest.raises(ConfigError, match="opponent"):
        build(DebatersConfig, {"opponent": "past"})
    game = batched[0]
    before = torch.get_rng_state()
    runs = [train_debaters(game, FAST.replace(updates=2, num_envs=8, opponent=o), seed=4)
            for o in ("frozen", "frozen", "current")]
    assert torch.equal(torch.get_rng_state(), before)
    w = [r.actor.state_dict() for r in runs]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])
    with pytest.raises(ValueError, match="features"):
        exploitability(runs[0], games.load(SMALL_DEBATE))
