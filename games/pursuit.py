"""Pursuit-evasion: a two-player zero-sum Markov game, natively batched in numpy.

A pursuer (player 0) chases an evader (player 1) inside the walled square [-1, 1]^2 for
`max_steps` steps. Point-mass physics as in MPE's `simple_tag` (damping 0.25, dt 0.1, discrete
moves no-op/left/right/down/up; pursuer acceleration 3 and top speed 1.0, evader 4 and 1.3:
the evader is quicker, the pursuer must corner it). Each step the pursuer receives
`catch_bonus` while touching the evader, minus the distance between them, and the evader the
negative of that, so every episode sums to zero. Observations (both players): own position and
velocity, the other's position relative to oneself and the other's velocity.
"""

from __future__ import annotations

import numpy as np

from equilibria.common.config import PositiveInt
from equilibria.games.core import GameInfo
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

_DT = 0.1
_DAMPING = 0.25
_ACCEL = np.array([3.0, 4.0])
_MAX_SPEED = np.array([1.0, 1.3])
_CATCH_DISTANCE = 0.075 + 0.05  # the two MPE agent sizes
_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)


class Pursuit(MarkovGame):
    """Two groups of one agent: `pursuer` (player 0) and `evader` (player 1)."""

    def __init__(self, max_steps: int = 25, catch_bonus: float = 1.0):
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps, self.catch_bonus = max_steps, catch_bonus
        self.groups = tuple(Group(name, 1, Box((8,)), Discrete(5)) for name in ROLES)
        self.state_shape = (8,)
        self.info = GameInfo(
            name="pursuit", num_players=2, dynamics="simultaneous", chance=True, information="imperfect",
            utility="zero_sum", min_utility=-np.inf, max_utility=np.inf, max_game_length=max_steps,
            num_distinct_actions=5, utility_sum=0.0, sampled_chance=True, reward_model="step",
            parameters={"max_steps": max_steps, "catch_bonus": catch_bonus},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> PursuitSimulator:
        return PursuitSimulator(self, num_envs, seed)


ROLES = ("pursuer", "evader")


class PursuitSimulator(ArraySimulator):
    state_keys = ("pos", "vel")

    game: Pursuit

    def _allocate(self) -> None:
        self.pos = np.zeros((self.num_envs, 2, 2))
        self.vel = np.zeros((self.num_envs, 2, 2))

    def _reset_envs(self, idx: np.ndarray) -> None:
        self.pos[idx] = self.rng.uniform(-0.9, 0.9, size=(len(idx), 2, 2))
        self.vel[idx] = 0.0

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        joint = np.concatenate([actions["pursuer"], actions["evader"]], axis=1)
        force = _MOVES[joint] * _ACCEL[None, :, None]
        self.pos = self.pos + self.vel * _DT
        self.vel = self.vel * (1.0 - _DAMPING) + force * _DT
        speed = np.sqrt((self.vel**2).sum(-1, keepdims=True))
        cap = _MAX_SPEED[None, :, None]
        self.vel = np.where(speed > cap, self.vel / np.maximum(speed, 1e-12) * cap, self.vel)
        # walls: stop at the boundary
        out = np.abs(self.pos) > 1.0
        self.pos = np.clip(self.pos, -1.0, 1.0)
        self.vel = np.where(out, 0.0, self.vel)
        dist = np.sqrt(((self.pos[:, 0] - self.pos[:, 1]) ** 2).sum(-1))
        r = self.game.catch_bonus * (dist < _CATCH_DISTANCE) - dist
        return {"pursuer": r[:, None], "evader": -r[:, None]}, np.zeros(self.num_envs, dtype=bool)

    def _observe(self) -> dict[str, np.ndarray]:
        obs = np.empty((self.num_envs, 2, 8), dtype=np.float32)
        for me, other in ((0, 1), (1, 0)):
            obs[:, me, 0:2] = self.pos[:, me]
            obs[:, me, 2:4] = self.vel[:, me]
            obs[:, me, 4:6] = self.pos[:, other] - self.pos[:, me]
            obs[:, me, 6:8] = self.vel[:, other]
        return {"pursuer": obs[:, :1], "evader": obs[:, 1:]}

    def global_state(self) -> np.ndarray:
        e = self.num_envs
        return np.concatenate([self.pos.reshape(e, -1), self.vel.reshape(e, -1)], axis=1).astype(np.float32)


@register("pursuit")
def pursuit(max_steps: PositiveInt = 25, catch_bonus: float = 1.0) -> Pursuit:
    """Two-player zero-sum pursuit-evasion in a walled square (MPE simple_tag physics); batched numpy."""
    return Pursuit(max_steps, catch_bonus)
