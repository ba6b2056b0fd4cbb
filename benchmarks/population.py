"""Tournament and population throughput, local vs Ray, on this machine, in one run.

1. Tournament matches per second: the tournament-kuhn lineup (CFR snapshots and bots) playing
   Kuhn poker, a trained-vs-random pursuit lineup (each match a 25-step Markov game with
   torch actors), and the tournament-werewolf lineup (seven drawn seats of scripted agents,
   every decision through the validating agent protocol), through `equilibria.scenarios.tournament.run_matches` with the local executor and with
   Ray tasks (chunks of `--chunk` matches), results written to SQLite either way. Ray start-up
   is reported separately and not counted.
2. PSRO with PPO best responses on pursuit: seconds per generation, local (the two best
   responses one after the other) vs Ray (in parallel).

    python benchmarks/population.py [--matches 20000] [--out benchmarks/results]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import (
    games,  # noqa: E402
    scenarios,  # noqa: E402
)
from equilibria.common.executor import LocalExecutor, RayExecutor  # noqa: E402
from equilibria.scenarios.kinds.tournament import build_lineup, prepare_tournament  # noqa: E402
from equilibria.scenarios.tournament import ResultsDB, draw_schedule, run_matches, schedule  # noqa: E402


def builtin_lineup(name: str):
    plan = prepare_tournament(scenarios.load(name))
    return plan.game, build_lineup(plan)


def pursuit_lineup():
    import numpy as np

    from equilibria.games.core import ScriptedPolicy
    from equilibria.marl.policy import MARLPolicy
    from equilibria.marl.population import actor_for, train_best_response

    game = games.load("pursuit")
    br = train_best_response(game, 0, [None], np.ones(1), 20_000, {}, 0)
    return game, [MARLPolicy({"pursuer": actor_for(game, 0, br["weights"], 64)}), ScriptedPolicy("random")]


def matches_per_second(game, lineup, num_matches: int, executor, chunk: int) -> float:
    if game.num_players == 2:
        per_pairing = max(1, num_matches // (len(lineup) * (len(lineup) - 1)))
        matches = schedule(len(lineup), 2, per_pairing, seed=0)
    else:
        matches = draw_schedule(len(lineup), game.num_players, num_matches, seed=0)
    with tempfile.TemporaryDirectory() as d:
        db = ResultsDB(Path(d) / "r.sqlite")
        names = [str(i) for i in range(len(lineup))]
        ids = db.register(names, [""] * len(lineup))
        t0 = time.perf_counter()
        n = run_matches(game, lineup, names, matches, db, ids, executor, chunk=chunk)
        dt = time.perf_counter() - t0
        db.close()
    return n / dt


def psro_generation_seconds(executor, steps: int) -> tuple[float, float]:
    from equilibria.marl.population import RLPSRO, RLPSROConfig

    psro = RLPSRO(games.load("pursuit"), RLPSROConfig(best_response_steps=steps, eval_episodes=200), seed=0)
    t0 = time.perf_counter()
    row = psro.step(executor)
    return time.perf_counter() - t0, row["nash_conv_estimate"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--matches", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--br-steps", type=int, default=40000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args()
    import os

    local = LocalExecutor()
    t0 = time.perf_counter()
    ray_ex = RayExecutor()
    ray_start = time.perf_counter() - t0
    cpus = int(ray_ex.ray.cluster_resources().get("CPU", 1))
    lines = [f"# Tournaments and PSRO: local vs Ray ({os.cpu_count()} cores, Ray with {cpus} CPUs; "
             f"Ray start-up {ray_start:.1f} s, not counted)", "",
             "| workload | local | Ray | Ray / local |", "|---|---|---|---|"]
    for label, (game, lineup), n in (
            ("Kuhn tournament-kuhn lineup, matches/s", builtin_lineup("tournament-kuhn"), a.matches),
            ("pursuit PPO vs random, matches/s", pursuit_lineup(), a.matches // 20),
            ("Werewolf tournament-werewolf lineup (7 drawn seats, agents), matches/s",
             builtin_lineup("tournament-werewolf"), a.matches // 5)):
        loc = matches_per_second(game, lineup, n, local, a.chunk)
        # warm the workers (imports, first task) so start-up is not counted as throughput
        matches_per_second(game, lineup, min(n, 4 * a.chunk), ray_ex, a.chunk)
        ray = matches_per_second(game, lineup, n, ray_ex, a.chunk)
        lines.append(f"| {label} | {loc:,.0f} | {ray:,.0f} | {ray / loc:.2f}x |")
        print(lines[-1], flush=True)
    loc_s, loc_gain = psro_generation_seconds(local, a.br_steps)
    ray_s, ray_gain = psro_generation_seconds(ray_ex, a.br_steps)
    assert abs(loc_gain - ray_gain) < 1e-9, "Ray and local PSRO disagree"
    lines.append(f"| PSRO-RL pursuit, one generation ({a.br_steps:,} PPO steps per best response), s | "
                 f"{loc_s:.1f} | {ray_s:.1f} | {loc_s / ray_s:.2f}x speed-up |")
    print(lines[-1], flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "population.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
