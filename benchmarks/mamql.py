"""MAMQL against IQ-Learn with a joint-action critic and behaviour cloning, from a scripted
expert's demonstrations: return against dataset size, reward recovery, and the return of a
policy retrained (MAPPO) on each recovered reward. The MAMQL paper's Gems and Overcooked claims.

    python benchmarks/mamql.py --game gems [--sizes 1000 10000 20000] [--seeds 5] [--updates 6000]
    python benchmarks/mamql.py --game overcooked --sizes 20000 --seeds 3

Each (method, size, seed) trains `--updates` gradient updates (MAMQL online also steps the game:
12 steps of 4 environments per update) with the learners' defaults (the official code's: batch
256, Adam 1e-3, gamma 0.99, alpha 1 for MAMQL and 100 for IQ-Learn joint, L2 1e-5), then scores
100 evaluation episodes with actions sampled from the Boltzmann policy (as the paper evaluates)
and 100 greedy ones. Reward recovery is measured on one fixed set of transitions for every
method: the expert with half of its actions random, on held-out seeds. Runs are resumable:
each writes its JSON (and its critics) when done and is skipped on the next call.
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

GAMES = {  # spec, expert, evaluation unit (name, factor on the return per agent)
    "gems": ("gems", "gems_planner", ("return per agent", 1.0)),
    "overcooked": ('overcooked(layout="cramped_room", horizon=400)', "overcooked_planner", ("soups per episode", 1 / 20)),
}
METHODS = {  # name -> (registered learner, config overrides)
    "mamql": ("mamql", {}),
    "mamql, chi2 on both": ("mamql", {"regularize": "both", "value_on": "both"}),  # IQ-Learn's online recipe
    "iql_joint": ("iql_joint", {}),
    "bc": ("bc", {}),
}
DEFAULT_METHODS = ("mamql", "iql_joint", "bc")
EVAL_SEED, RECOVERY_SEED, OFFICIAL_SEED = 20_000, 1_000_000, 2_000_000


def recovery_set(game_name: str, transitions: int = 2000):
    """The fixed transitions reward recovery is scored on: the expert with epsilon 0.5."""
    from equilibria import games
    from equilibria.games.demonstrations import play_episode
    from equilibria.games.experts import expert_policy
    from equilibria.marl.demos import episodes_to_transitions

    spec, expert, _ = GAMES[game_name]
    game = games.load(spec)
    policy = type(expert_policy(expert, game))(epsilon=0.5)
    episodes, total, i = [], 0, 0
    while total < transitions:
        episodes.append(play_episode(game, policy, RECOVERY_SEED + i))
        total += episodes[-1]["length"]
        i += 1
    return episodes_to_transitions(episodes, game.group().name, transitions)


def run_one(game_name: str, method: str, size: int, seed: int, updates: int, every: int, out: Path,
            select: str = "last", official_every: int = 0) -> dict:
    import copy

    import torch

    from equilibria import games, marl
    from equilibria.marl.mamql import reward_recovery
    from equilibria.scenarios.rundir import atomic_write_bytes

    path = out / f"{slug(method)}_{size}_seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    spec, expert, (_, factor) = GAMES[game_name]
    game = games.load(spec)
    name, overrides = METHODS[method]
    learner = marl.make(name, game, seed=seed, expert=expert, transitions=size, expert_seed=1000 * seed, **overrides)
    curve, official, t0 = [], [], time.perf_counter()
    best = (-np.inf, 0, None)  # validation score, updates, critics
    while True:
        curve.append({"updates": learner.updates, "env_steps": learner.env_steps,
                      "eval": factor * learner.evaluate(32, seed=EVAL_SEED, deterministic=False)[0]})
        if select == "best" and learner.updates > 0 and curve[-1]["eval"] > best[0]:
            best = (curve[-1]["eval"], learner.updates, copy.deepcopy(learner.critics.state_dict()))
        if learner.updates >= updates:
            break
        target = learner.updates + every
        while learner.updates < target:
            learner.train_step()
            while official_every and learner.updates >= official_every * (len(official) + 1):
                # the official code's own number: a fresh 10-episode sampled evaluation every 100
                # updates, of which it reports (and keeps the critics of) the best, not scored again
                due = official_every * (len(official) + 1)
                official.append(factor * learner.evaluate(10, seed=OFFICIAL_SEED + due, deterministic=False)[0])
    seconds = time.perf_counter() - t0
    if select == "best":  # the official code's protocol: the critics of the best curve point (other episodes score it)
        learner.critics.load_state_dict(best[2])
    final = {"selected_updates": best[1] if select == "best" else learner.updates,
             "sampled": factor * float(np.mean(learner.evaluation_returns(100, seed=EVAL_SEED + 1, deterministic=False))),
             "greedy": factor * float(np.mean(learner.evaluation_returns(100, seed=EVAL_SEED + 1, deterministic=True)))}
    if official:
        final["official_max"], final["official_evaluations"] = max(official), len(official)
    if name != "bc":
        held_out = recovery_set(game_name)
        final.update(reward_recovery(learner.recovered_rewards(held_out), held_out))
        torch.save(learner.state_dict()["critics"], out / f"{slug(method)}_{size}_seed{seed}.pt")
    result = {"method": method, "size": size, "seed": seed, "updates": updates, "seconds": seconds,
              "env_steps": learner.env_steps, "curve": curve, "official": official, "final": final}
    atomic_write_bytes(path, json.dumps(result).encode())
    print(f"{game_name} {method} {size} seed {seed}: {final['sampled']:.2f} sampled, {final['greedy']:.2f} greedy "
          f"in {seconds:.0f} s", flush=True)
    return result


def retrain_one(game_name: str, method: str, size: int, form: str, seed: int, steps: int, out: Path) -> dict:
    """MAPPO on the reward recovered by (method, size, seed) (form "true": the game's own reward),
    scored on the game's own reward."""
    import torch

    from equilibria import games, marl
    from equilibria.games.reward_model import RewardModelGame
    from equilibria.marl.runtime import episode_means
    from equilibria.scenarios.rundir import atomic_write_bytes

    path = out / f"retrain_{slug(method)}_{size}_{form}_seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    spec, expert, (_, factor) = GAMES[game_name]
    game = games.load(spec)
    if form == "true":
        train_game = game
    else:
        name, overrides = METHODS[method]
        irl = marl.make(name, game, seed=seed, expert=expert, transitions=size, **overrides)
        irl.critics.load_state_dict(torch.load(out / f"{slug(method)}_{size}_seed{seed}.pt", weights_only=True))
        train_game = RewardModelGame(game, irl.reward_model(form), f"{method} {form}")
    t0 = time.perf_counter()
    ppo = marl.make("mappo", train_game, seed=seed, num_envs=32, rollout_length=45, hidden=128)
    while ppo.env_steps < steps:
        ppo.train_step()
    actor = ppo.actors[game.group().name]
    gen = torch.Generator().manual_seed(seed)

    def choose(obs: dict, mask: dict, active: dict) -> dict:
        with torch.no_grad():
            logits = actor.logits(torch.as_tensor(obs["agents"]), torch.as_tensor(mask["agents"]))
        return {"agents": torch.multinomial(torch.softmax(logits, -1).reshape(-1, logits.shape[-1]), 1,
                                            generator=gen).reshape(logits.shape[:2]).numpy()}

    score = factor * float(np.mean(episode_means(game, choose, 100, EVAL_SEED + 2)))
    result = {"method": method, "size": size, "form": form, "seed": seed, "steps": steps, "return": score,
              "seconds": time.perf_counter() - t0}
    atomic_write_bytes(path, json.dumps(result).encode())
    print(f"retrain on {method} {form} seed {seed}: {score:.2f}", flush=True)
    return result


def slug(method: str) -> str:
    return method.replace(", ", "_").replace(" ", "_")


def interval(x: list[float]) -> tuple[float, float]:
    from equilibria.marl.runtime import seed_interval

    return seed_interval(x)


def cell(values: list[float], fmt: str = "{:.2f}") -> str:
    m, h = interval(values)
    return f"{fmt.format(m)} ± {fmt.format(h)}"


def expert_score(game_name: str, episodes: int = 100) -> float:
    from equilibria import games
    from equilibria.games.demonstrations import play_episode
    from equilibria.games.experts import expert_policy

    spec, expert, (_, factor) = GAMES[game_name]
    game = games.load(spec)
    policy = expert_policy(expert, game)
    return factor * float(np.mean([play_episode(game, policy, EVAL_SEED + i)["returns"].mean() for i in range(episodes)]))


def report(game_name: str, results: list[dict], retrains: list[dict], args: argparse.Namespace) -> None:
    from equilibria.scenarios.plots import pyplot, save
    from equilibria.scenarios.rundir import atomic_write_bytes

    spec, expert, (unit, _) = GAMES[game_name]
    ref = expert_score(game_name)
    lines = [f"# MAMQL vs IQ-Learn (joint critic) vs BC on {game_name}", "",
             f"`python benchmarks/mamql.py --game {game_name}`: {spec}, expert `{expert}` ({unit}: {ref:.2f} over 100 "
             f"episodes), {args.updates} updates per run, {args.seeds} seeds (each seed its own demonstrations). "
             f"{unit.capitalize()} over 100 evaluation episodes; mean and 95% t-interval over seeds.", "",
             f"| method | transitions | {unit}, sampled | {unit}, greedy | reward MSE (Q form) | reward corr (Q form) | "
             "reward MSE (V form) | reward corr (V form) | minutes per run |", "|---|---|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        for m in args.methods:
            rs = [r for r in results if r["method"] == m and r["size"] == size]
            if not rs:
                continue
            f = [r["final"] for r in rs]
            rec = ["(none)"] * 4 if METHODS[m][0] == "bc" else [cell([x[k] for x in f], "{:.3g}") for k in
                                                   ("reward_mse_q", "reward_corr_q", "reward_mse_v", "reward_corr_v")]
            lines.append(f"| {m} | {size} | {cell([x['sampled'] for x in f])} | {cell([x['greedy'] for x in f])} | "
                         + " | ".join(rec) + f" | {np.mean([r['seconds'] for r in rs]) / 60:.1f} |")
    if args.official_every:
        counts = sorted({r["final"].get("official_evaluations", 0) for r in results})
        lines += ["", f"The official code's own number for the same runs: the best of {'/'.join(map(str, counts))} "
                      f"fresh 10-episode sampled evaluations (one every {args.official_every} updates), which it reports "
                      "without scoring the chosen critics again; beside it, the mean of those evaluations over the "
                      "run's second half, and the scored critics (table above) on their 100 other episodes.", "",
                  "| method | transitions | best 10-episode evaluation | mean evaluation, second half | "
                  f"{'best' if args.select == 'best' else 'last'} critics on 100 other episodes |", "|---|---|---|---|---|"]
        for size in args.sizes:
            for m in args.methods:
                rs = [r for r in results if r["method"] == m and r["size"] == size and r.get("official")]
                if rs:
                    late = [float(np.mean(r["official"][len(r["official"]) // 2:])) for r in rs]
                    lines.append(f"| {m} | {size} | {cell([r['final']['official_max'] for r in rs])} | {cell(late)} | "
                                 f"{cell([r['final']['sampled'] for r in rs])} |")
    if retrains:
        lines += ["", f"MAPPO retrained on each recovered reward ({args.retrain_steps} steps, {unit} on the game's own "
                      "reward, actions sampled):", "", "| reward | " + unit + " |", "|---|---|"]
        for key in sorted({(r["method"], r["form"]) for r in retrains}):
            rs = [r["return"] for r in retrains if (r["method"], r["form"]) == key]
            name = "the game's own reward" if key[1] == "true" else f"{key[0]}, {key[1]} form"
            lines.append(f"| {name} | {cell(rs)} |")
    plt = pyplot()
    fig, (ax, cax) = plt.subplots(1, 2, figsize=(11, 4))
    for m in args.methods:
        xs = [s for s in args.sizes if any(r["method"] == m and r["size"] == s for r in results)]
        ys = [interval([r["final"]["sampled"] for r in results if r["method"] == m and r["size"] == s]) for s in xs]
        ax.errorbar(xs, [y[0] for y in ys], yerr=[np.nan_to_num(y[1]) for y in ys], marker="o", capsize=3, label=m)
        rs = [r for r in results if r["method"] == m and r["size"] == max(args.sizes)]
        if rs:
            x = [row["updates"] for row in rs[0]["curve"]]
            y = np.array([[row["eval"] for row in r["curve"]] for r in rs])
            cax.plot(x, y.mean(0), label=m)
            cax.fill_between(x, y.min(0), y.max(0), alpha=0.15)
    for a in (ax, cax):
        a.axhline(ref, color="k", ls="--", lw=1, label="expert")
        a.set_ylabel(unit)
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("expert transitions")
    fig.suptitle(f"{game_name}: actions sampled from the Boltzmann policies (greedy results in the table)", fontsize=9)
    cax.set_xlabel(f"updates ({max(args.sizes)} transitions; band: min to max over seeds)")
    stem = f"mamql_{game_name}" + ("_best" if args.select == "best" else "") + ("_official" if args.official_every else "")
    save(fig, args.out / f"{stem}.png")
    lines += ["", f"![return against dataset size and learning curves]({stem}.png)", ""]
    atomic_write_bytes(args.out / f"{stem}.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", choices=list(GAMES), default="gems")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 20000])
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=6000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--retrain-steps", type=int, default=300_000,
                    help="MAPPO steps on each recovered reward of the smallest dataset (0: skip)")
    ap.add_argument("--retrain-seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--select", choices=["last", "best"], default="last",
                    help="score each run's last critics, or (the official code's protocol) those of its best curve "
                         "point (32 sampled episodes every --every updates; the 100 scored episodes are others)")
    ap.add_argument("--official-every", type=int, default=0, metavar="N",
                    help="also report the official code's own number: the best of fresh 10-episode sampled "
                         "evaluations every N updates (the code: 100), not scored again (0: off)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    if args.official_every < 0:
        ap.error(f"--official-every must be >= 0, got {args.official_every}")
    runs = args.out / (f"mamql_runs_{args.game}" + ("_best" if args.select == "best" else "")
                       + (f"_official{args.official_every}" if args.official_every else ""))
    runs.mkdir(parents=True, exist_ok=True)
    jobs = [(args.game, m, s, seed, args.updates, args.every, runs, args.select, args.official_every)
            for s in args.sizes for seed in range(args.seeds) for m in args.methods]
    retrain_jobs = []
    if args.retrain_steps:
        size = min(args.sizes)
        retrain_jobs = [(args.game, "mappo", size, "true", seed, args.retrain_steps, runs) for seed in range(args.retrain_seeds)]
        retrain_jobs += [(args.game, m, size, form, seed, args.retrain_steps, runs) for m in args.methods if METHODS[m][0] != "bc"
                         for form in ("q", "v") for seed in range(args.retrain_seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_one, *zip(*jobs)))
        retrains = list(pool.map(retrain_one, *zip(*retrain_jobs))) if retrain_jobs else []
    report(args.game, results, retrains, args)


if __name__ == "__main__":
    main()
