"""Mirror-descent family: RPS last iterates, LP values, MMD against OpenSpiel."""

import numpy as np
import pyspiel
import pytest
from open_spiel.python.algorithms import exploitability as os_exploitability
from open_spiel.python.algorithms import mmd_dilated

from equilibria import games, solvers

INIT = [[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]


@pytest.mark.parametrize("name, config", [("extragradient", {"eta": 0.1}), ("optimistic-mwu", {"eta": 0.5}),
                                          ("mirror-prox", {"eta": 0.5}), ("mmd", {"alpha": 0.1})])
def test_rps_last_iterate_converges_to_uniform(name, config):
    game = games.load("rock_paper_scissors")
    solver = solvers.make(name, game, init=INIT, **config).run(2000)
    for s in solver.current_policy().strategies:
        np.testing.assert_allclose(s, np.ones(3) / 3, atol=1e-4)


def test_mwu_last_iterate_cycles_but_average_converges():
    game = games.load("rock_paper_scissors")
    solver = solvers.make("mwu", game, init=INIT, eta=0.1).run(2000)
    assert solvers.nash_conv(game, solver.current_policy()) > 0.5
    assert solvers.nash_conv(game, solver.average_policy()) < 0.05


@pytest.mark.parametrize("seed", range(5))
def test_random_matrices_match_lp_value(seed):
    game = games.load(f"random_zero_sum(n=10, seed={seed})")
    lp = solvers.make("lp", game)
    lp.step()
    assert solvers.nash_conv(game, lp.current_policy()) < 1e-9
    eg = solvers.make("extragradient", game, eta=0.3).run(3000)
    x, y = eg.current_policy().strategies
    assert x @ game.payoff_tensor()[0] @ y == pytest.approx(lp.value, abs=1e-6)


def test_lp_matches_openspiel_rps_and_matching_pennies():
    for name in ["rock_paper_scissors", "matching_pennies"]:
        lp = solvers.make("lp", games.load(name))
        lp.step()
        assert lp.value == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(lp.current_policy().strategies[0], 1 / len(lp.x[0]), atol=1e-9)


def test_fictitious_play_average_converges():
    game = games.load("matching_pennies")
    solver = solvers.make("fictitious-play", game).run(2000)
    assert solvers.nash_conv(game, solver.current_policy()) == pytest.approx(2.0)  # pure best responses
    assert solvers.nash_conv(game, solver.average_policy()) < 0.05


@pytest.mark.parametrize("game_name, iters", [("kuhn_poker", 10), ("leduc_poker", 3)])
@pytest.mark.parametrize("alpha, eta", [(0.1, None), (0.0, 1.0)])
def test_dilated_mmd_matches_openspiel(game_name, iters, alpha, eta):
    game, os_game = games.load(game_name), pyspiel.load_game(game_name)
    ours = solvers.make("mmd", game, alpha=alpha, eta=eta)
    theirs = mmd_dilated.MMDDilatedEnt(os_game, alpha=alpha, stepsize=eta)
    assert ours.eta == pytest.approx(theirs.stepsize)
    for _ in range(iters):
        ours.step()
        theirs.update_sequences()
        assert solvers.nash_conv(game, ours.current_policy()) == pytest.approx(
            os_exploitability.nash_conv(os_game, theirs.get_policies()), abs=1e-9)
    assert solvers.nash_conv(game, ours.average_policy()) == pytest.approx(
        os_exploitability.nash_conv(os_game, theirs.get_avg_policies()), abs=1e-9)


def test_dilated_mmd_last_iterate_converges_on_kuhn():
    game = games.load("kuhn_poker")
    solver = solvers.make("mmd", game, alpha=0.02, eta=0.5).run(3000)
    before = solver.current_policy().probs.copy()
    solver.step()
    assert np.abs(solver.current_policy().probs - before).max() < 1e-9  # a fixed point: the QRE
    assert solvers.exploitability(game, solver.current_policy()) < 0.05  # close to Nash for small alpha
