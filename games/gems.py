"""Gems: two agents collect their own gems and meet on shared ones (the MAMQL paper's game).

Written from the rules of Haynam et al. (2025)'s Gems environment. A 15 x 15 grid holds two
agents, three gems of each agent and three shared (purple) gems. Each step both agents move
(stay, up, down, left, right; a move off the grid is a no-op; agents do not block each other):

- an agent on one of its own gems gets +1 per gem, and the gem reappears on a random cell;
- when both agents stand on purple gems after the move (the same one or two different ones),
  both get +6 and every occupied purple gem reappears on a random cell.

Each collected gem counts (a purple meeting counts the purple gems it used) and the episode
terminates when more than 6 have been collected, or is truncated after 45 steps (the paper's
evaluation horizon). The game is general-sum: own gems pay one agent, purple gems need both.

Observation, from the agent's own perspective: `view="grid"` is the paper's 5 x 15 x 15 planes
(itself, the other agent, its own gems, the other agent's gems, the purple gems);
`view="offsets"` (the default) is 26 numbers, offsets (row, column) / size: from the agent to the
other agent; to its own gems, nearest first; to each purple gem and from the other agent to it,
the gem both can reach soonest first; to the other agent's gems, nearest first. The paper's critic reads the planes with a CNN of 64 channels and a
1024 x 1024 MLP; on the offsets a 256 x 256 MLP suffices, which is what a CPU trains in minutes.
The global state is agent 0's observation.

Differences from the released code, which only a replay of its exact draws would show: a gem
reappears on any cell (the code draws coordinates 1..14 on respawn and 0..14 at reset), and
"on a purple gem" is checked after the move only (the code also counts the cell an agent
stood on before moving).

`GemsPlanner` is a scripted expert for demonstrations: both agents go to the purple gem they
can reach together soonest (the same criterion, so they agree) when that takes at most
`meet_within` steps, otherwise to their nearest own gem; with probability `epsilon` a uniform
random action, so the data covers more than one path.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from equilibria.common.config import PositiveInt
from equilibria.games.core import GameInfo, SizeEstimate, State
from equilibria.games.experts import register_expert
from equilibria.games.markov import ArraySimulator, MarkovGame, MarkovState
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)  # stay, up, down, left, right
OWN_REWARD, PURPLE_REWARD, GEMS_TO_END = 1.0, 6.0, 6  # the episode ends when more than 6 are collected
GEMS_PER_KIND = 3


class Gems(MarkovGame):
    def __init__(self, size: int = 15, max_steps: int = 45, view: str = "offsets"):
        if size < 3:
            raise ValueError(f"gems needs size >= 3, got {size}")
        if view not in ("grid", "offsets"):
            raise ValueError(f"gems: view must be 'grid' or 'offsets', got {view!r}")
        self.size, self.max_steps, self.view = size, max_steps, view
        obs = Box((5, size, size), "grid") if view == "grid" else Box((2 + 8 * GEMS_PER_KIND,))
        self.groups = (Group("agents", 2, obs, Discrete(5)),)
        self.state_shape = (obs.size,)
        self.size_estimate = SizeEstimate(bytes_per_env=2 * 5 * size * size * 4 + 200)
        self.info = GameInfo(
            name="gems", num_players=2, dynamics="simultaneous", chance=True, information="perfect",
            utility="general", min_utility=0.0, max_utility=PURPLE_REWARD * (GEMS_TO_END + 1) + OWN_REWARD * 3,
            max_game_length=max_steps, num_distinct_actions=5, utility_sum=None, sampled_chance=True,
            reward_model="step", parameters={"size": size, "max_steps": max_steps, "view": view},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> GemsSimulator:
        return GemsSimulator(self, num_envs, seed)


class GemsSimulator(ArraySimulator):
    state_keys = ("pos", "own", "purple", "collected")

    game: Gems

    def _allocate(self) -> None:
        e = self.num_envs
        self.pos = np.zeros((e, 2, 2), dtype=np.int64)  # [E, agent, (row, col)]
        self.own = np.zeros((e, 2, GEMS_PER_KIND, 2), dtype=np.int64)  # [E, owner, gem, (row, col)]
        self.purple = np.zeros((e, GEMS_PER_KIND, 2), dtype=np.int64)
        self.collected = np.zeros(e, dtype=np.int64)

    def _cells(self, *shape: int) -> np.ndarray:
        return self.rng.integers(0, self.game.size, size=(*shape, 2))

    def _reset_envs(self, idx: np.ndarray) -> None:
        k = len(idx)
        self.pos[idx] = self._cells(k, 2)
        self.own[idx] = self._cells(k, 2, GEMS_PER_KIND)
        self.purple[idx] = self._cells(k, GEMS_PER_KIND)
        self.collected[idx] = 0

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        self.pos = np.clip(self.pos + MOVES[actions["agents"]], 0, self.game.size - 1)
        rewards = np.zeros((self.num_envs, 2))
        on_own = np.all(self.own == self.pos[:, :, None, :], axis=-1)  # [E, 2, 3]
        rewards += OWN_REWARD * on_own.sum(-1)
        self.collected += on_own.sum((1, 2))
        e, a, g = np.nonzero(on_own)
        self.own[e, a, g] = self._cells(len(e))
        on_purple = np.all(self.purple[:, None, :, :] == self.pos[:, :, None, :], axis=-1)  # [E, agent, gem]
        meet = on_purple.any(-1).all(-1)  # [E]: both agents on a purple gem
        rewards += PURPLE_REWARD * meet[:, None]
        used = on_purple.any(1) & meet[:, None]  # [E, gem]
        self.collected += used.sum(-1)
        e, g = np.nonzero(used)
        self.purple[e, g] = self._cells(len(e))
        return {"agents": rewards}, self.collected > GEMS_TO_END

    def _observe(self) -> dict[str, np.ndarray]:
        if self.game.view == "offsets":
            return {"agents": self._offsets()}
        e, n = self.num_envs, self.game.size
        obs = np.zeros((e, 2, 5, n, n), dtype=np.float32)
        env = np.arange(e)
        for me in (0, 1):
            other = 1 - me
            obs[env, me, 0, self.pos[:, me, 0], self.pos[:, me, 1]] = 1
            obs[env, me, 1, self.pos[:, other, 0], self.pos[:, other, 1]] = 1
            for j in range(GEMS_PER_KIND):
                obs[env, me, 2, self.own[:, me, j, 0], self.own[:, me, j, 1]] = 1
                obs[env, me, 3, self.own[:, other, j, 0], self.own[:, other, j, 1]] = 1
                obs[env, me, 4, self.purple[:, j, 0], self.purple[:, j, 1]] = 1
        return {"agents": obs}

    def _offsets(self) -> np.ndarray:
        """[E, 2, 26] / size: offsets to the other agent; to own gems (nearest first); to each purple
        gem and from the other agent to it (the one both reach soonest first); to the other
        agent's gems (nearest first)."""
        out = []
        idx = np.arange(GEMS_PER_KIND)
        for me in (0, 1):
            here, there = self.pos[:, me, None, :], self.pos[:, 1 - me, None, :]  # [E, 1, 2]
            parts = [(there - here).reshape(self.num_envs, -1)]
            for gems in (self.own[:, me], self.purple, self.own[:, 1 - me]):
                d = gems - here  # [E, 3, 2]
                dist = np.abs(d).sum(-1)
                keys = [np.broadcast_to(idx, dist.shape), dist]  # np.lexsort: the last key is the primary one
                if gems is self.purple:  # later arrival, then total steps: both agents order them alike
                    d_other = gems - there
                    other = np.abs(d_other).sum(-1)
                    keys = [np.broadcast_to(idx, dist.shape), dist + other, np.maximum(dist, other)]
                    d = np.concatenate([d, d_other], axis=-1)  # [E, 3, 4]
                order = np.lexsort(keys)  # per environment, along the gems axis
                parts.append(np.take_along_axis(d, order[..., None], axis=1).reshape(self.num_envs, -1))
            out.append(np.concatenate(parts, axis=1))
        return (np.stack(out, axis=1) / self.game.size).astype(np.float32)

    def global_state(self) -> np.ndarray:
        return self._observe()["agents"][:, 0].reshape(self.num_envs, -1)


