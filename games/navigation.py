"""Cooperative navigation (MPE `simple_spread`), natively batched: numba kernels over [E, ...] arrays.

N agents must cover L landmarks while avoiding each other. Physics, observations and
rewards follow the MPE / PettingZoo `simple_spread_v3` definitions: damping 0.25, dt 0.1,
agent size 0.15, soft contact forces, discrete actions (no-op, left, right, down, up),
reward = 0.5 * global coverage term + 0.5 * local collision penalty, 25 steps per episode.

`population=[2, 8]` draws each episode's number of agents (and as many landmarks) from that
range, up to `num_agents` slots: absent agents are inactive, take no part in physics or
rewards, and appear as zeros in the others' observations (the layout is the MPE one for
`num_agents` agents and landmarks). `view_radius=r` makes the game partially observable: another
agent farther than r appears as zeros (r = 0: agents never see each other, so who goes to which
landmark cannot be read off the observation).

`actions="landmarks"` replaces the five moves by a choice of landmark: each step an agent names the
landmark it heads for and a fixed controller picks the move (the one whose coasting stop point lands
nearest the landmark). Who covers which landmark is then the whole decision, made every step, so a
Bayesian-network policy's parents' actions carry exactly the information a blind agent lacks.

`observation="entities"` gives the same information as sets instead of MPE's fixed layout, so one
network serves every number of agents (MRA trains across populations): "self" [4] (velocity,
position), "landmarks" [L, 4] and "agents" [N - 1, 5] rows (column 0 presence; position relative
to the observer; for a landmark the number of other agents the observer sees within the crowd
radius of it, for an agent its velocity). Rows are in slot order; absent or unseen entities are
zero rows.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numba import njit

from equilibria.common.config import PositiveInt, Probability
from equilibria.games.core import GameInfo, SizeEstimate
from equilibria.games.markov import ArraySimulator, MarkovGame
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Composite, Discrete, Group

_DT = 0.1
_DAMPING = 0.25
_ACCEL = 5.0  # MPE agent "sensitivity" for discrete actions
_AGENT_SIZE = 0.15
_CONTACT_FORCE = 1e2
_CONTACT_MARGIN = 1e-3
CROWD_RADIUS = 2 * _AGENT_SIZE  # a landmark row counts the other agents this close to it
LANDMARK_F, AGENT_F = 4, 5  # entity row widths (observation="entities")
# no-op, left, right, down, up
_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)


class CooperativeNavigation(MarkovGame):
    def __init__(self, num_agents: int = 3, num_landmarks: int = 3, max_steps: int = 25, local_ratio: float = 0.5,
                 population: list[int] | None = None, view_radius: float | None = None,
                 observation: str = "mpe", actions: str = "moves"):
        if actions not in ("moves", "landmarks"):
            raise ValueError(f"actions must be 'moves' or 'landmarks', got {actions!r}")
        if actions == "landmarks" and population is not None:
            raise ValueError("actions='landmarks' needs a fixed population (the action space is the landmarks)")
        if observation not in ("mpe", "entities"):
            raise ValueError(f"observation must be 'mpe' or 'entities', got {observation!r}")
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
        if view_radius is not None and view_radius < 0:
            raise ValueError(f"view_radius must be >= 0 (or omitted: every agent sees every other), got {view_radius}")
        self.num_agents, self.num_landmarks = num_agents, num_landmarks
        self.view_radius = view_radius
        self.max_steps, self.local_ratio = max_steps, local_ratio
        self.population = None if population is None else (int(population[0]), int(population[1]))
        self.size_estimate = navigation_size(num_agents, num_landmarks, observation)
        self.obs_dim = 4 + 2 * num_landmarks + 4 * (num_agents - 1)
        self.observation = observation
        self.actions = actions
        num_actions = num_landmarks if actions == "landmarks" else 5
        self.crowd_radius = CROWD_RADIUS
        if observation == "entities":
            obs_space: Box | Composite = Composite({
                "self": Box((4,)), "landmarks": Box((num_landmarks, LANDMARK_F), "entities"),
                "agents": Box((max(num_agents - 1, 1), AGENT_F), "entities")})
        else:
            obs_space = Box((self.obs_dim,))
        self.groups = (Group("agents", num_agents, obs_space, Discrete(num_actions)),)
        self.state_shape = (4 * num_agents + 2 * num_landmarks,)
        params = {"num_agents": num_agents, "num_landmarks": num_landmarks, "max_steps": max_steps,
                  "local_ratio": local_ratio}
        if view_radius is not None:
            params["view_radius"] = view_radius
        if population is not None:
            params["population"] = list(self.population)
        if observation != "mpe":
            params["observation"] = observation
        if actions != "moves":
            params["actions"] = actions
        self.info = GameInfo(
            name="cooperative_navigation", num_players=num_agents, dynamics="simultaneous", chance=True,
            information="imperfect", utility="general", min_utility=-np.inf, max_utility=0.0,
            max_game_length=max_steps, num_distinct_actions=num_actions, utility_sum=None, sampled_chance=True, reward_model="step",
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

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        g = self.game
        rewards = np.empty((self.num_envs, g.num_agents))
        moves = actions["agents"]
        if g.actions == "landmarks":
            moves = np.empty_like(moves)
            steer(self.pos, self.vel, self.landmarks, actions["agents"], moves)
        step_world(self.pos, self.vel, self.landmarks, self.present, moves, g.population is not None,
                   g.local_ratio, rewards)
        return {"agents": rewards}, np.zeros(self.num_envs, dtype=bool)

    def _observe(self) -> dict[str, Any]:
        g = self.game
        view_sq = np.inf if g.view_radius is None else g.view_radius**2
        if g.observation == "entities":
            e, n = self.num_envs, g.num_agents
            parts = {"self": np.empty((e, n, 4), dtype=np.float32),
                     "landmarks": np.empty((e, n, g.num_landmarks, LANDMARK_F), dtype=np.float32),
                     "agents": np.empty((e, n, max(n - 1, 1), AGENT_F), dtype=np.float32)}
            observe_entities(self.pos, self.vel, self.landmarks, self.present, g.population is not None, view_sq,
                             g.crowd_radius**2,
                             parts["self"], parts["landmarks"], parts["agents"])
            return {"agents": parts}
        obs = np.empty((self.num_envs, self.game.num_agents, self.game.obs_dim), dtype=np.float32)
        observe(self.pos, self.vel, self.landmarks, self.present, g.population is not None, view_sq, obs)
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


# ----------------------------------------------------------------------------- compiled kernels
# One pass per environment over its agents, in place on the simulator's arrays: at MPE's sizes
# (a handful of agents) the numpy version spent its time on [E, N, N, 2] temporaries and on
# per-call overhead, neither of which a loop has. numba compiles each kernel once per machine
# (cache=True). `varying` is True for a game with a population: absent agents take no part, and
# landmark j exists iff agent slot j does (such games have as many landmarks as agents).

# Beyond this distance MPE's soft contact penetration, log(1 + exp(-(d - 2 size) / margin)) *
# margin, underflows to exactly 0.0 in float64 (exp(-746) rounds to 0), so skipping
# those pairs changes no bit of the result.
_CONTACT_RANGE_SQ = (2 * _AGENT_SIZE + 746 * _CONTACT_MARGIN + 0.01) ** 2


@njit(cache=True)
def _softplus(x):
    """log(1 + exp(x)) as numpy's logaddexp(0, x) computes it (no overflow for large x)."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True)
