"""Small Markov games with composite, entity, candidate and grid spaces, for tests of the v2
contract and of learners built from declared spaces."""

from __future__ import annotations

import numpy as np

from equilibria.games.core import GameInfo
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.spaces import Box, Candidates, Composite, Discrete, Group


class PickBest(MarkovGame):
    """Each agent sees up to K candidate orders (rows [present, value, noise]) and picks one; its
    reward is the picked order's value. The number of candidates varies per agent and episode
    (padded rows are absent), as in order dispatch. One step per episode."""

    def __init__(self, num_agents: int = 2, max_candidates: int = 6):
        self.k = max_candidates
        obs = Composite({"self": Box((2,)), "orders": Box((max_candidates, 3), "entities")})
        self.groups = (Group("drivers", num_agents, obs, Candidates("orders")),)
        self.state_shape = (num_agents * max_candidates * 3,)
        self.max_steps = 1
        self.info = GameInfo(name="pick_best", num_players=num_agents, dynamics="simultaneous", chance=True,
                             information="imperfect", utility="general", min_utility=0.0, max_utility=1.0,
                             max_game_length=1, num_distinct_actions=max_candidates, utility_sum=None,
                             sampled_chance=True, reward_model="step", parameters={"num_agents": num_agents})

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> PickBestSimulator:
        return PickBestSimulator(self, num_envs, seed)


class PickBestSimulator(ArraySimulator):
    state_keys = ("orders",)
    game: PickBest

    def _allocate(self) -> None:
        self.orders = np.zeros((self.num_envs, self.game.groups[0].size, self.game.k, 3), dtype=np.float32)

    def _reset_envs(self, idx: np.ndarray) -> None:
        n, k = self.game.groups[0].size, self.game.k
        count = self.rng.integers(1, k + 1, size=(len(idx), n))
        present = np.arange(k)[None, None] < count[..., None]
        rows = np.stack([present, self.rng.random((len(idx), n, k)), self.rng.random((len(idx), n, k))], -1)
        self.orders[idx] = rows * present[..., None]

    def action_mask(self) -> dict[str, np.ndarray]:
        return {"drivers": self.orders[..., 0] > 0.5}

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        value = np.take_along_axis(self.orders[..., 1], actions["drivers"][..., None], -1)[..., 0]
        return {"drivers": value.astype(np.float64)}, np.ones(self.num_envs, dtype=bool)

    def _observe(self) -> dict:
        count = self.orders[..., 0].sum(-1, keepdims=True) / self.game.k
        return {"drivers": {"self": np.concatenate([count, np.ones_like(count)], -1).astype(np.float32),
                            "orders": self.orders.copy()}}

    def global_state(self) -> np.ndarray:
        return self.orders.reshape(self.num_envs, -1).copy()


class GridLight(MarkovGame):
    """One agent sees a [2, 5, 5] grid (its own cell, a lit cell) and is rewarded for stepping
    towards the lit cell; exercises grid encoders."""

    def __init__(self, size: int = 5, max_steps: int = 8):
        self.size, self.max_steps = size, max_steps
        self.groups = (Group("walker", 1, Box((2, size, size), "grid"), Discrete(5)),)
        self.state_shape = (4,)
        self.info = GameInfo(name="grid_light", num_players=1, dynamics="simultaneous", chance=True,
                             information="imperfect", utility="general", min_utility=-np.inf, max_utility=np.inf,
                             max_game_length=max_steps, num_distinct_actions=5, utility_sum=None,
                             sampled_chance=True, reward_model="step", parameters={"size": size})

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> GridLightSimulator:
        return GridLightSimulator(self, num_envs, seed)


_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])


class GridLightSimulator(ArraySimulator):
    state_keys = ("pos", "light")
    game: GridLight

    def _allocate(self) -> None:
        self.pos = np.zeros((self.num_envs, 2), dtype=np.int64)
        self.light = np.zeros((self.num_envs, 2), dtype=np.int64)

    def _reset_envs(self, idx: np.ndarray) -> None:
        self.pos[idx] = self.rng.integers(0, self.game.size, (len(idx), 2))
        self.light[idx] = self.rng.integers(0, self.game.size, (len(idx), 2))

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        before = np.abs(self.pos - self.light).sum(-1)
        self.pos = np.clip(self.pos + _MOVES[actions["walker"][:, 0]], 0, self.game.size - 1)
        after = np.abs(self.pos - self.light).sum(-1)
        return {"walker": (before - after).astype(np.float64)[:, None]}, np.zeros(self.num_envs, dtype=bool)

    def _observe(self) -> dict:
        e, s = self.num_envs, self.game.size
        grid = np.zeros((e, 1, 2, s, s), dtype=np.float32)
        grid[np.arange(e), 0, 0, self.pos[:, 0], self.pos[:, 1]] = 1.0
        grid[np.arange(e), 0, 1, self.light[:, 0], self.light[:, 1]] = 1.0
        return {"walker": grid}

    def global_state(self) -> np.ndarray:
        return np.concatenate([self.pos, self.light], 1).astype(np.float32) / self.game.size
