"""Maps and tasks for lifelong multi-agent pathfinding (games.lifelong_mapf).

A task is an obstacle grid (int8 [H, W], 1 = obstacle), each agent's start cell and its first
target. Three map sources:

- `random`: POGEMA's generator, reproduced draw for draw: obstacles are Bernoulli(density) from
  `default_rng(seed)`, starts and targets are paired inside one connected component by POGEMA's
  `placing` over a shuffled cell order (the same seed gives POGEMA's own map and task);
- `maze`: a random maze (depth-first corridors, then a fraction of walls knocked out so that
  corridors form loops, as lifelong traffic needs);
- a MovingAI `.map` file (the benchmark format: `type`, `height`, `width`, `map`, then rows where
  `.`, `G` and `S` are passable), by path or by the name of one shipped with the package
  (`shipped_maps()`); starts and targets are placed on it as on a random map.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

MAPS_DIR = Path(__file__).parent / "maps"
_PASSABLE = set(".GS")
_BLOCKED = set("@OTW")
_FOUR = ndimage.generate_binary_structure(2, 1)


def shipped_maps() -> list[str]:
    """Names of the MovingAI maps shipped with equilibria (usable as `map=NAME`)."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.map"))


def parse_movingai(text: str, where: str = "map") -> np.ndarray:
    """A MovingAI `.map` text as an int8 obstacle grid; ValueError naming the line otherwise."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "map":
        parts = lines[i].split()
        if len(parts) == 2:
            header[parts[0]] = parts[1]
        elif parts:
            raise ValueError(f"{where}: line {i + 1}: expected 'key value' or 'map', got {lines[i]!r}")
        i += 1
    if i == len(lines):
        raise ValueError(f"{where}: no 'map' line (a MovingAI map has type, height, width, map, then the rows)")
    try:
        height, width = int(header["height"]), int(header["width"])
    except (KeyError, ValueError):
        raise ValueError(f"{where}: the header needs integer 'height' and 'width' lines") from None
    rows = [r.rstrip("\r") for r in lines[i + 1:i + 1 + height]]
    if len(rows) != height:
        raise ValueError(f"{where}: height is {height} but {len(rows)} rows follow the 'map' line")
    grid = np.zeros((height, width), dtype=np.int8)
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{where}: line {i + 2 + r}: {len(row)} cells, the header says width {width}")
        for c, ch in enumerate(row):
            if ch in _BLOCKED:
                grid[r, c] = 1
            elif ch not in _PASSABLE:
                raise ValueError(f"{where}: line {i + 2 + r}, column {c + 1}: unknown cell {ch!r} "
                                 f"(passable: . G S; blocked: @ O T W)")
    return grid


def to_movingai(grid: np.ndarray) -> str:
    h, w = grid.shape
    rows = ["".join("@" if v else "." for v in row) for row in grid]
    return "\n".join(["type octile", f"height {h}", f"width {w}", "map", *rows]) + "\n"


@lru_cache(maxsize=64)
def load_map(name_or_path: str) -> np.ndarray:
    """A shipped map by name, or a `.map` file by path (read-only; callers copy before changing)."""
    shipped = MAPS_DIR / f"{name_or_path}.map"
    path = shipped if shipped.is_file() else Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"map {name_or_path!r}: no such file and no shipped map of that name "
                         f"(shipped: {', '.join(shipped_maps())})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"map {path}: cannot read it ({err})") from None
    grid = parse_movingai(text, str(path))
    grid.setflags(write=False)
    return grid


def random_obstacles(seed: int, height: int, width: int, density: float) -> np.ndarray:
    """POGEMA's random map: each cell an obstacle with probability `density`."""
    return np.random.default_rng(seed).binomial(1, density, (height, width)).astype(np.int8)


def maze(seed: int, height: int, width: int, openness: float = 0.2) -> np.ndarray:
    """A maze of one-cell corridors (randomised depth-first search on the odd cells), then
    `openness` of the remaining inner walls between corridors removed so corridors form loops."""
    rng = np.random.default_rng(seed)
    grid = np.ones((height, width), dtype=np.int8)
    rows, cols = (height + 1) // 2, (width + 1) // 2
    seen = np.zeros((rows, cols), dtype=bool)
    stack = [(int(rng.integers(rows)), int(rng.integers(cols)))]
    seen[stack[0]] = True
    grid[2 * stack[0][0], 2 * stack[0][1]] = 0
    while stack:
        r, c = stack[-1]
        nbrs = [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= r + dr < rows and 0 <= c + dc < cols and not seen[r + dr, c + dc]]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = nbrs[int(rng.integers(len(nbrs)))]
        seen[nr, nc] = True
        grid[2 * nr, 2 * nc] = 0
        grid[r + nr, c + nc] = 0  # the wall between (2r, 2c) and (2nr, 2nc)
        stack.append((nr, nc))
    # walls with corridor on both sides (horizontally or vertically) that can open a loop
    walls = [(r, c) for r in range(height) for c in range(width) if grid[r, c] and (
        (0 < r < height - 1 and not grid[r - 1, c] and not grid[r + 1, c]) or
        (0 < c < width - 1 and not grid[r, c - 1] and not grid[r, c + 1]))]
    for k in rng.permutation(len(walls))[:int(round(openness * len(walls)))]:
        grid[walls[k]] = 0
    return grid


def components(obstacles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected components of the free cells: (label per cell, 0 on obstacles; size per label)."""
    labels, count = ndimage.label(obstacles == 0, structure=_FOUR)
    return labels, np.bincount(labels.ravel(), minlength=count + 1)


def place_agents(obstacles: np.ndarray, num_agents: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and first targets [num_agents, 2] (row, column) as POGEMA places them: cells in a
    shuffled order, each start paired with the next cell of its component, never sharing a cell.
    ValueError when the free cells cannot hold that many agents."""
    labels, sizes = components(obstacles)
    sizes = sizes.tolist()
    h, w = obstacles.shape
    order = [(x, y) for x in range(h) for y in range(w) if labels[x, y] > 0]
    np.random.default_rng(seed).shuffle(order)
    requests: list[list[int]] = [[] for _ in sizes]
    starts: list[tuple[int, int]] = []
    targets: list[tuple[int, int]] = [(-1, -1)] * num_agents
    done = 0
    for x, y in order:
        comp = labels[x, y]
        if requests[comp]:
            targets[requests[comp].pop()] = (x, y)
            done += 1
            continue
        if len(starts) >= num_agents:
            if done >= num_agents:
                break
            continue
        if sizes[comp] >= 2:
            sizes[comp] -= 2
            requests[comp].append(len(starts))
            starts.append((x, y))
    if len(starts) < num_agents:
        raise ValueError(f"the map's free cells hold at most {len(starts)} agents with their targets, "
                         f"not {num_agents} (lower num_agents or density)")
    return np.array(starts, dtype=np.int64), np.array(targets, dtype=np.int64)


def make_task(source: str, seed: int, num_agents: int, height: int, width: int, density: float,
              openness: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(obstacles, starts, targets) of one episode from `source` (random, maze or a map)."""
    if source == "random":
        obstacles = random_obstacles(seed, height, width, density)
    elif source == "maze":
        obstacles = maze(seed, height, width, openness)
    else:
        obstacles = load_map(source).copy()
    starts, targets = place_agents(obstacles, num_agents, seed)
    return obstacles, starts, targets


__all__ = ["components", "load_map", "make_task", "maze", "parse_movingai", "place_agents", "random_obstacles",
           "shipped_maps", "to_movingai"]