def collide(pos, present, e, push):
    """push[i] = the sum over the other present agents j of MPE's soft contact force on i from j
    (along i - j, stiffer the deeper they overlap). Each pair is computed once and applied with
    opposite signs, which is exact: the force on j from i is bitwise the negation."""
    n = pos.shape[1]
    push[:, :] = 0.0
    for i in range(n):
        if not present[e, i]:
            continue
        for j in range(i + 1, n):
            if not present[e, j]:
                continue
            dx = pos[e, i, 0] - pos[e, j, 0]
            dy = pos[e, i, 1] - pos[e, j, 1]
            d2 = dx * dx + dy * dy
            if d2 > _CONTACT_RANGE_SQ:
                continue
            dist = math.sqrt(d2)
            penetration = _softplus(-(dist - 2 * _AGENT_SIZE) / _CONTACT_MARGIN) * _CONTACT_MARGIN
            safe = dist if dist > 0.0 else 1.0  # coincident agents push each other nowhere
            fx = _CONTACT_FORCE * (dx / safe) * penetration
            fy = _CONTACT_FORCE * (dy / safe) * penetration
            push[i, 0] += fx
            push[i, 1] += fy
            push[j, 0] -= fx
            push[j, 1] -= fy


@njit(cache=True)
def integrate(pos, vel, present, actions, e, push):
    """MPE's integrator: move with the old velocity, then damp and accelerate by the action's
    force plus the contact push. Absent agents stay where they are, at rest."""
    for i in range(pos.shape[1]):
        a = actions[e, i]
        for c in range(2):
            force = _MOVES[a, c] * _ACCEL + push[i, c]
            pos[e, i, c] = pos[e, i, c] + vel[e, i, c] * _DT
            vel[e, i, c] = vel[e, i, c] * (1.0 - _DAMPING) + force * _DT if present[e, i] else 0.0


