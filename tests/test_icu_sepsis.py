"""ICU-Sepsis (games/icu_sepsis.py) on the icu-sepsis package's data files: the exact values the
package's README reports (optimum 0.88, clinician and random 0.78), the exact values against
Monte Carlo in the batched game, the package's inadmissible-action semantics, the Markov-game
contract, and one-line errors for a missing package or a corrupt asset."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from needs import need

from equilibria import games
from equilibria.common.config import ConfigError
from equilibria.games.testing import api_test, markov_api_test


@pytest.fixture(scope="module")
def sepsis():
    need("icu_sepsis", "debate")
    from equilibria.games import icu_sepsis as m

    return m, m.load_sepsis()


@pytest.fixture(scope="module")
def optimum(sepsis):
    m, mdp = sepsis
    return m.value_iteration(mdp)


def test_the_mdp_has_the_package_shapes_and_terminal_structure(sepsis):
    m, mdp = sepsis
    assert mdp.P.shape == (716, 25, 716) and mdp.R.shape == (716, 25) and mdp.features.shape == (716, 47)
    assert mdp.terminal.tolist() == [False] * 713 + [True] * 3
    assert (m.DEATH, m.SURVIVAL, m.ABSORBING) == (713, 714, 715)
    assert mdp.admissible.any(1).all() and mdp.admissible[713:].all()
    assert m.load_sepsis() is mdp  # cached
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 1.0  # read-only


def test_exact_values_are_the_readme_ones(sepsis, optimum):
    m, mdp = sepsis
    V, Q, greedy = optimum
    assert 0.87 <= mdp.d0 @ V <= 0.89
    assert m.policy_value(mdp, greedy) == pytest.approx(mdp.d0 @ V, abs=1e-12)
    assert abs(m.policy_value(mdp, mdp.clinician) - 0.78) < 0.02
    assert abs(m.policy_value(mdp, m.uniform_policy(mdp)) - 0.78) < 0.02
    # the optimum is optimal: no action improves on it, in any patient state (Bellman)
    live = ~mdp.terminal
    assert np.abs(np.where(mdp.admissible, Q, -np.inf).max(1)[live] - V[live]).max() < 1e-9
    assert np.all(Q[live] <= V[live, None] + 1e-9)  # inadmissible actions (the mean rows) included
    # value iteration's policy is never worse than the clinician's, in any state
    assert np.all(V >= m.state_values(mdp, mdp.clinician) - 1e-12)
    assert np.all(greedy[mdp.admissible == 0] == 0)
    # episodes last 9 to 11 steps on average
    for pi in (mdp.clinician, greedy):
        assert 9.0 <= m.occupancy(mdp, pi).sum() <= 11.5


def test_inadmissible_actions_follow_the_package_mean_rows(sepsis):
    m, mdp = sepsis
    for s in (0, 4, 100, 663):
        mean = mdp.P[s, mdp.admissible[s]].mean(0)
        for a in np.flatnonzero(~mdp.admissible[s]):
            np.testing.assert_allclose(mdp.P[s, a], mean, atol=1e-12)
    assert (mdp.clinician * ~mdp.admissible).sum(1)[:713].mean() > 0.05  # clinicians do take them
    projected = m.admissible_policy(mdp, mdp.clinician)
    assert np.all(projected[~mdp.admissible] == 0)
    np.testing.assert_allclose(m.state_values(mdp, projected), m.state_values(mdp, mdp.clinician), atol=1e-10)
    assert m.policy_value(mdp, m.uniform_policy(mdp, admissible=True)) == pytest.approx(
        m.policy_value(mdp, m.uniform_policy(mdp)), abs=1e-10)


def test_mixed_rewards_discounts_horizons_and_occupancy_agree(sepsis, optimum):
    m, mdp = sepsis
    pi = mdp.clinician
    occ = m.occupancy(mdp, pi)
    # V(d0) = sum over states of visits x expected reward, for any reward
    reward = np.random.default_rng(0).normal(size=mdp.R.shape)
    assert m.policy_value(mdp, pi, reward) == pytest.approx(occ @ (pi * reward).sum(1), abs=1e-9)
    assert m.policy_value(mdp, pi, np.ones_like(mdp.R)) == pytest.approx(occ.sum(), abs=1e-9)  # the length
    # finite horizons converge to the exact value; a discount lowers it
    assert m.policy_value(mdp, pi, horizon=400) == pytest.approx(m.policy_value(mdp, pi), abs=1e-9)
    assert m.policy_value(mdp, pi, horizon=20) < m.policy_value(mdp, pi) - 0.05
    assert m.policy_value(mdp, pi, gamma=0.9) < m.policy_value(mdp, pi)
    # gamma 1 is safe: every policy ends; the longest expected episode any policy can force is finite
    longest, _, _ = m.value_iteration(mdp, reward=np.ones_like(mdp.R))
    assert 25 < longest.max() < 40 and mdp.d0 @ longest > occ.sum()
    # value iteration on another reward (a step cost) beats the clinician on it
    V, _, greedy = m.value_iteration(mdp, reward=mdp.R - 0.01)
    assert m.policy_value(mdp, greedy, mdp.R - 0.01) == pytest.approx(mdp.d0 @ V, abs=1e-12)
    assert mdp.d0 @ V >= m.policy_value(mdp, pi, mdp.R - 0.01)


def _game_returns(game, table: np.ndarray, episodes: int, seed: int) -> np.ndarray:
    """The return of each environment's first episode, acting by the [S, A] table."""
    sim = game.simulator(episodes, seed=seed)
    rng = np.random.default_rng(seed + 1)
    returns, finished = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not finished.all():
        probs = table[sim.s]
        cdf = np.cumsum(probs, 1)
        a = np.minimum((cdf <= rng.random(episodes)[:, None] * cdf[:, -1:]).sum(1), 24)
        res = sim.step({"patient": a[:, None]})
        returns += np.where(finished, 0.0, res.rewards["patient"][:, 0])
        finished |= res.done
    return returns


