"""The CLI's main() run in the test's own interpreter, returning what a subprocess would."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import traceback
import warnings
from pathlib import Path

import pytest


def cli_in_process(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> subprocess.CompletedProcess:
    """The CLI's main() in this interpreter, as `cli` would run it: each subprocess pays several
    seconds of imports, which dozens of bad-file cases repeat for nothing. What a process would add
    to stderr is added here too: an escaping exception's traceback (exit 1), warnings and log
    records (pytest would otherwise capture them), and SystemExit mapped as the interpreter maps
    it. Output a C extension writes to file descriptor 2 is not seen, and nothing bounds time or
    memory but the caller's guards: cases that test such guards go through a real process too."""
    from equilibria.scenarios.cli import main

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.chdir(cwd)
    handler = logging.StreamHandler(err)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every time, as a fresh process would see it the first time
            for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", quiet)  # ... except what Python's default filters hide
            try:
                code = main(list(args))
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:  # sys.exit("message"): printed, exit 1
                    print(exc.code, file=err)
                    code = 1
            except Exception:  # noqa: BLE001  reported like an uncaught exception
                traceback.print_exc()
                code = 1
    finally:
        root.removeHandler(handler)
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
