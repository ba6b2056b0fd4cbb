"""Debate reward models (Sukovic & Radanovic, ICLR 2024): the figures of the closing note.

    python benchmarks/debate.py small [--seeds 3]          # exploitability: CFR, CFR+, uniform, PPO debaters
    python benchmarks/debate.py sepsis [--policy plan|dqn|dqn_offline] [--seeds 3]

`small`: a debate small enough to solve exactly (`debate(num_features=5, num_decisions=3,
num_cases=6, num_arguments=2 and 3)`, a random linear judge, random first mover). CFR and CFR+
on the compiled tree; self-play PPO debaters (marl.debate.debaters, the paper's settings: 256
debates per update, 2 x 512, lr 5e-4, gamma 0.9, lambda 0.7, clip 0.1) against the current self and
against a frozen copy, trained on exactly the game's cases; each policy's exact exploitability
(the stochastic policy, and its most probable moves).

`sepsis`: the debate-sepsis built-in's pipeline over seeds (marl.debate.pipeline), stages cached in
benchmarks/results/debate_runs_<policy>/ (resumable), the table and the trade-off plot written to
benchmarks/results/debate_sepsis_<policy>.{md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path("benchmarks/results")


def small(seeds: int, updates: int) -> None:
    import torch

    from equilibria import games, solvers
    from equilibria.games.core import UniformRandomPolicy
    from equilibria.marl.debate.debaters import DebatersConfig, batched_of, exploitability, train_debaters
    from equilibria.marl.runtime import seed_interval
    from equilibria.scenarios.rundir import atomic_write_bytes
    from equilibria.solvers.exploitability import exploitability as exact

    torch.set_num_threads(1)
    lines = ["# A small debate solved exactly, and self-play PPO debaters on it", "",
             f"`debate(num_features=5, num_decisions=3, num_cases=6, num_arguments=A)`; PPO: {updates} updates of "
             f"256 debates, the paper's settings, {seeds} seeds (mean ± 95% t-interval; greedy: the most probable "
             "move). Exploitability is exact (the mean a best-responding opponent wins).", "",
             "| method | A = 2 | A = 3 |", "|---|---|---|"]
    cells: dict[str, list[str]] = {}
    for args in (2, 3):
        game = games.load(f"debate(num_features=5, num_decisions=3, num_cases=6, num_arguments={args})")
        uniform = exact(game, UniformRandomPolicy())
        cells.setdefault("uniform random", []).append(f"{uniform:.4f}")
        for name, iters in (("cfr", 1000), ("cfr+", 500)):
            t0 = time.perf_counter()
            value = exact(game, solvers.make(name, game).run(iters).average_policy())
            cells.setdefault(f"{name.upper()}, {iters} iterations", []).append(
                f"{value:.1e} ({time.perf_counter() - t0:.2f} s)")
        for opponent in ("current", "frozen"):
            stoch, greedy, secs = [], [], []
            for seed in range(seeds):
                d = train_debaters(batched_of(game), DebatersConfig(updates=updates, opponent=opponent), seed)
                stoch.append(exploitability(d, game))
                greedy.append(exploitability(d, game, deterministic=True))
                secs.append(d.stats["train_seconds"])
            m, h = seed_interval(stoch)
            g, gh = seed_interval(greedy)
            cells.setdefault(f"PPO self-play ({opponent} opponent)", []).append(
                f"{m:.4f} ± {h:.4f}; greedy {g:.4f} ± {gh:.4f} ({np.mean(secs):.0f} s)")
            print(args, opponent, stoch, greedy, flush=True)
    lines += [f"| {k} | " + " | ".join(v) + " |" for k, v in cells.items()]
    atomic_write_bytes(OUT / "debate_small.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


def sepsis(policy: str, seeds: int, overrides: dict) -> None:
    from equilibria.marl.debate.pipeline import run_seed, summarize_seeds
    from equilibria.scenarios import load
    from equilibria.scenarios.kinds.debate import DebateScenarioConfig
    from equilibria.scenarios.rundir import atomic_write_bytes

    base = load("debate-sepsis").config.model_dump()
    cfg = DebateScenarioConfig(**{**base, **overrides, "policy": policy, "seeds": seeds})
    folder = OUT / f"debate_runs_{policy}"
    results = [run_seed(cfg, s, folder / str(s)) for s in range(seeds)]
    summary = summarize_seeds(results)
    rows = ["| lambda | survival | justifiability |", "|---|---|---|"]
    for lam, v in sorted(summary["lambdas"].items()):
        rows.append(f"| {lam:g} | {v['survival'][0]:.4f} ± {v['survival'][1]:.4f} | "
                    f"{v['justifiability'][0]:.3f} ± {v['justifiability'][1]:.3f} |")
    extra = {k: v for k, v in summary.items() if k != "lambdas"}
    text = "\n".join([f"# debate-sepsis, policies `{policy}`, {seeds} seeds", "", *rows, "",
                      "```", json.dumps(extra, indent=1), "```", ""])
    atomic_write_bytes(OUT / f"debate_sepsis_{policy}.md", text.encode())
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("small", "sepsis"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--updates", type=int, default=100, help="small: PPO updates per run")
    ap.add_argument("--policy", choices=("plan", "dqn", "dqn_offline"), default="plan")
    ap.add_argument("--set", default="{}", help="sepsis: JSON overrides of the debate-sepsis config")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "small":
        small(args.seeds, args.updates)
    else:
        sepsis(args.policy, args.seeds, json.loads(args.set))


if __name__ == "__main__":
    main()
