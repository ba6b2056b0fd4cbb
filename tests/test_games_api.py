"""Every registered game, and OpenSpiel's liars_dice through the adapter, keeps the contract."""

import numpy as np
import pytest
from needs import need

from equilibria import games
from equilibria.games.adapters.openspiel import from_openspiel
from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL
from equilibria.games.testing import ApiTestError, api_test


@pytest.mark.parametrize("name", games.registered())
def test_api_on_every_registered_game(name):
    entry = games.registry.entry(name)
    if entry.requires is not None:  # a game on an optional package: skipped without it (failed under CI=true)
        need(*entry.requires)
    api_test(games.load(entry.example), num_games=10)


@pytest.mark.parametrize("spec", ["kuhn_poker(players=3)", "goofspiel(num_cards=5, points_order='descending')",
                                  "random_general_sum(n=3, players=3)", "leduc_poker(num_ranks=4)",
                                  "cooperative_navigation(num_agents=5, num_landmarks=2)"])
def test_api_on_variants(spec):
    api_test(games.load(spec), num_games=5)


def test_api_on_openspiel_liars_dice():
    api_test(from_openspiel("liars_dice"), num_games=10)


def test_api_test_catches_a_broken_game():
    """api_test must be able to fail: a game whose returns break zero-sum is rejected."""
    from equilibria.games.poker import KuhnState

    class Broken(games.poker.KuhnPoker):
        def new_initial_state(self):
            return BrokenState(self)

    class BrokenState(KuhnState):
        def returns(self):
            r = super().returns()
            return r + 1.0 if self.is_terminal() else r

        def clone(self):
            new = BrokenState(self.game)
            new.cards, new.bets = list(self.cards), list(self.bets)
            return new

    with pytest.raises(ApiTestError, match="sum to"):
        api_test(Broken(2), num_games=3)


def test_constants_match_openspiel():
    import pyspiel

    assert CHANCE == int(pyspiel.PlayerId.CHANCE)
    assert SIMULTANEOUS == int(pyspiel.PlayerId.SIMULTANEOUS)
    assert TERMINAL == int(pyspiel.PlayerId.TERMINAL)


def test_kuhn_three_player_payoffs():
    s = games.load("kuhn_poker(players=3)").new_initial_state()
    for a in [0, 1, 2, 0, 1, 0, 1]:  # deal 0,1,2; p0 pass, p1 bet, p2 fold, p0 call
        s.apply_action(a)
    assert s.is_terminal()
    assert s.returns().tolist() == [-2.0, 3.0, -1.0]


def test_normal_form_classification_and_payoffs():
    rps = games.load("rock_paper_scissors")
    assert rps.info.utility == "zero_sum" and rps.info.dynamics == "simultaneous"
    s = rps.new_initial_state()
    s.apply_actions([1, 0])  # paper beats rock
    assert s.returns().tolist() == [1.0, -1.0]
    pd = games.load("prisoners_dilemma")
    assert pd.info.utility == "general"
    gs = games.load("random_general_sum(n=4, players=3, seed=1)")
    assert gs.payoff_tensor().shape == (3, 4, 4, 4)
    ident = games.normal_form.NormalFormGame(np.stack([np.eye(2), np.eye(2)]))
    assert ident.info.utility == "identical"


def test_goofspiel_bids_and_ties():
    g = games.load("goofspiel(num_cards=3, points_order='descending', returns_type='point_difference')")
    s = g.new_initial_state()
    assert s.current_player() == SIMULTANEOUS
    s.apply_actions([2, 0])  # p0 wins the prize worth 3
    s.apply_actions([1, 1])  # tie: prize 2 discarded
    s.apply_actions([0, 2])  # p1 wins the prize worth 1
    assert s.is_terminal() and s.returns().tolist() == [2.0, -2.0]
    with pytest.raises(ValueError, match="illegal bid"):
        t = g.new_initial_state()
        t.apply_actions([2, 0])
        t.apply_actions([2, 1])


def test_games_testing_is_reachable_from_the_package_as_the_readme_writes_it():
    import subprocess
    import sys

    # a fresh process: this module imported games.testing already
    code = "from equilibria import games; games.testing.api_test(games.load('kuhn_poker'), num_games=2); print('ok')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    res = subprocess.run([sys.executable, "-c", "from equilibria import games; games.nosuch"], capture_output=True, text=True)
    assert res.returncode == 1 and "module 'equilibria.games' has no attribute 'nosuch'" in res.stderr
