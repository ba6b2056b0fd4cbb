"""One interface: make, step, policies, checkpoints, clear refusals."""

import numpy as np
import pytest

from equilibria import games, solvers


def test_registered_names():
    expected = {"cfr", "cfr+", "lcfr", "dcfr", "mccfr-external", "mccfr-outcome", "mwu", "optimistic-mwu",
                "extragradient", "mirror-prox", "mmd", "fictitious-play", "lp"}
    assert expected <= set(solvers.registered())


@pytest.mark.parametrize("name, game, kwargs, fragment", [
    ("cfr++", "kuhn_poker", {}, "did you mean 'cfr+'"),
    ("cfr", "kuhn_poker", {"regret_maching_plus": True}, "did you mean 'regret_matching_plus'"),
    ("cfr", "kuhn_poker", {"alternating_updates": "yes"}, "alternating_updates: must be true or false"),
    ("lp", "prisoners_dilemma", {}, "two-player zero-sum"),
    ("extragradient", "random_general_sum(n=3, players=3)", {}, "two-player zero-sum"),
    ("cfr", "cooperative_navigation", {}, "sampled chance"),
    ("mwu", "leduc_poker", {}, "normal-form"),
    ("mmd", "kuhn_poker", {"alpha": 0.0}, "only with alpha > 0"),
    ("mccfr-outcome", "kuhn_poker", {"epsilon": 0.0}, "epsilon"),
    ("mwu", "rock_paper_scissors", {"eta": -1}, "eta: must be > 0"),
])
def test_clear_errors(name, game, kwargs, fragment):
    with pytest.raises(ValueError, match=None) as err:
        solvers.make(name, games.load(game), **kwargs)
    assert fragment in str(err.value)


@pytest.mark.parametrize("name, game", [("cfr+", "kuhn_poker"), ("dcfr", "leduc_poker"),
                                        ("mccfr-external", "leduc_poker"), ("mccfr-outcome", "kuhn_poker"),
                                        ("mmd", "kuhn_poker"), ("optimistic-mwu", "random_zero_sum(n=6)"),
                                        ("extragradient", "rock_paper_scissors"), ("fictitious-play", "matching_pennies")])
def test_checkpoint_resumes_identically(name, game, tmp_path):
    g = games.load(game)
    a = solvers.make(name, g).run(7)
    path = tmp_path / "ckpt.npz"
    np.savez(path, **a.state_dict())
    a.run(5)
    b = solvers.make(name, g)
    with np.load(path, allow_pickle=False) as data:
        b.load_state_dict({k: data[k] for k in data.files})
    b.run(5)
    assert b.iteration == a.iteration == 12
    pa, pb = a.average_policy(), b.average_policy()
    if hasattr(pa, "probs"):  # slot arrays: TreePolicy, MCCFR's InfosetPolicy
        np.testing.assert_array_equal(pa.probs, pb.probs)
    else:
        for x, y in zip(pa.strategies, pb.strategies):
            np.testing.assert_array_equal(x, y)


def test_checkpoint_for_another_solver_is_refused():
    g = games.load("kuhn_poker")
    state = solvers.make("cfr", g).run(2).state_dict()
    with pytest.raises(ValueError, match="checkpoint is for solver 'cfr'"):
        solvers.make("cfr+", g).load_state_dict(state)


def test_policies_are_policies_and_convert_to_openspiel():
    from open_spiel.python.policy import TabularPolicy

    g = games.load("kuhn_poker")
    solver = solvers.make("cfr", g).run(10)
    for pol in (solver.average_policy(), solver.current_policy()):
        assert isinstance(pol, games.Policy)
        tab = pol.to_openspiel()
        assert isinstance(tab, TabularPolicy)
        state = g.new_initial_state()
        state.apply_action(0)
        state.apply_action(1)
        theirs = tab.action_probabilities(_os_state([0, 1]))
        ours = pol.action_probabilities(state)
        assert ours == pytest.approx(theirs)


def _os_state(history):
    import pyspiel

    s = pyspiel.load_game("kuhn_poker").new_initial_state()
    for a in history:
        s.apply_action(a)
    return s
