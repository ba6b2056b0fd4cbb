"""Preference benchmark: queries and seconds to DG_beta <= 1e-6 for each algorithm, and Nash-MP's
measured KL rate against the published (1 + 2 beta)^(-N/2).

    python benchmarks/preference.py [--out benchmarks/results]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import (
    games,  # noqa: E402
    solvers,  # noqa: E402
)
from equilibria.solvers.preference import kl_to_equilibrium, regularized_equilibrium, regularized_gap  # noqa: E402

TARGET = 1e-6
EXACT = [("inpo", {}), ("online-ipo", {}), ("egpo", {}), ("nash-mp", {}), ("nash-md", {}),
         ("nash-md", {"schedule": "constant"}), ("sppo", {}), ("dno", {}), ("iterative-dpo", {})]


def exact_row(spec: str, seeds: list[int], max_iters: int, max_seconds: float = 20.0) -> list[dict]:
    rows = []
    for name, cfg in EXACT:
        queries, secs, finals = [], [], []
        for seed in seeds:
            g = games.load(spec, seed=seed)
            s = solvers.make(name, g, eta=1.0, **cfg)
            spent, hit = 0.0, None
            for _ in range(max_iters):
                t0 = time.perf_counter()
                s.step()
                spent += time.perf_counter() - t0
                gap = regularized_gap(g.P, s.reported_policy().probs, g.reference, g.beta)
                if gap <= TARGET and hit is None:
                    hit = (s.evaluations[0], spent)
                    break
                if spent > max_seconds:
                    break
            finals.append(gap)
            if hit:
                queries.append(hit[0])
                secs.append(hit[1])
        label = name + (" (constant eta)" if cfg else "")
        rows.append({"game": spec, "algorithm": label, "reached": f"{len(queries)}/{len(seeds)}",
                     "queries": float(np.median(queries)) if queries else None,
                     "seconds": float(np.median(secs)) if secs else None, "final_gap": float(np.median(finals))})
    return rows


def nash_mp_rate(beta: float, seeds: list[int], eta: float) -> dict:
    """Slope of log KL(pi* || pi_k) per win-rate query for Nash-MP with step eta, against the
    claimed -log(1 + 2 beta) / 2."""
    slopes = []
    for seed in seeds:
        g = games.load(f"preference(oracle=random, n=10, beta={beta})", seed=seed)
        star = regularized_equilibrium(g.P, g.reference, beta)
        s = solvers.make("nash-mp", g, eta=eta)
        ks, qs = [], []
        for _ in range(200):
            s.step()
            k = kl_to_equilibrium(s.current_policy().probs, star)
            if k < 1e-13:
                break
            ks.append(np.log(k))
            qs.append(s.evaluations[0])
        half = len(ks) // 3  # skip the transient
        slopes.append(np.polyfit(qs[half:], ks[half:], 1)[0] if len(ks) > 3 else float("nan"))
    return {"beta": beta, "eta": eta, "measured_slope": float(np.nanmedian(slopes)),
            "claimed_slope": -0.5 * np.log(1 + 2 * beta)}


def tiny_lm_rows() -> list[dict]:
    import torch

    from equilibria.llm_agents.policies import TinyCausalLM
    from equilibria.llm_agents.preference_trainer import NeuralPreferenceConfig, PreferenceTrainer, game_for_policy

    torch.set_num_threads(1)
    rows = []
    base = games.load("preference(oracle=tokens, vocab=4, length=3, beta=0.1, seed=0)")
    # the test suite's settings (tests/test_preference.py)
    settings = [("egpo", {"lr": 0.002, "samples": 64}), ("nash-mp", {"lr": 0.01, "samples": 16}),
                ("inpo", {"lr": 0.005, "samples": 64}), ("online-ipo", {"lr": 0.003, "samples": 64}),
                ("nash-md", {"lr": 0.001, "samples": 64})]
    for name, config in settings:
        policy = TinyCausalLM(1, 4, 3, seed=0)
        game = game_for_policy(base, policy)
        tr = PreferenceTrainer(policy, game, NeuralPreferenceConfig(algorithm=name, iterations=200, eval_every=5,
                                                                    **config))
        t0, best, hit = time.perf_counter(), 1.0, None
        start = tr.metrics()["dg_beta"]
        for it in range(1, 201):
            tr.step()
            if it % 5 == 0:
                m = tr.metrics()
                best = min(best, m["dg_beta"])
                if m["dg_beta"] <= 1e-3 and hit is None:
                    hit = (m["queries"], time.perf_counter() - t0)
        rows.append({"game": "tiny LM (vocab 4, length 3)", "algorithm": name, "start_gap": start, "best_gap": best,
                     "queries_to_1e-3": hit[0] if hit else None, "seconds_to_1e-3": hit[1] if hit else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"## Exact tabular: win-rate evaluations and seconds to DG_beta <= {TARGET:g} (beta 0.1, eta 1, median; "
             "each run capped at 20 s)",
             "", "| game | algorithm | reached | queries | seconds | median final gap |", "|---|---|---|---|---|---|"]
    for spec, seeds, iters in [("preference(oracle=random, n=10, beta=0.1)", list(range(10)), 2000),
                               ("preference(oracle=random, n=1000, beta=0.1)", [0, 1, 2], 500)]:
        print("..", spec, file=sys.stderr, flush=True)
        for r in exact_row(spec, seeds, iters):
            q = "—" if r["queries"] is None else f"{r['queries']:.0f}"
            s = "—" if r["seconds"] is None else f"{r['seconds']:.3g}"
            lines.append(f"| {r['game']} | {r['algorithm']} | {r['reached']} | {q} | {s} | {r['final_gap']:.2g} |")
    lines += ["", "## Nash-MP rate: slope of log KL(pi*_beta || pi) per win-rate query", "",
              "| beta | eta | measured | claimed -log(1+2 beta)/2 |", "|---|---|---|---|"]
    for beta in (0.1, 0.01):
        for eta in (1.0, 1.0 / beta):
            r = nash_mp_rate(beta, list(range(5)), eta)
            lines.append(f"| {beta} | {eta:g} | {r['measured_slope']:.4g} | {r['claimed_slope']:.4g} |")
    print(".. tiny LM", file=sys.stderr, flush=True)
    lines += ["", "## Tiny LM (sampled comparisons, 200 iterations): queries and seconds to DG_beta <= 1e-3", "",
              "| algorithm | start gap | best gap | queries to 1e-3 | seconds to 1e-3 |", "|---|---|---|---|---|"]
    for r in tiny_lm_rows():
        q = "—" if r["queries_to_1e-3"] is None else f"{r['queries_to_1e-3']:.0f}"
        s = "—" if r["seconds_to_1e-3"] is None else f"{r['seconds_to_1e-3']:.3g}"
        lines.append(f"| {r['algorithm']} | {r['start_gap']:.3g} | {r['best_gap']:.3g} | {q} | {s} |")
    report = "\n".join(lines)
    (args.out / "preference.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
