"""MARL benchmark: our MAPPO vs RLlib PPO on cooperative navigation (same environment, same batch
sizes, same PPO constants), end-to-end throughput and return at equal wall time, raw
environment speed against PettingZoo's mpe2 simple_spread, and how simulator speed scales
with the number of agents (grid_goals, one environment, the active mask in use).

    python benchmarks/marl.py [--seconds 120] [--out benchmarks/results]

The comparison with BenchMARL (TorchRL) and VMAS needs its own venv: benchmarks/benchmarl.py.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import games  # noqa: E402


def env_speed(seconds: float = 5.0) -> list[tuple[str, float]]:
    rows = []
    game = games.load("cooperative_navigation")
    rng = np.random.default_rng(0)
    for e in (1, 128):
        sim = game.simulator(e, seed=0)
        acts = rng.integers(0, 5, size=(1000, e, 3))
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            sim.step({"agents": acts[n % 1000]})
            n += 1
        rows.append((f"equilibria cooperative_navigation, batched num_envs={e}", n * e / (time.perf_counter() - t0)))
    try:
        from mpe2 import simple_spread_v3

        env = simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=False)
        env.reset(seed=0)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            if not env.agents:
                env.reset()
            env.step({a: int(rng.integers(5)) for a in env.agents})
            n += 1
        rows.append(("PettingZoo mpe2 simple_spread_v3 (parallel env)", n / (time.perf_counter() - t0)))
    except ImportError:
        rows.append(("PettingZoo mpe2 simple_spread_v3 (not installed)", float("nan")))
    return rows


def agent_scaling(seconds: float = 3.0, sizes: tuple[int, ...] = (8, 64, 256, 1024)) -> list[tuple[int, float]]:
    """Agent-steps per second of one grid_goals environment with n agent slots, half to all of
    them present each episode and leaving on arrival (so the active mask is in use); random
    legal actions drawn from the mask."""
    rows = []
    for n in sizes:
        game = games.load(f"grid_goals(num_agents={n}, size=64, max_steps=128, population=[{n // 2}, {n}])")
        sim = game.simulator(1, seed=0)
        rng = np.random.default_rng(0)
        t0, steps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            mask = sim.action_mask()["agents"]
            sim.step({"agents": np.argmax(rng.random(mask.shape) * mask, axis=-1)})
            steps += 1
        rows.append((n, n * steps / (time.perf_counter() - t0)))
    return rows


def ours(seconds: float) -> dict:
    import torch

    from equilibria import marl

    torch.set_num_threads(1)  # the train kind's default: faster than 2 for these networks (RLlib gets num_cpus=2)
    t_start = time.perf_counter()
    algo = marl.make("mappo", games.load("cooperative_navigation"), seed=0, num_envs=32)
    setup = time.perf_counter() - t_start
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        algo.train_step()
    train = time.perf_counter() - t0
    mean, ci = algo.evaluate(64)
    return {"name": "equilibria MAPPO", "setup_s": setup, "train_s": train, "env_steps": algo.env_steps,
            "steps_per_s": algo.env_steps / train, "eval_return": mean, "ci95": ci}


def rllib(seconds: float) -> dict:
    import ray

    from equilibria import marl
    from equilibria.marl.rllib import rllib_evaluate, rllib_ppo_config

    t_start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    game = games.load("cooperative_navigation")
    config = marl.build_config("mappo", {"num_envs": 32})  # same batch and constants
    algo = rllib_ppo_config("cooperative_navigation", [g.name for g in game.groups], config, 0).build_algo()
    setup = time.perf_counter() - t_start
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        steps = int(algo.train().get("num_env_steps_sampled_lifetime", steps))
    train = time.perf_counter() - t0
    mean, ci = rllib_evaluate(algo, game, 64)
    algo.stop()
    ray.shutdown()
    return {"name": "RLlib PPO (new API stack)", "setup_s": setup, "train_s": train, "env_steps": steps,
            "steps_per_s": steps / train, "eval_return": mean, "ci95": ci}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training wall time for each learner")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["## Raw environment speed (random actions, environment steps per second)", "",
             "| environment | env steps/s |", "|---|---|"]
    for name, v in env_speed():
        lines.append(f"| {name} | {v:,.0f} |")
    scaling = agent_scaling()
    base = dict(scaling)[64] if 64 in dict(scaling) else scaling[0][1]
    lines += ["", "## Simulator scaling in agents (grid_goals, one environment, active mask in use)", "",
              "| agents | agent-steps/s | vs 64 agents |", "|---|---|---|"]
    for n, v in scaling:
        lines.append(f"| {n:,} | {v:,.0f} | {v / base:.2f}x |")
    results = [ours(args.seconds), rllib(args.seconds)]
    lines += ["", f"## Training, {args.seconds:.0f} s wall time each on 2 cores (batch 800 = 32 envs x 25 steps, "
              "10 epochs, same PPO constants; deterministic eval over 64 episodes)", "",
              "| learner | start-up s | env steps | env steps/s | eval return per agent (95% CI) |",
              "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['setup_s']:.1f} | {r['env_steps']:,} | {r['steps_per_s']:,.0f} | "
                     f"{r['eval_return']:.2f} ± {r['ci95']:.2f} |")
    lines.append("")
    lines.append(f"Throughput ratio (ours / RLlib): {results[0]['steps_per_s'] / results[1]['steps_per_s']:.0f}x")
    report = "\n".join(lines)
    (args.out / "marl.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
