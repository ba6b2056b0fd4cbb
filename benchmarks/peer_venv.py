"""Venvs for peers that do not co-install with equilibria (POGEMA pins numpy 1.x; BenchMARL its
own torchrl; ONNX Runtime is only an anchor): made on first use, reused while their check passes,
never installed into equilibria's venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


class VenvUnavailable(RuntimeError):
    """The venv cannot be made here (typically: pip has no network)."""


def peer_env() -> dict[str, str]:
    """The environment a peer's Python runs in: without equilibria's PYTHONPATH and pip constraints
    (the Makefile exports PIP_CONSTRAINT, which pins other versions than a peer's)."""
    return {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PYTHONPATH")}


def run_worker(py: Path, worker: Path, request: Any, label: str) -> Any:
    """One fresh process of the peer's Python running `worker`: the JSON request on stdin, its JSON
    answer from stdout; RuntimeError with the end of its stderr when it fails."""
    done = subprocess.run([str(py), str(worker)], input=json.dumps(request), capture_output=True, text=True,
                          env=peer_env())
    if done.returncode:
        raise RuntimeError(f"{label} failed ({done.returncode}):\n{done.stderr.strip()[-4000:]}")
    return json.loads(done.stdout)


def ensure_venv(venv: Path, check: str, installs: list[list[str]]) -> Path:
    """The venv's python. `check` is Python code that succeeds once the venv holds what is needed;
    `installs` are the arguments of successive `pip install` calls that make it so."""
    py = venv / "bin" / "python"
    env = peer_env()
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
