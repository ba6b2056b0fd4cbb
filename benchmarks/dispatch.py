"""OSPO against GRPO, PPO with a critic and the two platform baselines (nearest vehicle, greedy by
immediate reward) on the default city: the OSPO paper's dispatch comparison at 1,000 vehicles.

    python benchmarks/dispatch.py [--vehicles 1000] [--seeds 5] [--updates 150] [--backend ray]
    python benchmarks/dispatch.py --demand 0.6   # 4x the orders: vehicles are short
    python benchmarks/dispatch.py --select last  # score each run's last scorer, not its best

Each (method, training seed) is one job, a Ray task with `--backend ray` (local processes
otherwise): `--updates` episodes of the whole fleet, one policy update after each, with the
learners' defaults except a short-budget schedule (below); a learning curve every `--every`
updates (2 evaluation episodes); then `--eval-episodes` evaluation episodes (deterministic
scores, no exploration) of the scorer `--select` names, on fixed evaluation seeds: the same
episodes the baselines are scored on (same fleet start and order stream per evaluation seed).
"best" (the default) is the scorer of the learner's best held-out evaluation (one episode every
10 updates on seeds of its own, the scorer its KL term anchors to: train.py's best.pth), "last"
the final one. Jobs are resumable: each writes its JSON and its scorer's weights when done and
is skipped on the next call under the same protocol.

Short-budget schedule (BUDGET): the reference code trains at least 1,000 episodes with Adam
1e-5 decayed x0.99 per episode and epsilon 1.0 x0.99 per episode; at a few hundred episodes that
leaves the scorer near its initialisation, so the benchmark uses Adam 1e-3 without decay and
epsilon 0.2 x0.98 per episode (at the floor, 0.0005, after ~300 episodes). Everything else
(clip 0.2 with the 1.4 upper rate, KL 0.5 to the best evaluated scorer once an evaluation fails
to improve on it, entropy 0.05, batch 256 x 10 steps per episode, fairness weight 1) is the
reference's.

Reported per method: served orders, total reward, mean pickup / confirmation / detour minutes,
dropped orders and the fairness measure (the standard deviation of the drivers' cumulative
rewards), as mean and 95% interval; for the learners across training seeds (each seed's mean
over the evaluation episodes), for the baselines across the evaluation episodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("ospo", "grpo", "dispatch_ppo")
BASELINES = ("nearest", "greedy")
BUDGET = {"lr": 1e-3, "lr_decay": 1.0, "epsilon": 0.2, "epsilon_decay": 0.98}
MEASURES = ("reward", "served", "pickup_min", "confirm_min", "detour_min", "dropped", "income_std")
LABELS = {"reward": "total reward", "served": "served orders", "pickup_min": "pickup (min)",
          "confirm_min": "confirmation (min)", "detour_min": "detour (min)", "dropped": "dropped orders",
          "income_std": "income spread (std)"}
EVAL_SEED = 10_000


def spec(vehicles: int, demand: float | None = None) -> str:
    return f"ride_dispatch(num_vehicles={vehicles})" if demand is None else \
        f"ride_dispatch(num_vehicles={vehicles}, demand={demand:g})"


def suffix(vehicles: int, demand: float | None = None) -> str:
    """What names a run's files (dispatch_<suffix>.md, dispatch_runs_<suffix>/): 1000, or
    1000_demand0.6 off the default demand."""
    return f"{vehicles}" if demand is None else f"{vehicles}_demand{demand:g}"


def run_one(vehicles: int, method: str, seed: int, updates: int, every: int, episodes: int, out: str,
            demand: float | None = None, select: str = "best") -> dict:
    import torch

    from equilibria import games, marl
    from equilibria.scenarios.rundir import atomic_write_bytes

    path = Path(out) / f"{method}_seed{seed}.json"
    if path.exists():  # resumable: a finished run of the same protocol is not redone
        done = json.loads(path.read_text())
        if (done.get("select", "last"), done["updates"], done.get("every"), done.get("episodes")) == \
                (select, updates, every, episodes):
            return done
    torch.set_num_threads(1)
    game = games.load(spec(vehicles, demand))
    learner = marl.make(method, game, seed=seed, **BUDGET)
    curve, t0 = [], time.perf_counter()
    while True:
        m = learner.evaluation_metrics(2, seed=EVAL_SEED + 1000)
        curve.append({"updates": learner.updates, **{k: float(np.mean(m[k])) for k in MEASURES}})
        if learner.updates >= updates:
            break
        for _ in range(min(every, updates - learner.updates)):
            learner.train_step()
    seconds = time.perf_counter() - t0
    # the target is the best evaluated scorer once one held-out evaluation has run (target_update "best")
    selected = "best" if select == "best" and learner.best_reward > -np.inf and \
        learner.config.target_update == "best" else "last"
    if selected == "best":
        learner.actor.load_state_dict(learner.target.state_dict())
    final = learner.evaluation_metrics(episodes, seed=EVAL_SEED)
    torch.save(learner.state_dict()["actor"], Path(out) / f"{method}_seed{seed}.pt")
    result = {"method": method, "seed": seed, "updates": updates, "every": every, "episodes": episodes,
              "select": select, "selected": selected, "train_seconds": seconds,
              "best_heldout_reward": learner.best_reward if selected == "best" else None, "curve": curve,
              "final": {k: np.asarray(final[k], dtype=float).tolist() for k in MEASURES}}
    atomic_write_bytes(path, json.dumps(result).encode())
    print(f"{method} seed {seed}: reward {np.mean(final['reward']):.0f}, served {np.mean(final['served']):.0f} "
          f"in {seconds:.0f} s", flush=True)
    return result


def run_baselines(vehicles: int, episodes: int, demand: float | None = None) -> dict[str, dict[str, list[float]]]:
    from equilibria import games
    from equilibria.games.dispatch_platform import run_episodes

    game = games.load(spec(vehicles, demand))
    out = {}
    for b in BASELINES:
        r = run_episodes(game, b, episodes=episodes, seed=EVAL_SEED)
        out[b] = {k: np.asarray(r[k], dtype=float).tolist() for k in MEASURES}
    return out


def cell(values: list[float], fmt: str = "{:.1f}") -> str:
    from equilibria.marl.runtime import seed_interval

    m, h = seed_interval(values)
    return f"{fmt.format(m)} ± {fmt.format(h)}"


def report(args: argparse.Namespace, base: dict, results: list[dict]) -> None:
    from equilibria.scenarios.plots import pyplot, save
    from equilibria.scenarios.rundir import atomic_write_bytes

    by = {m: sorted((r for r in results if r["method"] == m), key=lambda r: r["seed"]) for m in args.methods}
    rows = {b: base[b] for b in BASELINES}  # per evaluation episode
    rows.update({m: {k: [float(np.mean(r["final"][k])) for r in rs] for k in MEASURES} for m, rs in by.items() if rs})
    fmt = {"reward": "{:.0f}", "served": "{:.0f}", "dropped": "{:.0f}"}
    lines = [f"# Ride dispatch: OSPO, GRPO, PPO and the baselines, {args.vehicles} vehicles", "",
             f"`{spec(args.vehicles, args.demand)}` (the default city: 20 x 20 grid of 400 m blocks at 16.6 km/h, capacity 3, "
             "30 one-minute decisions, orders wait at most 5 min). "
             f"Learners: {args.seeds} training seeds x {args.updates} episodes (short-budget schedule {BUDGET}), "
             + ("each scored with the scorer of its best held-out evaluation (one episode every 10 updates); "
                if args.select == "best" else "each scored with its last scorer; ")
             + f"every method is scored on the same {args.eval_episodes} evaluation episodes (seeds {EVAL_SEED}...). "
             "Mean ± 95% t-interval: learners across training seeds (each the mean of its evaluation episodes), "
             "baselines across the evaluation episodes.", "",
             "| method | " + " | ".join(LABELS[k] for k in MEASURES) + " |",
             "|---|" + "---|" * len(MEASURES)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(r[k], fmt.get(k, "{:.2f}")) for k in MEASURES) + " |")
    lines += ["", "Training time per run (one core): " + ", ".join(
        f"{m} {np.mean([r['train_seconds'] for r in rs]) / 60:.1f} min" for m, rs in by.items() if rs), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / f"dispatch_{suffix(args.vehicles, args.demand)}.md", "\n".join(lines).encode())
    atomic_write_bytes(args.out / f"dispatch_{suffix(args.vehicles, args.demand)}.json", json.dumps({"baselines": base, "runs": results}).encode())

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key in zip(axes, ("reward", "served", "pickup_min")):
        for m, rs in by.items():
            if not rs:
                continue
            x = np.array([row["updates"] for row in rs[0]["curve"]])
            y = np.array([[row[key] for row in r["curve"]] for r in rs])
            mean, sd = y.mean(0), y.std(0)
            ax.plot(x, mean, label=m)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        for b, style in zip(BASELINES, ("--", ":")):
            ax.axhline(np.mean(base[b][key]), color="k", ls=style, lw=1, label=b)
        ax.set_xlabel("training episodes (one update each)")
        ax.set_title(LABELS[key] + " (2 held-out episodes)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Ride dispatch, {spec(args.vehicles, args.demand)}: learning curves, mean ± sd over {args.seeds} seeds")
    save(fig, args.out / f"dispatch_{suffix(args.vehicles, args.demand)}.png")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=150)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--backend", choices=("local", "ray"), default="ray")
    ap.add_argument("--demand", type=float, help="orders per minute per vehicle (the game's default, 0.15, leaves "
                    "the fleet oversupplied; 0.6 makes vehicles short)")
    ap.add_argument("--select", choices=("best", "last"), default="best",
                    help="score each run's scorer of its best held-out evaluation (the reference's best.pth) or its last")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    from equilibria.common.executor import make_executor

    runs = args.out / f"dispatch_runs_{suffix(args.vehicles, args.demand)}"
    runs.mkdir(parents=True, exist_ok=True)
    base = run_baselines(args.vehicles, args.eval_episodes, args.demand)
    jobs = [(args.vehicles, m, seed, args.updates, args.every, args.eval_episodes, str(runs), args.demand, args.select)
            for seed in range(args.seeds) for m in args.methods]
    results = [r for _, r in make_executor(args.backend).run_unordered(run_one, jobs)]
    report(args, base, results)


if __name__ == "__main__":
    main()
