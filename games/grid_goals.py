"""Grid goals: agents walk to their own goal cells on an open grid and leave when they arrive.

A toy Markov game that exercises everything the v2 contract adds while staying linear in the
number of agents: action masks (no step off the grid), agents that leave (an agent that reaches
its goal turns inactive), an episode that terminates when everyone has arrived, and an optional
`population: [low, high]` drawing each episode's number of agents. Agents do not block each
other. Each step an active agent receives -0.05, and +1 on arrival.

Observation (vector, 4): own position and the offset to the goal, both divided by the grid size.
Actions: no-op, left, right, down, up.
"""

from __future__ import annotations

import numpy as np

from equilibria.common.config import PositiveInt
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
STEP_COST, ARRIVAL_REWARD = 0.05, 1.0


class GridGoals(MarkovGame):
    masks_actions = True

    def __init__(self, num_agents: int = 8, size: int = 8, max_steps: int = 32, population: list[int] | None = None):
        if num_agents < 1 or size < 2 or max_steps < 1:
            raise ValueError(f"grid_goals needs num_agents >= 1, size >= 2, max_steps >= 1; got {num_agents}, "
                             f"{size}, {max_steps}")
        if population is not None and (len(population) != 2 or not 1 <= population[0] <= population[1] <= num_agents):
            raise ValueError(f"population must be [low, high] with 1 <= low <= high <= num_agents, got {population}")
        self.num_agents, self.size, self.max_steps = num_agents, size, max_steps
        self.population = None if population is None else (int(population[0]), int(population[1]))
        self.groups = (Group("agents", num_agents, Box((4,)), Discrete(5)),)
        self.state_shape = (4 * num_agents,)
        self.size_estimate = grid_goals_size(num_agents)
        params: dict = {"num_agents": num_agents, "size": size, "max_steps": max_steps}
        if population is not None:
            params["population"] = list(self.population)
        self.info = GameInfo(
            name="grid_goals", num_players=num_agents, dynamics="simultaneous", chance=True, information="imperfect",
            utility="general", min_utility=-STEP_COST * max_steps, max_utility=ARRIVAL_REWARD, max_game_length=max_steps,
            num_distinct_actions=5, utility_sum=None, sampled_chance=True, reward_model="step", parameters=params,
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> GridGoalsSimulator:
        return GridGoalsSimulator(self, num_envs, seed)


class GridGoalsSimulator(ArraySimulator):
    state_keys = ("pos", "goal", "present", "arrived")

    game: GridGoals

    def _allocate(self) -> None:
        e, n = self.num_envs, self.game.num_agents
        self.pos = np.zeros((e, n, 2), dtype=np.int64)
        self.goal = np.zeros((e, n, 2), dtype=np.int64)
        self.present = np.ones((e, n), dtype=bool)
        self.arrived = np.zeros((e, n), dtype=bool)

    def _reset_envs(self, idx: np.ndarray) -> None:
        g, k = self.game, len(idx)
        self.pos[idx] = self.rng.integers(0, g.size, size=(k, g.num_agents, 2))
        self.goal[idx] = self.rng.integers(0, g.size, size=(k, g.num_agents, 2))
        self.arrived[idx] = np.all(self.pos[idx] == self.goal[idx], axis=-1)
        if g.population is not None:
            n = self.rng.integers(g.population[0], g.population[1] + 1, size=k)
            self.present[idx] = np.arange(g.num_agents)[None, :] < n[:, None]

    def active(self) -> dict[str, np.ndarray]:
        return {"agents": self.present & ~self.arrived}

    def action_mask(self) -> dict[str, np.ndarray]:
        target = self.pos[:, :, None, :] + _MOVES[None, None]  # [E, N, 5, 2]
        return {"agents": np.all((target >= 0) & (target < self.game.size), axis=-1)}

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        moving = self.present & ~self.arrived
        step = _MOVES[actions["agents"]] * moving[..., None]
        self.pos = np.clip(self.pos + step, 0, self.game.size - 1)
        now = np.all(self.pos == self.goal, axis=-1) & moving
        self.arrived |= now
        rewards = np.where(now, ARRIVAL_REWARD, -STEP_COST) * moving
        terminated = ~np.any(self.present & ~self.arrived, axis=1)
        return {"agents": rewards}, terminated

    def _observe(self) -> dict[str, np.ndarray]:
        s = float(self.game.size)
        obs = np.concatenate([self.pos / s, (self.goal - self.pos) / s], axis=-1).astype(np.float32)
        return {"agents": obs * (self.present & ~self.arrived)[..., None]}

    def global_state(self) -> np.ndarray:
        return self._observe()["agents"].reshape(self.num_envs, -1)


def grid_goals_size(num_agents: int = 8, **_: object) -> SizeEstimate:
    """Per environment: int64 positions and goals, float32 observations and a [N, 5, 2] mask temporary."""
    return SizeEstimate(bytes_per_env=float(num_agents) * (4 * 8 + 4 * 4 + 5 * 2 * 8))


@register("grid_goals", size=grid_goals_size)
def grid_goals(num_agents: PositiveInt = 8, size: PositiveInt = 8, max_steps: PositiveInt = 32,
               population: list[int] | None = None) -> GridGoals:
    """Agents walk to their own goals on an open grid and leave on arrival (masks, agents that
    leave, optional per-episode population); linear in agents."""
    return GridGoals(num_agents, size, max_steps, population)