@pytest.mark.parametrize("max_steps", [100, 20])
def test_exact_values_match_monte_carlo_in_the_batched_game(sepsis, optimum, max_steps):
    """20k episodes: the mean return lies within 3 standard errors (about 0.009) of the exact
    (horizon-truncated) value, for the clinician and the optimum, which differ by 0.09 (0.035 at 20)."""
    m, mdp = sepsis
    game = games.load(f"icu_sepsis(max_steps={max_steps})")
    clin = m.admissible_policy(mdp, mdp.clinician)  # legal under the mask, the same values
    for i, pi in enumerate((clin, optimum[2])):
        exact = m.policy_value(mdp, pi, horizon=max_steps)
        r = _game_returns(game, pi, 20_000, seed=10 + i)
        se = r.std() / np.sqrt(len(r))
        assert abs(r.mean() - exact) < 3 * se, (i, r.mean(), exact, se)
    assert m.policy_value(mdp, optimum[2], horizon=max_steps) - m.policy_value(mdp, clin, horizon=max_steps) > 6 * se


def test_sampled_trajectories_follow_the_policy_and_the_mdp(sepsis):
    m, mdp = sepsis
    d = m.sample_trajectories(mdp, mdp.clinician, 20_000, seed=0)
    n = len(d["states"])
    assert {k: len(v) for k, v in d.items()} == dict.fromkeys(d, n)
    assert n / 20_000 == pytest.approx(m.occupancy(mdp, mdp.clinician).sum(), rel=0.03)
    assert np.all(mdp.clinician[d["states"], d["actions"]] > 0)  # the policy's actions (inadmissible ones too)
    assert np.all(mdp.P[d["states"], d["actions"], d["next_states"]] > 0)
    assert d["dones"].sum() == 20_000 and not d["truncated"].any()
    assert np.array_equal(d["rewards"], (d["next_states"] == m.SURVIVAL).astype(float))
    # consecutive transitions chain: next_state is the next row's state within an episode
    same = d["episode"][1:] == d["episode"][:-1]
    assert np.array_equal(d["next_states"][:-1][same], d["states"][1:][same]) and np.all(d["dones"][:-1] == ~same)
    survival = d["rewards"].sum() / 20_000
    assert abs(survival - m.policy_value(mdp, mdp.clinician)) < 3 * np.sqrt(0.78 * 0.22 / 20_000)
    cut = m.sample_trajectories(mdp, mdp.clinician, 500, seed=1, max_steps=5)
    assert cut["step"].max() == 4 and cut["truncated"].any() and not (cut["truncated"] & cut["dones"]).any()
    again = m.sample_trajectories(mdp, mdp.clinician, 500, seed=1, max_steps=5)
    assert all(np.array_equal(cut[k], again[k]) for k in cut)


