"""The RLlib adapter: a MultiAgentEnv that keeps termination and truncation apart (fast: no Ray
cluster is started), and the rllib backend end to end (slow: starts Ray)."""

import numpy as np
import pytest
from needs import need

from equilibria import games

need("ray.rllib", "rllib")


def test_multi_agent_env_matches_the_batched_game():
    from equilibria.games.adapters.rllib import to_rllib

    game = games.load("cooperative_navigation")
    env = to_rllib(game)
    obs, _ = env.reset(seed=5)
    sim = game.simulator(1)
    ref = sim.reset(seed=5)["agents"][0]
    assert env.agents == ["agents_0", "agents_1", "agents_2"]
    np.testing.assert_array_equal(obs["agents_1"], ref[1])
    for t in range(25):
        acts = {a: (t + i) % 5 for i, a in enumerate(env.agents)}
        obs, rew, term, trunc, _ = env.step(acts)
        res = sim.step({"agents": np.array([[acts[a] for a in env.possible_agents]])}, autoreset=False)
        assert rew["agents_0"] == pytest.approx(res.rewards["agents"][0, 0])
    assert trunc["__all__"] and not term["__all__"]
    assert set(env.observation_spaces) == set(env.possible_agents)


def test_absent_agents_get_no_observation_and_groups_map_to_policies():
    from equilibria.games.adapters.rllib import policy_of, to_rllib

    game = games.load("cooperative_navigation(num_agents=4, num_landmarks=4, population=[2, 3])")
    env = to_rllib(game, seed=1)
    obs, _ = env.reset(seed=3)
    assert 2 <= len(obs) <= 3 and set(obs) == set(env.agents) and "agents_3" not in obs
    obs, rew, term, trunc, _ = env.step({a: 0 for a in env.agents})
    assert set(rew) == set(env.agents) and not term["__all__"]
    assert {policy_of(a) for a in env.possible_agents} == {"agents"}
    pursuit = to_rllib(games.load("pursuit"))
    assert pursuit.possible_agents == ["pursuer_0", "evader_0"]
    assert [policy_of(a) for a in pursuit.possible_agents] == ["pursuer", "evader"]


def test_to_rllib_refuses_other_games():
    from equilibria.games.adapters.rllib import to_rllib

    with pytest.raises(ValueError, match="needs a Markov game"):
        to_rllib(games.load("kuhn_poker"))


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray cluster at a time under pytest-xdist
def test_rllib_backend_trains_through_the_same_yaml(tmp_path):
    from equilibria import scenarios

    s = scenarios.load("rllib-navigation", ["budget.steps=1600", "eval.every_steps=800", "eval.episodes=4"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["backend"] == "rllib" and result.metrics["env_steps"] >= 1600
    assert np.isfinite(result.metrics["eval_return"])
