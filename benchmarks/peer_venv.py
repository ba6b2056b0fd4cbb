"""Venvs for peers that do not co-install with equilibria (POGEMA pins numpy 1.x; BenchMARL its
own torchrl; ONNX Runtime is only an anchor): made on first use, reused while their check passes,
never installed into equilibria's venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class VenvUnavailable(RuntimeError):
    """The venv cannot be made here (typically: pip has no network)."""


def ensure_venv(venv: Path, check: str, installs: list[list[str]]) -> Path:
    """The venv's python. `check` is Python code that succeeds once the venv holds what is needed;
    `installs` are the arguments of successive `pip install` calls that make it so."""
    py = venv / "bin" / "python"
    # equilibria's constraints (the Makefile exports PIP_CONSTRAINT) pin other versions than a peer's
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PYTHONPATH")}
    if py.exists() and subprocess.run([str(py), "-c", check], capture_output=True, env=env).returncode == 0:
        return py
    print(f"making the venv {venv}", file=sys.stderr)
    steps = [[shutil.which("python3.11") or sys.executable, "-m", "venv", str(venv)],
             *[[str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args] for args in installs]]
    for cmd in steps:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise VenvUnavailable(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    if subprocess.run([str(py), "-c", check], capture_output=True, env=env).returncode:
        raise VenvUnavailable(f"{venv}: `{check}` still fails after pip install")
    return py
