"""The Follower learns to follow its planner (a threshold on a short run), evaluates on other
lifelong_mapf games, plays through the engine and checkpoints to plain tensors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from equilibria import games
from equilibria.games.engine import play_game
from equilibria.marl import controllers, registry

GAME = "lifelong_mapf(num_agents=16, size=12, density=0.2, obs_radius=3, max_steps=64)"


@pytest.fixture(scope="module")
def trained():
    learner = registry.make("follower", games.load(GAME), seed=0, lr=3e-3, num_envs=4, maps=["random"],
                            agent_counts=[], rollout_length=16)
    rates = [learner.train_step()["subgoal_rate"] for _ in range(80)]
    return learner, rates


def test_the_follower_learns_to_reach_its_subgoals(trained):
    learner, rates = trained
    assert np.mean(rates[:5]) < 0.3  # an untrained network wanders (about 1 in 5 steps lands on the sub-goal)
    assert np.mean(rates[-10:]) > 0.45
    game = games.load(GAME)
    follower = learner.evaluation_returns(16, seed=5).mean()
    walk = controllers.make("mapf_random", game).evaluation_returns(16, seed=5).mean()
    assert follower > 3 * walk


def test_it_evaluates_on_other_games_of_its_family_and_refuses_others(trained):
    learner, _ = trained
    bigger = games.load("lifelong_mapf(num_agents=40, size=16, obs_radius=4, max_steps=16, map=maze)")
    assert learner.on_game(bigger).evaluation_returns(2, seed=0).shape == (2,)
    assert learner.on_game(games.load("lifelong_mapf(num_agents=4, size=8, obs_radius=2)")) is None
    assert learner.on_game(games.load("grid_goals")) is None


def test_policy_plays_every_seat_through_the_engine(trained):
    learner, _ = trained
    game = games.load("lifelong_mapf(num_agents=6, size=8, density=0.1, obs_radius=3, max_steps=12)")
    policy = learner.policy(deterministic=True)
    record = play_game(game, [policy] * 6, seed=3)
    assert len(record["outcome"]["returns"]) == 6 and sum(record["outcome"]["returns"]) >= 0


def test_checkpoint_round_trip_with_plain_tensors(trained):
    learner, _ = trained
    buf = io.BytesIO()
    torch.save(learner.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = registry.make("follower", games.load(GAME), seed=9, num_envs=4, maps=["random"], agent_counts=[])
    other.load_state_dict(state)
    a = learner.evaluation_returns(4, seed=11)
    b = other.evaluation_returns(4, seed=11)
    assert np.array_equal(a, b) and other.env_steps == learner.env_steps


def test_configs_that_cannot_run_are_refused():
    with pytest.raises(ValueError, match="network_radius 5 exceeds the game's obs_radius 3"):
        registry.make("follower", games.load(GAME), network_radius=5)
    with pytest.raises(ValueError, match="trains on lifelong_mapf"):
        registry.make("follower", games.load("grid_goals"))


def test_a_checkpoint_from_before_the_hidden_default_changed_loads_and_a_mismatch_is_refused(trained):
    learner, _ = trained
    old = registry.make("follower", games.load(GAME), seed=1, num_envs=4, maps=["random"], agent_counts=[], hidden=16)
    state = old.state_dict()
    del state["hidden"]  # written before checkpoints recorded it, by a config that left hidden at 16
    other = registry.make("follower", games.load(GAME), seed=2, num_envs=4, maps=["random"], agent_counts=[])
    assert other.config.hidden == 0
    other.load_state_dict(state)  # the weights say 16: the network is rebuilt to fit them
    assert other.config.hidden == 16
    assert np.array_equal(other.evaluation_returns(2, seed=3), old.evaluation_returns(2, seed=3))
    with pytest.raises(ValueError, match="network has hidden 0, the config hidden 16"):
        old.load_state_dict(learner.state_dict())
