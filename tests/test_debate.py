"""The debate game (games.debate): both forms keep their contracts, CFR solves a small debate to
the exact minimax value found by backward induction, and the rules (hand-made winning reveal,
ties, no repeated reveals, zero-sum terminal rewards to both slots) hold in both forms."""

import numpy as np
import pytest

from equilibria import games, solvers
from equilibria.games.core import CHANCE, TERMINAL
from equilibria.games.debate import (
    DebateGame,
    DebateRules,
    LinearJudge,
    debate_outcome,
    gaussian_sampler,
    play_debates,
    random_cases,
    random_chooser,
    random_linear_judge,
    reveal,
)
from equilibria.games.debate_batched import BatchedDebate
from equilibria.games.testing import api_test, markov_api_test

SMALL = "debate(num_features=5, num_arguments=3, num_cases=6, seed=0)"


def minimax(state) -> float:
    """Player 0's exact value by backward induction (chance: expectation; 0 maximises, 1 minimises)."""
    if state.is_terminal():
        return float(state.returns()[0])
    cur = state.current_player()
    if cur == CHANCE:
        return sum(p * minimax(state.child(o)) for o, p in state.chance_outcomes())
    values = [minimax(state.child(a)) for a in state.legal_actions()]
    return max(values) if cur == 0 else min(values)


def hand_made(num_arguments: int = 2, first=0) -> DebateGame:
    """One case, x = 1: feature f adds delta[f] = w[f, 0] - w[f, 1] to s1 - s2 with delta =
    (1, 0.6, -0.8, -0.3). Player 0 (first) must reveal feature 0: then player 1's best reply
    (feature 2) leaves +0.2 and player 0 wins; any other first reveal loses."""
    w = np.array([[1.0, 0.0], [0.6, 0.0], [0.0, 0.8], [0.0, 0.3]])
    return DebateGame(np.ones((1, 4)), [[0, 1]], [1.0], LinearJudge(w, np.zeros(2)), num_arguments, first)


def greedy(judge: LinearJudge):
    """Reveals the unrevealed feature that helps its own decision most against the other's (the
    optimal play under a linear judge: contributions add up)."""
    def choose(obs, legal, side):
        mine, theirs = obs["mine"].argmax(1), obs["theirs"].argmax(1)
        gain = obs["state"] * (judge.weights[:, mine] - judge.weights[:, theirs]).T
        return np.where(legal, gain, -np.inf).argmax(1)
    return choose


# ----------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("spec", [SMALL, "debate(num_features=4, num_arguments=4, first=1)",
                                  "debate(num_features=6, num_decisions=5, num_arguments=2, first=0)"])
def test_api(spec):
    api_test(games.load(spec), num_games=20)


@pytest.mark.parametrize("spec", ["debate_batched", "debate_batched(num_features=4, num_arguments=4, first=0)"])
def test_markov_api(spec):
    markov_api_test(games.load(spec))


def test_registry_builds_the_example():
    g = games.load("debate(num_features=5, num_arguments=2)")
    assert isinstance(g, DebateGame) and g.info.parameters["seed"] == 0 and g.info.max_game_length == 2
    assert g.info.information == "perfect" and g.info.num_distinct_actions == 5
    with pytest.raises(ValueError, match="num_arguments"):
        games.load("debate(num_features=3, num_arguments=4)")
    with pytest.raises(ValueError, match="first"):
        games.load("debate(first=2)")


# ----------------------------------------------------------------------------- exact solution
def test_cfr_solves_a_small_debate_to_the_backward_induction_value():
    game = games.load(SMALL)
    solver = solvers.make("cfr", game).run(1000)
    policy = solver.average_policy()
    assert solvers.exploitability(game, policy) < 1e-3  # measured: 3.7e-4
    value = minimax(game.new_initial_state())
    assert solvers.policy_value(game, policy)[0] == pytest.approx(value, abs=1e-3)
    assert solvers.exploitability(game, games.UniformRandomPolicy()) > 0.1  # the bound is not vacuous