@njit(cache=True)
def reward(pos, landmarks, present, varying, local_ratio, e, out):
    """out[i] = (1 - local_ratio) * global + local_ratio * local_i, where global is minus the sum
    over landmarks of the distance to the nearest agent, and local_i minus the number of agents
    that i overlaps (absent agents neither cover landmarks nor collide)."""
    n, m = pos.shape[1], landmarks.shape[1]
    cover = 0.0
    for j in range(m):
        if varying and not present[e, j]:
            continue
        nearest = np.inf
        for i in range(n):
            if present[e, i]:
                dx = pos[e, i, 0] - landmarks[e, j, 0]
                dy = pos[e, i, 1] - landmarks[e, j, 1]
                nearest = min(nearest, math.sqrt(dx * dx + dy * dy))
        cover += nearest
    for i in range(n):
        out[e, i] = 0.0
    for i in range(n):
        if not present[e, i]:
            continue
        for j in range(i + 1, n):
            if not present[e, j]:
                continue
            dx = pos[e, i, 0] - pos[e, j, 0]
            dy = pos[e, i, 1] - pos[e, j, 1]
            if math.sqrt(dx * dx + dy * dy) < 2 * _AGENT_SIZE:
                out[e, i] -= 1.0
                out[e, j] -= 1.0
    for i in range(n):
        out[e, i] = -cover * (1.0 - local_ratio) + out[e, i] * local_ratio


# A move changes the velocity by _MOVES * _ACCEL * _DT; with no further force the velocity then
# decays geometrically by (1 - _DAMPING) per step, so the agent coasts a further v * _DT / _DAMPING.
_COAST = _DT / _DAMPING


@njit(cache=True)
def steer(pos, vel, landmarks, choice, moves):
    """moves[e, i] = the move (no-op included) whose coasting stop point, after this step's
    integration, is nearest landmark choice[e, i]: the controller of actions="landmarks"."""
    for e in range(pos.shape[0]):
        for i in range(pos.shape[1]):
            j = choice[e, i]
            best, best_d = 0, np.inf
            for a in range(_MOVES.shape[0]):
                d = 0.0
                for c in range(2):
                    v = vel[e, i, c] * (1.0 - _DAMPING) + _MOVES[a, c] * _ACCEL * _DT
                    stop = pos[e, i, c] + vel[e, i, c] * _DT + v * _COAST
                    d += (stop - landmarks[e, j, c]) ** 2
                if d < best_d:
                    best, best_d = a, d
            moves[e, i] = best


@njit(cache=True)
def step_world(pos, vel, landmarks, present, actions, varying, local_ratio, rewards):
    """One step of every environment: contact forces from the current positions, integration,
    then the rewards of the new positions (rewards [E, N] is written)."""
    push = np.empty((pos.shape[1], 2))
    for e in range(pos.shape[0]):
        collide(pos, present, e, push)
        integrate(pos, vel, present, actions, e, push)
        reward(pos, landmarks, present, varying, local_ratio, e, rewards)


@njit(cache=True)
def observe(pos, vel, landmarks, present, varying, view_sq, obs):
    """obs[e, i] in MPE's layout: own velocity, own position, each landmark relative to i, each
    other agent relative to i, then the silent communication channel (zeros). Absent agents and
    landmarks appear as zeros; an absent agent observes all zeros, and other agents farther than
    the view radius (squared: view_sq) appear as zeros."""
    n, m = pos.shape[1], landmarks.shape[1]
    for e in range(pos.shape[0]):
        for i in range(n):
            o = obs[e, i]
            if not present[e, i]:
                o[:] = 0.0
                continue
            o[0], o[1] = vel[e, i, 0], vel[e, i, 1]
            o[2], o[3] = pos[e, i, 0], pos[e, i, 1]
            k = 4
            for j in range(m):
                seen = not varying or present[e, j]
                o[k] = landmarks[e, j, 0] - pos[e, i, 0] if seen else 0.0
                o[k + 1] = landmarks[e, j, 1] - pos[e, i, 1] if seen else 0.0
                k += 2
            for j in range(n):
                if j != i:
                    dx = pos[e, j, 0] - pos[e, i, 0]
                    dy = pos[e, j, 1] - pos[e, i, 1]
                    seen = present[e, j] and dx * dx + dy * dy <= view_sq
                    o[k] = dx if seen else 0.0
                    o[k + 1] = dy if seen else 0.0
                    k += 2
            o[k:] = 0.0


