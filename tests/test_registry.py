import numpy as np
import pytest

from equilibria import games


def test_load_plain_and_parameterised():
    assert games.load("leduc_poker").info.num_players == 2
    g = games.load("random_zero_sum(n=100, seed=3)")
    assert g.payoff_tensor().shape == (2, 100, 100)
    # same string, same game; different seed, different game
    assert np.array_equal(g.payoff_tensor(), games.load("random_zero_sum(seed=3, n=100)").payoff_tensor())
    assert not np.array_equal(g.payoff_tensor(), games.load("random_zero_sum(n=100, seed=4)").payoff_tensor())
    assert games.load("kuhn_poker(players=3)").info.num_players == 3
    assert games.load({"name": "goofspiel", "num_cards": 3}).info.max_game_length == 3


def test_registered_lists_every_required_game():
    required = {"matrix", "rock_paper_scissors", "matching_pennies", "prisoners_dilemma", "random_zero_sum",
                "random_general_sum", "kuhn_poker", "leduc_poker", "goofspiel", "cooperative_navigation"}
    assert required <= set(games.registered())


def test_list_literals_and_strings_parse_without_eval():
    g = games.load("matrix(row=[[0, -1, 1], [1, 0, -1], [-1, 1, 0]])")
    assert g.info.utility == "zero_sum"
    g = games.load("goofspiel(num_cards=3, points_order='descending')")
    assert g.info.chance is False
    with pytest.raises(ValueError):
        games.load("matrix(row=__import__('os'))")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("leduc_pokr", "did you mean 'leduc_poker'"),
        ("kuhn_poker(playrs=3)", "playrs: unknown field"),
        ("kuhn_poker(playrs=3)", "did you mean 'players'"),
        ("random_zero_sum(n='ten')", "n: must be an integer"),
        ("random_zero_sum(n=1.5)", "n: must be an integer, got 1.5"),
        ("kuhn_poker(players=3", "unbalanced"),
        ("kuhn_poker(players=3))", "unbalanced"),
        ("kuhn_poker(players=7)", "players: must lie in [2, 5], got 7"),
        ("", "empty"),
        ("kuhn_poker(players=2, players=3)", "given twice"),
        ("matrix", "row: missing required field"),
    ],
)
def test_bad_strings_raise_one_clear_value_error(spec, fragment):
    with pytest.raises(ValueError) as err:
        games.load(spec)
    msg = str(err.value)
    assert fragment in msg
    assert repr(spec) in msg or spec == ""
    assert "\n" not in msg


def test_float_parameters_accept_ints():
    g = games.load("cooperative_navigation(local_ratio=1)")
    assert g.local_ratio == 1.0
