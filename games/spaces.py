"""Observation and action spaces of Markov games, declared once per agent group.

A Markov game's agents form groups (`Group`): agents of a group share an observation space, an
action space and, by default, a policy. Learners build their encoders and heads from these
declarations (marl.runtime.encoders), never from a sample.

Observations: `Box(shape, layout)` with layout
- "vector":   [D] features;
- "grid":     [C, H, W] channels over a local map (pathfinding);
- "entities": [K, F] rows describing up to K entities (other vehicles, landmarks, orders);
  column 0 is a presence flag (1 present, 0 padding), so a row's absence is in the data.
`Composite({"self": Box(...), "orders": Box(..., "entities")})` combines named parts.

Actions: `Discrete(n)` (a per-step action mask says which are legal), or `Candidates(field)`: a
choice among the rows of the entities field `field` of the observation (dispatch scores every
candidate order), masked by presence and by the action mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import numpy as np

Layout = Literal["vector", "grid", "entities"]


@dataclasses.dataclass(frozen=True)
class Box:
    shape: tuple[int, ...]
    layout: Layout = "vector"

    def __post_init__(self) -> None:
        dims = {"vector": 1, "grid": 3, "entities": 2}[self.layout]
        if len(self.shape) != dims or any(int(d) < 1 for d in self.shape):
            raise ValueError(f"a {self.layout} Box needs {dims} positive dimensions, got {self.shape}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def zeros(self, *batch: int) -> np.ndarray:
        return np.zeros((*batch, *self.shape), dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Composite:
    parts: Mapping[str, Box]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a Composite observation needs at least one part")
        object.__setattr__(self, "parts", dict(self.parts))

    def zeros(self, *batch: int) -> dict[str, np.ndarray]:
        return {k: b.zeros(*batch) for k, b in self.parts.items()}


Observation = Box | Composite


@dataclasses.dataclass(frozen=True)
class Discrete:
    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"Discrete needs n >= 1, got {self.n}")

    def num_choices(self, observation: Observation) -> int:
        return self.n


@dataclasses.dataclass(frozen=True)
class Candidates:
    """Pick one row of the observation's entities field `field` (padded rows are never legal)."""

    field: str

    def num_choices(self, observation: Observation) -> int:
        if not isinstance(observation, Composite) or self.field not in observation.parts \
                or observation.parts[self.field].layout != "entities":
            raise ValueError(f"Candidates({self.field!r}) needs an entities field {self.field!r} in a Composite observation")
        return observation.parts[self.field].shape[0]


Action = Discrete | Candidates


@dataclasses.dataclass(frozen=True)
class Group:
    """Agents that share spaces (and, by default, a policy): `size` slots, of which the active
    mask says which are present in each environment at each step."""

    name: str
    size: int
    observation: Observation
    action: Action

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"group {self.name!r} needs size >= 1, got {self.size}")
        object.__setattr__(self, "num_actions", self.action.num_choices(self.observation))

    num_actions: int = dataclasses.field(init=False, default=0)


def matching_group(groups: Mapping[str, Group], target: Group) -> str | None:
    """Which of `groups` (by name) a policy trained for it can act for `target`'s seats with: the
    group of the same name, or the only one when there is one, provided its spaces are target's
    and it has a slot for every seat (a one-slot policy serves any number); None when none fits."""
    name = target.name if target.name in groups else (next(iter(groups)) if len(groups) == 1 else None)
    if name is None:
        return None
    g = groups[name]
    fits = (g.observation, g.action) == (target.observation, target.action) and g.size in (1, target.size)
    return name if fits else None


def batch_obs(observation: Observation, *batch: int) -> np.ndarray | dict[str, np.ndarray]:
    """Zeros shaped like `observation` with leading batch dimensions."""
    return observation.zeros(*batch)


def check_obs(observation: Observation, value: object, batch: tuple[int, ...], where: str) -> None:
    """ValueError unless `value` has the declared shape (after the batch dimensions) and is float32."""
    if isinstance(observation, Composite):
        if not isinstance(value, dict) or set(value) != set(observation.parts):
            raise ValueError(f"{where}: expected the parts {sorted(observation.parts)}, got {type(value).__name__}")
        for k, box in observation.parts.items():
            check_obs(box, value[k], batch, f"{where}.{k}")
        return
    arr = np.asarray(value)
    if arr.shape != (*batch, *observation.shape):
        raise ValueError(f"{where}: shape {arr.shape}, expected {(*batch, *observation.shape)}")
    if arr.dtype != np.float32:
        raise ValueError(f"{where}: dtype {arr.dtype}, expected float32")


def index_obs(value: np.ndarray | dict[str, np.ndarray], idx: object) -> np.ndarray | dict[str, np.ndarray]:
    """value[idx] for an observation array or each part of a composite one."""
    if isinstance(value, dict):
        return {k: v[idx] for k, v in value.items()}
    return value[idx]


def map_obs(value: np.ndarray | dict[str, np.ndarray], fn) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(value, dict):
        return {k: fn(v) for k, v in value.items()}
    return fn(value)


__all__ = ["Action", "Box", "Candidates", "Composite", "Discrete", "Group", "Observation", "batch_obs", "check_obs",
           "index_obs", "map_obs", "matching_group"]
