"""Lifelong MAPF decision speed: the planner alone and the Follower (planner + FollowerLite network)
in agent-steps per second, the environment step included, and the memory each agent costs.

    python benchmarks/follower.py [--run RUN_DIR] [--seconds 10] [--out benchmarks/results]

RUN_DIR is a mapf-follower train run (default: the shipped FollowerLite weights). The authors'
C++ FollowerLite (ONNX Runtime C++ API, built with cppimport) is not run: ONNX Runtime's wheel
ships no C++ headers, so it cannot be built here. Their network itself is timed in ONNX Runtime,
and their weights scored in our game, by benchmarks/follower_authors.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_rss import maxrss_kib, reset_peak_rss  # noqa: E402

from equilibria import games  # noqa: E402
from equilibria.scenarios.rundir import atomic_write_bytes  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "scenarios" / "builtin" / "follower-lite"
CASES = [(64, 32), (256, 64), (1024, 128)]  # agents, map side (random, density 0.3)


def _game(agents: int, side: int):
    return games.load(f"lifelong_mapf(num_agents={agents}, size={side}, density=0.3, obs_radius=5, max_steps=256)")


def measure(kind: str, agents: int, side: int, envs: int, seconds: float, run: str) -> dict:
    """One measurement in this process: agent-steps per second over whole 256-step episodes (or
    as many steps as fit in `seconds`), and the peak RSS."""
    import torch

    from equilibria.marl.mapf.controllers import PlannerOnly
    from equilibria.scenarios.learning import load_trained

    torch.set_num_threads(1)
    game = _game(agents, side)
    if kind == "planner":
        make = lambda sim: PlannerOnly(game).chooser(sim, 0)  # noqa: E731
    else:
        follower = load_trained(Path(run))[2]
        make = follower._chooser(0, True)
    # compile and warm up on a small copy, then time a fresh simulator
    warm = game.simulator(1, seed=1)
    choose = make(warm)
    for _ in range(3):
        warm.step({"agents": choose()}, autoreset=False)
    reset_peak_rss()
    base = maxrss_kib()
    sim = game.simulator(envs, seed=0)
    t_setup = time.perf_counter()
    choose = make(sim)
    setup = time.perf_counter() - t_setup
    steps, t0 = 0, time.perf_counter()
    while steps < game.max_steps and (steps < 8 or time.perf_counter() - t0 < seconds):
        sim.step({"agents": choose()}, autoreset=False)
        steps += 1
    elapsed = time.perf_counter() - t0
    peak = maxrss_kib()
    return {"kind": kind, "agents": agents, "side": side, "envs": envs, "steps": steps,
            "agent_steps_per_second": steps * envs * agents / elapsed, "setup_seconds": setup,
            "kib_per_agent": (peak - base) / (envs * agents)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=str(SHIPPED), help="a mapf-follower train run directory")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a single measurement (JSON) in a fresh process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(**json.loads(args.one), seconds=args.seconds, run=args.run)))
        return
    rows = []
    for agents, side in CASES:
        for kind in ("planner", "follower"):
            for envs in ((1, 8) if agents <= 256 else (1,)):
                spec = json.dumps({"kind": kind, "agents": agents, "side": side, "envs": envs})
                out = subprocess.run([sys.executable, __file__, "--one", spec, "--run", args.run, "--seconds",
                                      str(args.seconds)], capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{kind:8s} {agents:5d} agents {side}x{side} envs={envs}: "
                      f"{row['agent_steps_per_second']:,.0f} agent-steps/s, {row['kib_per_agent']:.0f} KiB/agent",
                      flush=True)
    load = os.getloadavg()
    lines = ["# Lifelong MAPF decision speed (planner, Follower)", "",
             f"`python benchmarks/follower.py` (weights: {Path(args.run).name}); load average "
             f"{load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} cores; torch on 1 thread; each row a fresh process.",
             "Random maps, density 0.3, obs_radius 5, lifelong; the environment step is included. "
             "KiB per agent: peak RSS growth over the process before the game was built, per agent.", "",
             "| decision | agents | map | environments | agent-steps/s | KiB per agent |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['agents']} | {r['side']}x{r['side']} | {r['envs']} | "
                     f"{r['agent_steps_per_second']:,.0f} | {r['kib_per_agent']:.0f} |")
    lines += ["", "The authors' C++ FollowerLite could not be built here (ONNX Runtime's C++ headers are not on "
              "PyPI), so there is no anchor row; `benchmarks/follower_authors.py` times their network in ONNX "
              "Runtime and scores their weights in this game."]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "follower.md", ("\n".join(lines) + "\n").encode())
    print(f"wrote {args.out / 'follower.md'} ({np.mean([r['agent_steps_per_second'] for r in rows]):,.0f} mean)")


if __name__ == "__main__":
    main()
