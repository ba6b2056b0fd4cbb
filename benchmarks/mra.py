"""MRA-style policy sets across populations: the figures of the closing note.

Runs the `mra-populations` built-in (5 seeds; per seed the policy set, the unimodal baseline and a
reference trained on each held-out population) with its jobs as Ray tasks, resumable (finished
jobs are kept under benchmarks/results/mra_runs_<game>/), and copies the table and both plots to
benchmarks/results/mra_<game>.md, mra_<game>_returns.png and mra_<game>_adaptation.png.

    python benchmarks/mra.py [--game navigation|resource] [--seeds 5] [--steps 200000] [--backend ray]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path("benchmarks/results")
GAMES = {"navigation": 'cooperative_navigation(num_agents=3, observation="entities")',
         "resource": "resource_occupation(num_agents=3)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", choices=sorted(GAMES), default="navigation")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--backend", choices=("ray", "local"), default="ray")
    ap.add_argument("--set", nargs="*", default=[], help="further scenario overrides (key=value)")
    args = ap.parse_args()
    from equilibria import scenarios

    base = OUT / f"mra_runs_{args.game}"
    overrides = [f"game={GAMES[args.game]}", f"seeds={args.seeds}", f"budget.steps={args.steps}",
                 f"backend={args.backend}", *args.set]
    earlier = sorted(base.glob("mra-populations-*"))
    if earlier:  # resume: finished (seed, learner) jobs are kept
        print(f"resuming {earlier[-1]} with its stored config (--seeds, --steps and --set apply to a new run: "
              f"remove {base} to start one)", flush=True)
        run_dir = scenarios.run(None, resume=earlier[-1]).run_dir
    else:
        run_dir = scenarios.run(scenarios.load("mra-populations", overrides), out=base).run_dir
    shutil.copyfile(run_dir / "results.md", OUT / f"mra_{args.game}.md")
    for plot in ("returns", "adaptation"):
        shutil.copyfile(run_dir / "plots" / f"{plot}.png", OUT / f"mra_{args.game}_{plot}.png")
    print((OUT / f"mra_{args.game}.md").read_text())


if __name__ == "__main__":
    main()
