"""Tabular Bayesian-network softmax policy gradient: exact gradients (against finite differences),
and on the coordination games the BN policy finds the optimum where independent agents do not."""

from __future__ import annotations

import numpy as np
import pytest

from equilibria import games
from equilibria.solvers import bayesian_pg as bn


def test_exact_gradient_matches_finite_differences():
    reward = bn.common_payoff(games.load("three_agent_climb"))
    t = bn.tables(reward.shape, ((), (0,), (0, 1)))
    logits = bn.init(t, np.random.default_rng(0), 1.0)
    grads = bn.gradient(t, logits, reward)

    def value(ls):
        return float(bn.joint_distribution(t, ls) @ reward.ravel())

    for i in range(3):
        for idx in [(0, 0), (t.configs[i] - 1, 2)]:
            bumped = [x.copy() for x in logits]
            bumped[i][idx] += 1e-6
            lowered = [x.copy() for x in logits]
            lowered[i][idx] -= 1e-6
            assert grads[i][idx] == pytest.approx((value(bumped) - value(lowered)) / 2e-6, abs=1e-5)
    assert bn.joint_distribution(t, logits).sum() == pytest.approx(1.0)


def test_the_chain_dag_expresses_any_joint_distribution_and_edges_must_point_forward():
    assert bn.chain(3) == ((), (0,), (0, 1)) and bn.independent(2) == ((), ())
    with pytest.raises(ValueError, match="distinct earlier agents"):
        bn.tables((3, 3), ((1,), ()))
    with pytest.raises(ValueError, match="not identical-interest"):
        bn.common_payoff(games.load("prisoners_dilemma"))
    assert games.load("climbing_game").info.utility == "identical"


@pytest.mark.parametrize("reward", [bn.common_payoff(games.load("climbing_game")), bn.common_payoff(games.load("penalty_game(k=-100)")), bn.common_payoff(games.load("three_agent_climb"))],
                         ids=["climbing", "penalty", "three-agent"])
def test_bn_policy_coordinates_where_independent_agents_do_not(reward):
    n = reward.ndim
    bn_rate = np.mean([bn.run(reward, bn.chain(n), s)["p_optimal"] > 0.9 for s in range(10)])
    ind_rate = np.mean([bn.run(reward, bn.independent(n), s)["p_optimal"] > 0.9 for s in range(10)])
    assert bn_rate >= 0.9 and ind_rate <= 0.2
