"""The installed package is `equilibria`: its subpackages import under that name from anywhere,
and no top-level `games`, `solvers`, ... is installed to collide with other packages."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("common", "games", "solvers", "marl", "llm_agents", "scenarios")
PROBE = ("import equilibria, equilibria.games, equilibria.scenarios.cli\n"
         "print(equilibria.games.__file__)\n"
         "import importlib.util\n"
         f"print([n for n in {FOLDERS!r} if importlib.util.find_spec(n) is not None])\n")


def _probe(cwd: Path, env: dict | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout.splitlines()
    return out


def test_the_editable_install_imports_equilibria_and_no_top_level_folders(tmp_path):
    games_file, found = _probe(tmp_path)  # the test venv holds `pip install -e .`
    assert Path(games_file).parent == ROOT / "games"
    assert found == "[]"


def test_a_built_wheel_installs_only_the_equilibria_package(tmp_path):
    source, target = tmp_path / "src", tmp_path / "site"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:  # build from a copy: setuptools writes build/ beside the sources
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(source)], check=True, capture_output=True, timeout=300)
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith((".dist-info", ".pth"))
                  and p.name != "bin") == ["equilibria"]
    assert (target / "equilibria" / "scenarios" / "builtin" / "quickstart.yaml").exists()
    assert (target / "equilibria" / "scenarios" / "report_assets" / "uPlot.iife.min.js").exists()  # reports work installed
    games_file, found = _probe(tmp_path, {"PYTHONPATH": str(target)})
    assert Path(games_file).is_relative_to(target)
    assert found == "[]"


def test_code_imports_the_subpackages_only_under_the_equilibria_name():
    """A bare `import games` would load a second copy of a module (its own registries)."""
    offenders = []
    for path in [*ROOT.glob("*/**/*.py"), *ROOT.glob("*.py")]:
        if ".venv" in path.parts or "build" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FOLDERS]
    assert not offenders, offenders
