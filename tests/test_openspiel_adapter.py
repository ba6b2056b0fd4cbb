"""Differential tests: our Kuhn and Leduc against OpenSpiel's, on every history."""

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as os_policy

from equilibria import games
from equilibria.games.adapters.openspiel import from_openspiel, from_openspiel_policy, to_openspiel_policy
from equilibria.games.core import TabularPolicy


def _walk(ours, theirs, counts):
    """Lockstep DFS over both trees; compare node types, legal actions, chance, keys, returns."""
    assert ours.current_player() == theirs.current_player(), ours.history()
    assert ours.history() == list(theirs.history())
    if theirs.is_terminal():
        counts["terminal"] += 1
        np.testing.assert_array_equal(ours.returns(), np.asarray(theirs.returns()))
        return
    if theirs.is_chance_node():
        assert [a for a, _ in ours.chance_outcomes()] == [a for a, _ in theirs.chance_outcomes()]
        assert [p for _, p in ours.chance_outcomes()] == pytest.approx([p for _, p in theirs.chance_outcomes()])
        actions = [a for a, _ in theirs.chance_outcomes()]
    else:
        p = theirs.current_player()
        assert ours.legal_actions() == theirs.legal_actions()
        assert ours.information_state_key(p) == theirs.information_state_string(p)
        actions = theirs.legal_actions()
    for a in actions:
        _walk(ours.child(a), theirs.child(a), counts)


@pytest.mark.parametrize("ours, theirs, terminals", [
    ("kuhn_poker", "kuhn_poker", 30),
    ("kuhn_poker(players=3)", "kuhn_poker(players=3)", None),
    ("leduc_poker", "leduc_poker", 5520),
])
def test_same_returns_on_every_terminal_history(ours, theirs, terminals):
    counts = {"terminal": 0}
    _walk(games.load(ours).new_initial_state(), pyspiel.load_game(theirs).new_initial_state(), counts)
    if terminals is not None:
        assert counts["terminal"] == terminals


def test_policy_round_trip_through_openspiel():
    game = games.load("leduc_poker")
    rng = np.random.default_rng(0)
    table = {}
    from equilibria.games.tree import compile_tree

    tree = compile_tree(game)
    for i, key in enumerate(tree.infoset_keys):
        off, k = tree.infoset_offset[i], tree.infoset_num_actions[i]
        p = rng.dirichlet(np.ones(k))
        table[key] = {int(tree.slot_action[off + j]): float(p[j]) for j in range(k)}
    ours = TabularPolicy(table)
    theirs = to_openspiel_policy(game, ours)
    assert isinstance(theirs, os_policy.TabularPolicy)
    back = from_openspiel_policy(theirs, game)
    assert set(back.table) == set(table)
    for key, probs in table.items():
        for a, p in probs.items():
            assert back.table[key][a] == pytest.approx(p, abs=1e-12)


def test_openspiel_policy_values_agree():
    """The uniform policy converted to OpenSpiel has OpenSpiel's known Kuhn NashConv 11/12."""
    from open_spiel.python.algorithms import exploitability

    game = games.load("kuhn_poker")
    tab = to_openspiel_policy(game, games.UniformRandomPolicy())
    assert exploitability.nash_conv(pyspiel.load_game("kuhn_poker"), tab) == pytest.approx(11 / 12, abs=1e-12)


def test_from_openspiel_wraps_by_name_and_reports_bad_names():
    g = from_openspiel("goofspiel(num_cards=3)")
    assert g.info.dynamics == "simultaneous" and g.info.num_players == 2
    assert games.load("openspiel(game=liars_dice)").info.name == "liars_dice"
    with pytest.raises(ValueError, match="OpenSpiel game 'no_such_game'"):
        from_openspiel("no_such_game")


def test_openspiel_goofspiel_compiles_with_perfect_recall_and_solves():
    from equilibria import solvers
    from equilibria.games.tree import compile_tree

    game = from_openspiel("goofspiel(num_cards=3)")
    tree = compile_tree(game)  # raised "does not have perfect recall" with OpenSpiel's own strings
    assert tree.num_infosets > 0
    assert solvers.exploitability(game, solvers.make("cfr+", game).run(200).average_policy()) < 0.02