@register("gems")
def gems(size: PositiveInt = 15, max_steps: PositiveInt = 45, view: Literal["grid", "offsets"] = "offsets") -> Gems:
    """Two agents collect own gems (+1) and meet on shared purple gems (+6 each) on a 15x15
    grid (MAMQL's general-sum game)."""
    return Gems(size, max_steps, view)


# ----------------------------------------------------------------------------- scripted expert
def _step_toward(here: np.ndarray, there: np.ndarray) -> int:
    """The move along the longer axis toward `there` (stay when there)."""
    d = there - here
    if not d.any():
        return 0
    if abs(d[0]) >= abs(d[1]):
        return 2 if d[0] > 0 else 1
    return 4 if d[1] > 0 else 3


def planned_action(pos: np.ndarray, own: np.ndarray, purple: np.ndarray, me: int, meet_within: int = 10) -> int:
    """The planner's move for agent `me` of one environment (pos [2, 2], own [2, 3, 2], purple
    [3, 2]; see the module docstring)."""
    here, there = pos[me], pos[1 - me]
    mine, theirs = np.abs(purple - here).sum(1), np.abs(purple - there).sum(1)
    # (later arrival, total steps, gem index) is symmetric in the two agents: both pick the same gem
    best = min(range(len(purple)), key=lambda j: (max(mine[j], theirs[j]), mine[j] + theirs[j], j))
    if max(mine[best], theirs[best]) <= meet_within:
        return _step_toward(here, purple[best])
    gems = own[me]
    return _step_toward(here, gems[np.abs(gems - here).sum(1).argmin()])


class GemsPlanner:
    """Scripted Gems expert as a Policy (see the module docstring). An expert may see the whole
    state: it reads the simulator's positions rather than the agent's observation."""

    def __init__(self, epsilon: float = 0.1, meet_within: int = 10):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon, self.meet_within = epsilon, meet_within

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if not isinstance(state, MarkovState) or not isinstance(state.sim, GemsSimulator) or player is None:
            raise ValueError("the Gems planner acts for a player of gems")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        sim = state.sim
        best = planned_action(sim.pos[0], sim.own[0], sim.purple[0], player, self.meet_within)
        base = self.epsilon / len(legal)
        return {a: base + (1.0 - self.epsilon) * (a == best) for a in legal}


register_expert("gems_planner", "gems", GemsPlanner,
                "meets the other agent on the purple gem both reach soonest, else takes its nearest own gem "
                "(10% random moves)")
