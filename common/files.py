"""Files written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` or leave it as it was: write a temporary file, fsync, rename.
    A kill or a full disk mid-write never leaves a torn file in place of the old one (an OSError
    is raised with the old file intact)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["atomic_write_bytes"]
