"""`equilibria bench`: one front door to the benchmarks, each measured side by side with its anchor.

`solvers` lives in the package (equilibria.solvers.benchmark). The others are the scripts in the
repository's benchmarks/ folder (OpenSpiel MCCFR, RLlib PPO and PettingZoo, BenchMARL, POGEMA, the
Follower's authors' weights, highway-env, ...): `equilibria bench NAME [ARGS...]` runs
benchmarks/NAME.py with ARGS in this Python, from a checkout. Helpers of the scripts (peer venvs,
workers run by another Python) are not benchmarks and are not listed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import equilibria

HELPERS = {"peak_rss", "peer_venv"}  # and every *_worker (run by a peer's Python)


class BenchError(ValueError):
    """A benchmark that does not exist here (the CLI's exit code 2)."""


def benchmarks_dir() -> Path | None:
    """The checkout's benchmarks/ folder, or None for an installed wheel (it ships no scripts)."""
    for root in map(Path, equilibria.__path__):
        folder = root / "benchmarks"
        if (root / "pyproject.toml").is_file() and folder.is_dir():
            return folder
    return None


def scripts(folder: Path) -> dict[str, Path]:
    """The benchmark scripts in `folder` by name (helpers and `solvers`, which is built in, left out)."""
    return {p.stem: p for p in sorted(folder.glob("*.py"))
            if p.stem not in HELPERS and not p.stem.endswith("_worker") and p.stem != "solvers"}


def available() -> dict[str, str]:
    """Benchmark name -> the first line of what it measures."""
    out = {"solvers": "equilibria's CFR family against OpenSpiel's C++ and Python CFR (in the package)"}
    folder = benchmarks_dir()
    for name, script in (scripts(folder) if folder else {}).items():
        try:
            doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        except (SyntaxError, UnicodeDecodeError) as err:
            doc = f"(cannot be read: {err.__class__.__name__})"
        out[name] = summary(doc)
    return out


def summary(doc: str, width: int = 110) -> str:
    """A docstring's first sentence (its first paragraph, unwrapped), cut to `width` characters."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 3].rstrip() + "..."


def run_script(name: str, args: list[str]) -> int:
    """Runs benchmarks/NAME.py with `args` from the current directory, as `python benchmarks/NAME.py
    ARGS` would; its exit code (128 + N when signal N ended it, 130 on Ctrl-C)."""
    folder = benchmarks_dir()
    if folder is None:
        raise BenchError(f"bench {name}: the benchmark scripts are in a checkout of the repository "
                         "(benchmarks/); this installation has none (only `equilibria bench solvers` is built in)")
    script = scripts(folder).get(name)  # only names listed (no paths, no helpers)
    if script is None:
        raise BenchError(f"bench {name}: no such benchmark; `equilibria bench` lists them")
    try:
        code = subprocess.run([sys.executable, str(script), *args]).returncode
    except KeyboardInterrupt:
        return 130
    return 128 - code if code < 0 else code
