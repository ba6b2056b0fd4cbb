"""What the dispatch learners rank, against the immediate reward greedy ranks by, and what that
ranking is worth through the reference's platform.

    python benchmarks/dispatch_ranking.py [--demand 0.6]   # after benchmarks/dispatch.py

For each scorer `benchmarks/dispatch.py` saved (dispatch_runs_<suffix>/<method>_seed<k>.pt),
over 2 evaluation episodes: among the vehicles with at least two candidate orders, how often the
scorer's top order is the one with the highest immediate reward (greedy's), and the rank
correlation between the two over each vehicle's candidates (vehicles with at least three).
Then the platform row: the exact immediate reward made into each vehicle's softmax (temperature
0.3, 1, 3) and matched as the platform matches a learner's probabilities, on the 5 evaluation
episodes the learners are scored on. OSPO's advantage is the immediate reward, so this row is
about as far as OSPO can get; greedy itself matches the rewards, which are comparable across
vehicles. Writes dispatch_ranking_<suffix>.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dispatch import EVAL_SEED, spec, suffix  # noqa: E402


def reward_softmax_scorer(temperature: float):
    """Greedy's immediate rewards as each vehicle's softmax over its candidates; "no order" 0."""
    from equilibria.games.dispatch_platform import greedy_scores

    def score(sim) -> np.ndarray:
        g = greedy_scores(sim)[..., 1:]
        z = np.where(np.isfinite(g), g / temperature, -np.inf)
        top = np.max(np.where(np.isfinite(z), z, -np.inf), axis=-1, keepdims=True)
        p = np.where(np.isfinite(z), np.exp(z - np.where(np.isfinite(top), top, 0.0)), 0.0)
        out = np.zeros((*g.shape[:2], g.shape[2] + 1))
        out[..., 1:] = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
        return out

    return score


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def agreement(learner, game, episodes: int = 2) -> tuple[float, float, int]:
    """(share of vehicles whose top-scored order is greedy's, mean rank correlation, vehicles)."""
    import torch

    from equilibria.games.dispatch_platform import Platform
    from equilibria.marl.networks import as_tensors

    sim, platform = game.simulator(episodes, EVAL_SEED), Platform()
    same, total, corr = 0, 0, []
    for _ in range(game.max_steps):
        c = sim.candidates()
        with torch.no_grad():
            logits = learner.actor.logits(as_tensors(sim.observe()[learner.group.name]), learner.row_mask).numpy()[..., 1:]
        valid = (c["order"] >= 0) & c["active"][..., None]
        choice = valid.sum(-1) >= 2
        best_reward = np.where(valid, c["reward"], -np.inf).argmax(-1)
        best_score = np.where(valid, logits, -np.inf).argmax(-1)
        same += int((best_reward == best_score)[choice].sum())
        total += int(choice.sum())
        for e, v in zip(*np.nonzero(valid.sum(-1) >= 3)):
            k = valid[e, v]
            corr.append(np.corrcoef(ranks(c["reward"][e, v][k]), ranks(logits[e, v][k]))[0, 1])
        platform.step(sim, learner.scorer(0.0))
    return same / max(total, 1), float(np.nanmean(corr)), total


def main() -> None:
    import torch

    from equilibria import games, marl
    from equilibria.games.dispatch_platform import run_episodes
    from equilibria.scenarios.rundir import atomic_write_bytes

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--demand", type=float)
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    game = games.load(spec(args.vehicles, args.demand))
    runs = args.out / f"dispatch_runs_{suffix(args.vehicles, args.demand)}"
    lines = [f"# What the dispatch scorers rank: `{spec(args.vehicles, args.demand)}`", "",
             "`python benchmarks/dispatch_ranking.py` (see its docstring). Per saved scorer, over 2 evaluation "
             "episodes: the share of vehicles with a choice whose top-scored order is greedy's (the highest "
             "immediate reward), and the mean rank correlation with the immediate reward.", "",
             "| scorer | greedy's order on top | rank correlation | vehicles with a choice |", "|---|---|---|---|"]
    for path in sorted(runs.glob("*_seed*.pt")):
        method = path.stem.rsplit("_seed", 1)[0]
        learner = marl.make(method, game, seed=0)
        learner.actor.load_state_dict(torch.load(path, weights_only=True))
        share, corr, n = agreement(learner, game)
        lines.append(f"| {path.stem} | {share:.2f} | {corr:+.2f} | {n} |")
    lines += ["", f"Greedy's ranking through the platform's probability matching ({args.eval_episodes} evaluation "
              "episodes, the learners' own):", "", "| scores | total reward | served | pickup (min) |", "|---|---|---|---|"]
    for name, scorer in [("greedy (rewards)", "greedy")] + [
            (f"softmax(reward / {t:g}) as probabilities", reward_softmax_scorer(t)) for t in (0.3, 1.0, 3.0)]:
        r = run_episodes(game, scorer, episodes=args.eval_episodes, seed=EVAL_SEED)
        lines.append(f"| {name} | {np.mean(r['reward']):.0f} | {np.mean(r['served']):.0f} | {np.mean(r['pickup_min']):.2f} |")
    atomic_write_bytes(args.out / f"dispatch_ranking_{suffix(args.vehicles, args.demand)}.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
