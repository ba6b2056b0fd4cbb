"""The Bayesian-network actor-critic against MAPPO on cooperative navigation (3 agents, 3
landmarks), over seeds: the issue's Markov-game comparison, with MPE's full observations and
with agents that cannot see each other (`--game blind`) or see only close ones (`--game near`).

Variants, all with MAPPO's settings and budget (mappo-navigation's):
- mappo: independent actors, centralised critic;
- bnac: the context-aware DAG, density annealed to zero from 40% to 70% of the budget;
- bnac, no annealing: the DAG kept to the end (removing its edges at evaluation shows whether
  the edges mattered);
- bnac_random: random DAGs of the context DAG's initial density, annealed the same way;
- bnac, complete DAG, no annealing: every edge of the order, always (the actors never learn to
  act without their parents' actions).

Every evaluation scores the policy as trained (with its DAG) and with every edge removed. Runs are
resumable: each (variant, seed) writes its JSON when done and is skipped on the next call.

With `--anonymous` every actor goes without the agent's slot id (`actor_ids: false`), so agents
cannot fall back on a convention by index and only the DAG's edges can tell them apart.

    python benchmarks/bnac_navigation.py [--game full|blind|near|landmarks] [--anonymous] [--seeds 5]
                                         [--steps 400000] [--entropy 0.01] [--variants ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GAMES = {"full": "cooperative_navigation(num_agents=3, num_landmarks=3)",
         "blind": "cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0)",
         "near": "cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0.5)",
         "landmarks": "cooperative_navigation(num_agents=3, num_landmarks=3, view_radius=0, actions='landmarks')"}
VARIANTS = {
    "mappo": ("mappo", {}),
    "bnac": ("bnac", {}),
    "bnac, no annealing": ("bnac", {"anneal": False}),
    "bnac_random": ("bnac_random", {}),
    "bnac, complete DAG, no annealing": ("bnac", {"dag": "complete", "anneal": False}),
}


def run_one(game_spec: str, variant: str, seed: int, steps: int, every: int, episodes: int, out: Path,
            entropy: float = 0.01, ids: bool = True) -> dict:
    import torch

    from equilibria import games, marl
    from equilibria.scenarios.rundir import atomic_write_bytes

    path = out / f"{variant.replace(', ', '_').replace(' ', '_')}_seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    name, config = VARIANTS[variant]
    game = games.load(game_spec)
    extra = {"total_steps": steps} if name != "mappo" else {}
    learner = marl.make(name, game, seed=seed, num_envs=32, entropy_coef=entropy, actor_ids=ids, **config, **extra)
    curve, t0 = [], time.perf_counter()
    while True:
        row = {"env_steps": learner.env_steps, "eval_return": learner.evaluate(episodes)[0]}
        if name != "mappo":
            ex = learner.extra_evaluation(episodes)
            row.update(eval_return_no_edges=ex["eval_return_no_edges"], threshold=ex["threshold"])
        curve.append(row)
        if learner.env_steps >= steps:
            break
        target = learner.env_steps + every
        ratios = []
        while learner.env_steps < target:
            stats = learner.train_step()
            ratios.append(stats.get("open_ratio", 0.0))
        curve[-1]["open_ratio_next"] = float(np.mean(ratios))
    final = {"eval_return": float(np.mean(learner.evaluation_returns(100, seed=20_000)))}
    if name != "mappo":
        final["eval_return_no_edges"] = float(np.mean(learner.evaluation_returns(100, seed=20_000, remove_edges=True)))
        if not config.get("anneal", True):  # does agent 1 read agent 0's action, or only notice it has a parent?
            final["response_0_1"] = learner.parent_response(1, 0, episodes=100, seed=20_000)
    result = {"variant": variant, "seed": seed, "steps": steps, "seconds": time.perf_counter() - t0,
              "curve": curve, "final": final}
    atomic_write_bytes(path, json.dumps(result).encode())
    print(f"{variant} seed {seed}: {final} in {result['seconds']:.0f} s", flush=True)
    return result


def scripted_references(game_spec: str, episodes: int = 100, seed: int = 20_000) -> dict[str, float]:
    """For actions='landmarks': the mean return per agent of fixed joint rules on the learners'
    final evaluation episodes (same seed and count), read off the observations (own position at
    columns 2:4, landmarks relative to it at 4:4 + 2L)."""
    import itertools

    from equilibria import games
    from equilibria.marl.runtime import episode_means

    game = games.load(game_spec)
    n, m = game.num_agents, game.num_landmarks

    def geometry(obs: np.ndarray) -> np.ndarray:
        """[E, n, m] distances from each agent to each landmark."""
        return np.linalg.norm(obs[..., 4:4 + 2 * m].reshape(*obs.shape[:2], m, 2), axis=-1)

    def optimal(d: np.ndarray) -> np.ndarray:
        perms = np.array(list(itertools.permutations(range(m), n)))
        cost = d[:, np.arange(n)[None, :], perms].sum(-1)  # [E, P]
        return perms[cost.argmin(1)]

    def in_turn(d: np.ndarray) -> np.ndarray:
        out = np.zeros(d.shape[:2], dtype=np.int64)
        for e in range(d.shape[0]):
            free = list(range(m))
            for i in range(n):
                j = min(free, key=lambda k: d[e, i, k])
                out[e, i] = j
                if len(free) > 1:
                    free.remove(j)
        return out

    rules = {"optimal assignment (needs every position)": optimal,
             "in turn: each the nearest landmark its predecessors left (reading the parents' actions)": in_turn,
             "agent i to landmark i (needs the agent's id)": lambda d: np.tile(np.arange(n) % m, (d.shape[0], 1)),
             "every agent to its nearest landmark": lambda d: d.argmin(-1)}
    return {name: float(np.mean(episode_means(game, lambda obs, mask, active, r=rule: {"agents": r(geometry(obs["agents"]))},
                                             episodes, seed)))
            for name, rule in rules.items()}


def interval(x: list[float]) -> tuple[float, float]:
    from equilibria.marl.runtime import seed_interval

    return seed_interval(x)


def report(results: list[dict], out: Path, name: str, game_spec: str, seeds: int, steps: int,
           entropy: float = 0.01, anonymous: bool = False) -> None:
    from equilibria.scenarios.plots import pyplot, save
    from equilibria.scenarios.rundir import atomic_write_bytes

    by = {v: [r for r in results if r["variant"] == v] for v in VARIANTS}
    lines = ["# Bayesian-network actor-critic vs MAPPO on cooperative navigation", "",
             f"`python benchmarks/bnac_navigation.py --game {name.removesuffix('_anonymous')}"
             f"{' --anonymous' if anonymous else ''}`: {game_spec}, {steps} environment steps, {seeds} seeds, "
             f"MAPPO's settings (32 environments, 25-step rollouts) with entropy coefficient {entropy}"
             + (", anonymous actors (actor_ids=False: no slot id in the actor's input)" if anonymous else "")
             + ". Final return: "
             "mean return per agent over 100 greedy evaluation episodes per seed (the same episodes for every run); "
             "mean and 95% t-interval over seeds. The curves evaluate 32 other episodes. For the variants trained "
             "without annealing, `parent_response` asks whether agent 1 reads agent 0's action: on the observations "
             "of those episodes, with agent 0 as its only parent, the fraction where its greedy choice changes with "
             "agent 0's action (0 for an agent that only notices it has a parent) and the fraction of choices that "
             "differ from agent 0's (mean over seeds).", "",
             "| variant | final return (as trained) | final return, edges removed | loss from removing edges | "
             "final edge density | agent 1 answers agent 0: changes / differs | minutes per run |",
             "|---|---|---|---|---|---|---|"]
    for v, rs in by.items():
        if not rs:
            continue
        m, h = interval([r["final"]["eval_return"] for r in rs])
        cells = [v, f"{m:.2f} ± {h:.2f}"]
        if "eval_return_no_edges" in rs[0]["final"]:
            m2, h2 = interval([r["final"]["eval_return_no_edges"] for r in rs])
            d, hd = interval([r["final"]["eval_return"] - r["final"]["eval_return_no_edges"] for r in rs])
            dens = np.mean([r["curve"][-2].get("open_ratio_next", np.nan) for r in rs])
            cells += [f"{m2:.2f} ± {h2:.2f}", f"{d:.2f} ± {hd:.2f}", f"{dens:.2f}"]
            if all("response_0_1" in r["final"] for r in rs):
                cells.append(" / ".join(f"{np.mean([r['final']['response_0_1'][k] for r in rs]):.2f}"
                                        for k in ("changes", "differs")))
            else:
                cells.append("")
        else:
            cells += ["(no edges)", "", "", ""]
        cells.append(f"{np.mean([r['seconds'] for r in rs]) / 60:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    if "actions='landmarks'" in game_spec:
        lines += ["", "Fixed joint rules on the same 100 evaluation episodes (mean return per agent):", "",
                  "| rule | return |", "|---|---|"]
        lines += [f"| {rule} | {value:.2f} |" for rule, value in scripted_references(game_spec).items()]
    plt = pyplot()
    fig, (ax, dax) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    colors = dict(zip(VARIANTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for v, rs in by.items():
        if not rs:
            continue
        x = np.array([row["env_steps"] for row in rs[0]["curve"]])
        for key, style in (("eval_return", "-"), ("eval_return_no_edges", ":")):
            if key not in rs[0]["curve"][0]:
                continue
            y = np.array([[row[key] for row in r["curve"]] for r in rs])
            label = v if key == "eval_return" else f"{v}, edges removed"
            ax.plot(x, y.mean(0), style, label=label, color=colors[v])
            ax.fill_between(x, y.min(0), y.max(0), alpha=0.1, color=colors[v])
        if "threshold" in rs[0]["curve"][0]:
            dens = np.array([[row.get("open_ratio_next", np.nan) for row in r["curve"]] for r in rs])
            dax.plot(x[:-1] + (x[1] - x[0]) / 2, np.nanmean(dens[:, :-1], 0), marker=".", label=v, color=colors[v])
    ax.set_ylabel("eval return per agent")
    ax.set_title(f"{game_spec}\nmean over {seeds} seeds (band: min to max)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    dax.set_ylabel("edge density (open_ratio)")
    dax.set_xlabel("environment steps")
    dax.legend(fontsize=7)
    dax.grid(True, alpha=0.3)
    save(fig, out / f"bnac_navigation_{name}.png")
    lines += ["", f"![learning curves and edge density](bnac_navigation_{name}.png)", ""]
    atomic_write_bytes(out / f"bnac_navigation_{name}.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", choices=list(GAMES), default="full",
                    help="full: MPE's observations; blind: view_radius=0, agents never see each other; "
                         "near: view_radius=0.5, only close agents are seen; landmarks: blind, and each action "
                         "names the landmark to head for")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=400_000)
    ap.add_argument("--every", type=int, default=40_000)
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--entropy", type=float, default=0.01, help="entropy coefficient of every variant (MAPPO's: 0.01)")
    ap.add_argument("--anonymous", action="store_true",
                    help="actors without the agent's slot id (actor_ids=False): no fixed convention like "
                         "'agent i to landmark i' is open to them unless the DAG tells an agent its place")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    # runs are reused only for the same game, budget and entropy
    name = args.game + ("_anonymous" if args.anonymous else "")
    runs = args.out / "bnac_navigation_runs" / f"{name}_steps{args.steps}_entropy{args.entropy:g}"
    runs.mkdir(parents=True, exist_ok=True)
    jobs = [(v, s) for s in range(args.seeds) for v in args.variants]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_one, *zip(*[(GAMES[args.game], v, s, args.steps, args.every, args.episodes, runs,
                                                 args.entropy, not args.anonymous) for v, s in jobs])))
    report(results, args.out, name, GAMES[args.game], args.seeds, args.steps, args.entropy, args.anonymous)


if __name__ == "__main__":
    main()
