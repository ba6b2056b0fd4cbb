"""POGEMA side of benchmarks/pogema.py: run by the POGEMA venv's python (pogema 1.4.0), never by
equilibria's, and imports nothing from equilibria. Reads one JSON request (or a list of them) on
stdin and writes the answer (or the list of answers) as JSON on stdout. Coordinates are (row,
column) on the map, without POGEMA's border offset of obs_radius.

Requests ("cmd"):
- "task": {"configs": [{seed, size or height+width, density, num_agents, obs_radius}, ...]} ->
  {"tasks": [{obstacles [H][W], starts [N][2], targets [N][2]} or {"error": "..."}, ...]}: the map,
  starts and first targets POGEMA generates for that seed.
- "trace": {obstacles [H][W], starts [N][2], targets [N][K][2] (each agent's target sequence),
  actions [T][N], obs_radius, observations: bool} -> {"positions", "targets": [T+1][N][2] (index 0:
  after reset), "rewards": [T][N], "obs": [T+1] base64 of np.packbits of the 0/1 observations
  [N, 3, d, d] (when asked)}: PogemaLifeLong, on_target="restart", soft collisions.
- "speed": {num_agents, size, density, obs_radius, steps, seconds, seed} -> agent-steps per second of
  PogemaLifeLong.step (lifelong, soft collisions, seeded random actions drawn before the clock as
  default_rng(seed + episode).integers(0, 5, (steps, N)); a new map per episode, seed + episode; reset()
  not timed), whole 256-step
  episodes until `seconds` of stepping have passed, and the peak RSS (VmHWM, KiB) before the
  environment was built (after a tiny warm-up run, the mark lowered to the current RSS) and after the
  first episode.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import warnings
from pathlib import Path

from peak_rss import maxrss_kib, reset_peak_rss  # noqa: E402  (beside this file, before the folder leaves the path)

# benchmarks/pogema.py sits beside this file: keep the folder off the import path, or it shadows POGEMA.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
from pogema import GridConfig  # noqa: E402
from pogema.envs import PogemaLifeLong  # noqa: E402


def _dims(cfg: dict) -> dict:
    if "height" in cfg:
        return {"height": int(cfg["height"]), "width": int(cfg["width"])}
    return {"size": int(cfg["size"])}


def _env(cfg: dict, **extra) -> PogemaLifeLong:
    gc = GridConfig(on_target="restart", collision_system="soft", observation_type="default",
                    num_agents=int(cfg["num_agents"]), obs_radius=int(cfg["obs_radius"]),
                    max_episode_steps=int(cfg.get("steps", 256)), **extra)
    return PogemaLifeLong(grid_config=gc)


def task(req: dict) -> dict:
    out = []
    for cfg in req["configs"]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env = _env(cfg, seed=int(cfg["seed"]), density=float(cfg["density"]), **_dims(cfg))
                env.reset()
        except (OverflowError, ValueError, IndexError) as err:
            out.append({"error": f"{type(err).__name__}: {err}"})
            continue
        out.append({"obstacles": env.get_obstacles(ignore_borders=True).astype(int).tolist(),
                    "starts": [[int(x), int(y)] for x, y in env.get_agents_xy(ignore_borders=True)],
                    "targets": [[int(x), int(y)] for x, y in env.get_targets_xy(ignore_borders=True)]})
    return {"tasks": out}


def _pack(obs: list) -> str:
    a = np.stack(obs)
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"observation values other than 0 and 1: {sorted(set(np.unique(a).tolist()))}")
    return base64.b64encode(np.packbits(a.astype(np.uint8).ravel()).tobytes()).decode()


def trace(req: dict) -> dict:
    starts = [[int(x), int(y)] for x, y in req["starts"]]
    seqs = [[[int(x), int(y)] for x, y in seq] for seq in req["targets"]]
    cfg = {"num_agents": len(starts), "obs_radius": req["obs_radius"], "steps": len(req["actions"]) + 1}
    env = _env(cfg, map=[[int(v) for v in row] for row in req["obstacles"]], agents_xy=starts, targets_xy=seqs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an obstacle on a start or a target, a cycled sequence: a broken request
        obs, _ = env.reset()
        positions = [env.get_agents_xy(ignore_borders=True)]
        targets = [env.get_targets_xy(ignore_borders=True)]
        rewards, packed = [], [_pack(obs)] if req.get("observations") else None
        for row in req["actions"]:
            obs, rew, *_ = env.step([int(a) for a in row])  # step() overwrites reverted actions in its argument
            positions.append(env.get_agents_xy(ignore_borders=True))
            targets.append(env.get_targets_xy(ignore_borders=True))
            rewards.append([float(r) for r in rew])
            if packed is not None:
                packed.append(_pack(obs))
    as_int = lambda xs: [[[int(x), int(y)] for x, y in step] for step in xs]  # noqa: E731
    return {"positions": as_int(positions), "targets": as_int(targets), "rewards": rewards, "obs": packed}


def speed(req: dict) -> dict:
    steps, seconds, seed = int(req.get("steps", 256)), float(req.get("seconds", 3.0)), int(req.get("seed", 0))
    warm = _env({"num_agents": 2, "obs_radius": int(req["obs_radius"]), "steps": 4}, seed=0, size=4, density=0.0)
    warm.reset()
    for _ in range(4):
        warm.step(warm.sample_actions())
    del warm
    n = int(req["num_agents"])
    draw = lambda episode: np.random.default_rng(seed + episode).integers(0, 5, (steps, n))  # noqa: E731
    actions = draw(0)  # drawn before the baseline: the RSS growth is the environment's
    peak_reset = reset_peak_rss()
    rss0 = maxrss_kib()
    load = [os.getloadavg()[0]]
    step_s = reset_s = 0.0
    episodes = rss1 = 0
    while episodes == 0 or step_s < seconds:
        if episodes:
            actions, env = draw(episodes), None
        t0 = time.perf_counter()
        env = _env({**req, "steps": steps}, seed=seed + episodes, density=float(req["density"]), size=int(req["size"]))
        env.reset()
        reset_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in range(steps):
            env.step(actions[t])
        step_s += time.perf_counter() - t0
        episodes += 1
        rss1 = rss1 or maxrss_kib()  # after the first episode
    load.append(os.getloadavg()[0])
    return {"agent_steps_per_s": episodes * steps * n / step_s, "step_s": step_s, "reset_s": reset_s,
            "episodes": episodes, "steps": steps, "rss0_kib": rss0, "rss_peak_kib": rss1,
            "peak_reset": peak_reset, "load": load}


def handle(req: dict) -> dict:
    cmd = req.get("cmd")
    if cmd == "task":
        return task(req)
    if cmd == "trace":
        return trace(req)
    if cmd == "speed":
        return speed(req)
    raise ValueError(f"unknown cmd {cmd!r} (task, trace, speed)")


def main() -> None:
    req = json.load(sys.stdin)
    out = [handle(r) for r in req] if isinstance(req, list) else handle(req)
    from importlib.metadata import version

    meta = {"pogema": version("pogema"), "gymnasium": version("gymnasium"), "numpy": np.__version__,
            "python": sys.version.split()[0]}
    json.dump({"result": out, "versions": meta}, sys.stdout)


if __name__ == "__main__":
    main()