@njit(cache=True)
def observe_entities(pos, vel, landmarks, present, varying, view_sq, crowd_sq, own, lm_rows, ag_rows):
    """The entity observation (module docstring): own [E, N, 4], lm_rows [E, N, L, 4], ag_rows
    [E, N, N-1, 5], written in place; the same visibility rules as `observe` (a landmark's crowd
    count includes only the agents the observer sees)."""
    n, m = pos.shape[1], landmarks.shape[1]
    own[:] = 0.0
    lm_rows[:] = 0.0
    ag_rows[:] = 0.0
    for e in range(pos.shape[0]):
        for i in range(n):
            if not present[e, i]:
                continue
            own[e, i, 0], own[e, i, 1] = vel[e, i, 0], vel[e, i, 1]
            own[e, i, 2], own[e, i, 3] = pos[e, i, 0], pos[e, i, 1]
            for j in range(m):
                if varying and not present[e, j]:
                    continue
                row = lm_rows[e, i, j]
                row[0] = 1.0
                row[1] = landmarks[e, j, 0] - pos[e, i, 0]
                row[2] = landmarks[e, j, 1] - pos[e, i, 1]
                crowd = 0.0
                for k in range(n):
                    if k != i and present[e, k]:
                        vx = pos[e, k, 0] - pos[e, i, 0]
                        vy = pos[e, k, 1] - pos[e, i, 1]
                        if vx * vx + vy * vy > view_sq:
                            continue
                        dx = pos[e, k, 0] - landmarks[e, j, 0]
                        dy = pos[e, k, 1] - landmarks[e, j, 1]
                        if dx * dx + dy * dy <= crowd_sq:
                            crowd += 1.0
                row[3] = crowd
            r = 0
            for j in range(n):
                if j == i:
                    continue
                dx = pos[e, j, 0] - pos[e, i, 0]
                dy = pos[e, j, 1] - pos[e, i, 1]
                if present[e, j] and dx * dx + dy * dy <= view_sq:
                    row = ag_rows[e, i, r]
                    row[0], row[1], row[2] = 1.0, dx, dy
                    row[3], row[4] = vel[e, j, 0], vel[e, j, 1]
                r += 1


def navigation_size(num_agents: int = 3, num_landmarks: int = 3, observation: str = "mpe",
                    **_: object) -> SizeEstimate:
    """Per environment: float32 observations N x (4 + 2L + 4(N - 1)) (entities: 4 + 4L + 5(N - 1)),
    two live at once (a step's and the copy kept at an autoreset), and the float64 world
    (positions, velocities, landmarks); the kernels need no pairwise temporaries."""
    n, m = float(num_agents), float(num_landmarks)
    per_agent = 4 + 4 * m + 5 * (n - 1) if observation == "entities" else 4 + 2 * m + 4 * (n - 1)
    return SizeEstimate(bytes_per_env=2 * 4 * n * per_agent + 8 * 2 * (2 * n + m))


@register("cooperative_navigation", size=navigation_size)
def cooperative_navigation(num_agents: PositiveInt = 3, num_landmarks: PositiveInt = 3, max_steps: PositiveInt = 25,
                           local_ratio: Probability = 0.5, population: list[int] | None = None,
                           view_radius: float | None = None,
                           observation: Literal["mpe", "entities"] = "mpe",
                           actions: Literal["moves", "landmarks"] = "moves") -> CooperativeNavigation:
    """MPE simple_spread: N agents cover L landmarks without colliding; batched. `population:
    [low, high]` draws each episode's agents (and landmarks) from that range; `view_radius` makes
    it partially observable (agents farther apart than that do not see each other; 0: never);
    `observation: entities` gives sets of landmark and agent rows (one network for every N);
    `actions: landmarks` makes each action the landmark to head for (a fixed controller moves)."""
    return CooperativeNavigation(num_agents, num_landmarks, max_steps, local_ratio, population, view_radius,
                                 observation, actions)
