"""Demonstrations as transition tensors, for learners from demonstrations (MAMQL, IQ-Learn, BC).

A learner takes its expert data either from a dataset recorded by `equilibria record` (read as
it is, no conversion) or from a registered scripted expert played on the spot (games.experts);
both become the same `Transitions`: one row per step and agent slot of one group. A learner's own
rollouts go into a `ReplayBuffer` that samples the same `Transitions` (MAMQL online, DQN).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equilibria.common.config import ConfigError
from equilibria.games.markov import MarkovGame


@dataclasses.dataclass
class Transitions:
    """M steps of one group of n slots; observations flattened to D floats."""

    obs: torch.Tensor  # [M, n, D]
    actions: torch.Tensor  # [M, n] long, -1 where the slot did not act
    rewards: torch.Tensor  # [M, n] the true rewards (for reward-recovery metrics only)
    next_obs: torch.Tensor  # [M, n, D]
    next_actions: torch.Tensor  # [M, n] the actions taken at the next step, -1 where there is none
    terminated: torch.Tensor  # [M] float: the step ended the episode (no bootstrap)
    ends: torch.Tensor  # [M] float: the step was the episode's last (terminated or truncated)
    next_active: torch.Tensor  # [M, n] bool: the slot holds an agent at the next step (False: it left)

    def __len__(self) -> int:
        return len(self.actions)

    def index(self, idx: torch.Tensor) -> Transitions:
        return Transitions(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))


def flat(obs: Any, lead: int) -> np.ndarray:
    """Observations (an array or a dict of parts) with `lead` leading axes, flattened after them."""
    if isinstance(obs, dict):
        return np.concatenate([flat(v, lead) for v in obs.values()], axis=-1)
    a = np.asarray(obs, dtype=np.float32)
    return a.reshape(*a.shape[:lead], -1)


def episodes_to_transitions(episodes: list[dict[str, Any]], group: str, limit: int | None = None) -> Transitions:
    """Episodes as `Demonstrations.episode` returns them -> the first `limit` steps as transitions."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "next_actions", "terminated",
                                                          "ends", "next_active")}
    total = 0
    for ep in episodes:
        t_len = int(ep["length"])
        if t_len == 0:
            continue
        obs = flat(ep["obs"][group], 2)  # [T+1, n, D]
        acts = np.asarray(ep["actions"][group], dtype=np.int64)  # [T, n]
        term = np.zeros(t_len, dtype=np.float32)
        term[-1] = float(ep["terminated"])
        parts["obs"].append(obs[:-1])
        parts["next_obs"].append(obs[1:])
        parts["actions"].append(acts)
        parts["next_actions"].append(np.concatenate([acts[1:], -np.ones_like(acts[:1])]))
        parts["rewards"].append(np.asarray(ep["rewards"][group], dtype=np.float32))
        parts["terminated"].append(term)
        parts["ends"].append(np.arange(t_len, dtype=np.float32) == t_len - 1)
        parts["next_active"].append(np.asarray(ep["active"][group], dtype=bool)[1:])
        total += t_len
        if limit is not None and total >= limit:
            break
    if not total:
        raise ConfigError("the demonstrations hold no steps")
    cat = {k: np.concatenate(v)[:limit] for k, v in parts.items()}
    return Transitions(torch.as_tensor(cat["obs"]), torch.as_tensor(cat["actions"]), torch.as_tensor(cat["rewards"]),
                       torch.as_tensor(cat["next_obs"]), torch.as_tensor(cat["next_actions"]),
                       torch.as_tensor(cat["terminated"]), torch.as_tensor(cat["ends"], dtype=torch.float32),
                       torch.as_tensor(cat["next_active"]))


