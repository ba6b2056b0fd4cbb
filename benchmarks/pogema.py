"""POGEMA benchmark: equilibria's lifelong_mapf against POGEMA 1.4.0 (on_target="restart", soft
collisions, default observation), step for step and for speed.

    python benchmarks/pogema.py --diff [--quick]     # differential test; exit 1 on any mismatch
    python benchmarks/pogema.py --speed [--seconds 3]  # agent-steps/s and memory -> results/pogema.md
    python benchmarks/pogema.py --diff --speed [--venv /work/pogema/venv]

POGEMA lives in its own venv (made on first use: `python -m venv` + `pip install pogema==1.4.0`,
which pins its own gymnasium, numpy and pydantic) and runs there as benchmarks/pogema_worker.py,
one fresh process per request; nothing is installed into equilibria's venv. Exit code 3: that venv
cannot be made (no network).

--diff: (i) the tasks of POGEMA's random generator (obstacles, starts, first targets) against
games.mapf_maps.make_task over several seeds and configurations, including one that cannot hold its
agents (both sides must refuse it); (ii) replays: each task with explicit target sequences (drawn from a
seeded rng inside the start's component, each target != the previous one, longer than the episode so
none cycles) and one action sequence, chosen step by step on our side (a seeded mix of uniform
random actions, waits and greedy moves toward the target, so agents crowd, collide, swap and arrive),
then run by POGEMA; positions, targets, rewards and observations must agree at every step.

--speed: random actions, 256-step lifelong episodes, density 0.3, obs_radius 5, at 8/64/256/1024
agents on 16/32/64/128-wide maps. Each measurement is a fresh process; only the step calls are timed
(resets are reported apart). Ours steps one environment and a batch (num_envs * agents >= 1024), the
observations computed every step as sim.step returns them; POGEMA's is PogemaLifeLong.step (the core
environment, without pogema_v0's wrappers). Memory: peak RSS growth per agent (VmHWM after the first
episode minus the RSS before the environment was built, after imports and a tiny warm-up run; the peak
mark is lowered to the current RSS there via /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peer_venv  # noqa: E402
from peak_rss import maxrss_kib, reset_peak_rss  # noqa: E402
from peer_venv import VenvUnavailable  # noqa: E402

WORKER = HERE / "pogema_worker.py"
POGEMA_VERSION = "1.4.0"
ACTION_NAMES = ("wait", "up", "down", "left", "right")
NO_VENV = 3  # exit code: the POGEMA venv cannot be made


# ---- the POGEMA venv and its worker --------------------------------------------------------------
def ensure_venv(venv: Path) -> Path:
    """The POGEMA venv's python, made on first use (VenvUnavailable when pip cannot install POGEMA)."""
    return peer_venv.ensure_venv(venv, f"import importlib.metadata as m; assert m.version('pogema') == '{POGEMA_VERSION}'",
                                 [[f"pogema=={POGEMA_VERSION}"]])


def call_worker(py: Path, request: Any) -> tuple[Any, dict]:
    """One fresh POGEMA process: (its answer, its package versions)."""
    out = peer_venv.run_worker(py, WORKER, request, "POGEMA worker")
    return out["result"], out["versions"]


# ---- equilibria adapter: the only code that knows equilibria's API ------------------------------------
def our_game(num_agents: int, size: int, density: float, obs_radius: int, max_steps: int) -> Any:
    from equilibria import games

    return games.load(f"lifelong_mapf(num_agents={num_agents}, size={size}, density={density}, "
                      f"obs_radius={obs_radius}, max_steps={max_steps})")


