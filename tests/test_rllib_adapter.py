"""The RLlib adapter: a MultiAgentEnv that keeps termination and truncation apart (fast: no Ray
cluster is started), and the rllib backend end to end (slow: starts Ray)."""

import numpy as np
import pytest

from equilibria import games

pytest.importorskip("ray.rllib")


def test_multi_agent_env_matches_the_batched_game():
    from equilibria.games.adapters.rllib import to_rllib

    game = games.load("cooperative_navigation")
    env = to_rllib(game)
    obs, _ = env.reset(seed=5)
    sim = game.spawn()
    ref = sim.reset(1, seed=5)[0]
    np.testing.assert_array_equal(obs["agent_1"], ref[1])
    for t in range(25):
        acts = {a: (t + i) % 5 for i, a in enumerate(env.agents)}
        obs, rew, term, trunc, _ = env.step(acts)
        res = sim.step(np.array([[acts[a] for a in env.agents]]), autoreset=False)
        assert rew["agent_0"] == pytest.approx(res.rewards[0, 0])
    assert trunc["__all__"] and not term["__all__"]
    assert set(env.observation_spaces) == set(env.agents)


def test_to_rllib_refuses_other_games():
    from equilibria.games.adapters.rllib import to_rllib

    with pytest.raises(ValueError, match="batched Markov game"):
        to_rllib(games.load("kuhn_poker"))


@pytest.mark.slow
def test_rllib_backend_trains_through_the_same_yaml(tmp_path):
    from equilibria import scenarios

    s = scenarios.load("rllib-navigation", ["budget.steps=1600", "eval.every_steps=800", "eval.episodes=4"])
    result = scenarios.run(s, out=tmp_path, quiet=True)
    assert result.metrics["backend"] == "rllib" and result.metrics["env_steps"] >= 1600
    assert np.isfinite(result.metrics["eval_return"])