def load_transitions(game: MarkovGame, *, path: str | None = None, expert: str | None = None,
                     transitions: int | None = None, seed: int = 0) -> Transitions:
    """Expert transitions for `game`'s only group: the first `transitions` steps of the dataset at
    `path`, or of episodes of the scripted `expert` played from seeds seed, seed + 1, ..."""
    group = game.group().name
    if path is not None:
        from equilibria.games.demonstrations import Demonstrations

        demos = Demonstrations(path)
        played = demos.load_game()
        if (played.info.name, played.info.parameters) != (game.info.name, game.info.parameters) \
                or demos.group(group) != game.group(group):
            raise ConfigError(f"{Path(path) / 'meta.json'}: recorded on {demos.meta['game']}, which differs from "
                              f"{game.info.name}({game.info.parameters}) the learner trains on")
        episodes = (demos.episode(i) for i in range(len(demos)))
        out = episodes_to_transitions(list(_take(episodes, transitions)), group, transitions)
        if transitions is not None and len(out) < transitions:
            raise ConfigError(f"{path}: holds {len(out)} steps, fewer than the {transitions} transitions asked for")
        return out
    if expert is None:
        raise ConfigError("give the demonstrations (a dataset directory) or an expert to play")
    from equilibria.games.demonstrations import play_episode
    from equilibria.games.experts import expert_policy

    policy = expert_policy(expert, game)
    want = transitions or 1000
    episodes = (play_episode(game, policy, seed + i) for i in range(10**9))
    return episodes_to_transitions(list(_take(episodes, want)), group, want)


def _take(episodes: Any, steps: int | None) -> Any:
    """Episodes from the iterator until they hold at least `steps` steps (all of them for None)."""
    total = 0
    for ep in episodes:
        yield ep
        total += int(ep["length"])
        if steps is not None and total >= steps:
            return


__all__ = ["Transitions", "episodes_to_transitions", "flat", "load_transitions"]


class ReplayBuffer:
    """A ring buffer of the agents' own transitions (observations in float16 to fit MAMQL's
    capacity); `sample` returns `Transitions`."""

    def __init__(self, capacity: int, n: int, dim: int):
        self.obs = torch.zeros(capacity, n, dim, dtype=torch.float16)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.full((capacity, n), -1, dtype=torch.long)
        self.next_actions = torch.full((capacity, n), -1, dtype=torch.long)
        self.rewards = torch.zeros(capacity, n)
        self.terminated = torch.zeros(capacity)
        self.ends = torch.zeros(capacity)
        self.next_active = torch.ones(capacity, n, dtype=torch.bool)
        self.capacity, self.size, self.ptr = capacity, 0, 0

    def push(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
             terminated: np.ndarray, ends: np.ndarray, next_active: np.ndarray) -> np.ndarray:
        """Rows [B, ...]; returns the slots written (to fill in next actions later)."""
        idx = (self.ptr + np.arange(len(actions))) % self.capacity
        t = torch.as_tensor(idx)
        self.obs[t], self.next_obs[t] = torch.as_tensor(obs).half(), torch.as_tensor(next_obs).half()
        self.actions[t], self.rewards[t] = torch.as_tensor(actions), torch.as_tensor(rewards, dtype=torch.float32)
        self.terminated[t], self.next_actions[t] = torch.as_tensor(terminated, dtype=torch.float32), -1
        self.ends[t] = torch.as_tensor(ends, dtype=torch.float32)
        self.next_active[t] = torch.as_tensor(next_active, dtype=torch.bool)
        self.ptr = int((self.ptr + len(actions)) % self.capacity)
        self.size = min(self.size + len(actions), self.capacity)
        return idx

    def rows(self, t: torch.Tensor) -> Transitions:
        """The stored transitions at rows `t`."""
        return Transitions(self.obs[t].float(), self.actions[t], self.rewards[t], self.next_obs[t].float(),
                           self.next_actions[t], self.terminated[t], self.ends[t], self.next_active[t])

    def sample(self, batch: int, gen: torch.Generator) -> Transitions:
        return self.rows(torch.randint(0, self.size, (batch,), generator=gen))