def our_task(seed: int, num_agents: int, size: int, density: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from equilibria.games.mapf_maps import make_task

    return make_task("random", seed, num_agents, size, size, density)


def equilibria_version() -> str:
    import equilibria

    return f"{equilibria.__version__} from {Path(equilibria.__file__).parent.parent}"


# ---- differential test -----------------------------------------------------------------------------
# (label, agents, size, density, obs_radius, seeds): tasks and replays
DIFF_CONFIGS = [
    ("8 agents 8x8", 8, 8, 0.3, 2, range(6)),
    ("16 agents 8x8 (crowded, window past the wall)", 16, 8, 0.1, 4, range(4)),
    ("64 agents 32x32", 64, 32, 0.3, 5, range(4)),
    ("128 agents 24x24 (congested)", 128, 24, 0.2, 3, range(4)),
    ("120 agents 20x20 (jammed)", 120, 20, 0.2, 2, range(3)),
]
QUICK_CONFIGS = [  # seeds chosen so that each configuration meets a greedy action mix (POLICY_MIXES)
    ("8 agents 8x8", 8, 8, 0.3, 2, range(3)),
    ("16 agents 8x8 (crowded, window past the wall)", 16, 8, 0.1, 4, range(1, 2)),
    ("128 agents 24x24 (congested)", 128, 24, 0.2, 3, range(2, 3)),
]
# tasks only: (agents, size, density, seeds); 40 agents do not fit 8x8 at density 0.3: both must refuse
TASK_ONLY = [(40, 8, 0.3, range(3)), (1, 2, 0.0, range(2)), (300, 40, 0.4, range(3)), (1024, 128, 0.3, range(2))]
# mixes of (uniform random, wait, greedy toward the target), cycled over seeds
POLICY_MIXES = [(1.0, 0.0, 0.0), (0.3, 0.1, 0.6), (0.15, 0.05, 0.8)]


def target_sequences(obstacles: np.ndarray, starts: np.ndarray, first: np.ndarray, length: int,
                     seed: int) -> np.ndarray:
    """[N, length, 2]: the first target, then cells of the start's component, each != the previous."""
    from equilibria.games.mapf_maps import components

    labels, _ = components(obstacles)
    rng = np.random.default_rng(10_000 + seed)
    cells = {lab: np.argwhere(labels == lab) for lab in np.unique(labels[tuple(starts.T)])}
    seqs = np.zeros((len(starts), length, 2), dtype=np.int64)
    for i, (s, t) in enumerate(zip(starts, first)):
        comp = cells[labels[tuple(s)]]
        seqs[i, 0] = t
        for k in range(1, length):
            while True:
                c = comp[rng.integers(len(comp))]
                if (c != seqs[i, k - 1]).any():
                    break
            seqs[i, k] = c
    return seqs


def choose_actions(rng: np.random.Generator, pos: np.ndarray, target: np.ndarray, mix: tuple) -> np.ndarray:
    n = len(pos)
    u = rng.random(n)
    uniform = rng.integers(0, 5, n)
    d = target - pos
    vertical = np.where(d[:, 0] < 0, 1, 2)
    horizontal = np.where(d[:, 1] < 0, 3, 4)
    pick_v = np.where(d[:, 1] == 0, True, np.where(d[:, 0] == 0, False, rng.random(n) < 0.5))
    greedy = np.where(pick_v, vertical, horizontal)
    greedy = np.where((d == 0).all(axis=1), 0, greedy)
    return np.where(u < mix[0], uniform, np.where(u < mix[0] + mix[1], 0, greedy)).astype(np.int64)


def our_replay(obstacles: np.ndarray, starts: np.ndarray, seqs: np.ndarray, steps: int, obs_radius: int,
               seed: int, mix: tuple) -> dict[str, np.ndarray]:
    """Our run of the task, choosing the actions as it goes: positions/targets [T+1, N, 2], rewards
    [T, N], observations uint8 [T+1, N, 3, d, d], actions [T, N]."""
    n, size = len(starts), obstacles.shape[0]
    sim = our_game(n, size, 0.3, obs_radius, steps + 1).simulator(num_envs=1, seed=0)
    sim.load_task(obstacles, starts, seqs)
    rng = np.random.default_rng(20_000 + seed)
    pos, tgt, obs = [sim.to_rc(sim.pos[0])], [sim.to_rc(sim.target[0])], [sim.observe()["agents"][0]]
    rewards, actions = [], []
    for _ in range(steps):
        a = choose_actions(rng, pos[-1], tgt[-1], mix)
        res = sim.step({"agents": a[None, :]}, autoreset=False)
        actions.append(a)
        pos.append(sim.to_rc(sim.pos[0]))
        tgt.append(sim.to_rc(sim.target[0]))
        rewards.append(res.rewards["agents"][0])
        obs.append(res.obs["agents"][0])
    o = np.stack(obs)
    if not np.all((o == 0) | (o == 1)):
        raise AssertionError("our observations hold values other than 0 and 1")
    return {"positions": np.stack(pos), "targets": np.stack(tgt), "rewards": np.stack(rewards),
            "obs": o.astype(np.uint8), "actions": np.stack(actions)}


def coverage(ours: dict[str, np.ndarray], obstacles: np.ndarray) -> dict[str, int]:
    """What the replay exercised (counted on our trace, which equals POGEMA's when the replay passes)."""
    pos, act = ours["positions"], ours["actions"]
    moves = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
    h, w = obstacles.shape
    out = {"arrivals": int(ours["rewards"].sum()), "moves": 0, "blocked by wall": 0, "blocked by agents": 0,
           "swap attempts": 0, "contested cells": 0}
    for t in range(len(act)):
        want = pos[t] + moves[act[t]]
        moving = act[t] != 0
        stayed = (pos[t + 1] == pos[t]).all(axis=1)
        inside = (want[:, 0] >= 0) & (want[:, 0] < h) & (want[:, 1] >= 0) & (want[:, 1] < w)
        wall = ~inside | (obstacles[want[:, 0].clip(0, h - 1), want[:, 1].clip(0, w - 1)] == 1)
        out["moves"] += int((moving & ~stayed).sum())
        out["blocked by wall"] += int((moving & stayed & wall).sum())
        out["blocked by agents"] += int((moving & stayed & ~wall).sum())
        key = want[moving, 0] * (w + 2) + want[moving, 1]
        out["contested cells"] += int((np.unique(key, return_counts=True)[1] > 1).sum())
        at = {tuple(p): i for i, p in enumerate(pos[t])}
        for i in np.flatnonzero(moving):
            j = at.get(tuple(want[i]))
            if j is not None and j > i and act[t, j] != 0 and (want[j] == pos[t, i]).all():
                out["swap attempts"] += 1
    return out


def hidden_by_pogema(prev: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Cells [k, 2] that POGEMA 1.4.0's agents channel shows empty after a step though an agent stands
    there: Grid.move_without_checks updates the occupancy agent by agent, clearing the old cell and
    marking the new one, so an agent that enters the cell a higher-numbered agent leaves in the same step
    is erased when that agent's turn comes (fixed upstream after 1.4.0: Cognitive-AI-Systems/pogema#51,
    which rebuilds the occupancy from the positions, as equilibria's occupant array always is)."""
    was = {tuple(p): j for j, p in enumerate(prev)}
    return np.array([new[k] for k in range(len(new)) if (new[k] != prev[k]).any() and was.get(tuple(new[k]), -1) > k],
                    dtype=np.int64).reshape(-1, 2)


def pogema_140_obs(ours: dict[str, np.ndarray], r: int) -> tuple[np.ndarray, int, int]:
    """Our observations with POGEMA 1.4.0's agents-channel defect applied (hidden_by_pogema): what
    POGEMA 1.4.0 shows. Also (number of hidden agent-steps, observation cells changed)."""
    obs, pos = ours["obs"].copy(), ours["positions"]
    events = cells = 0
    for t in range(1, len(pos)):
        for h in hidden_by_pogema(pos[t - 1], pos[t]):
            events += 1
            w = h - pos[t] + r
            seen = np.flatnonzero(((w >= 0) & (w <= 2 * r)).all(axis=1))
            obs[t, seen, 1, w[seen, 0], w[seen, 1]] = 0
            cells += len(seen)
    return obs, events, cells


def local_map(obstacles: np.ndarray, positions: np.ndarray, center: np.ndarray, radius: int = 3) -> list[str]:
    at = {tuple(p): i for i, p in enumerate(positions)}
    rows = []
    for r in range(center[0] - radius, center[0] + radius + 1):
        cells = []
        for c in range(center[1] - radius, center[1] + radius + 1):
            if not (0 <= r < obstacles.shape[0] and 0 <= c < obstacles.shape[1]):
                cells.append("  ~")
            elif (r, c) in at:
                cells.append(f"{at[(r, c)]:>3}")
            else:
                cells.append("  #" if obstacles[r, c] else "  .")
        rows.append(f"    row {r:>3}: " + "".join(cells))
    return rows


def describe_divergence(label: str, seed: int, obstacles: np.ndarray, ours: dict, theirs: dict,
                        expected_obs: np.ndarray) -> str | None:
    """None when the traces agree (POGEMA's observations equal to `expected_obs`: ours, or ours with
    POGEMA 1.4.0's agents-channel defect applied); otherwise the first divergence in detail."""
    pos, tgt, act = ours["positions"], ours["targets"], ours["actions"]
    tpos, ttgt, trew = theirs["positions"], theirs["targets"], theirs["rewards"]
    for t in range(len(pos)):
        what = []
        for name, a, b in (("positions", pos[t], tpos[t]), ("targets", tgt[t], ttgt[t])):
            bad = np.flatnonzero((a != b).any(axis=1))
            if len(bad):
                what.append((name, bad))
        if t > 0:
            bad = np.flatnonzero(ours["rewards"][t - 1] != trew[t - 1])
            if len(bad):
                what.append(("rewards", bad))
        if theirs.get("obs") is not None:
            bad = np.flatnonzero((expected_obs[t] != theirs["obs"][t]).reshape(len(pos[t]), -1).any(axis=1))
            if len(bad):
                what.append(("observations", bad))
        if not what:
            continue
        lines = [f"FIRST DIVERGENCE: {label}, seed {seed}, "
                 + ("after reset (step 0)" if t == 0 else f"step {t} (the {t}-th call to step)")]
        for name, bad in what:
            lines.append(f"  {name} differ for agents {bad[:20].tolist()}{' ...' if len(bad) > 20 else ''}")
        name, bad = what[0]
        i = int(bad[0])
        if t > 0:
            p0 = pos[t - 1][i]
            lines += [f"  agent {i}: at {p0.tolist()} (both sides), action {ACTION_NAMES[act[t - 1][i]]}, "
                      f"target {tgt[t - 1][i].tolist()}",
                      f"    ours:   position {pos[t][i].tolist()}, target {tgt[t][i].tolist()}, "
                      f"reward {ours['rewards'][t - 1][i]}",
                      f"    POGEMA: position {tpos[t][i].tolist()}, target {ttgt[t][i].tolist()}, "
                      f"reward {trew[t - 1][i]}",
                      "  neighbours (start of the step within distance 3):"]
            near = np.flatnonzero(np.abs(pos[t - 1] - p0).sum(axis=1) <= 3)
            for j in near:
                lines.append(f"    agent {j:>3}: at {pos[t - 1][j].tolist()}, action {ACTION_NAMES[act[t - 1][j]]:>5}"
                             f" -> ours {pos[t][j].tolist()}, POGEMA {tpos[t][j].tolist()}")
            lines.append("  the map around it at the start of the step (agents by index, # obstacle, ~ outside):")
            lines += local_map(obstacles, pos[t - 1], p0)
        else:
            lines += [f"  agent {i}: ours at {pos[0][i].tolist()} target {tgt[0][i].tolist()}; "
                      f"POGEMA at {tpos[0][i].tolist()} target {ttgt[0][i].tolist()}"]
        if name == "observations":
            diff = np.argwhere(expected_obs[t][i] != theirs["obs"][t][i])
            ch = ("obstacles", "agents", "target")
            for c, a, b in diff[:12]:
                lines.append(f"    observation of agent {i}: channel {ch[c]}, window cell ({a}, {b}): ours "
                             f"{ours['obs'][t][i, c, a, b]}, expected of POGEMA {expected_obs[t][i, c, a, b]}, "
                             f"POGEMA {theirs['obs'][t][i, c, a, b]}")
        return "\n".join(lines)
    return None


def run_diff(py: Path, quick: bool, steps: int, strict: bool) -> tuple[bool, list[str]]:
    """(all identical, markdown lines)."""
    configs = QUICK_CONFIGS if quick else DIFF_CONFIGS
    task_only = [] if quick else TASK_ONLY
    jobs = [(n, s, d, r, seed) for _, n, s, d, r, seeds in configs for seed in seeds]
    jobs += [(n, s, d, 2, seed) for n, s, d, seeds in task_only for seed in seeds]
    answer, versions = call_worker(py, {"cmd": "task", "configs": [
        {"seed": seed, "size": s, "density": d, "num_agents": n, "obs_radius": r} for n, s, d, r, seed in jobs]})
    ok, md = True, ["## Differential test", "",
                    f"POGEMA {versions['pogema']} (gymnasium {versions['gymnasium']}, numpy {versions['numpy']}).", ""]
    task_ok = 0
    for (n, s, d, _r, seed), theirs in zip(jobs, answer["tasks"]):
        where = f"task {n} agents {s}x{s} density {d} seed {seed}"
        try:
            mine = our_task(seed, n, s, d)
        except ValueError as err:
            if "error" in theirs:
                task_ok += 1
            else:
                ok = False
                print(f"MISMATCH {where}: ours refuses ({err}), POGEMA places the agents", file=sys.stderr)
            continue
        if "error" in theirs:
            ok = False
            print(f"MISMATCH {where}: POGEMA refuses ({theirs['error']}), ours places the agents", file=sys.stderr)
            continue
        same = True
        for name, a in zip(("obstacles", "starts", "targets"), mine):
            b = np.array(theirs[name])
            if a.shape != b.shape or (a != b).any():
                same = False
                idx = np.argwhere(a != b)[:5].tolist() if a.shape == b.shape else f"shapes {a.shape} vs {b.shape}"
                print(f"MISMATCH {where}: {name} differ at {idx}", file=sys.stderr)
        ok &= same
        task_ok += same
    print(f"tasks: {task_ok}/{len(jobs)} identical (obstacles, starts, first targets; refusals agree)", file=sys.stderr)
    md += [f"Tasks (POGEMA's generator vs games.mapf_maps.make_task): {task_ok}/{len(jobs)} identical "
           f"(obstacles, starts, first targets; a configuration that cannot hold its agents refused by both).", "",
           f"Replays ({steps} steps, explicit target sequences, actions chosen on our side, POGEMA replaying them; "
           "positions, targets, rewards and observations compared at every step):", "",
           "| configuration | obs radius | seeds | identical | arrivals | moves | blocked by wall | "
           "blocked by agents | swap attempts | contested cells | hidden by POGEMA 1.4.0 |", "|---" * 11 + "|"]
    for label, n, s, d, r, seeds in configs:
        totals: dict[str, int] = {}
        same = 0
        for seed in seeds:
            obstacles, starts, first = our_task(seed, n, s, d)
            seqs = target_sequences(obstacles, starts, first, steps + 2, seed)
            mix = POLICY_MIXES[seed % len(POLICY_MIXES)]
            t0 = time.perf_counter()
            ours = our_replay(obstacles, starts, seqs, steps, r, seed, mix)
            req = {"cmd": "trace", "obstacles": obstacles.tolist(), "starts": starts.tolist(), "targets": seqs.tolist(),
                   "actions": ours["actions"].tolist(), "obs_radius": r, "observations": True}
            res, _ = call_worker(py, req)
            d_ = 2 * r + 1
            theirs = {k: np.array(res[k]) for k in ("positions", "targets", "rewards")}
            theirs["obs"] = np.stack([np.unpackbits(np.frombuffer(base64.b64decode(b), np.uint8))[:n * 3 * d_ * d_]
                                      .reshape(n, 3, d_, d_) for b in res["obs"]])
            expected, hidden, hidden_cells = pogema_140_obs(ours, r)
            report = describe_divergence(label, seed, obstacles, ours, theirs, ours["obs"] if strict else expected)
            cov = {**coverage(ours, obstacles), "hidden by POGEMA": hidden, "obs cells affected": hidden_cells}
            for k, v in cov.items():
                totals[k] = totals.get(k, 0) + v
            print(f"replay {label}, seed {seed}, mix {mix}: {'identical' if report is None else 'DIFFERENT'} "
                  f"({time.perf_counter() - t0:.1f} s) {cov}", file=sys.stderr)
            if report is not None:
                ok = False
                print(report, file=sys.stderr)
            same += report is None
        md.append(f"| {label} | {r} | {len(seeds)} | {same}/{len(seeds)} | "
                  + " | ".join(f"{totals[k]:,}" for k in ("arrivals", "moves", "blocked by wall", "blocked by agents",
                                                          "swap attempts", "contested cells", "hidden by POGEMA"))
                  + " |")
    md += ["", "Hidden by POGEMA 1.4.0: agent-steps where POGEMA's agents channel leaves out an agent that entered "
           "the cell a higher-numbered agent left in the same step (Grid.move_without_checks updates the occupancy "
           "one agent at a time; fixed upstream after 1.4.0 in Cognitive-AI-Systems/pogema#51). equilibria shows "
           "those agents; the replay compares POGEMA's observations with ours after applying exactly that defect"
           + (" (not here: --strict)" if strict else "") + ", and everything else bit for bit.", "",
           "Seeds cycle through action mixes (uniform random, wait, greedy toward the target): "
           + ", ".join(f"({a:.2f}, {b:.2f}, {c:.2f})" for a, b, c in POLICY_MIXES) + ".", ""]
    return ok, md


# ---- speed -----------------------------------------------------------------------------------------
SPEED_CONFIGS = [(8, 16), (64, 32), (256, 64), (1024, 128)]  # (agents, map side)


def our_speed(req: dict) -> dict:
    """Our side of one speed measurement (run in a fresh process: --speed-worker)."""
    n, size, density, r = req["num_agents"], req["size"], req["density"], req["obs_radius"]
    steps, seconds, seed, num_envs = req["steps"], req["seconds"], req["seed"], req["num_envs"]
    warm = our_game(2, 4, 0.0, r, 4).simulator(num_envs=1, seed=0)  # numba kernels loaded before the baseline
    for _ in range(4):
        warm.step({"agents": np.zeros((1, 2), dtype=np.int64)})
    del warm
    # = POGEMA's draws at one environment; drawn before the baseline, so the RSS growth is the simulator's
    draw = lambda episode: np.random.default_rng(seed + episode).integers(0, 5, (steps, num_envs, n))  # noqa: E731
    actions = draw(0)
    peak_reset = reset_peak_rss()
    rss0 = maxrss_kib()
    load = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    sim = our_game(n, size, density, r, steps).simulator(num_envs=num_envs, seed=seed)
    reset_s, step_s, episodes, rss1 = time.perf_counter() - t0, 0.0, 0, 0
    while episodes == 0 or step_s < seconds:
        if episodes:
            actions = draw(episodes)
            t0 = time.perf_counter()
            sim.reset()
            reset_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in range(steps):
            sim.step({"agents": actions[t]}, autoreset=False)  # observations computed and returned every step
        step_s += time.perf_counter() - t0
        episodes += 1
        rss1 = rss1 or maxrss_kib()  # after the first episode
    load.append(os.getloadavg()[0])
    return {"agent_steps_per_s": episodes * steps * num_envs * n / step_s, "step_s": step_s, "reset_s": reset_s,
            "num_envs": num_envs, "episodes": episodes, "steps": steps, "rss0_kib": rss0, "rss_peak_kib": rss1,
            "peak_reset": peak_reset, "load": load}


def call_ours(req: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--speed-worker", json.dumps(req)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"our speed worker failed ({done.returncode}):\n{done.stderr.strip()[-4000:]}")
    return json.loads(done.stdout)


def run_speed(py: Path, seconds: float, repeats: int, steps: int) -> tuple[list[str], dict]:
    rows, raw = [], {}
    for n, size in SPEED_CONFIGS:
        base = {"num_agents": n, "size": size, "density": 0.3, "obs_radius": 5, "steps": steps, "seconds": seconds,
                "seed": 0}
        batch = max(1, math.ceil(1024 / n))
        sides = [("ours, 1 env", 1), ("POGEMA", 0)] + ([(f"ours, {batch} envs", batch)] if batch > 1 else [])
        best: dict[str, dict] = {}
        for rep in range(repeats):  # interleaved, so the sides meet the same background load; best of the repeats
            for name, num_envs in sides:
                r = call_ours({**base, "num_envs": num_envs}) if num_envs else \
                    {**call_worker(py, {"cmd": "speed", **base})[0], "num_envs": 1}
                print(f"speed {n} agents {size}x{size}, {name}, repeat {rep}: {r['agent_steps_per_s']:,.0f} agent-steps/s"
                      f" (load {r['load'][0]:.2f}-{r['load'][1]:.2f})", file=sys.stderr)
                if name not in best or r["agent_steps_per_s"] > best[name]["agent_steps_per_s"]:
                    best[name] = r
        raw[n] = best
        theirs = best["POGEMA"]["agent_steps_per_s"]
        for name, r in best.items():
            with_resets = r["episodes"] * r["steps"] * r["num_envs"] * n / (r["step_s"] + r["reset_s"])
            mib = (r["rss_peak_kib"] - r["rss0_kib"]) / 1024
            rows.append(f"| {n:,} | {size}x{size} | {name} | {r['agent_steps_per_s']:,.0f} | "
                        f"{r['agent_steps_per_s'] / theirs:.2f}x | {with_resets:,.0f} | {r['episodes']} | "
                        f"{mib:.1f} | {r['load'][0]:.2f}-{r['load'][1]:.2f} |")
    return rows, raw


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", action="store_true", help="differential test against POGEMA (exit 1 on a mismatch)")
    parser.add_argument("--quick", action="store_true", help="--diff on a few small configurations only")
    parser.add_argument("--steps", type=int, default=300, help="steps per replay in --diff")
    parser.add_argument("--strict", action="store_true", help="--diff without allowing for POGEMA 1.4.0's "
                                                               "agents-channel defect (see hidden_by_pogema)")
    parser.add_argument("--speed", action="store_true", help="agent-steps/s and memory, written to --out")
    parser.add_argument("--seconds", type=float, default=3.0, help="stepping seconds per speed measurement (at least "
                                                                      "one episode)")
    parser.add_argument("--repeats", type=int, default=2, help="speed measurements per side (the best is kept)")
    parser.add_argument("--venv", type=Path, default=Path("/work/pogema/venv"), help="POGEMA's venv (made if missing)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pogema.md")
    parser.add_argument("--speed-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.speed_worker:
        json.dump(our_speed(json.loads(args.speed_worker)), sys.stdout)
        return
    if not (args.diff or args.speed):
        parser.error("choose --diff and/or --speed")
    try:
        py = ensure_venv(args.venv)
    except VenvUnavailable as err:
        print(f"cannot make the POGEMA venv: {err}", file=sys.stderr)
        raise SystemExit(NO_VENV) from None
    wall, load0 = time.perf_counter(), os.getloadavg()
    ok, md = True, []
    if args.diff:
        ok, md = run_diff(py, args.quick, args.steps, args.strict)
        print("diff: " + ("IDENTICAL" if ok else "MISMATCH (see above)"), file=sys.stderr)
    if args.speed:
        rows, raw = run_speed(py, args.seconds, args.repeats, 256)
        versions = call_worker(py, {"cmd": "task", "configs": []})[1]
        per_agent = {name: (r["rss_peak_kib"] - r["rss0_kib"]) / 1024 for name, r in raw[1024].items()}  # KiB/agent
        text = "\n".join([
            "# equilibria lifelong_mapf vs POGEMA", "",
            f"equilibria {equilibria_version()}; POGEMA {versions['pogema']} (gymnasium {versions['gymnasium']}, numpy "
            f"{versions['numpy']}, Python {versions['python']}) in its own venv. {os.cpu_count()}-core machine, load "
            f"average at the start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} (1/5/15 min), "
            f"at the end {' / '.join(f'{x:.2f}' for x in os.getloadavg())}; whole run "
            f"{(time.perf_counter() - wall) / 60:.1f} min.", "",
            "`python benchmarks/pogema.py --diff --speed`. Lifelong (on_target=restart), soft collisions, density 0.3, "
            "obs_radius 5, uniformly random actions (the same seeded draws on both sides at one environment; each side "
            "draws its own random maps, a new one per episode), "
            f"256-step episodes, whole episodes until {args.seconds:g} s of stepping, best of {args.repeats} "
            "interleaved runs, each a fresh process. Timed: the step calls only (ours: `sim.step`, which computes "
            "and returns every agent's [3, 11, 11] observation; POGEMA: `PogemaLifeLong.step`, the core environment "
            "without pogema_v0's wrappers, which also builds every observation). 'incl. resets' adds the episode "
            "resets (map, placement, components) to the time. RSS growth: peak RSS (VmHWM) after the first "
            "episode minus the RSS before the environment was built (after imports, a tiny warm-up episode and "
            "drawing the episode's actions; the peak mark is lowered to that RSS first with Linux's clear_refs, so "
            "the transient peak of imports does not hide the growth; getrusage's ru_maxrss would start from the "
            "parent process's peak)" + ("" if all(
                r["peak_reset"] for b in raw.values() for r in b.values()) else " (clear_refs refused on some runs: "
                "their growth is understated)") + ".", "",
            "| agents | map | side | agent-steps/s | vs POGEMA | incl. resets | episodes | RSS growth MiB | load |",
            "|---" * 9 + "|", *rows, "",
            "Memory per agent at 1,024 agents (128x128, one environment, peak RSS growth / 1,024): "
            + "; ".join(f"{name} {kib:.2f} KiB" for name, kib in per_agent.items()) + ".", "",
            *md])
        write_atomic(args.out, text + "\n")
        print(text)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
