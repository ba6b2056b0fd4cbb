"""Optional dependencies in tests: skipped on a developer machine without the extra, a failure
under CI=true (where `.[all]` is installed, a missing extra is a broken install, not a skip)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def need(module: str, extra: str) -> ModuleType:
    """Import `module` (from the `extra` extra); skip without it, except under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        try:
            return importlib.import_module(module)
        except ImportError as err:
            pytest.fail(f"{module} is missing under CI=true: install equilibria[{extra}] ({err})", pytrace=False)
    return pytest.importorskip(module, reason=f"needs equilibria[{extra}]")
