import numpy as np
import pytest
from needs import need
from pettingzoo.test import api_test as pz_api_test
from pettingzoo.test import parallel_api_test

from equilibria import games
from equilibria.games.adapters.pettingzoo import from_pettingzoo, to_pettingzoo
from equilibria.games.testing import api_test


# observations are PettingZoo's {"observation", "action_mask"} dicts, which its API test warns
# about for any environment that is not on its own list of classic games
@pytest.mark.filterwarnings("ignore:Observation is not a NumPy array:UserWarning")
@pytest.mark.filterwarnings("ignore:Observation space for each agent probably:UserWarning")
def test_aec_api_on_kuhn():
    pz_api_test(to_pettingzoo(games.load("kuhn_poker")), num_cycles=300)


@pytest.mark.filterwarnings("ignore:Observation is not a NumPy array:UserWarning")
@pytest.mark.filterwarnings("ignore:Observation space for each agent probably:UserWarning")
def test_aec_api_on_leduc():
    pz_api_test(to_pettingzoo(games.load("leduc_poker")), num_cycles=300)


@pytest.mark.parametrize("spec", ["goofspiel(num_cards=4)", "cooperative_navigation(num_agents=3, num_landmarks=3)",
                                  "rock_paper_scissors"])
def test_parallel_api(spec):
    parallel_api_test(to_pettingzoo(games.load(spec)), num_cycles=300)


def test_aec_rewards_are_the_game_returns():
    env = to_pettingzoo(games.load("kuhn_poker"))
    env.reset(seed=3)
    total = {a: 0.0 for a in env.possible_agents}
    for agent in env.agent_iter():
        obs, reward, term, trunc, _ = env.last()
        total[agent] += reward
        if term or trunc:
            env.step(None)
        else:
            env.step(int(np.flatnonzero(obs["action_mask"])[-1]))  # always bet
    assert sum(total.values()) == 0.0 and abs(total["player_0"]) == 2.0


def test_round_trip_navigation_through_pettingzoo():
    game = games.load("cooperative_navigation")
    wrapped = from_pettingzoo(to_pettingzoo(game))
    api_test(wrapped, num_games=2)


def test_from_pettingzoo_on_mpe2_simple_spread():
    mpe2 = need("mpe2.simple_spread_v3", "mpe")
    game = from_pettingzoo(lambda: mpe2.parallel_env(N=3, max_cycles=25, continuous_actions=False),
                           name="simple_spread_v3")
    assert game.info.num_players == 3 and game.info.num_distinct_actions == 5
    api_test(game, num_games=2)


def test_from_pettingzoo_rejects_aec_envs():
    with pytest.raises(ValueError, match="Parallel"):
        from_pettingzoo(lambda: to_pettingzoo(games.load("kuhn_poker")))
