"""Preference games: oracles, exact metrics, tabular dynamics and the neural losses, all measured."""

import numpy as np
import pytest
import torch

from equilibria import games, solvers
from equilibria.games.preference import NoisyOracle, PreferenceGame, cycle_matrix, gpm_matrix, majority_vote_matrix
from equilibria.games.testing import api_test
from equilibria.solvers.preference import (
    duality_gap,
    kl_to_equilibrium,
    regularized_equilibrium,
    regularized_gap,
    softmax,
)


@pytest.mark.parametrize("oracle", ["random", "cycle", "bradley_terry", "majority", "gpm", "tokens"])
def test_oracles_are_preferences_and_games_keep_the_contract(oracle):
    n = 9 if oracle == "cycle" else 10
    g = games.load(f"preference(oracle={oracle}, n={n}, contexts=2, seed=1, vocab=3, length=2)")
    P = g.P
    np.testing.assert_allclose(P + P.transpose(0, 2, 1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diagonal(P, axis1=1, axis2=2), 0.5, atol=1e-12)
    api_test(g, num_games=10)
    assert g.info.utility == "constant_sum" and g.info.utility_sum == 1.0


def test_cycle_has_the_uniform_von_neumann_winner():
    game = games.load("preference(oracle=cycle, n=5, reference=uniform)")
    lp = solvers.make("lp", game)
    lp.step()
    np.testing.assert_allclose(lp.current_policy().strategies[0], 0.2, atol=1e-9)
    assert lp.value == pytest.approx(0.5)


def test_bradley_terry_is_transitive_majority_and_gpm_can_cycle():
    bt = games.load("preference(oracle=bradley_terry, n=8, seed=2)").P[0]
    best = int(np.argmax((bt > 0.5).sum(axis=1)))
    assert np.all(bt[best, np.arange(8) != best] > 0.5)  # a Condorcet winner always exists
    rng = np.random.default_rng(0)
    # three raters with rotated preferences over three items: the majority is a perfect cycle
    maj = majority_vote_matrix(np.array([[3, 2, 1], [1, 3, 2], [2, 1, 3]], dtype=float) * 5)
    assert maj[0, 1] > 0.5 and maj[1, 2] > 0.5 and maj[2, 0] > 0.5
    gpm = gpm_matrix(rng.normal(size=(6, 4)))
    np.testing.assert_allclose(gpm + gpm.T, 1.0, atol=1e-12)


def test_noisy_oracle_frequencies_and_label_noise():
    P = cycle_matrix(3, 0.9)
    oracle = NoisyOracle(P, label_noise=0.1, seed=0)
    x = np.zeros(20000, dtype=int)
    outcomes = oracle.compare(x, np.zeros(20000, dtype=int), np.ones(20000, dtype=int))
    # P(0 > 1) = 0.9, flipped with prob 0.1: 0.9 * 0.9 + 0.1 * 0.1 = 0.82
    assert outcomes.mean() == pytest.approx(0.82, abs=0.01)
    assert oracle.queries == 20000


def test_regularized_gap_closed_form_matches_best_responses():
    g = games.load("preference(oracle=random, n=7, seed=3, beta=0.2)")
    P, ref, beta = g.P, g.reference, 0.2
    pi = softmax(np.random.default_rng(0).normal(size=(1, 7)))

    def value(a, b):  # V_beta(a, b) = P(a > b) - beta KL(a || ref) + beta KL(b || ref)
        kl = lambda p: float(np.sum(p * np.log(p / ref)))  # noqa: E731
        return float(a @ P[0] @ b[0]) - beta * kl(a) + beta * kl(b)

    br = softmax(np.log(ref) + P @ pi[0] / beta)[0]  # the regularised best response to pi
    brute = 2 * (value(br, pi) - value(pi[0], pi))  # both players deviate symmetrically
    assert regularized_gap(P, pi, ref, beta) == pytest.approx(brute, abs=1e-12)


def test_regularized_equilibrium_to_machine_precision():
    for beta in (0.1, 0.01, 0.001):
        g = games.load(f"preference(oracle=random, n=10, seed=4, beta={beta})")
        star = regularized_equilibrium(g.P, g.reference, beta)
        assert regularized_gap(g.P, star, g.reference, beta) < 1e-12
        # the fixed point log pi = log ref + P pi / beta + c holds to rounding in logit space,
        # so KL(pi* || pi) is computed to far better than 1e-12
        residual = np.log(star[0]) - np.log(g.reference[0]) - g.P[0] @ star[0] / beta
        assert np.ptp(residual[star[0] > 1e-300]) < 1e-9 / beta
        assert kl_to_equilibrium(star, star) == 0.0


@pytest.mark.parametrize("name", ["inpo", "online-ipo", "egpo", "nash-mp"])
def test_regularized_methods_reach_1e8_on_random_10x10(name):
    """beta = 0.1, eta = 1, ten EGPO-protocol matrices: DG_beta < 1e-8 within 200 iterations."""
    for seed in range(10):
        g = games.load(f"preference(oracle=random, n=10, seed={seed}, beta=0.1)")
        s = solvers.make(name, g, eta=1.0).run(200)
        assert s.metrics()["dg_beta"] < 1e-8, (name, seed)


def test_nash_md_decreasing_schedule_beats_its_constant_step_floor():
    g = games.load("preference(oracle=random, n=10, seed=0, beta=0.1)")
    const = solvers.make("nash-md", g, schedule="constant", eta=1.0).run(1000).metrics()["dg_beta"]
    decr = solvers.make("nash-md", g).run(1000).metrics()["dg_beta"]
    assert const > 1e-5  # the constant-step bias floor
    assert decr < 1e-6 and decr < const / 100


def test_sppo_average_iterate_falls_like_one_over_sqrt_t():
    """SPPO / Hedge with the horizon-tuned step eta = sqrt(log N / T): DG0 of the average
    iterate scales like T^(-1/2); the last iterate does not converge on a cycle."""
    game = games.load("preference(oracle=random, n=10, seed=0)")
    horizons = [100, 400, 1600, 6400]
    gaps = []
    for t in horizons:
        s = solvers.make("sppo", game, eta=float(np.sqrt(np.log(10) / t)), init="uniform").run(t)
        gaps.append(duality_gap(game.P, s.average_policy().probs))
    slope = np.polyfit(np.log(horizons), np.log(gaps), 1)[0]
    assert -0.9 < slope < -0.4, (slope, gaps)
    cyc = games.load("preference(oracle=cycle, n=3, strength=0.9, reference=uniform)")
    s = solvers.make("sppo", cyc, eta=0.5, init="uniform")
    s.logits = np.log(np.array([[0.5, 0.3, 0.2]]))
    s.run(5000)
    assert duality_gap(cyc.P, s.current_policy().probs) > 0.3  # the last iterate cycles
    assert duality_gap(cyc.P, s.average_policy().probs) < 0.02


def test_extragradient_converges_on_a_cycle_at_beta_zero_where_mwu_cycles():
    cyc = games.load("preference(oracle=cycle, n=3, strength=0.9, reference=uniform, beta=0.0)")
    eg = solvers.make("egpo", cyc, eta=0.5, beta=0.0)
    eg.logits = np.log(np.array([[0.5, 0.3, 0.2]]))
    eg.run(5000)
    assert duality_gap(cyc.P, eg.current_policy().probs) < 1e-6


def test_regularization_bias_is_measurable():
    P = np.array([[0.5, 0.9, 0.1], [0.1, 0.5, 0.9], [0.9, 0.1, 0.5]])
    g = PreferenceGame(P, reference=np.array([0.6, 0.3, 0.1]), beta=0.05)
    star = regularized_equilibrium(g.P, g.reference, 0.05)
    np.testing.assert_allclose(star[0], [0.39, 0.26, 0.35], atol=0.01)  # the spec sheet's [sim] value
    assert duality_gap(g.P, star) == pytest.approx(0.10, abs=0.01)


def test_preference_solver_checkpoints():
    g = games.load("preference(oracle=random, n=6, seed=1)")
    a = solvers.make("egpo", g).run(5)
    state = a.state_dict()
    a.run(5)
    b = solvers.make("egpo", g)
    b.load_state_dict(state)
    b.run(5)
    np.testing.assert_array_equal(a.current_policy().probs, b.current_policy().probs)


# ----------------------------------------------------------------------------- neural losses
# Each sampled algorithm must lower the tiny LM's gap below its bound at every one of five
# seeds (model initialisation and sampling both seeded). The settings keep the policy-gradient
# steps in the stable range: at Adam lr 0.01 with four inner steps, even the exact expected
# Nash-MD gradient overshoots into near-deterministic policies where the softmax gradient
# vanishes, and where a run ends then depends on single sampled comparisons. Measured worst
# seed / bound (margin to the bound) with these settings: egpo 0.139/0.25, nash-mp 0.024/0.1,
# inpo 0.050/0.2, online-ipo 0.098/0.2, nash-md 0.060/0.5, sppo 0.059/0.1, dno 0.001/0.1,
# spo 0.002/0.1; win rates dpo 0.879 and ipo 0.859 against 0.8.
SEEDS = range(5)


@pytest.fixture(autouse=True)
def _one_thread_deterministic():
    """One thread and torch's deterministic algorithms for every test here, restored afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _tiny_lm_run(algorithm, seed, iterations=20, **config):
    from equilibria.llm_agents.policies import TinyCausalLM
    from equilibria.llm_agents.preference_trainer import NeuralPreferenceConfig, PreferenceTrainer, game_for_policy

    base = games.load("preference(oracle=tokens, vocab=4, length=3, beta=0.1, seed=0)")
    policy = TinyCausalLM(num_contexts=1, vocab=4, length=3, seed=seed)
    game = game_for_policy(base, policy)
    cfg = NeuralPreferenceConfig(algorithm=algorithm, iterations=iterations, eval_every=iterations, seed=seed, **config)
    history = PreferenceTrainer(policy, game, cfg).train()
    return history[0], history[-1]


@pytest.mark.parametrize("algorithm, config, iterations, factor", [
    ("egpo", {"lr": 0.002, "samples": 64}, 40, 4.0),
    ("nash-mp", {"lr": 0.01}, 20, 10.0),
    ("inpo", {"lr": 0.005, "samples": 64}, 20, 5.0),
    ("online-ipo", {"lr": 0.003, "samples": 64}, 20, 5.0),
    ("nash-md", {"lr": 0.001, "samples": 64}, 20, 2.0),
])
def test_regularized_losses_lower_the_tiny_lm_gap(algorithm, config, iterations, factor):
    for seed in SEEDS:
        start, end = _tiny_lm_run(algorithm, seed, iterations, **config)
        assert end["dg_beta"] < start["dg_beta"] / factor, (seed, start["dg_beta"], end["dg_beta"])
        assert end["queries"] > 0


@pytest.mark.parametrize("algorithm, config", [
    ("sppo", {"lr": 0.005, "samples": 64}),
    ("dno", {"lr": 0.01}),
    ("spo", {"lr": 0.01}),
])
def test_unregularized_losses_lower_the_tiny_lm_duality_gap(algorithm, config):
    for seed in SEEDS:
        start, end = _tiny_lm_run(algorithm, seed, **config)
        assert end["dg0"] < start["dg0"] / 10, (seed, start["dg0"], end["dg0"])


@pytest.mark.parametrize("algorithm, config", [
    ("dpo", {"lr": 0.005, "samples": 64}),
    ("ipo", {"lr": 0.005, "samples": 64}),
])
def test_transitive_baselines_raise_win_rate_but_keep_a_nash_gap(algorithm, config):
    for seed in SEEDS:
        _, end = _tiny_lm_run(algorithm, seed, **config)
        assert end["win_rate_vs_ref"] > 0.8, (seed, end["win_rate_vs_ref"])
        if algorithm == "dpo":  # Bradley-Terry assumption: it settles far from the regularised Nash equilibrium
            assert end["dg_beta"] > 0.1, (seed, end["dg_beta"])


def test_tiny_lm_runs_are_reproducible():
    """Same seed, same numbers to the last bit (the conftest pins the CPU kernels, so this
    also holds across x86-64 machines)."""
    a = _tiny_lm_run("nash-md", 3, 5, lr=0.001, samples=64)[1]
    b = _tiny_lm_run("nash-md", 3, 5, lr=0.001, samples=64)[1]
    assert a == b


def test_contextual_mlp_learns_several_contexts():
    """Five seeds (game, initialisation, sampling); worst end/start measured 0.129 against 0.25."""
    from equilibria.llm_agents.policies import ContextualMLP
    from equilibria.llm_agents.preference_trainer import NeuralPreferenceConfig, PreferenceTrainer, game_for_policy

    for seed in SEEDS:
        torch.manual_seed(seed)
        base = games.load(f"preference(oracle=random, n=10, contexts=3, seed={seed}, beta=0.05)")
        policy = ContextualMLP(3, 10, hidden=32)
        game = game_for_policy(base, policy)
        cfg = NeuralPreferenceConfig(algorithm="nash-mp", iterations=40, lr=0.01, samples=64, soft_labels=True,
                                     eval_every=40, seed=seed)
        hist = PreferenceTrainer(policy, game, cfg).train()
        assert hist[-1]["dg_beta"] < hist[0]["dg_beta"] / 4, (seed, hist[0]["dg_beta"], hist[-1]["dg_beta"])


def test_learnable_gpm_recovers_an_intransitive_preference():
    """Fit the torch GPM to sampled comparisons of a cyclic preference: it learns the cycle,
    which no Bradley-Terry model can represent."""
    from equilibria.games.preference import PreferenceGame
    from equilibria.llm_agents.gpm import GPMPreferenceModel

    torch.manual_seed(0)
    truth = cycle_matrix(5, 0.9)
    oracle = NoisyOracle(truth, seed=0)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 5, 4000), rng.integers(0, 5, 4000)
    outcome = oracle.compare(np.zeros(4000, dtype=int), i, j)
    model = GPMPreferenceModel(5, dim=2)
    model.fit(np.zeros(4000, dtype=int), i, j, outcome, steps=400)
    learned = model.matrix()[0]
    np.testing.assert_allclose(learned + learned.T, 1.0, atol=1e-9)
    assert np.abs(learned - truth).max() < 0.15
    assert learned[0, 1] > 0.5 and learned[1, 2] > 0.5 and learned[4, 0] > 0.5  # the cycle survives
    game = PreferenceGame(learned, beta=0.0)  # usable as an oracle
    lp = solvers.make("lp", game)
    lp.step()
    np.testing.assert_allclose(lp.current_policy().strategies[0], 0.2, atol=0.05)
