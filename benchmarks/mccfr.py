"""MCCFR benchmark: equilibria's MCCFR (lazily expanded tree) against OpenSpiel's C++
ExternalSamplingMCCFRSolver / OutcomeSamplingMCCFRSolver, side by side in one run.

Every (game, sampling scheme, library, seed) runs in a fresh process, so peak memory is per run and
no run profits from another's caches (numba kernels are loaded before the clock starts). Both
libraries get the same solver wall time (evaluation excluded) and are measured on:
- iterations and traversals per second. An iteration of ours updates every player once (external:
  one traversal per player, as OpenSpiel's; outcome: one episode per player, where OpenSpiel's
  outcome-sampling iteration is one episode), so speeds are compared per traversal;
- at fixed solver times: the exploitability of the average policy where the tree compiles (ours with
  solvers.exploitability, OpenSpiel's with pyspiel.exploitability), else its value against uniform
  random (both through solvers.value_against, the same games and seeds);
- at equal traversal counts (games that compile): exploitability, i.e. the per-iteration curve;
- for games that do not compile, once per library on seed 0: a sampled best response (outcome-sampling
  MCCFR against the final policy, then played out), a lower bound on exploitability.
Medians over seeds. Each run stops early if its resident memory passes --rss-cap-mb. The clock is the
process's CPU time (time.process_time), not wall time: this machine is shared, and under contention wall
time measures the neighbours; wall seconds and the load average are recorded with every run.

    python benchmarks/mccfr.py [--quick] [--seeds 3] [--only leduc_poker] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

# label, our game, OpenSpiel's game, metric, solver seconds per run
GAMES = [
    ("leduc_poker", "leduc_poker", "leduc_poker", "exploitability", 10.0),
    ("goofspiel(4)", "goofspiel(num_cards=4)", "turn_based_simultaneous_game(game=goofspiel(num_cards=4))",
     "exploitability", 10.0),
    ("liars_dice", "openspiel:liars_dice", "liars_dice", "exploitability", 20.0),
    ("phantom_ttt", "openspiel:phantom_ttt", "phantom_ttt", "value", 60.0),
    ("oshi_zumo(6,10)", "openspiel:turn_based_simultaneous_game(game=oshi_zumo(coins=6,horizon=10))",
     "turn_based_simultaneous_game(game=oshi_zumo(coins=6,horizon=10))", "value", 30.0),
]
TIME_MARKS = (0.125, 0.25, 0.5, 1.0)  # fractions of the solver seconds
TRAVERSAL_MARKS = (2_000, 20_000, 200_000, 2_000_000)
VALUE_EPISODES = 2000  # per seat, against uniform random
BR_ITERATIONS = 100_000  # per player: outcome-sampling best response (a count, not seconds: fair under load)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class OpenSpielPolicy:
    """An OpenSpiel policy seen through the Policy protocol (adapter states carry the pyspiel state)."""

    def __init__(self, policy: Any):
        self.policy = policy

    def action_probabilities(self, state: Any, player: int | None = None) -> dict[int, float]:
        return dict(self.policy.action_probabilities(state.s))


def _load(spec: str) -> Any:
    from equilibria import games
    from equilibria.games.adapters.openspiel import from_openspiel

    return from_openspiel(spec[len("openspiel:"):]) if spec.startswith("openspiel:") else games.load(spec)


def one_run(job: dict) -> dict:
    """One (game, scheme, library, seed) run; executed in a fresh process."""
    import pyspiel

    from equilibria import games, solvers

    label, ours_spec, os_spec, metric, seconds = job["game"]
    scheme, lib, seed = job["scheme"], job["lib"], job["seed"]
    game = _load(ours_spec)
    os_game = pyspiel.load_game(os_spec)
    uniform = games.UniformRandomPolicy()
    if lib == "equilibria":
        solvers.make(f"mccfr-{scheme}", games.load("kuhn_poker")).run(10)  # load the numba kernels
        solver = solvers.make(f"mccfr-{scheme}", game, seed=seed)
        per_iteration = game.num_players  # traversals

        def advance(n: int) -> None:
            solver.run(n)

        def policy() -> Any:
            return solver.average_policy()

        def exploitability() -> float:
            return solvers.exploitability(game, solver.average_policy())
    else:
        if scheme == "external":
            solver = pyspiel.ExternalSamplingMCCFRSolver(os_game, seed=seed)
            per_iteration = os_game.num_players()
        else:
            solver = pyspiel.OutcomeSamplingMCCFRSolver(os_game, epsilon=0.6, seed=seed)
            per_iteration = 1

        def advance(n: int) -> None:
            run = solver.run_iteration
            for _ in range(n):
                run()

        def policy() -> Any:
            return OpenSpielPolicy(solver.average_policy())

        def exploitability() -> float:
            return pyspiel.exploitability(os_game, solver.average_policy())

    def evaluate() -> dict:
        if metric == "exploitability":
            return {"exploitability": exploitability()}
        est = solvers.value_against(game, policy(), uniform, VALUE_EPISODES, seed=1234)
        return {"value": float(est.mean.mean()), "value_stderr": float(np.sqrt((est.stderr**2).sum()) / 2),
                "value_seats": est.mean.tolist()}

    time_marks = [f * seconds for f in TIME_MARKS]
    traversal_marks = list(TRAVERSAL_MARKS) if metric == "exploitability" else []
    by_time, by_traversals = [], []
    iterations, spent, wall, chunk, capped = 0, 0.0, 0.0, 1, False
    load_before = os.getloadavg()[0]
    while time_marks:
        n = chunk
        if traversal_marks:  # land exactly on the next traversal count
            n = max(1, min(n, (traversal_marks[0] - iterations * per_iteration) // per_iteration))
        t0, w0 = time.process_time(), time.perf_counter()
        advance(n)
        dt = time.process_time() - t0
        wall += time.perf_counter() - w0
        spent += dt
        iterations += n
        chunk = max(1, min(2 * chunk, int(n * 0.05 / dt) if dt > 0 else 2 * chunk))  # about 50 ms per call
        if traversal_marks and iterations * per_iteration >= traversal_marks[0]:
            by_traversals.append({"traversals": iterations * per_iteration, "seconds": spent, **evaluate()})
            traversal_marks.pop(0)
        if spent >= time_marks[0]:
            by_time.append({"seconds": spent, "iterations": iterations, **evaluate()})
            time_marks.pop(0)
        if rss_mb() > job["rss_cap_mb"]:
            capped = True
            by_time.append({"seconds": spent, "iterations": iterations, **evaluate()})
            break
    out = {"game": label, "scheme": scheme, "lib": lib, "seed": seed, "metric": metric, "iterations": iterations,
           "traversals": iterations * per_iteration, "seconds": spent, "by_time": by_time,
           "by_traversals": by_traversals, "rss_capped": capped, "wall_seconds": wall,
           "load": [load_before, os.getloadavg()[0]]}
    if lib == "equilibria":
        out.update(nodes=solver.tree.num_nodes, infosets=solver.tree.num_infosets, cuts=solver.tree.cuts,
                   tree_mb=solver.tree.nbytes() / 2**20)
    if job.get("best_response"):
        est, err = solvers.sampled_exploitability(game, policy(), iterations=job["br_iterations"],
                                                  episodes=VALUE_EPISODES, sampling="outcome")
        out["sampled_exploitability"], out["sampled_exploitability_stderr"] = est, err
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _median(rows: list[dict], get: Any) -> float:
    vals = [get(r) for r in rows]
    vals = [v for v in vals if v is not None]
    return float(np.median(vals)) if vals else float("nan")


def _at(r: dict, key: str, i: int) -> float | None:
    return r["by_time"][i][key] if i < len(r["by_time"]) else None


def report(runs: list[dict], seconds_scale: float) -> str:
    lines = ["## MCCFR: equilibria (lazily expanded tree) vs OpenSpiel C++, equal solver time", "",
             "Medians over seeds; each run in a fresh process on this 2-core machine, timed by its CPU time "
             "(s: CPU seconds of solver work; the machine was shared, see the load column). it/s: each library's own "
             "iterations (ours update every player once per iteration; OpenSpiel's outcome sampling one player); "
             "trav/s: traversals (episodes) per second, the comparable unit; ratio: ours / OpenSpiel C++ in trav/s. "
             "Metric at 1/4, 1/2 and all of the solver time: exploitability of the average policy, or its mean "
             "value against uniform random over both seats (+- standard error, 2000 games per seat).", "",
             "| game | sampling | library | s | it/s | trav/s | ratio | metric @T/4 | @T/2 | @T | tree nodes | "
             "peak RSS MB | wall s | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["game"], r["scheme"], r["lib"]), []).append(r)
    order = [g[0] for g in GAMES]
    for (game, scheme, lib) in sorted(groups, key=lambda k: (order.index(k[0]), k[1], k[2] != "equilibria")):
        rows = groups[(game, scheme, lib)]
        speed = _median(rows, lambda r: r["traversals"] / r["seconds"])
        other = groups.get((game, scheme, "OpenSpiel C++" if lib == "equilibria" else "equilibria"), [])
        ref = _median(other, lambda r: r["traversals"] / r["seconds"]) if lib == "equilibria" else speed
        key = rows[0]["metric"]
        cells = []
        for i in (1, 2, 3):
            m = _median(rows, lambda r, i=i, key=key: _at(r, key, i))
            if key == "value":
                e = _median(rows, lambda r, i=i: _at(r, "value_stderr", i))
                cells.append(f"{m:+.3f} ± {e:.3f}")
            else:
                cells.append(f"{m:.4g}")
        nodes = f"{_median(rows, lambda r: r.get('nodes')):,.0f}" if lib == "equilibria" else "—"
        cap = " (RSS cap)" if any(r["rss_capped"] for r in rows) else ""
        lines.append(f"| {game} | {scheme} | {lib} | {_median(rows, lambda r: r['seconds']):.3g} | "
                     f"{_median(rows, lambda r: r['iterations'] / r['seconds']):,.0f} | {speed:,.0f} | "
                     f"{speed / ref:.2f}x | {' | '.join(cells)} | {nodes} | "
                     f"{_median(rows, lambda r: r['peak_rss_mb']):,.0f}{cap} | "
                     f"{_median(rows, lambda r: r['wall_seconds']):.3g} | {_median(rows, lambda r: r['load'][0]):.1f} |")
    lines += ["", "## Equal traversals (games whose tree compiles): exploitability, median over seeds", "",
              "| game | sampling | library | " + " | ".join(f"{m:,}" for m in TRAVERSAL_MARKS) + " |",
              "|---|---|---|" + "---|" * len(TRAVERSAL_MARKS)]
    for (game, scheme, lib), rows in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1],
                                                                               kv[0][2] != "equilibria")):
        if rows[0]["metric"] != "exploitability":
            continue
        cells = []
        for m in TRAVERSAL_MARKS:
            v = _median(rows, lambda r, m=m: next((x["exploitability"] for x in r["by_traversals"]
                                                   if x["traversals"] == m), None))
            cells.append("—" if np.isnan(v) else f"{v:.4g}")
        lines.append(f"| {game} | {scheme} | {lib} | " + " | ".join(cells) + " |")
    brs = [r for r in runs if "sampled_exploitability" in r]
    if brs:
        lines += ["", f"## Games that do not compile: sampled exploitability (lower bound), seed 0, after the run; "
                      f"best responses by {int(BR_ITERATIONS * seconds_scale):,} iterations of outcome-sampling MCCFR "
                      "per player against the final policy, then 2000 games", "",
                  "| game | sampling | library | sampled exploitability |", "|---|---|---|---|"]
        for r in sorted(brs, key=lambda r: (order.index(r["game"]), r["scheme"], r["lib"] != "equilibria")):
            lines.append(f"| {r['game']} | {r['scheme']} | {r['lib']} | {r['sampled_exploitability']:.3f} ± "
                         f"{r['sampled_exploitability_stderr']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the time, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="game labels to run (default: all)")
    parser.add_argument("--rss-cap-mb", type=float, default=8000.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    seeds = 1 if args.quick else args.seeds
    jobs = []
    for label, ours, theirs, metric, seconds in GAMES:
        if args.only and label not in args.only:
            continue
        for scheme in ("external", "outcome"):
            for seed in range(seeds):
                for lib in ("equilibria", "OpenSpiel C++"):
                    jobs.append({"game": (label, ours, theirs, metric, seconds * scale), "scheme": scheme, "lib": lib,
                                 "seed": seed, "rss_cap_mb": args.rss_cap_mb, "br_iterations": int(BR_ITERATIONS * scale),
                                 "best_response": metric == "value" and seed == 0})
    runs = []
    ctx = multiprocessing.get_context("spawn")
    for i, job in enumerate(jobs):
        print(f".. [{i + 1}/{len(jobs)}] {job['game'][0]} {job['scheme']} {job['lib']} seed {job['seed']}",
              file=sys.stderr, flush=True)
        with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:  # a fresh process per run
            runs.append(pool.submit(one_run, job).result())
    text = report(runs, scale)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "mccfr_quick" if args.quick else "mccfr"
    (args.out / f"{name}.md").write_text(text + "\n")
    (args.out / f"{name}.json").write_text(json.dumps(runs, indent=1))
    print(text)


if __name__ == "__main__":
    main()
