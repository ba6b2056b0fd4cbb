"""A normal-form game as a one-step Markov game: `one_shot(game="climbing_game")`.

Every episode is one simultaneous move of the game's players; each agent is paid its own entry of
the payoff tensor at the joint action. The observation is a constant, so a learner on the Markov
contract (MAPPO, the Bayesian-network actor-critic) faces exactly the matrix game: the coordination
games of the literature (climbing, penalty) become tests of whether deep MARL methods coordinate.
"""

from __future__ import annotations

import numpy as np

from equilibria.games.core import GameInfo
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import load, register
from equilibria.games.spaces import Box, Discrete, Group


class OneShotGame(MarkovGame):
    def __init__(self, game: str = "climbing_game"):
        inner = load(game)
        if not hasattr(inner, "payoff_tensor"):
            raise ValueError(f"one_shot wraps a normal-form game (climbing_game, penalty_game, matrix(...)); "
                             f"{game!r} is not one")
        self.payoffs = np.asarray(inner.payoff_tensor(), dtype=np.float64)  # [players, A_0, ..., A_n-1]
        n, actions = self.payoffs.shape[0], self.payoffs.shape[1:]
        if len(set(actions)) != 1:
            raise ValueError(f"one_shot needs the same number of actions for every player; {game!r} has {actions}")
        self.inner, self.max_steps = inner, 1
        self.groups = (Group("agents", n, Box((1,)), Discrete(actions[0])),)
        self.state_shape = (n,)  # the observations concatenated (ArraySimulator.global_state)
        lo, hi = float(self.payoffs.min()), float(self.payoffs.max())
        self.info = GameInfo(
            name="one_shot", num_players=n, dynamics="simultaneous", chance=False, information="perfect",
            utility=inner.info.utility, min_utility=lo, max_utility=hi, max_game_length=1,
            num_distinct_actions=actions[0], utility_sum=inner.info.utility_sum, sampled_chance=False,
            reward_model="terminal", parameters={"game": game},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> OneShotSimulator:
        return OneShotSimulator(self, num_envs, seed)


class OneShotSimulator(ArraySimulator):
    game: OneShotGame

    def _allocate(self) -> None:
        pass

    def _reset_envs(self, idx: np.ndarray) -> None:
        pass

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        a = actions["agents"]  # [E, n]
        p = self.game.payoffs
        rewards = np.stack([p[i][tuple(a.T)] for i in range(p.shape[0])], axis=1)
        return {"agents": rewards}, np.ones(self.num_envs, dtype=bool)

    def _observe(self) -> dict[str, np.ndarray]:
        return {"agents": np.ones((self.num_envs, self.game.groups[0].size, 1), dtype=np.float32)}


@register("one_shot", example='one_shot(game="climbing_game")')
def one_shot(game: str = "climbing_game") -> OneShotGame:
    """A normal-form game (by its spec) as a one-step Markov game with a constant observation."""
    return OneShotGame(game)
