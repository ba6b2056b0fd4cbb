"""Ride dispatch (games.dispatch, games.dispatch_platform): decision steps per second against the
fleet size, and where a step's time goes.

    python benchmarks/dispatch_scaling.py [--sizes 100 1000 5000] [--seeds 3] [--out benchmarks/results]
    python benchmarks/dispatch_scaling.py --before results_of_an_older_commit.json   # adds a before/after table

For every fleet size N: the default game `ride_dispatch(num_vehicles=N)` (20 x 20 grid, demand 0.15
orders per minute per vehicle, so the order stream grows with the fleet; 30 one-minute steps), one
environment, one episode per seed, rolled out by `dispatch_platform.run_episodes` with three scorers:
- `nearest`, `greedy`: the platform's baselines (score = -pickup time / the predicted reward);
- `ospo`: a learned scorer, `equilibria.marl.make("ospo", game, seed=0).scorer()`, untrained (an
  untrained network costs what a trained one does); its scoring time includes building the
  observations (`sim.observe()`) and the network's forward pass, torch on one thread.
Milliseconds per step are split into candidates (insertion: `dispatch.evaluate_pairs`, every
pair's cheapest insertion; scan: the rest, finding the K nearest open orders of every free vehicle
within the radius and the bookkeeping around it), scoring, assignment (the one-to-one matching),
simulate (moving the fleet, serving stops), other (the rest of sim.step: checking the actions,
building the next observations) and total, medians over seeds. The clock (`--clock`) is the
process's CPU time by default: the machine is shared, and under contention wall time measures the
neighbours (the part timers of the simulator and the platform are pointed at it); the total on the
other clock is given beside, and steps/s is 1000 / total.
Growth: the exponent b of each part's cost, t ~ N^b, between consecutive sizes: log(t2 / t1) / log(N2 / N1).

Assignment methods: the same rollouts with `method="dense"` (scipy linear_sum_assignment on the
vehicles x (orders + vehicles) matrix) and `method="sparse"` (min_weight_full_bipartite_matching on
the candidate graph), at every size where the largest dense matrix seen in the `auto` runs fits in
`--dense-mb`; `auto` switches at dispatch_platform.DENSE_LIMIT entries. And the break-even point:
both methods on the same matching problems (every other step of a nearest and a greedy rollout at
fleets of 100 to 1,000, best of 3 timings each), a power law fitted to the time ratio against the
matrix's entries. The load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCORERS = ("nearest", "greedy", "ospo")
PARTS = ("candidates", "scoring", "assignment", "simulate", "other", "total")
SPLIT = ("scan", "insertion")  # candidates = scan (the K nearest orders, the radius) + insertion (evaluate_pairs)
CROSSOVER_SIZES = (100, 150, 200, 300, 500, 1000)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import scipy
    import torch

    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} cores (load average {load[0]:.1f} / {load[1]:.1f} at the start); Python "
            f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, torch {torch.__version__} "
            f"on 1 thread; equilibria {commit}")


def make_scorer(name: str, game: Any) -> Any:
    if name != "ospo":
        return name
    from equilibria import marl

    return marl.make("ospo", game, seed=0).scorer()


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def measure(game: Any, scorer: Any, seed: int, method: str, clock: str = "cpu") -> dict[str, Any]:
    """One episode of one environment: ms per step by part on `clock` (the simulator's and the
    platform's timers read it), the total on both clocks, and the size of the matching problems
    (pairs, matched rows and columns, largest dense matrix) seen on the way."""
    import types

    from equilibria.games import dispatch, dispatch_platform

    fn = dispatch_platform.BASELINES[scorer] if isinstance(scorer, str) else scorer
    sizes: dict[str, list[float]] = {"pairs": [], "rows": [], "cols": [], "dense_entries": []}
    spent = {"cpu": 0.0, "wall": 0.0}  # seconds of this wrapper's bookkeeping, taken out of scoring and total

    def score(sim: Any) -> np.ndarray:
        scores = fn(sim)
        t0 = {k: c() for k, c in CLOCKS.items()}
        c = sim.candidates()
        order = np.where(c["active"][..., None], c["order"], -1)[0]
        v, k = np.nonzero(order >= 0)
        with np.errstate(invalid="ignore"):
            gain = scores[0, v, k + 1] - scores[0, v, 0]
        keep = np.isfinite(gain) & (gain > 0)
        nr, nc = len(np.unique(v[keep])), len(np.unique(order[v[keep], k[keep]]))
        for key, val in (("pairs", len(v)), ("rows", nr), ("cols", nc), ("dense_entries", nr * (nc + nr))):
            sizes[key].append(val)
        for key, c in CLOCKS.items():
            spent[key] += c() - t0[key]
        return scores

    evaluate, inserting = dispatch.evaluate_pairs, [0.0]

    def timed_evaluate(*a: Any) -> dict[str, np.ndarray]:
        t0 = CLOCKS[clock]()
        out = evaluate(*a)
        inserting[0] += CLOCKS[clock]() - t0
        return out

    saved = dispatch.time, dispatch_platform.time
    dispatch.time = dispatch_platform.time = types.SimpleNamespace(perf_counter=CLOCKS[clock])
    dispatch.evaluate_pairs = timed_evaluate
    try:
        t0 = {k: c() for k, c in CLOCKS.items()}
        out = dispatch_platform.run_episodes(game, score, episodes=1, seed=seed, method=method)
        total = {k: c() - t0[k] - spent[k] for k, c in CLOCKS.items()}
    finally:
        dispatch.time, dispatch_platform.time = saved
        dispatch.evaluate_pairs = evaluate
    steps = game.max_steps
    ms = dict(out["ms_per_step"])
    ms["scoring"] -= 1e3 * spent[clock] / steps
    ms["total"] = 1e3 * total[clock] / steps
    ms["other"] = ms["total"] - sum(ms[p] for p in ("candidates", "scoring", "assignment", "simulate"))
    ms["insertion"] = 1e3 * inserting[0] / steps
    ms["scan"] = ms["candidates"] - ms["insertion"]
    return {"ms": ms, "cpu_ms": 1e3 * total["cpu"] / steps, "wall_ms": 1e3 * total["wall"] / steps,
            "served": float(out["served"][0]), "reward": float(out["reward"][0]),
            **{f"mean_{k}": float(np.mean(v)) for k, v in sizes.items()},
            "max_dense_entries": int(max(sizes["dense_entries"]))}


def crossover(sizes: tuple[int, ...], steps: int = 12, clock: str = "cpu") -> dict[str, Any]:
    """Dense and sparse assignment timed on the same problems (best of 3): every other step of a
    nearest and a greedy rollout (seed 0) per fleet size; a fit of log(dense / sparse) against
    log(entries) gives the break-even size of the dense matrix."""
    from equilibria import games
    from equilibria.games.dispatch_platform import BASELINES, Platform, assign

    problems = []
    for n in sizes:
        game = games.load({"name": "ride_dispatch", "num_vehicles": n, "max_steps": steps})
        for name in ("nearest", "greedy"):
            sim, platform, fn = game.simulator(1, seed=0), Platform(), BASELINES[name]
            for t in range(steps):
                scores = fn(sim)
                c = sim.candidates()
                order = np.where(c["active"][..., None], c["order"], -1)[0]
                v, k = np.nonzero(order >= 0)
                keep = scores[0, v, k + 1] - scores[0, v, 0] > 0
                nr, nc = len(np.unique(v[keep])), len(np.unique(order[v[keep], k[keep]]))
                if t % 2 == 0 and nr:
                    ms = {}
                    for method in ("dense", "sparse"):
                        best = np.inf
                        for _ in range(3):
                            t0 = CLOCKS[clock]()
                            assign(scores[0], order, method)
                            best = min(best, CLOCKS[clock]() - t0)
                        ms[method] = 1e3 * best
                    problems.append({"N": n, "scorer": name, "step": t, "rows": nr, "cols": nc,
                                     "entries": nr * (nc + nr), **ms})
                sim.step(platform.actions(sim, scores), autoreset=False)
    x = np.log([p["entries"] for p in problems])
    y = np.log([p["dense"] / p["sparse"] for p in problems])
    slope, icept = np.polyfit(x, y, 1)
    return {"problems": problems, "fit": {"slope": float(slope), "intercept": float(icept),
                                          "break_even_entries": float(np.exp(-icept / slope))}}


def median_row(runs: list[dict]) -> dict[str, Any]:
    row = {"ms": {p: float(np.median([r["ms"][p] for r in runs])) for p in PARTS + SPLIT}}
    for key in ("cpu_ms", "wall_ms", "served", "reward", "mean_pairs", "mean_rows", "mean_cols"):
        row[key] = float(np.median([r[key] for r in runs]))
    row["max_dense_entries"] = int(max(r["max_dense_entries"] for r in runs))
    row["steps_per_s"] = 1e3 / row["ms"]["total"]
    return row


def growth(rows: dict[int, dict], sizes: list[int], part: str = "total") -> dict[str, float]:
    return {f"{a}->{b}": float(np.log(rows[b]["ms"][part] / rows[a]["ms"][part]) / np.log(b / a))
            for a, b in zip(sizes, sizes[1:]) if a in rows and b in rows}


def report(res: dict[str, Any], before: dict[str, Any] | None) -> str:
    sizes, clock = res["sizes"], res["clock"]
    other = "wall" if clock == "cpu" else "cpu"
    lines = ["# Ride dispatch: decision steps per second against the fleet size", "",
             f"Machine: {res['machine']}; load average at the end {res['load_end']:.1f}.", "",
             f"`ride_dispatch(num_vehicles=N)` (defaults), one environment, {res['seeds']} seeds (one 30-step episode "
             f"each), medians; `method=\"auto\"`. ms per step on the {clock} clock: candidates (insertion: every pair's "
             "cheapest insertion; scan: the rest, mostly finding the K nearest open orders within the radius), scoring (ospo: observations + forward pass), assignment, "
             "simulate (driving, serving), other (the rest of the step, mostly building the next observations), "
             f"total; steps/s = 1000 / total; {other} ms: the total on the {other} clock. pairs: candidate pairs per "
             "step; rows x cols: vehicles and orders in the matching (pairs worth more than idling), means per step.", "",
             f"| scorer | N | steps/s | candidates (scan + insertion) | scoring | assignment | simulate | other | total | "
             f"{other} ms | pairs | rows x cols | served |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in SCORERS:
        for n in sizes:
            r = res["auto"].get(s, {}).get(str(n))
            if r is None:
                continue
            m = r["ms"]
            lines.append(f"| {s} | {n:,} | {r['steps_per_s']:,.1f} | {m['candidates']:.2f} ({m['scan']:.2f} + "
                         f"{m['insertion']:.2f}) | " + " | ".join(f"{m[p]:.2f}" for p in PARTS[1:])
                         + f" | {r[other + '_ms']:.2f} | {r['mean_pairs']:,.0f} | {r['mean_rows']:,.0f} x "
                         f"{r['mean_cols']:,.0f} | {r['served']:,.0f} |")
    lines += ["", "Growth exponent b of the cost per step, t ~ N^b between consecutive sizes "
                  "(1: linear in the fleet; the order stream grows with it):", "",
              "| scorer | part | " + " | ".join(f"{a:,} -> {b:,}" for a, b in zip(sizes, sizes[1:])) + " |",
              "|---|---|" + "---|" * (len(sizes) - 1)]
    for s in SCORERS:
        for part in PARTS[:1] + SPLIT + PARTS[1:]:
            g = res["growth"].get(s, {}).get(part, {})
            if g:
                lines.append(f"| {s} | {part} | " + " | ".join(f"{g.get(f'{a}->{b}', float('nan')):.2f}"
                                                               for a, b in zip(sizes, sizes[1:])) + " |")
    lines += ["", f"Assignment methods (dense: linear_sum_assignment on the rows x (cols + rows) matrix; sparse: "
                  f"min_weight_full_bipartite_matching on the candidate graph), assignment ms per step, medians; auto "
                  f"goes sparse above {res['dense_limit']:,} entries. Largest dense matrix: the most entries of a "
                  f"step's matrix (8 bytes each); dense is skipped above {res['dense_mb']:,.0f} MB.", "",
              "| scorer | N | largest dense matrix | dense ms | sparse ms | dense / sparse | total ms dense / sparse |",
              "|---|---|---|---|---|---|---|"]
    for s in SCORERS:
        for n in sizes:
            r = res["methods"].get(s, {}).get(str(n))
            if r is None:
                continue
            big = res["auto"][s][str(n)]["max_dense_entries"]
            d, sp = r.get("dense"), r["sparse"]
            if d is None:
                lines.append(f"| {s} | {n:,} | {big:,} ({big * 8 / 2**20:,.0f} MB) | skipped | "
                             f"{sp['ms']['assignment']:.2f} | — | — / {sp['ms']['total']:.1f} |")
            else:
                lines.append(f"| {s} | {n:,} | {big:,} ({big * 8 / 2**20:,.0f} MB) | {d['ms']['assignment']:.2f} | "
                             f"{sp['ms']['assignment']:.2f} | {d['ms']['assignment'] / sp['ms']['assignment']:.2f} | "
                             f"{d['ms']['total']:.1f} / {sp['ms']['total']:.1f} |")
    cross = res.get("crossover")
    if cross:
        fit = cross["fit"]
        lines += ["", f"Break-even: dense and sparse on the same problems (best of 3), by fleet size; a fit "
                      f"dense / sparse = (entries / {fit['break_even_entries']:,.0f}) ^ {fit['slope']:.2f} over "
                      f"{len(cross['problems'])} problems puts the break-even at **{fit['break_even_entries']:,.0f} "
                      f"entries** (DENSE_LIMIT is {res['dense_limit']:,}).", "",
                  "| N | problems | entries (median) | dense ms | sparse ms | dense / sparse |", "|---|---|---|---|---|---|"]
        for n in sorted({p["N"] for p in cross["problems"]}):
            ps = [p for p in cross["problems"] if p["N"] == n]
            d, sp = np.median([p["dense"] for p in ps]), np.median([p["sparse"] for p in ps])
            lines.append(f"| {n:,} | {len(ps)} | {np.median([p['entries'] for p in ps]):,.0f} | {d:.2f} | {sp:.2f} | "
                         f"{np.median([p['dense'] / p['sparse'] for p in ps]):.2f} |")
    if before is not None:
        lines += ["", f"Before / after: ms per step (`auto`, {before.get('clock') or 'wall'} clock) of "
                      f"{before.get('label') or 'the --before run'} ({before['machine']}) and of this run.", "",
                  "| scorer | N | scan before | scan after | candidates before | candidates after | total before | "
                  "total after | steps/s before | steps/s after | speed-up |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in SCORERS:
            for n in sizes:
                a, b = before["auto"].get(s, {}).get(str(n)), res["auto"].get(s, {}).get(str(n))
                if a is None or b is None:
                    continue
                scan = a["ms"].get("scan", float("nan"))
                lines.append(f"| {s} | {n:,} | {scan:.2f} | {b['ms']['scan']:.2f} | "
                             f"{a['ms']['candidates']:.2f} | {b['ms']['candidates']:.2f} | "
                             f"{a['ms']['total']:.2f} | {b['ms']['total']:.2f} | {1e3 / a['ms']['total']:,.1f} | "
                             f"{1e3 / b['ms']['total']:,.1f} | {a['ms']['total'] / b['ms']['total']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], before: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = res["sizes"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, s in enumerate(SCORERS):
        ns = [n for n in sizes if str(n) in res["auto"].get(s, {})]
        ax.plot(ns, [res["auto"][s][str(n)]["ms"]["total"] for n in ns], "o-", color=f"C{i}", label=s)
        if before is not None:
            nb = [n for n in ns if str(n) in before["auto"].get(s, {})]
            ax.plot(nb, [before["auto"][s][str(n)]["ms"]["total"] for n in nb], "o--", color=f"C{i}", alpha=0.5,
                    label=f"{s} (before)")
    ax.set(xscale="log", yscale="log", xlabel="vehicles", ylabel=f"ms per decision step ({res['clock']} clock)",
           title="Total cost per step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    x = np.arange(len(sizes))
    bottom = np.zeros(len(sizes))
    for i, part in enumerate(SPLIT + PARTS[1:-1]):
        vals = np.array([res["auto"]["greedy"][str(n)]["ms"][part] / res["auto"]["greedy"][str(n)]["ms"]["total"]
                         for n in sizes])
        bx.bar(x, vals, bottom=bottom, color=f"C{i}", label=part)
        bottom += vals
    bx.set_xticks(x, [f"{n:,}" for n in sizes])
    bx.set(xlabel="vehicles", ylabel="share of the step", title="greedy: where a step's time goes")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scorers", nargs="+", default=list(SCORERS), choices=SCORERS)
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="cpu", help="the clock of the ms per step")
    ap.add_argument("--dense-mb", type=float, default=2000.0, help="skip dense assignment above this matrix size")
    ap.add_argument("--no-methods", action="store_true", help="skip the dense / sparse comparisons")
    ap.add_argument("--before", type=Path, help="a JSON of this benchmark from an older commit, for a comparison")
    ap.add_argument("--label", default="", help="a note on this run, stored in the JSON (e.g. 'before the speedup')")
    ap.add_argument("--name", default="dispatch_scaling")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from equilibria import games
    from equilibria.games.dispatch_platform import DENSE_LIMIT

    res: dict[str, Any] = {"machine": machine(), "label": args.label, "clock": args.clock, "sizes": args.sizes,
                           "seeds": args.seeds,
                           "dense_mb": args.dense_mb, "dense_limit": DENSE_LIMIT, "auto": {}, "methods": {},
                           "growth": {}, "runs": []}
    small = games.load({"name": "ride_dispatch", "num_vehicles": 20, "max_steps": 3})
    for s in args.scorers:  # warm-up: imports, torch's first forward pass
        measure(small, make_scorer(s, small), 0, "auto", args.clock)
    for n in args.sizes:
        game = games.load({"name": "ride_dispatch", "num_vehicles": n})
        for s in args.scorers:
            scorer = make_scorer(s, game)
            for method in ("auto",) if args.no_methods else ("auto", "sparse", "dense"):
                if method == "dense" and res["auto"][s][str(n)]["max_dense_entries"] * 8 / 2**20 > args.dense_mb:
                    continue
                runs = []
                for seed in range(args.seeds):
                    r = measure(game, scorer, seed, method, args.clock)
                    runs.append(r)
                    res["runs"].append({"scorer": s, "N": n, "method": method, "seed": seed, **r})
                row = median_row(runs)
                if method == "auto":
                    res["auto"].setdefault(s, {})[str(n)] = row
                else:
                    res["methods"].setdefault(s, {}).setdefault(str(n), {})[method] = row
                print(f"{s:8s} N={n:5d} {method:6s}: {row['steps_per_s']:7.1f} steps/s, "
                      + ", ".join(f"{p} {row['ms'][p]:.2f}" for p in PARTS[:1] + SPLIT + PARTS[1:]) + " ms", file=sys.stderr, flush=True)
    if not args.no_methods:
        res["crossover"] = crossover(CROSSOVER_SIZES, clock=args.clock)
        print(f"break-even: {res['crossover']['fit']['break_even_entries']:,.0f} entries", file=sys.stderr, flush=True)
    for s in args.scorers:
        rows = {int(n): r for n, r in res["auto"][s].items()}
        res["growth"][s] = {p: growth(rows, args.sizes, p) for p in PARTS + SPLIT}
    res["load_end"] = os.getloadavg()[0]
    before = json.loads(args.before.read_text()) if args.before else None
    if before is not None:
        res["before"] = {k: before.get(k) for k in ("machine", "label", "clock", "load_end", "auto")}
    text = report(res, before)
    args.out.mkdir(parents=True, exist_ok=True)
    if "greedy" in args.scorers:
        plot(res, before, args.out / f"{args.name}.png")
        text += f"\n![cost per step]({args.name}.png)\n"
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(json.dumps(res, indent=1))
    print(text)


if __name__ == "__main__":
    main()
