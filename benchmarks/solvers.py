"""Solver benchmark: equilibria vs OpenSpiel C++ and Python CFR, LP vs first-order methods, scale.

    python benchmarks/solvers.py [--quick] [--out benchmarks/results]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria.solvers.benchmark import run  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations and smaller games (a few minutes)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    print(run(args.out, quick=args.quick, progress=lambda m: print("..", m, file=sys.stderr, flush=True)))
