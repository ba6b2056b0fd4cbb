"""The CLI's main() run in the test's own interpreter, returning what a subprocess would."""

from __future__ import annotations

import contextlib
import io
import subprocess
import traceback
from pathlib import Path

import pytest


def cli_in_process(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> subprocess.CompletedProcess:
    """The CLI's main() in this interpreter, as `cli` would run it: each subprocess pays several
    seconds of imports, which dozens of bad-file cases repeat for nothing. An exception escaping
    main() is returned as exit 1 with its traceback, the way the interpreter would print it."""
    from equilibria.scenarios.cli import main

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.chdir(cwd)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # noqa: BLE001  reported like an uncaught exception
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
