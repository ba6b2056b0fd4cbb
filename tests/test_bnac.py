"""The Bayesian-network actor-critic (marl/bnac.py): DAGs are acyclic and re-scored exactly, the
joint-policy view is the distribution the agents sample, the density schedule, checkpoints, and
that it learns to coordinate where MAPPO does not (the penalty game as a one-step Markov game)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equilibria import games, marl
from equilibria.marl.bnac import BNACConfig, parent_features, threshold

NAV = "cooperative_navigation(num_agents=3, num_landmarks=3)"


def test_parent_features_write_each_parents_action_in_its_block():
    edges = torch.tensor([[[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # 0 -> 1, 0 -> 2
    onehot = torch.nn.functional.one_hot(torch.tensor([[2, 0, 1]]), 3).float()
    pf = parent_features(edges, onehot)[0]
    assert pf[0].sum() == 0  # agent 0 has no parents
    assert pf[1].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0] and pf[2].tolist() == pf[1].tolist()


def test_sampled_dags_are_acyclic_and_the_update_rescores_the_rollouts_actions():
    torch.manual_seed(0)
    learner = marl.make("bnac", games.load(NAV), seed=0, num_envs=16, anneal=False)
    obs, mask = learner.sim.observe(), learner.sim.action_mask()
    actions, logp, extras = learner.act(obs, mask)
    x = {k: torch.as_tensor(v) for k, v in extras.items()}
    o = torch.as_tensor(obs["agents"])
    edges = learner.edges(o, x["edge_noise"], x["edge_keep"]).detach()
    assert torch.all(torch.tril(edges) == 0)  # only j -> i with j < i: acyclic in the agents' order
    assert 0 < edges.sum() < edges.shape[0] * 3  # some edges, not all
    a = torch.as_tensor(actions["agents"])
    again = learner.log_probs("agents", o, None, a, x).gather(-1, a[..., None]).squeeze(-1)
    np.testing.assert_allclose(again.detach().numpy(), logp["agents"], atol=1e-5)


def test_the_joint_policy_view_is_the_distribution_the_agents_sample():
    learner = marl.make("bnac", games.load('one_shot(game="three_agent_climb")'), seed=1, anneal=False)
    with torch.no_grad():  # make the edges and the conditioning matter
        learner.dag[-1].bias.copy_(torch.randn(9) * 2)
        for p in learner.actors.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    state = learner.game.new_initial_state(0)
    exact = learner.policy().joint_action_probabilities(state)
    assert sum(exact.values()) == pytest.approx(1.0, abs=1e-5)
    n = 40_000
    obs = np.ones((n, 3, 1), dtype=np.float32)
    with torch.no_grad():
        a, _, _ = learner._sample(obs, np.ones((n, 3, 3), dtype=bool), learner.draw(n, 1.0))
    counts = {}
    for row in map(tuple, a.tolist()):
        counts[row] = counts.get(row, 0) + 1
    tv = 0.5 * sum(abs(counts.get(k, 0) / n - exact.get(k, 0.0)) for k in set(counts) | set(exact))
    assert tv < 0.02
    marg = learner.policy().action_probabilities(state, 2)
    assert sum(marg.values()) == pytest.approx(1.0, abs=1e-5)


def test_density_threshold_falls_to_zero_between_40_and_70_percent():
    c = BNACConfig(total_steps=1000)
    assert threshold(c, 0) == 1.0 and threshold(c, 399) == 1.0
    assert threshold(c, 400) == pytest.approx(0.95)
    assert 0.0 < threshold(c, 600) < 0.5
    assert threshold(c, 700) == 0.0 and threshold(c, 1000) == 0.0
    assert threshold(BNACConfig(total_steps=1000, anneal=False), 900) == 1.0


def test_one_group_with_vector_observations_is_required():
    with pytest.raises(ValueError, match="one group"):
        marl.make("bnac", games.load("pursuit"))


def test_checkpoints_round_trip_and_the_dag_network_trains():
    game = games.load(NAV)
    a = marl.make("bnac", game, seed=3, num_envs=8, anneal=False)
    before = [p.detach().clone() for p in a.dag.parameters()]
    a.train_step()
    assert any(not torch.equal(p, q) for p, q in zip(before, a.dag.parameters()))  # straight-through gradients
    b = marl.make("bnac", game, seed=4, num_envs=8, anneal=False)
    b.load_state_dict(torch.load(_roundtrip(a.state_dict()), weights_only=True))
    assert b.evaluate(8) == a.evaluate(8)
    assert b.extra_evaluation(8) == a.extra_evaluation(8)


def _roundtrip(state):
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return buf


def test_bnac_coordinates_in_the_penalty_game_where_mappo_does_not():
    """Penalty game (k = -100) as a one-step Markov game: the optima (0, 2) and (2, 0) pay 10,
    mixing them up costs 100, (1, 1) is the safe 2. With the same settings MAPPO's independent
    actors settle on the safe action; through the DAG the second agent answers the first one's
    choice and the pair reaches an optimum (benchmarks/results/bayesian_pg.md, 20 seeds of 100k
    steps: 10.00 in every seed, -39.5 on average with the edges removed; MAPPO at 2 in all)."""
    game = games.load('one_shot(game="penalty_game(k=-100)")')
    steps = 60_000
    bn = marl.make("bnac", game, seed=0, entropy_coef=0.3, anneal=False)
    mappo = marl.make("mappo", game, seed=0, entropy_coef=0.3)
    for learner in (bn, mappo):
        while learner.env_steps < steps:
            learner.train_step()
    assert bn.evaluate(16)[0] > 9.9
    assert mappo.evaluate(16)[0] < 5.0
    joint = bn.policy(deterministic=True).joint_action_probabilities(game.new_initial_state(0))
    assert list(joint) in ([(0, 2)], [(2, 0)])


def test_anonymous_agents_split_the_landmarks_by_reading_their_parents():
    """Blind agents that name the landmark they head for, and actors without the agent's id. The
    complete DAG still tells an agent its place in the order (agent 0 never has a parent), so
    the edges could matter only as an id; `parent_response` checks that agent 1 reads agent 0's
    choice: its answer changes with it and is another landmark. Removed, every agent acts as
    agent 0 and they crowd the same landmark. Seeds 1 and 2 at 160k steps: -10.8 and -10.6 with
    the edges, -22.8 and -22.2 without, agent 1 changing its answer on 100% and 95% of
    observations (five seeds of 400k: benchmarks/results/bnac_navigation_landmarks_anonymous.md)."""
    game = games.load("cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0, actions='landmarks')")
    bn = marl.make("bnac", game, seed=2, dag="complete", anneal=False, actor_ids=False)
    while bn.env_steps < 160_000:
        bn.train_step()
    with_edges = bn.evaluate(32)[0]
    without = bn.extra_evaluation(32)["eval_return_no_edges"]
    assert with_edges > -11.3 and without < with_edges - 5.0, (with_edges, without)
    response = bn.parent_response(1, 0)
    assert response["changes"] > 0.8 and response["differs"] > 0.9, response
    with pytest.raises(ValueError, match="from an earlier agent to a later one"):
        bn.parent_response(0, 1)


def test_parent_response_asks_only_legal_parent_actions_and_takes_legal_answers(monkeypatch):
    """In a masked state the child may answer only with action 2 and the parent may take only 0
    or 1: every answer is 2, so it never changes and always differs from the parent's action."""
    from equilibria.marl import bnac as bnac_module

    game = games.load("cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0, actions='landmarks')")
    bn = marl.make("bnac", game, seed=0, dag="complete", anneal=False, actor_ids=False)
    obs = game.simulator(4, 0).observe()[bn.group]
    mask = np.ones((4, 3, 3), dtype=bool)
    mask[:, 0, 2] = False  # the parent cannot take 2
    mask[:, 1, :2] = False  # the child can take only 2

    def one_step(game_, choose, episodes, seed):
        choose({bn.group: obs}, {bn.group: mask}, {bn.group: np.ones((4, 3), dtype=bool)})
        return np.zeros(episodes)

    monkeypatch.setattr(bnac_module, "episode_means", one_step)
    assert bn.parent_response(1, 0) == {"changes": 0.0, "differs": 1.0}

    # a child that answers (parent's action + 1) mod 3, where the parent may take 1 or 2 in the
    # first two observations and only 2 in the last two: it changes its answer in every
    # observation where it can (the last two cannot count), and always differs
    mask[:] = True
    mask[:, 0, 0] = False
    mask[2:, 0, 1] = False
    actor, width = bn.actors[bn.group], 3 * 3  # n * A parent-feature columns at the end of the input

    def answer_next(x, slot, child_mask=None):
        parent_action = x[:, -width:][:, :3].argmax(-1)
        return torch.nn.functional.one_hot((parent_action + 1) % 3, 3).float() * 10.0

    monkeypatch.setattr(actor, "slot_logits", answer_next)
    assert bn.parent_response(1, 0) == {"changes": 1.0, "differs": 1.0}
    mask[:, 0] = False
    with pytest.raises(ValueError, match="no legal action"):
        bn.parent_response(1, 0)


def test_a_train_run_logs_training_statistics_and_the_edge_free_return(tmp_path):
    """The first evaluation comes before any training step; the columns that appear later
    (train_return, open_ratio) widen metrics.csv instead of being dropped. The density schedule
    follows the scenario's budget."""
    from equilibria import scenarios

    scenario = scenarios.load("bn-navigation", ["budget.steps=1600", "eval.every_steps=800", "eval.episodes=4",
                                                "algorithm.config.num_envs=8"])
    result = scenarios.run(scenario, out=tmp_path, quiet=True)
    rows = scenarios.RunContext(scenario, resume=result.run_dir).read_metrics()
    assert [r["env_steps"] for r in rows] == [0, 800, 1600]
    assert "train_return" not in rows[0] and {"train_return", "open_ratio", "eval_return_no_edges"} <= set(rows[-1])
    # the schedule spans the scenario's budget: edges at the middle evaluation, none by 70%
    assert rows[0]["threshold"] == 1.0 and 0.0 < rows[1]["threshold"] < 1.0 and 0.0 < rows[1]["open_ratio"] < 1.0
    assert rows[-1]["threshold"] == 0.0 and rows[-1]["eval_return"] == rows[-1]["eval_return_no_edges"]
