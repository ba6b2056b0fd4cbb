"""Bayesian-network policies on coordination games: how often the optimal joint action is
reached over 20 seeds.

Tabular (solvers/bayesian_pg.py, exact gradients): the complete DAG (chain) against independent
agents, at three scales of the random initial logits. Neural (`--neural`, marl/bnac.py): the
Bayesian-network actor-critic (context DAG, annealed to no edges, scored without edges) against
MAPPO, both with the same PPO settings, on the games as one-step Markov games (games.one_shot).

    python benchmarks/bayesian_pg.py [--seeds 20] [--neural] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import games
from equilibria.scenarios.rundir import atomic_write_bytes  # noqa: E402
from equilibria.solvers import bayesian_pg as bn  # noqa: E402

GAMES = {"climbing (Claus & Boutilier)": bn.common_payoff(games.load("climbing_game")), "penalty, k = -100": bn.common_payoff(games.load("penalty_game(k=-100)")),
         "three-agent climb": bn.common_payoff(games.load("three_agent_climb"))}


NEURAL = {"climbing (Claus & Boutilier)": "climbing_game", "penalty, k = -100": "penalty_game(k=-100)",
          "three-agent climb": "three_agent_climb"}
NEURAL_SETTINGS = {"entropy_coef": 0.3}  # both learners; at MAPPO's 0.01 neither leaves the safe actions


def neural_run(learner: str, game_spec: str, seed: int, steps: int) -> tuple[float, float]:
    """The final greedy return of one run and its return with every edge removed (bnac_fixed:
    bnac without annealing)."""
    import torch

    from equilibria import marl

    torch.set_num_threads(1)
    game = games.load(f'one_shot(game="{game_spec}")')
    extra = {"bnac": {"total_steps": steps}, "bnac_fixed": {"anneal": False}}.get(learner, {})
    lrn = marl.make(learner.removesuffix("_fixed"), game, seed=seed, **NEURAL_SETTINGS, **extra)
    while lrn.env_steps < steps:
        lrn.train_step()
    ret = float(lrn.evaluate(16)[0])
    return ret, (ret if learner == "mappo" else float(lrn.extra_evaluation(16)["eval_return_no_edges"]))


def neural_table(seeds: int, steps: int, workers: int) -> list[str]:
    lines = ["", "## Neural: the Bayesian-network actor-critic against MAPPO", "",
             f"`python benchmarks/bayesian_pg.py --neural`: {seeds} seeds, {steps} one-step episodes, MAPPO's "
             f"settings with {NEURAL_SETTINGS}. bnac anneals its context DAG to no edges from 40% to 70% of the "
             "budget and is scored with every edge removed (decentralised). A seed succeeds when the greedy "
             "joint action is optimal. The last columns train bnac without annealing and score it with its "
             "edges, then without them.", "",
             "| game | MAPPO: optimal | MAPPO: return | bnac: optimal (no edges) | bnac: return (no edges) | "
             "no annealing: return with edges | no annealing: edges removed |", "|---|---|---|---|---|---|---|"]
    learners = ("mappo", "bnac", "bnac_fixed")
    jobs = [(lrn, spec, s) for spec in NEURAL.values() for lrn in learners for s in range(seeds)]
    with ProcessPoolExecutor(workers) as pool:
        finals = dict(zip(jobs, pool.map(neural_run, *zip(*jobs), [steps] * len(jobs))))
    for name, spec in NEURAL.items():
        best = bn.common_payoff(games.load(spec)).max()
        row = [name]
        for lrn in ("mappo", "bnac"):
            r = np.array([finals[(lrn, spec, s)][1] for s in range(seeds)])
            row += [f"{np.mean(r > best - 1e-6):.0%}", f"{r.mean():.2f}"]
        fixed = np.array([finals[("bnac_fixed", spec, s)] for s in range(seeds)])
        row += [f"{fixed[:, 0].mean():.2f}", f"{fixed[:, 1].mean():.2f}"]
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--neural", action="store_true", help="also the neural learners (about 20 minutes on 2 cores)")
    ap.add_argument("--neural-steps", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    lines = ["# Bayesian-network policies on coordination games", "", "## Tabular softmax policy gradient, exact gradients", "",
             f"`python benchmarks/bayesian_pg.py`: {args.seeds} seeds, {args.iterations} gradient steps of size "
             f"{args.lr}, logits drawn from N(0, scale^2). A seed succeeds when the final joint policy puts more "
             "than 0.9 on the optimal joint action(s).", "",
             "| game | init scale | independent: optimal | independent: return | chain DAG: optimal | chain DAG: return |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, reward in GAMES.items():
        for scale in (0.1, 0.3, 1.0):
            row = [name, f"{scale:g}"]
            for parents in (bn.independent(reward.ndim), bn.chain(reward.ndim)):
                res = [bn.run(reward, parents, s, args.iterations, args.lr, scale) for s in range(args.seeds)]
                row += [f"{np.mean([r['p_optimal'] > 0.9 for r in res]):.0%}",
                        f"{np.mean([r['return'] for r in res]):.2f}"]
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
    if args.neural:
        lines += neural_table(args.seeds, args.neural_steps, args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "bayesian_pg.md", ("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