def test_revealing_the_right_feature_wins():
    game = hand_made()
    root = game.new_initial_state()
    root.apply_action(0)  # the only case
    assert root.current_player() == 0 and root.legal_actions() == [0, 1, 2, 3]
    assert [minimax(root.child(f)) for f in range(4)] == [1.0, -1.0, -1.0, -1.0]
    policy = solvers.make("cfr+", game).run(200).average_policy()
    assert policy.action_probabilities(root)[0] > 0.99
    # the same through play_debates: greedy debaters, and player 0 opening with feature 1 instead
    judge = game.rules.judge
    out = play_debates(game, greedy(judge), greedy(judge), game.cases_x, game.cases_a, first=0)
    assert out["order"].tolist() == [[0, 2]] and out["payoff"].tolist() == [1.0]
    np.testing.assert_allclose(out["scores"], [[1.0, 0.8]])

    def opens_with_1(obs, legal, side):
        return np.where(obs["turn"][:, 0] == 0, 1, greedy(judge)(obs, legal, side))

    assert play_debates(game, opens_with_1, greedy(judge), game.cases_x, game.cases_a, first=0)["payoff"].tolist() == [-1.0]


def test_ties_pay_zero():
    judge = LinearJudge(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))
    x, both = np.ones((3, 2)), np.ones((3, 2), dtype=bool)
    # equal evidence for each side, the same decision on both sides, and a gap inside tie_tol
    assert debate_outcome(judge, x, both, [0, 0, 0], [1, 0, 0]).tolist() == [0.0, 0.0, 0.0]
    x_close = np.array([[1.0, 1.0 - 1e-12]])
    assert debate_outcome(judge, x_close, both[:1], [0], [1]).tolist() == [0.0]
    assert debate_outcome(judge, x_close, both[:1], [0], [1], tie_tol=0.0).tolist() == [1.0]
    game = DebateGame(np.ones((1, 2)), [[0, 1]], [1.0], judge, num_arguments=2, first="random")
    assert minimax(game.new_initial_state()) == 0.0
    state = game.new_initial_state()
    for a in (0, 1, 1, 0):  # case, starter, reveals
        state.apply_action(a)
    assert state.is_terminal() and state.returns().tolist() == [0.0, 0.0] and state.judge_scores() == (1.0, 1.0)


def test_repeated_reveals_are_rejected():
    state = hand_made(num_arguments=3).new_initial_state()
    state.apply_action(0)
    state.apply_action(2)
    assert 2 not in state.legal_actions(1)
    with pytest.raises(ValueError, match="already revealed"):
        state.apply_action(2)
    with pytest.raises(ValueError, match="already revealed"):
        reveal(np.array([[True, False]]), [0])
    with pytest.raises(ValueError, match="already revealed"):
        play_debates(hand_made(), lambda o, legal, s: np.zeros(len(legal), dtype=int),
                     lambda o, legal, s: np.zeros(len(legal), dtype=int), np.ones((2, 4)), [[0, 1], [1, 0]], first=0)
    game = games.load("debate_batched(num_features=4, num_arguments=3, first=0)")
    sim = game.simulator(2, seed=0)
    sim.step({"debaters": np.array([[1, 0], [1, 0]])})  # slot 0 reveals feature 1; slot 1's pass is feature 0
    mask = sim.action_mask()["debaters"]
    assert mask[:, 1].tolist() == [[True, False, True, True]] * 2 and mask[:, 0].sum(-1).tolist() == [1, 1]
    with pytest.raises(ValueError, match="masked out"):
        sim.step({"debaters": np.array([[0, 1], [0, 2]])})


