"""Solver benchmark: equilibria against OpenSpiel's C++ and Python CFR, side by side in one run.

Run with `python benchmarks/solvers.py` or `equilibria bench solvers`. Writes a Markdown
table, raw JSON and log-log exploitability plots to the output directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from equilibria import games, solvers
from equilibria.games.tree import compile_tree


@dataclass
class Curve:
    label: str
    game: str
    iterations: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # solver time only, evaluation excluded
    exploitability: list[float] = field(default_factory=list)
    ms_per_iter: float = float("nan")

    def at(self, it: int) -> float | None:
        return self.exploitability[self.iterations.index(it)] if it in self.iterations else None

    def time_to(self, target: float) -> float | None:
        for s, e in zip(self.seconds, self.exploitability):
            if e <= target:
                return s
        return None


def _schedule(max_iters: int) -> list[int]:
    pts = set(range(1, min(max_iters, 100) + 1))
    pts |= set(range(100, max_iters + 1, 10))
    return sorted(pts)


def run_curve(label: str, game_name: str, step: Callable[[], None], evaluate: Callable[[], float],
              max_iters: int, max_seconds: float, target: float = 1e-3, stop_at_target: bool = False) -> Curve:
    """Step a solver, timing steps only, and evaluate exploitability on a schedule."""
    curve = Curve(label, game_name)
    checkpoints = set(_schedule(max_iters))
    spent = 0.0
    for it in range(1, max_iters + 1):
        t0 = time.perf_counter()
        step()
        spent += time.perf_counter() - t0
        if it in checkpoints:
            e = evaluate()
            curve.iterations.append(it)
            curve.seconds.append(spent)
            curve.exploitability.append(e)
            if (stop_at_target and e <= target) or spent > max_seconds:
                break
    curve.ms_per_iter = 1e3 * spent / curve.iterations[-1]
    return curve


def cfr_curves(game_name: str, max_iters: int, max_seconds: float, python_iters: int,
               progress: Callable[[str], None]) -> list[Curve]:
    import pyspiel
    from open_spiel.python.algorithms import cfr as os_cfr
    from open_spiel.python.algorithms import exploitability as os_expl

    game, os_game = games.load(game_name), pyspiel.load_game(game_name)
    curves = []
    for name, cpp_cls, py_cls in [("cfr", pyspiel.CFRSolver, os_cfr.CFRSolver),
                                  ("cfr+", pyspiel.CFRPlusSolver, os_cfr.CFRPlusSolver)]:
        ours = solvers.make(name, game)
        ours.step()  # compile the kernels outside the clock
        ours = solvers.make(name, game)
        progress(f"{game_name}: equilibria {name}")
        curves.append(run_curve(f"equilibria {name}", game_name, ours.step,
                                lambda s=ours: solvers.exploitability(game, s.average_policy()), max_iters, max_seconds))
        cpp = cpp_cls(os_game)
        progress(f"{game_name}: OpenSpiel C++ {name}")
        curves.append(run_curve(f"OpenSpiel C++ {name}", game_name, cpp.evaluate_and_update_policy,
                                lambda s=cpp: pyspiel.exploitability(os_game, s.average_policy()), max_iters,
                                max_seconds))
        py = py_cls(os_game)
        progress(f"{game_name}: OpenSpiel Python {name}")
        curves.append(run_curve(f"OpenSpiel Python {name}", game_name, py.evaluate_and_update_policy,
                                lambda s=py: os_expl.exploitability(os_game, s.average_policy()), python_iters,
                                max_seconds))
    return curves


def lp_vs_first_order(n: int, target: float, max_seconds: float, progress: Callable[[str], None]) -> list[dict]:
    game = games.load(f"random_zero_sum(n={n}, seed=0)")
    rows = []
    progress(f"random_zero_sum(n={n}): LP (HiGHS)")
    lp = solvers.make("lp", game)
    t0 = time.perf_counter()
    lp.step()
    rows.append({"method": "lp (HiGHS)", "seconds": time.perf_counter() - t0, "iterations": 1,
                 "gap": solvers.nash_conv(game, lp.current_policy())})
    for name, eta in [("extragradient", 0.05), ("mirror-prox", 0.5)]:
        progress(f"random_zero_sum(n={n}): {name}")
        s = solvers.make(name, game, eta=eta)
        spent, gap = 0.0, float("inf")
        while spent < max_seconds:
            t0 = time.perf_counter()
            s.run(50)
            spent += time.perf_counter() - t0
            gap = solvers.nash_conv(game, s.current_policy())
            if gap <= target:
                break
        rows.append({"method": f"{name} (eta={eta})", "seconds": spent, "iterations": s.iteration, "gap": gap,
                     "reached": gap <= target})
    return rows


def scale_table(specs: list[str], progress: Callable[[str], None], seconds_per_solver: float = 5.0) -> list[dict]:
    from equilibria.games.adapters.openspiel import from_openspiel

    rows = []
    for spec in specs:
        progress(f"scale: {spec}")
        game = from_openspiel(spec[len("openspiel:"):]) if spec.startswith("openspiel:") else games.load(spec)
        t0 = time.perf_counter()
        tree = compile_tree(game)
        compile_s = time.perf_counter() - t0
        tree_mb = sum(v.nbytes for v in vars(tree).values() if isinstance(v, np.ndarray)) / 2**20
        from equilibria.solvers.base import _TREES

        _TREES[game] = tree
        row: dict[str, Any] = {"game": spec, "nodes": tree.num_nodes, "infosets": tree.num_infosets,
                               "compile_s": compile_s, "tree_mb": tree_mb}
        for name in ("cfr+", "mccfr-external"):
            s = solvers.make(name, game)
            s.step()
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < seconds_per_solver:
                s.step()
                n += 1
            row[f"{name}_ms"] = 1e3 * (time.perf_counter() - t0) / n
            row[f"{name}_iters"] = n + 1
            row[f"{name}_expl"] = solvers.exploitability(game, s.average_policy())
            row[f"{name}_mb"] = sum(v.nbytes for v in vars(s).values() if isinstance(v, np.ndarray)) / 2**20
        rows.append(row)
    return rows


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def plot_curves(curves: list[Curve], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for game_name in sorted({c.game for c in curves}):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for c in (c for c in curves if c.game == game_name):
            style = "-" if c.label.startswith("equilibria") else ("--" if "C++" in c.label else ":")
            axes[0].loglog(c.iterations, c.exploitability, style, label=c.label)
            axes[1].loglog(np.maximum(c.seconds, 1e-5), c.exploitability, style, label=c.label)
        axes[0].set_xlabel("iterations")
        axes[1].set_xlabel("solver seconds (evaluation excluded)")
        for ax in axes:
            ax.set_ylabel("exploitability")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{game_name}: exploitability of the average policy")
        fig.tight_layout()
        path = out / f"solvers_{game_name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def run(out: Path, quick: bool = False, progress: Callable[[str], None] = print) -> str:
    out.mkdir(parents=True, exist_ok=True)
    max_iters = 300 if quick else 1000
    curves = cfr_curves("kuhn_poker", max_iters, 60.0, max_iters, progress)
    curves += cfr_curves("leduc_poker", max_iters, 60.0 if quick else 400.0, 30 if quick else 100, progress)
    lp_rows = lp_vs_first_order(200 if quick else 1000, 1e-6, 30.0 if quick else 180.0, progress)
    scale_specs = ["kuhn_poker", "leduc_poker", "leduc_poker(num_ranks=5)"]
    if not quick:
        scale_specs += ["leduc_poker(num_ranks=8)", "leduc_poker(num_ranks=13)", "openspiel:liars_dice",
                        "openspiel:goofspiel(num_cards=4)"]
    scale = scale_table(scale_specs, progress, 2.0 if quick else 5.0)
    plots = plot_curves(curves, out)

    lines = ["## CFR: equilibria vs OpenSpiel (same machine, same run)", "",
             "| game | solver | ms/iter | expl@100 | expl@1000 | seconds to expl 1e-3 | speed-up vs OpenSpiel C++ |",
             "|---|---|---|---|---|---|---|"]
    for c in curves:
        ref = next((r for r in curves if r.game == c.game and r.label.startswith("OpenSpiel C++")
                    and r.label.split()[-1] == c.label.split()[-1]), None)
        ratio = ref.ms_per_iter / c.ms_per_iter if ref else float("nan")
        lines.append(f"| {c.game} | {c.label} | {c.ms_per_iter:.4g} | {_fmt(c.at(100))} | {_fmt(c.at(1000))} | "
                     f"{_fmt(c.time_to(1e-3))} | {ratio:.3g}x |")
    lines += ["", f"## Random zero-sum matrix (n={200 if quick else 1000}): first-order methods to duality gap 1e-6 vs LP",
              "", "| method | seconds | iterations | final gap |", "|---|---|---|---|"]
    for r in lp_rows:
        lines.append(f"| {r['method']} | {r['seconds']:.3g} | {r['iterations']} | {r['gap']:.3g} |")
    lines += ["", "## Scale: time and memory per iteration as games grow", "",
              "| game | nodes | infosets | compile s | tree MB | CFR+ ms/iter | CFR+ MB | CFR+ expl (iters) | "
              "ES-MCCFR ms/iter | ES-MCCFR MB | ES-MCCFR expl (iters) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in scale:
        lines.append(f"| {r['game']} | {r['nodes']} | {r['infosets']} | {r['compile_s']:.3g} | {r['tree_mb']:.3g} | "
                     f"{r['cfr+_ms']:.3g} | {r['cfr+_mb']:.3g} | {r['cfr+_expl']:.3g} ({r['cfr+_iters']}) | "
                     f"{r['mccfr-external_ms']:.3g} | {r['mccfr-external_mb']:.3g} | "
                     f"{r['mccfr-external_expl']:.3g} ({r['mccfr-external_iters']}) |")
    lines += ["", "Plots: " + ", ".join(p.name for p in plots)]
    report = "\n".join(lines)
    (out / "solvers.md").write_text(report + "\n")
    (out / "solvers.json").write_text(json.dumps({
        "curves": [vars(c) for c in curves], "lp": lp_rows, "scale": scale}, indent=1))
    return report
