"""Double DQN (marl/dqn.py): the target on worked examples, and learning online and offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equilibria import games, marl
from equilibria.marl.dqn import linear_epsilon, td_target
from tests.needs import need


def test_double_and_plain_targets_by_hand():
    r = torch.tensor([1.0, 0.0])
    term = torch.tensor([0.0, 1.0])
    online = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0]])  # picks a' = 1 in row 0
    target = torch.tensor([[3.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    # double: Q_target(o', argmax Q_online) = 2; the second row is terminal
    assert torch.allclose(td_target(r, term, online, target, 0.5, double=True), torch.tensor([1.0 + 0.5 * 2.0, 0.0]))
    # DQN: max Q_target = 4
    assert torch.allclose(td_target(r, term, online, target, 0.5, double=False), torch.tensor([1.0 + 0.5 * 4.0, 0.0]))
    # an illegal action never bootstraps: with a' = 1 masked, the online argmax is a' = 2 (value 4)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    assert torch.allclose(td_target(r, term, online, target, 0.5, double=True, next_mask=mask),
                          torch.tensor([1.0 + 0.5 * 4.0, 0.0]))


def test_linear_epsilon():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(500, 1.0, 0.1, 100) == pytest.approx(0.1)


def test_dqn_learns_grid_goals_online():
    """Two agents on a 5 x 5 grid walk to their goals (+1, -0.05 a step). Measured: greedy return
    per agent -0.67 untrained, 0.72 after 1,500 train steps (12,000 env steps, 5 s); the optimum is
    about 0.85. Threshold 0.4."""
    game = games.load("grid_goals(num_agents=2, size=5, max_steps=20)")
    learner = marl.make("dqn", game, seed=0, lr=1e-3, epsilon_steps=4000, learning_starts=500, target_tau=0.01)
    before = learner.evaluate(32)[0]
    for _ in range(1500):
        stats = learner.train_step()
    after = learner.evaluate(32)[0]
    assert np.isfinite(stats["loss"]) and before < 0.0 and after > 0.4, (before, after)
    state = learner.state_dict()
    twin = marl.make("dqn", game, seed=1, lr=1e-3, epsilon_steps=4000, learning_starts=500, target_tau=0.01)
    twin.load_state_dict(state)
    assert twin.evaluate(8) == learner.evaluate(8)


def test_offline_dqn_bootstraps_survival_values_from_clinician_data():
    """ICU-Sepsis, offline from 10,000 transitions of the clinician's policy, 1,000 updates
    (gamma 0.99). Over the states the clinician visits often, the learned max_a Q(s, a) must carry
    the survival probability back from the episode's end: measured mean 0.60 / 0.59 (seeds 0, 1;
    the optimal values average 0.82) and correlation with the optimal values 0.40 / 0.41; without
    bootstrapping (gamma 0.01) the mean is 0.15 and the correlation 0.11. Thresholds 0.4 and 0.25."""
    need("icu_sepsis", "debate")
    from equilibria.games.icu_sepsis import load_sepsis, occupancy, standardized_features, value_iteration

    mdp = load_sepsis()
    game = games.load("icu_sepsis(observation=both)")
    learner = marl.make("dqn_offline", game, seed=0, expert="clinician", transitions=10_000, lr=1e-3, target_tau=0.005)
    for _ in range(1000):
        learner.train_step()
    obs = torch.as_tensor(np.concatenate([standardized_features(mdp), np.eye(mdp.P.shape[0], dtype=np.float32)], 1))
    with torch.no_grad():
        q = np.where(mdp.admissible, learner.q(obs).numpy(), -np.inf).max(1)
    v_star = value_iteration(mdp, gamma=0.99)[0]
    often = (occupancy(mdp, mdp.clinician) > 0.01) & ~mdp.terminal
    assert q[often].mean() > 0.4 and np.corrcoef(q[often], v_star[often])[0, 1] > 0.25
    with pytest.raises(ValueError, match="offline DQN needs"):
        marl.make("dqn_offline", game)