def test_the_game_keeps_the_markov_and_state_contracts(sepsis):
    m, mdp = sepsis
    for spec in ("icu_sepsis", "icu_sepsis(observation=both, max_steps=5)", "icu_sepsis(observation=onehot)"):
        game = games.load(spec)
        markov_api_test(game)
        api_test(game, num_games=3)
    game = games.load("icu_sepsis(observation=both)")
    sim = game.simulator(8, seed=0)
    obs = sim.observe()["patient"]
    assert obs.shape == (8, 1, 47 + 716) and game.masks_actions
    assert np.array_equal(obs[:, 0, 47:].argmax(1), sim.s)
    np.testing.assert_array_equal(sim.action_mask()["patient"][:, 0], mdp.admissible[sim.s])
    np.testing.assert_array_equal(sim.global_state(), obs[:, 0])
    # the features are standardised under the clinician's occupancy
    w = m.occupancy(mdp, mdp.clinician)
    z = m.standardized_features(mdp)
    np.testing.assert_allclose(w @ z / w.sum(), 0, atol=1e-5)
    np.testing.assert_allclose(w @ z.astype(float) ** 2 / w.sum(), 1, atol=1e-4)


def test_the_clinician_expert_plays_legal_clinician_actions(sepsis):
    m, mdp = sepsis
    from equilibria.games.experts import expert_policy

    game = games.load("icu_sepsis")
    policy = expert_policy("clinician", game)
    state = game.new_initial_state(seed=3)
    s = int(state.sim.s[0])
    probs = policy.action_probabilities(state, 0)
    assert set(probs) <= set(state.legal_actions(0)) and sum(probs.values()) == pytest.approx(1.0)
    row = m.admissible_policy(mdp, mdp.clinician)[s]
    assert all(probs[a] == pytest.approx(row[a]) for a in probs)


def test_corrupt_or_missing_assets_give_one_line_errors(sepsis, tmp_path):
    m, _ = sepsis
    good = m.assets_dir()
    assets = tmp_path / "assets"
    shutil.copytree(good, assets)
    assert m.load_sepsis(assets).P.shape == (716, 25, 716)
    (assets / "admissible_actions.txt").write_text("4 1\n5 10\n")
    with pytest.raises(ConfigError, match=r"admissible_actions.txt is unreadable or corrupt.*--no-deps icu-sepsis==2.0.1"):
        m.load_sepsis(assets)
    shutil.copy(good / "admissible_actions.txt", assets / "admissible_actions.txt")
    (assets / "dynamics.npz").write_bytes((good / "dynamics.npz").read_bytes()[:5000])  # truncated
    with pytest.raises(ConfigError, match="dynamics.npz is unreadable or corrupt") as err:
        m.load_sepsis(assets)
    assert "\n" not in str(err.value)
    with np.load(good / "dynamics.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["tx_mat"] = arrays["tx_mat"] * 1.5
    np.savez(assets / "dynamics.npz", **arrays)
    with pytest.raises(ConfigError, match="tx_mat rows are not probability distributions"):
        m.load_sepsis(assets)
    (assets / "dynamics.npz").unlink()
    with pytest.raises(ConfigError, match="dynamics.npz is missing"):
        m.load_sepsis(assets)


def test_without_the_package_games_import_and_loading_says_how_to_install():
    probe = ("import sys; sys.modules['icu_sepsis'] = None\n"  # as if the package were not installed
             "from equilibria import games\n"
             "assert 'icu_sepsis' in games.registered() and not games.registry.available('icu_sepsis')\n"
             "try:\n    games.load('icu_sepsis')\nexcept games.registry.ConfigError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("icu_sepsis needs the icu-sepsis package: pip install 'equilibria[debate]' && "
                          "pip install --no-deps icu-sepsis==2.0.1\n")


def test_the_package_itself_is_never_imported(sepsis):
    probe = ("from equilibria import games\n"
             "from equilibria.games import icu_sepsis as m\n"
             "games.load('icu_sepsis(max_steps=3)'); m.value_iteration(m.load_sepsis())\n"
             "import sys; print('icu_sepsis' in sys.modules, 'gym' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "False False\n"
