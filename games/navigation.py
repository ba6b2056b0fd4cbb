"""Cooperative navigation (MPE `simple_spread`), natively batched in numpy.

N agents must cover L landmarks while avoiding each other. Physics, observations and
rewards follow the MPE / PettingZoo `simple_spread_v3` definitions: damping 0.25, dt 0.1,
agent size 0.15, soft contact forces, discrete actions (no-op, left, right, down, up),
reward = 0.5 * global coverage term + 0.5 * local collision penalty, 25 steps per episode.

`population=[2, 8]` draws each episode's number of agents (and as many landmarks) from that
range, up to `num_agents` slots: absent agents are inactive, take no part in physics or
rewards, and appear as zeros in the others' observations (the layout is the MPE one for
`num_agents` agents and landmarks).
"""

from __future__ import annotations

import numpy as np

from equilibria.common.config import PositiveInt, Probability
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

_DT = 0.1
_DAMPING = 0.25
_ACCEL = 5.0  # MPE agent "sensitivity" for discrete actions
_AGENT_SIZE = 0.15
_CONTACT_FORCE = 1e2
_CONTACT_MARGIN = 1e-3
# no-op, left, right, down, up
_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)


class CooperativeNavigation(MarkovGame):
    def __init__(self, num_agents: int = 3, num_landmarks: int = 3, max_steps: int = 25, local_ratio: float = 0.5,
                 population: list[int] | None = None):
        if num_agents < 1 or num_landmarks < 1:
            raise ValueError(f"cooperative_navigation needs >= 1 agent and landmark, got {num_agents}, {num_landmarks}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio must lie in [0, 1], got {local_ratio}")
        if population is not None:
            if len(population) != 2 or not 1 <= population[0] <= population[1] <= num_agents:
                raise ValueError(f"population must be [low, high] with 1 <= low <= high <= num_agents, got {population}")
            if num_landmarks != num_agents:
                raise ValueError("a varying population has as many landmarks as agents: set num_landmarks = num_agents")
        self.num_agents, self.num_landmarks = num_agents, num_landmarks
        self.max_steps, self.local_ratio = max_steps, local_ratio
        self.population = None if population is None else (int(population[0]), int(population[1]))
        self.size_estimate = navigation_size(num_agents, num_landmarks)
        self.obs_dim = 4 + 2 * num_landmarks + 4 * (num_agents - 1)
        self.groups = (Group("agents", num_agents, Box((self.obs_dim,)), Discrete(5)),)
        self.state_shape = (4 * num_agents + 2 * num_landmarks,)
        params = {"num_agents": num_agents, "num_landmarks": num_landmarks, "max_steps": max_steps,
                  "local_ratio": local_ratio}
        if population is not None:
            params["population"] = list(self.population)
        self.info = GameInfo(
            name="cooperative_navigation", num_players=num_agents, dynamics="simultaneous", chance=True,
            information="imperfect", utility="general", min_utility=-np.inf, max_utility=0.0,
            max_game_length=max_steps, num_distinct_actions=5, utility_sum=None, sampled_chance=True, reward_model="step",
            parameters=params,
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> NavigationSimulator:
        return NavigationSimulator(self, num_envs, seed)


class NavigationSimulator(ArraySimulator):
    state_keys = ("pos", "vel", "landmarks", "present")

    game: CooperativeNavigation

    def _allocate(self) -> None:
        e, g = self.num_envs, self.game
        self.pos = np.zeros((e, g.num_agents, 2))
        self.vel = np.zeros((e, g.num_agents, 2))
        self.landmarks = np.zeros((e, g.num_landmarks, 2))
        self.present = np.ones((e, g.num_agents), dtype=bool)

    def _reset_envs(self, idx: np.ndarray) -> None:
        k, g = len(idx), self.game
        self.pos[idx] = self.rng.uniform(-1.0, 1.0, size=(k, g.num_agents, 2))
        self.vel[idx] = 0.0
        self.landmarks[idx] = self.rng.uniform(-1.0, 1.0, size=(k, g.num_landmarks, 2)) * 0.9
        if g.population is not None:
            n = self.rng.integers(g.population[0], g.population[1] + 1, size=k)
            self.present[idx] = np.arange(g.num_agents)[None, :] < n[:, None]

    def _pairwise(self) -> tuple[np.ndarray, np.ndarray]:
        delta = self.pos[:, :, None, :] - self.pos[:, None, :, :]  # [E, N, N, 2], i minus j
        dist = np.sqrt((delta**2).sum(-1))  # [E, N, N]
        return delta, dist

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        g = self.game
        force = _MOVES[actions["agents"]] * _ACCEL  # [E, N, 2]
        n = g.num_agents
        if n > 1:
            delta, dist = self._pairwise()
            dist_min = 2 * _AGENT_SIZE
            k = _CONTACT_MARGIN
            penetration = np.logaddexp(0.0, -(dist - dist_min) / k) * k
            safe = np.where(dist > 0, dist, 1.0)
            contact = _CONTACT_FORCE * (delta / safe[..., None]) * penetration[..., None]
            contact[:, np.arange(n), np.arange(n)] = 0.0
            if g.population is not None:  # absent agents push no one
                contact *= (self.present[:, :, None] & self.present[:, None, :])[..., None]
            force = force + contact.sum(axis=2)
        # MPE's integrator: move with the old velocity, then damp and accelerate
        self.pos = self.pos + self.vel * _DT
        self.vel = self.vel * (1.0 - _DAMPING) + force * _DT
        if g.population is not None:
            self.vel = np.where(self.present[..., None], self.vel, 0.0)
        return {"agents": self._rewards()}, np.zeros(self.num_envs, dtype=bool)

    def _rewards(self) -> np.ndarray:
        g = self.game
        # global: minus the sum over landmarks of the distance to the nearest agent
        d = np.sqrt(((self.pos[:, None, :, :] - self.landmarks[:, :, None, :]) ** 2).sum(-1))  # [E, L, N]
        if g.population is not None:
            d = np.where(self.present[:, None, :], d, np.inf)
            global_r = -np.where(self.present, d.min(axis=2), 0.0).sum(axis=1)  # landmark j exists iff slot j does
        else:
            global_r = -d.min(axis=2).sum(axis=1)  # [E]
        local = np.zeros((self.num_envs, g.num_agents))
        if g.num_agents > 1:
            _, dist = self._pairwise()
            hit = dist < 2 * _AGENT_SIZE
            hit[:, np.arange(g.num_agents), np.arange(g.num_agents)] = False
            if g.population is not None:
                hit &= self.present[:, :, None] & self.present[:, None, :]
            local = -hit.sum(axis=2).astype(np.float64)
        return global_r[:, None] * (1.0 - g.local_ratio) + local * g.local_ratio

    def _observe(self) -> dict[str, np.ndarray]:
        g = self.game
        e, n, m = self.num_envs, g.num_agents, g.num_landmarks
        obs = np.zeros((e, n, g.obs_dim), dtype=np.float32)
        obs[:, :, 0:2] = self.vel
        obs[:, :, 2:4] = self.pos
        rel_l = self.landmarks[:, None, :, :] - self.pos[:, :, None, :]  # [E, N, L, 2]
        if g.population is not None:
            rel_l = np.where(self.present[:, None, :, None], rel_l, 0.0)
        obs[:, :, 4:4 + 2 * m] = rel_l.reshape(e, n, 2 * m)
        if n > 1:
            rel_a = self.pos[:, None, :, :] - self.pos[:, :, None, :]  # [E, i, j, 2]: j relative to i
            if g.population is not None:
                rel_a = np.where(self.present[:, None, :, None], rel_a, 0.0)
            others = ~np.eye(n, dtype=bool)
            rel_o = rel_a[:, others].reshape(e, n, n - 1, 2)
            start = 4 + 2 * m
            obs[:, :, start:start + 2 * (n - 1)] = rel_o.reshape(e, n, 2 * (n - 1))
            # the remaining 2 * (n - 1) entries are MPE's communication channel: silent agents send zeros
        if g.population is not None:
            obs *= self.present[..., None]
        return {"agents": obs}

    def active(self) -> dict[str, np.ndarray]:
        return {"agents": self.present.copy()}

    def global_state(self) -> np.ndarray:
        e = self.num_envs
        pos, vel, lm = self.pos, self.vel, self.landmarks
        if self.game.population is not None:
            pos = np.where(self.present[..., None], pos, 0.0)
            lm = np.where(self.present[..., None], lm, 0.0)
        return np.concatenate([pos.reshape(e, -1), vel.reshape(e, -1), lm.reshape(e, -1)], axis=1).astype(np.float32)


def navigation_size(num_agents: int = 3, num_landmarks: int = 3, **_: object) -> SizeEstimate:
    """Per environment: float32 observations N x (4 + 2L + 4(N - 1)) and float64 pairwise arrays
    N x N x 2 with about three temporaries of that size."""
    n, m = float(num_agents), float(num_landmarks)
    return SizeEstimate(bytes_per_env=4 * n * (4 + 2 * m + 4 * (n - 1)) + 3 * 8 * 2 * n * n + 3 * 8 * 2 * n * m)


@register("cooperative_navigation", size=navigation_size)
def cooperative_navigation(num_agents: PositiveInt = 3, num_landmarks: PositiveInt = 3, max_steps: PositiveInt = 25,
                           local_ratio: Probability = 0.5, population: list[int] | None = None) -> CooperativeNavigation:
    """MPE simple_spread: N agents cover L landmarks without colliding; batched numpy. `population:
    [low, high]` draws each episode's agents (and landmarks) from that range."""
    return CooperativeNavigation(num_agents, num_landmarks, max_steps, local_ratio, population)
