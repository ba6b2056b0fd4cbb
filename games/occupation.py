"""Resource occupation: N agents, M resources, a shared reward for every distinct resource occupied.

The population-varying game of MRA's experiments (its code's `resource` environment), written here
from that one-line description on the world of cooperative navigation (games.navigation: MPE
physics, soft collisions, discrete moves, 25-step episodes). A resource is occupied in a step when
at least one agent's centre is within `radius` of it; every agent receives the fraction of the M
resources occupied (1/M for each), so the return counts resource-steps held and a second agent on
the same resource adds nothing. Observations are the entity sets of navigation's
`observation="entities"` (landmark rows are resources; their last column counts the other agents
holding that resource, within `radius` of it), so one policy serves every N and M.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from equilibria.common.config import PositiveInt
from equilibria.games.core import GameInfo
from equilibria.games.navigation import CooperativeNavigation, NavigationSimulator, collide, integrate, navigation_size
from equilibria.games.registry import register


class ResourceOccupation(CooperativeNavigation):
    def __init__(self, num_agents: int = 3, num_resources: int | None = None, radius: float = 0.2,
                 max_steps: int = 25):
        if radius <= 0:
            raise ValueError(f"radius must be > 0, got {radius}")
        m = num_agents if num_resources is None else num_resources
        super().__init__(num_agents, m, max_steps, local_ratio=0.0, observation="entities")
        self.radius = self.crowd_radius = radius  # a resource row counts the others that hold it
        self.info = GameInfo(
            name="resource_occupation", num_players=num_agents, dynamics="simultaneous", chance=True,
            information="imperfect", utility="general", min_utility=0.0, max_utility=float(max_steps),
            max_game_length=max_steps, num_distinct_actions=5, utility_sum=None, sampled_chance=True,
            reward_model="step",
            parameters={"num_agents": num_agents, "num_resources": m, "radius": radius, "max_steps": max_steps},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> OccupationSimulator:
        return OccupationSimulator(self, num_envs, seed)


class OccupationSimulator(NavigationSimulator):
    game: ResourceOccupation

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rewards = np.empty((self.num_envs, self.game.num_agents))
        step_occupation(self.pos, self.vel, self.landmarks, self.present, actions["agents"], self.game.radius**2,
                        rewards)
        return {"agents": rewards}, np.zeros(self.num_envs, dtype=bool)


@njit(cache=True)
def occupied_fraction(pos, resources, present, e, radius_sq):
    """The fraction of environment e's resources with a present agent within the radius."""
    held = 0
    for j in range(resources.shape[1]):
        for i in range(pos.shape[1]):
            if present[e, i]:
                dx = pos[e, i, 0] - resources[e, j, 0]
                dy = pos[e, i, 1] - resources[e, j, 1]
                if dx * dx + dy * dy <= radius_sq:
                    held += 1
                    break
    return held / resources.shape[1]


@njit(cache=True)
def step_occupation(pos, vel, resources, present, actions, radius_sq, rewards):
    """One step of every environment (navigation's contact forces and integrator), then the shared
    reward of the new positions."""
    push = np.empty((pos.shape[1], 2))
    for e in range(pos.shape[0]):
        collide(pos, present, e, push)
        integrate(pos, vel, present, actions, e, push)
        r = occupied_fraction(pos, resources, present, e, radius_sq)
        for i in range(pos.shape[1]):
            rewards[e, i] = r if present[e, i] else 0.0


@register("resource_occupation", size=lambda num_agents=3, num_resources=None, **_: navigation_size(
    num_agents, num_agents if num_resources is None else num_resources, "entities"))
def resource_occupation(num_agents: PositiveInt = 3, num_resources: PositiveInt | None = None, radius: float = 0.2,
                        max_steps: PositiveInt = 25) -> ResourceOccupation:
    """N agents share a reward of 1/M for every distinct resource (of M; default M = N) that has an
    agent within `radius` of it; MPE physics; entity observations."""
    return ResourceOccupation(num_agents, num_resources, radius, max_steps)

