"""The Markov-game contract (games.markov, games.spaces): markov_api_test over every registered
Markov game and PettingZoo's own batched wrapper, PettingZoo's parallel_api_test on their views,
and the checker failing on broken simulators."""

import numpy as np
import pytest
from needs import need
from pettingzoo.test import parallel_api_test

from equilibria import games
from equilibria.games.adapters.pettingzoo import BatchedPettingZoo, to_pettingzoo
from equilibria.games.markov import MarkovGame
from equilibria.games.navigation import CooperativeNavigation, NavigationSimulator
from equilibria.games.testing import ApiTestError, markov_api_test

# a game whose optional package is missing stays in the list, and its test skips (fails under CI=true)
MARKOV = [n for n in games.registered() if not games.registry.available(n)
          or isinstance(games.load(games.registry.entry(n).example), MarkovGame)]
VARIANTS = ["cooperative_navigation(num_agents=6, num_landmarks=6, population=[2, 6])",
            "cooperative_navigation(num_agents=1, num_landmarks=2)", "cooperative_navigation(view_radius=0.5)",
            "cooperative_navigation(view_radius=0, actions='landmarks')", "pursuit(max_steps=7)", 'one_shot(game="three_agent_climb")']


def _mpe2(name: str):
    module = need(f"mpe2.{name}", "mpe")
    kwargs = {"N": 3} if name == "simple_spread_v3" else {}
    return BatchedPettingZoo(lambda: module.parallel_env(max_cycles=25, continuous_actions=False, **kwargs),
                             name=name, max_steps=25)


def test_there_are_registered_markov_games():
    assert {"cooperative_navigation", "pursuit"} <= set(MARKOV)


# PettingZoo's test expects every possible agent to finish each episode; in games whose population
# varies (merge's CAVs, a sampled population) some possible agents never enter an episode
@pytest.mark.filterwarnings("ignore:No agents present but not all possible_agents:UserWarning")
@pytest.mark.parametrize("spec", [games.registry.entry(n).example for n in MARKOV] + VARIANTS)
def test_markov_api_and_parallel_api(spec):
    requires = games.registry.entry(games.registry.parse_game_string(spec)[0]).requires
    if requires is not None:
        need(*requires)
    game = games.load(spec)
    markov_api_test(game)
    parallel_api_test(to_pettingzoo(game), num_cycles=200)


@pytest.mark.parametrize("name", ["simple_spread_v3", "simple_tag_v3"])
def test_markov_api_on_batched_pettingzoo(name):
    game = _mpe2(name)
    markov_api_test(game, num_envs=3)
    parallel_api_test(to_pettingzoo(game), num_cycles=100)


def test_pettingzoo_groups_follow_names_and_spaces():
    game = _mpe2("simple_tag_v3")
    assert [(g.name, g.size, g.observation.shape) for g in game.groups] == [("adversary", 3, (16,)), ("agent", 1, (14,))]
    assert game.agent_names() == ["adversary_0", "adversary_1", "adversary_2", "agent_0"]


def test_a_markov_state_clones_by_replay_when_the_simulator_cannot_copy():
    game = _mpe2("simple_spread_v3")
    state = game.new_initial_state(seed=4)
    for t in range(3):
        state.apply_actions([t % 5, 1, 2])
    twin = state.clone()
    state.apply_actions([4, 4, 4])
    twin.apply_actions([4, 4, 4])
    np.testing.assert_array_equal(state.returns(), twin.returns())


# ----------------------------------------------------------------------------- the checker can fail
class _Game(CooperativeNavigation):
    simulator_cls: type = NavigationSimulator

    def simulator(self, num_envs=1, seed=None):
        return self.simulator_cls(self, num_envs, seed)


def _broken(sim_cls: type) -> MarkovGame:
    game = _Game(num_agents=4, num_landmarks=4, population=[2, 3])
    game.simulator_cls = sim_cls
    return game


class RewardsAbsent(NavigationSimulator):
    def step(self, actions, autoreset=True):
        res = super().step(actions, autoreset)
        res.rewards["agents"] = res.rewards["agents"] - 1.0
        return res


class ForgetsRng(NavigationSimulator):
    def get_state(self):
        state = super().get_state()
        del state["rng"]
        return state

    def set_state(self, state):
        for k in self.state_keys:
            setattr(self, k, state[k].copy())
        self.t = state["t"].copy()


class TruncatesEarly(NavigationSimulator):
    def step(self, actions, autoreset=True):
        res = super().step(actions, autoreset)
        res.truncated = res.truncated | (self.t == 5)
        return res


class ListensToAbsentAgents(NavigationSimulator):
    def _check_actions(self, actions):
        self.raw = np.asarray(actions["agents"])
        return super()._check_actions(actions)

    def _step(self, actions):
        rewards, terminated = super()._step(actions)
        rewards["agents"] = rewards["agents"] + 1e-3 * self.raw.sum(1, keepdims=True)
        return rewards, terminated


class LosesFinalObs(NavigationSimulator):
    def step(self, actions, autoreset=True):
        res = super().step(actions, autoreset)
        res.final_obs = None
        return res


@pytest.mark.parametrize("sim_cls, message", [
    (RewardsAbsent, "inactive"), (ForgetsRng, "set_state"), (TruncatesEarly, "horizon"),
    (ListensToAbsentAgents, "inactive agents changed"), (LosesFinalObs, "final observation")])
def test_markov_api_test_catches_broken_simulators(sim_cls, message):
    with pytest.raises(ApiTestError, match=message):
        markov_api_test(_broken(sim_cls))
