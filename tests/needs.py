"""Optional dependencies in tests: skipped on a developer machine without the extra, a failure
under CI=true (where `.[all]` is installed, a missing extra is a broken install, not a skip)."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(module: str, extra: str) -> ModuleType | None:
    """Import `module` (from the `extra` extra); skip without it, except under CI=true. A data
    package (games.registry.DATA_PACKAGES) is only located, never imported: None."""
    from equilibria.games.registry import DATA_PACKAGES, package_present

    if module.split(".")[0] in DATA_PACKAGES:
        if not package_present(module):
            if _in_ci():
                pytest.fail(f"{module} is missing under CI=true: install equilibria[{extra}]", pytrace=False)
            pytest.skip(f"needs equilibria[{extra}]")
        return None
    if _in_ci():
        try:
            return importlib.import_module(module)
        except ImportError as err:
            pytest.fail(f"{module} is missing under CI=true: install equilibria[{extra}] ({err})", pytrace=False)
    return pytest.importorskip(module, reason=f"needs equilibria[{extra}]")


def need_program(name: str, how: str) -> str:
    """The path of program `name` (installed by `how`); skip without it, except under CI=true."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        if _in_ci():
            pytest.fail(f"{name} is missing under CI=true ({how})", pytrace=False)
        pytest.skip(f"needs {name} ({how})")
    return path
