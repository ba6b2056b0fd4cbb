"""MAPPO-PIS on the on-ramp merge: the twin against highway-env (events and speed), training on the
twin, evaluation in highway-env itself.

    python benchmarks/merge.py speed          # decisions/s, twin vs highway-env, 1 and 256 envs
    python benchmarks/merge.py differential   # 100 seeded episodes, events compared
    python benchmarks/merge.py train [--steps 1000000] [--seeds 0 1] [--runs DIR]
    python benchmarks/merge.py eval  [--episodes 20] [--densities easy medium hard] [--gif] [--simulator twin]
    python benchmarks/merge.py plots [--simulator twin]
    python benchmarks/merge.py crashes [--method mappo_pis] [--seed 0]   # whom the CAVs crash into

Methods (marl.mappo_pis): mappo_pis (shared intents in the observation, safety module with
shared actions), mappo_sem (safety module assuming other CAVs keep lane and speed, no intents),
mappo_merge (plain MAPPO); all with the released code's settings. Training is the built-in
merge-mappo-pis train run on the batched twin (games.merge, medium density), one per method and
seed, two at a time, resumed where interrupted. Evaluation runs in highway-env
(games.merge_highway) on paired episodes (episode k of the
evaluation seed is the same vehicles for every method), each policy with its own safety module
and with the module switched off. Results go to benchmarks/results/merge*.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"
SPECS = {"highway": "merge_highway", "twin": "merge"}  # evaluation in highway-env itself, or in the twin


def results_dir(simulator: str) -> Path:
    return RESULTS / ("merge" if simulator == "highway" else "merge_twin")


METHODS = ("mappo_pis", "mappo_sem", "mappo_merge")
LABELS = {"mappo_pis": "MAPPO-PIS", "mappo_sem": "MAPPO + SEM (no intents)", "mappo_merge": "MAPPO"}
EVAL_SEED = 10_000
HEADWAY_BINS = np.linspace(0.0, 6.0, 61)  # time headways [s]; the last bin holds everything above 6 s
MEASURES = ("collision", "collisions_per_step", "speed", "return", "merge_success", "headway", "replaced")


def decisions_per_second(spec: str, envs: int, seconds: float) -> float:
    from equilibria import games

    sim = games.load(spec).simulator(envs, seed=0)
    rng = np.random.default_rng(0)
    sim.step({"cavs": np.ones((envs, 6), dtype=np.int64)})  # compile
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sim.step({"cavs": rng.choice(5, size=(envs, 6), p=[0.1, 0.5, 0.1, 0.15, 0.15])})
        n += 1
    return n * envs / (time.perf_counter() - t0)


def speed(args: argparse.Namespace) -> None:
    rows = []
    for envs in (1, 256):
        hw = decisions_per_second("merge_highway(density=medium)", envs, args.seconds)
        tw = decisions_per_second("merge(density=medium)", envs, args.seconds)
        rows.append({"envs": envs, "highway_env": hw, "twin": tw, "ratio": tw / hw})
        print(f"{envs:>4} envs: highway-env {hw:9.1f}  twin {tw:10.1f}  decisions/s  ratio {tw / hw:7.1f}x", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "merge_speed.json").write_text(json.dumps(rows, indent=1))


def differential(args: argparse.Namespace) -> None:
    from equilibria.games.merge_highway import differential as run

    t0 = time.perf_counter()
    out = run(episodes=args.episodes, seed=1)
    summary = {k: v for k, v in out.items() if k != "rows"}
    summary["seconds"] = time.perf_counter() - t0
    print(json.dumps(summary, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "merge_differential.json").write_text(json.dumps(summary, indent=1))


def run_dir(runs: Path, method: str, seed: int) -> Path | None:
    """The train run of (method, seed) under `runs` (`<method>-s<seed>/<run>`), None if absent."""
    found = sorted((runs / f"{method}-s{seed}").glob("merge-mappo-pis-*/checkpoints/latest.pt"))
    return found[-1].parents[1] if found else None


def train(args: argparse.Namespace) -> None:
    """Each (method, seed) is the built-in merge-mappo-pis train run with that algorithm and seed,
    `--parallel` at a time; an interrupted run is resumed."""
    jobs = [(m, s) for s in args.seeds for m in METHODS]
    running: list[subprocess.Popen] = []
    exe = Path(sys.executable).with_name("equilibria")
    for m, s in jobs:
        while len([p for p in running if p.poll() is None]) >= args.parallel:
            time.sleep(2)
        done = run_dir(args.runs, m, s)
        if done is not None:
            summary = done / "summary.json"
            if summary.exists():
                continue
            cmd = [str(exe), "run", "--resume", str(done), "--quiet"]
        else:
            cmd = [str(exe), "run", "merge-mappo-pis", "--set", f"algorithm.name={m}", "--set", f"seed={s}",
                   "--set", f"budget.steps={args.steps}", "--out", str(args.runs / f"{m}-s{s}"), "--quiet"]
        running.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
    for p in running:
        p.wait()


def load_learner(runs: Path, method: str, seed: int):  # noqa: ANN201
    from equilibria.scenarios.learning import load_trained

    path = run_dir(runs, method, seed)
    if path is None:
        raise SystemExit(f"no {method} run with seed {seed} under {runs}: run `python benchmarks/merge.py train` first")
    return load_trained(path)[2]


def evaluate(args: argparse.Namespace) -> None:
    from equilibria import games
    from equilibria.marl.merge_eval import evaluate_merge, save_gif

    out_dir = results_dir(args.simulator)
    out_dir.mkdir(parents=True, exist_ok=True)
    for train_density in ("medium",):
        for method in args.methods:
            for seed in args.seeds:
                results_path = out_dir / f"eval_{method}_s{seed}.json"  # one file per run: runs can be evaluated in parallel
                results = json.loads(results_path.read_text()) if results_path.exists() else {}
                learner = load_learner(args.runs, method, seed)
                for density in args.densities:
                    modes = [learner.config.safety, "off"]
                    if density == "medium":  # both predictions of the other CAVs for every policy
                        modes += ["shared", "assume_idle"]
                    for safety in dict.fromkeys(modes):
                        key = f"{method}|{train_density}|{seed}|{density}|{safety}"
                        if key in results:
                            continue
                        game = games.load(f"{SPECS[args.simulator]}(density={density}, safety={safety}, "
                                          f"intents={str(learner.config.intents).lower()})")
                        headways: list[float] = []
                        t0 = time.perf_counter()
                        m = evaluate_merge(game, learner.choose(), args.episodes, EVAL_SEED, headways=headways)
                        results[key] = {k: np.asarray(v, dtype=float).tolist() for k, v in m.items()}
                        counts, _ = np.histogram(np.clip(headways, 0, HEADWAY_BINS[-1]), HEADWAY_BINS)
                        results[key]["headway_hist"] = counts.tolist()
                        results[key]["seconds"] = time.perf_counter() - t0
                        print(key, {k: round(float(np.nanmean(v)), 3) for k, v in m.items()},
                              f"{time.perf_counter() - t0:.0f} s", flush=True)
                        results_path.write_text(json.dumps(results))
    if args.gif:
        learner = load_learner(args.runs, "mappo_pis", args.seeds[0])
        game = games.load("merge_highway(density=medium, safety=shared, intents=true)")
        frames: list = []
        evaluate_merge(game, learner.choose(), 1, EVAL_SEED, frames=frames)
        save_gif(frames, RESULTS / "merge_mappo_pis.gif")


def crashes(args: argparse.Namespace) -> None:
    """Who the CAVs crash into: each CAV crash of one trained policy on paired twin episodes (its own
    safety setting), by what it hit (among the vehicles within 8 m, the nearest that crashed in the
    same step, else the nearest; the merge lane's end when none is near there) and where that vehicle
    was (ahead, behind, or beside it: |dy| > 1.5 m)."""
    from collections import Counter

    from equilibria import games
    from equilibria.games.merge import MAX_CAVS
    from equilibria.games.merge_dynamics import (
        AGGRESSIVE,
        CAV,
        CRASHED,
        DEFENSIVE,
        IDM,
        KIND,
        LANE,
        MERGE_END,
        MERGE_LANE,
        X,
        Y,
    )
    from equilibria.marl.merge_eval import paired_simulator

    kinds = {CAV: "CAV", IDM: "IDM driver", AGGRESSIVE: "aggressive driver", DEFENSIVE: "defensive driver"}
    learner = load_learner(args.runs, args.method, args.seed)
    game = games.load(f"merge(density=medium, safety={OWN_SAFETY[args.method]}, "
                      f"intents={str(learner.config.intents).lower()})")
    choose = learner.choose()
    sim = paired_simulator(game, args.episodes, EVAL_SEED)
    obs, active = sim.observe(), sim.active()
    running = np.ones(args.episodes, dtype=bool)
    counts: Counter = Counter()
    while running.any():
        acting, before = sim.cav_active().copy(), sim.S[:, :, CRASHED].copy()
        res = sim.step(choose(obs, active), autoreset=False)
        for e in np.flatnonzero(running):
            present = np.flatnonzero(sim.S[e, :, KIND] >= 0)
            new = [j for j in present if sim.S[e, j, CRASHED] and not before[e, j]]
            for i in (i for i in new if i < MAX_CAVS and acting[e, i]):
                dist = {j: float(np.hypot(*(sim.F[e, j, [X, Y]] - sim.F[e, i, [X, Y]]))) for j in present if j != i}
                near = [j for j, d in dist.items() if d < 8.0]  # a crash is a contact: the other one is near
                partners = [j for j in near if j in new] or near
                if not partners:
                    at_end = sim.S[e, i, LANE] == MERGE_LANE and MERGE_END - sim.F[e, i, X] < 8.0
                    counts[("the merge lane's end" if at_end else "nothing within 8 m", "")] += 1
                    continue
                j = min(partners, key=dist.__getitem__)
                dx, dy = sim.F[e, j, X] - sim.F[e, i, X], sim.F[e, j, Y] - sim.F[e, i, Y]
                where = "beside" if abs(dy) > 1.5 else ("ahead" if dx > 0 else "behind")
                counts[(kinds[int(sim.S[e, j, KIND])], where)] += 1
        running &= ~res.done
        obs, active = res.obs, res.active
    total = sum(counts.values())
    lines = [f"# Whom the CAVs crash into: {LABELS[args.method]} (seed {args.seed}), medium density, twin", "",
             f"`python benchmarks/merge.py crashes --method {args.method} --seed {args.seed} --episodes "
             f"{args.episodes}`: {total} CAV crashes in {args.episodes} paired episodes, safety module "
             f"`{OWN_SAFETY[args.method]}`. A crash between two CAVs counts once for each.", "",
             "| the other vehicle | where | CAV crashes | share |", "|---|---|---|---|"]
    lines += [f"| {k} | {w} | {n} | {n / total:.0%} |" for (k, w), n in counts.most_common()]
    text = "\n".join(lines) + "\n"
    (RESULTS / f"merge_crashes_{args.method}_s{args.seed}.md").write_text(text)
    print(text)


def interval(values: np.ndarray) -> tuple[float, float]:
    v = values[~np.isnan(values)]
    if len(v) < 2:
        return float(np.mean(v)) if len(v) else float("nan"), float("nan")
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v)))


OWN_SAFETY = {"mappo_pis": "shared", "mappo_sem": "assume_idle", "mappo_merge": "off"}


def per_seed(results: dict, method: str, density: str, safety: str, measure: str) -> dict[str, np.ndarray]:
    """One measure of (method, density, safety) by training seed: the evaluation keys are
    method|trained on|seed|density|safety."""
    return {k.split("|")[2]: np.asarray(r[measure], dtype=float) for k, r in results.items()
            if k.split("|")[0] == method and k.split("|")[3] == density and k.split("|")[4] == safety}


def pooled(results: dict, method: str, density: str, safety: str, measure: str) -> np.ndarray:
    """One measure of (method, density, safety) over every training seed's paired episodes, seeds in order."""
    runs = per_seed(results, method, density, safety, measure)
    return np.concatenate([runs[s] for s in sorted(runs, key=int)]) if runs else np.array([])


def paired_differences(results: dict, first: tuple[str, str], second: tuple[str, str], measure: str,
                       density: str = "medium") -> np.ndarray:
    """first minus second, episode by episode, over the training seeds both were evaluated with the
    same number of episodes on (episode k of a seed is the same traffic for every method)."""
    a, b = (per_seed(results, method, density, safety, measure) for method, safety in (first, second))
    seeds = sorted((s for s in a.keys() & b.keys() if len(a[s]) == len(b[s])), key=int)
    return np.concatenate([a[s] - b[s] for s in seeds]) if seeds else np.array([])


def pooled_tables(results: dict) -> list[str]:
    """Each method with its own safety setting and with the module off (plain MAPPO also with the
    module on), pooled over training seeds; then paired differences on medium density (episode k
    of seed s is the same traffic for every method): MAPPO-PIS against MAPPO + SEM, and each
    against plain MAPPO evaluated without and with the module."""
    seeds = sorted({k.split("|")[2] for k in results})
    lines = ["", f"Pooled over training seeds {', '.join(seeds)} (mean ± 95% interval over episodes):", "",
             "| method | evaluated on | safety module | episodes | collision rate | collisions per step | speed (m/s) "
             "| return | merge success |", "|---|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        for density in ("easy", "medium", "hard"):
            # plain MAPPO also with the module switched on at evaluation only (medium density)
            extra = ("shared",) if method == "mappo_merge" else ()
            for safety in dict.fromkeys((OWN_SAFETY[method], "off", *extra)):
                columns = {m: pooled(results, method, density, safety, m)
                           for m in ("collision", "collisions_per_step", "speed", "return", "merge_success")}
                if not len(columns["collision"]):
                    continue
                cells = []
                for m, values in columns.items():
                    mean, ci = interval(values)
                    cells.append(f"{mean:.3f} ± {ci:.3f}" if m.startswith("collision") else f"{mean:.2f} ± {ci:.2f}")
                lines.append(f"| {LABELS[method]} | {density} | {safety} | {len(columns['collision'])} | "
                             + " | ".join(cells) + " |")
    # (method, safety at evaluation) pairs: each against plain MAPPO without and with the module
    pairs = [(("mappo_pis", "shared"), ("mappo_sem", "assume_idle")),
             (("mappo_pis", "shared"), ("mappo_merge", "off")), (("mappo_sem", "assume_idle"), ("mappo_merge", "off")),
             (("mappo_pis", "shared"), ("mappo_merge", "shared")),
             (("mappo_sem", "assume_idle"), ("mappo_merge", "assume_idle"))]
    lines += ["", "Paired differences on medium density (first minus second; mean ± 95% interval over the episodes "
                  "both were scored on, paired by training seed and episode: it covers episode noise, not the spread "
                  "between training seeds):", "",
              "| first | safety module | second | safety module | episodes | collision rate | speed (m/s) |",
              "|---|---|---|---|---|---|---|"]
    for (a, sa), (b, sb) in pairs:
        diffs = {m: paired_differences(results, (a, sa), (b, sb), m) for m in ("collision", "speed")}
        if len(diffs["collision"]):
            (cm, cc), (vm, vc) = interval(diffs["collision"]), interval(diffs["speed"])
            lines.append(f"| {LABELS[a]} | {sa} | {LABELS[b]} | {sb} | {len(diffs['collision'])} | "
                         f"{cm:+.3f} ± {cc:.3f} | {vm:+.2f} ± {vc:.2f} |")
    return lines


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {}
    for path in sorted(results_dir(args.simulator).glob("eval_*.json")):
        results.update(json.loads(path.read_text()))
    lines = ["| method | trained on | evaluated on | safety module | collision rate (episodes) | collisions per step "
             "| speed (m/s) | return | merge success | time headway (s) | replacements per step |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        method, td, seed, density, safety = key.split("|")
        cells = []
        for m in MEASURES:
            mean, ci = interval(np.asarray(r[m], dtype=float))
            cells.append(f"{mean:.3f} ± {ci:.3f}" if m in ("collision", "collisions_per_step", "replaced")
                         else f"{mean:.2f} ± {ci:.2f}")
        lines.append(f"| {LABELS[method]} (seed {seed}) | {td} | {density} | {safety} | " + " | ".join(cells) + " |")
    lines += pooled_tables(results)
    table = "\n".join(lines)
    (RESULTS / ("merge.md" if args.simulator == "highway" else "merge_twin.md")).write_text(table + "\n")
    print(table)
    if args.simulator == "twin":  # the plots show the evaluation in highway-env
        return
    # learning curves (the train runs' evaluations on the twin)
    import csv

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for j, method in enumerate(METHODS):
        for path in sorted(args.runs.glob(f"{method}-s*/*/metrics.csv")):
            rows = [r for r in csv.DictReader(path.open()) if r.get("collision")]
            x = [float(r["env_steps"]) for r in rows]
            seed = path.parents[1].name.rsplit("-s", 1)[1]
            for ax, k in zip(axes, ("eval_return", "collision", "speed")):
                ax.plot(x, [float(r[k]) for r in rows], color=f"C{j}", alpha=0.9 if seed == "0" else 0.5,
                        label=f"{LABELS[method]} (seed {seed})")
    for ax, k in zip(axes, ("evaluation return", "collision rate (episodes)", "average speed (m/s)")):
        ax.set_xlabel("environment steps")
        ax.set_title(k + ", twin, 32 episodes")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "merge_learning.png", dpi=110)
    # metrics per method and density, safety module on
    densities = [d for d in ("easy", "medium", "hard") if any(k.split("|")[3] == d for k in results)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    width = 0.8 / (2 * len(METHODS))
    for j, method in enumerate(METHODS):
        for s, mode in enumerate(dict.fromkeys((OWN_SAFETY[method], "off"))):
            offset = (2 * j + s) * width
            for ax, m in zip(axes, ("collision", "speed", "return", "headway")):
                stats = [interval(pooled(results, method, d, mode, m)) for d in densities]
                off = mode == "off" and method != "mappo_merge"
                ax.bar(np.arange(len(densities)) + offset, [a for a, _ in stats], width, yerr=[b for _, b in stats],
                       label=LABELS[method] + (", module off" if off else ""), alpha=0.45 if off else 1.0,
                       color=f"C{j}")
    for ax, m in zip(axes, ("collision rate (per episode)", "average speed (m/s)", "episode return",
                            "mean time headway (s)")):
        ax.set_xticks(np.arange(len(densities)) + 0.4 - width / 2, densities)
        ax.set_title(m + ", highway-env")
    axes[0].legend(fontsize=7)
    fig.suptitle("trained on medium density; 20 paired episodes x training seeds, 95% intervals", fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "merge_metrics.png", dpi=110)
    # time headway distribution, medium density, modules on
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, method in enumerate(METHODS):
        hists = per_seed(results, method, "medium", OWN_SAFETY[method], "headway_hist")
        if hists:
            counts = np.sum(list(hists.values()), axis=0)
            ax.stairs(counts / max(counts.sum(), 1) / np.diff(HEADWAY_BINS), HEADWAY_BINS, color=f"C{j}",
                      label=LABELS[method])
    ax.axvline(1.2, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 3.5)  # headway distances stop at the 60 m cap: about 3 s at these speeds
    ax.set_xlabel("time headway (s; vehicle ahead within 60 m)")
    ax.set_title("CAV time headways, medium density, highway-env")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "merge_headway.png", dpi=110)


def positive(text: str) -> int:
    """An argparse type: an integer from 1 to 100,000 (episodes and environments are allocated at once)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must lie in [1, 100000], got {value}")
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--seconds", type=float, default=10.0)
    sd = sub.add_parser("differential")
    sd.add_argument("--episodes", type=positive, default=100)
    st = sub.add_parser("train")
    st.add_argument("--steps", type=int, default=1_000_000)
    st.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    st.add_argument("--parallel", type=positive, default=2)
    se = sub.add_parser("eval")
    se.add_argument("--episodes", type=positive, default=20)
    se.add_argument("--densities", nargs="+", default=["easy", "medium", "hard"])
    se.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    se.add_argument("--gif", action="store_true")
    se.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    sub.add_parser("plots")
    sc = sub.add_parser("crashes")
    sc.add_argument("--method", choices=METHODS, default="mappo_pis")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--episodes", type=positive, default=400)
    for sub_parser in (st, se, sub.choices["plots"], sc):
        sub_parser.add_argument("--runs", type=Path, default=RESULTS / "merge_runs",
                                help="where the train runs are (<method>-s<seed>/<run>)")
    for sub_parser in (se, sub.choices["plots"]):
        sub_parser.add_argument("--simulator", choices=list(SPECS), default="highway",
                                help="evaluate in highway-env itself (merge/) or in the twin (merge_twin/; "
                                     "the same events, fast enough for more episodes)")
    args = p.parse_args()
    {"speed": speed, "differential": differential, "train": train, "eval": evaluate, "plots": report,
     "crashes": crashes}[args.command](args)


if __name__ == "__main__":
    main()
