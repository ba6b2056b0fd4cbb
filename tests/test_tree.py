import numpy as np
import pytest

from equilibria import games
from equilibria.games.core import CHANCE, TERMINAL
from equilibria.games.tree import compile_tree


@pytest.mark.parametrize("spec, nodes, infosets", [
    ("kuhn_poker", 58, 12),
    ("leduc_poker", 9457, 936),
])
def test_pinned_counts(spec, nodes, infosets):
    tree = compile_tree(games.load(spec))
    assert (tree.num_nodes, tree.num_infosets) == (nodes, infosets)


def test_counts_match_openspiel_for_three_player_kuhn():
    import pyspiel

    def count(state):
        if state.is_terminal():
            return 1
        acts = [a for a, _ in state.chance_outcomes()] if state.is_chance_node() else state.legal_actions()
        return 1 + sum(count(state.child(a)) for a in acts)

    tree = compile_tree(games.load("kuhn_poker(players=3)"))
    assert tree.num_nodes == count(pyspiel.load_game("kuhn_poker(players=3)").new_initial_state())


def test_structure_is_consistent():
    tree = compile_tree(games.load("leduc_poker"))
    # BFS: children contiguous, parents precede children, depth sorted
    assert np.all(np.diff(tree.depth) >= 0)
    for n in np.flatnonzero(tree.num_children > 0)[:500]:
        kids = np.arange(tree.child_start[n], tree.child_start[n] + tree.num_children[n])
        assert np.all(tree.parent[kids] == n)
    # chance probabilities sum to one under every chance node
    for n in np.flatnonzero(tree.node_player == CHANCE):
        kids = slice(tree.child_start[n], tree.child_start[n] + tree.num_children[n])
        assert abs(tree.chance_prob[kids].sum() - 1.0) < 1e-12
    # decision nodes have as many children as their infoset has actions
    dec = tree.node_infoset >= 0
    assert np.array_equal(tree.num_children[dec], tree.infoset_num_actions[tree.node_infoset[dec]])
    # terminal utilities are zero-sum
    term = tree.node_player == TERMINAL
    assert np.allclose(tree.utility[term].sum(axis=1), 0.0)
    # the expected utility of uniform play over Kuhn chance is symmetric, so just check a state replay
    for n in [17, 400, tree.num_nodes - 1]:
        state = tree.state_at(n)
        assert len(state.history()) == tree.depth[n]


def test_simultaneous_moves_are_sequentialised_without_leaking():
    tree = compile_tree(games.load("rock_paper_scissors"))
    # root (p0), 3 pending nodes (p1), 9 terminals; p1 has ONE infoset: it cannot see p0's choice
    assert tree.num_nodes == 13 and tree.num_infosets == 2
    assert tree.infoset_player.tolist() == [0, 1]
    assert tree.state_at(tree.num_nodes - 1).returns().tolist() == [0.0, 0.0]


def test_goofspiel_compiles_and_replays():
    tree = compile_tree(games.load("goofspiel(num_cards=3)"))
    term = np.flatnonzero(tree.node_player == TERMINAL)
    for n in term[::7]:
        assert np.array_equal(tree.state_at(int(n)).returns(), tree.utility[n])


def test_refuses_infinite_games():
    with pytest.raises(ValueError, match="not finite"):
        compile_tree(games.load("cooperative_navigation"))
    with pytest.raises(ValueError, match="more than the compiled tree's limit of 100"):
        compile_tree(games.load("leduc_poker"), max_nodes=100)