# ----------------------------------------------------------------------------- the batched form
def test_terminal_rewards_go_to_both_slots_and_sum_to_zero():
    game = games.load("debate_batched(num_features=6, num_decisions=3, num_arguments=3)")
    sim = game.simulator(64, seed=1)
    rng = np.random.default_rng(0)
    ended_total, movers = 0, []
    for _ in range(9):
        x, a, mask_before = sim.x.copy(), sim.a.copy(), sim.mask.copy()
        assert sim.active()["debaters"].all()
        mask = sim.action_mask()["debaters"]
        acts = np.argmax(rng.random(mask.shape) * mask, axis=-1)
        res = sim.step({"debaters": acts})
        r, info = res.rewards["debaters"], res.info
        movers.append(info["mover"])
        np.testing.assert_array_equal(r.sum(1), 0.0)
        np.testing.assert_array_equal(res.terminated, info["ended"])
        assert not r[~res.terminated].any() and set(np.unique(r[res.terminated, 0])) <= {-1.0, 0.0, 1.0}
        np.testing.assert_array_equal(r[:, 0], info["payoff"])
        e = np.flatnonzero(res.terminated)
        if not len(e):
            continue
        final = res.final_obs["debaters"]["revealed"][e, 0].astype(bool)
        assert (final.sum(1) == 3).all() and (final & ~mask_before[e]).sum(1).tolist() == [1] * len(e)
        np.testing.assert_array_equal(debate_outcome(game.rules.judge, x[e], final, a[e, 0], a[e, 1]), r[e, 0])
        ended_total += len(e)
    assert ended_total == 3 * 64
    movers = np.stack(movers)
    assert (movers[1] != movers[0]).all() and 0 < movers[0].mean() < 1  # alternating, random first


def test_play_debates_agrees_with_both_forms():
    rng = np.random.default_rng(3)
    judge = random_linear_judge(6, 4, rng)
    x, a = random_cases(200, 6, 4, rng)
    rules = DebateRules(judge, 6, 4, num_arguments=4)
    out = play_debates(rules, random_chooser(rng), greedy(judge), x, a, rng=rng)
    assert out["mask"].sum(1).tolist() == [4] * 200 and 0 < out["first"].mean() < 1
    np.testing.assert_array_equal(out["payoff"], debate_outcome(judge, x, out["mask"], a[:, 0], a[:, 1]))
    assert out["payoff"].mean() < -0.3  # the greedy debater (optimal here) beats a random one
    # replaying the reveal orders in DebateGame gives the same payoffs
    game = DebateGame(x, a, np.full(200, 1 / 200), judge, num_arguments=4, num_decisions=4)
    for i in range(0, 200, 37):
        state = game.new_initial_state()
        for move in [i, out["first"][i], *out["order"][i]]:
            state.apply_action(int(move))
        assert state.current_player() == TERMINAL and state.returns()[0] == out["payoff"][i]
    # ... and in BatchedDebate, whose observations are what the choosers saw
    batched = BatchedDebate(lambda g, n: (x[:n], a[:n]), judge, 6, 4, num_arguments=4, first=0)
    sim = batched.simulator(8, seed=0)
    seen = {}

    def spy(obs, legal, side):
        seen.setdefault(side, obs)
        return greedy(judge)(obs, legal, side)

    played = play_debates(batched, spy, spy, x[:8], a[:8], first=0)
    for side in (0, 1):  # side 0 first moves at reveal 0, side 1 at reveal 1
        obs = sim.observe()["debaters"]
        for k, v in seen[side].items():
            np.testing.assert_array_equal(v, obs[k][:, side], err_msg=k)
        if side == 0:
            sim.step({"debaters": np.stack([played["order"][:, 0], np.argmax(~sim.mask, 1)], 1)})
    assert seen[1]["moving"].all() and seen[1]["mine"].argmax(1).tolist() == a[:8, 1].tolist()


def test_ippo_trains_the_debaters_by_self_play():
    from equilibria import marl

    game = BatchedDebate(gaussian_sampler(5, 3), random_linear_judge(5, 3, np.random.default_rng(0)), 5, 3,
                         num_arguments=2)
    algo = marl.make("ippo", game, seed=0, num_envs=8, rollout_length=4, hidden=16)
    stats = algo.train_step()
    assert np.isfinite(stats["policy_loss"]) and np.isfinite(stats["value_loss"]) and algo.env_steps == 32
