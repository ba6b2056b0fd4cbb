"""The limits that bad input meets, stated once, and the checks that apply them.

Anything allocated before the first useful step (a payoff tensor, a compiled tree, a
tournament schedule, a batch of environments) is estimated first and refused with the
estimate and the limit, instead of exhausting the machine's memory or hanging.
"""

from __future__ import annotations

import os

MAX_CONFIG_BYTES = 1 << 20  # a scenario or config file (YAML)
MAX_YAML_DEPTH = 64  # nesting of mappings and sequences
MAX_YAML_NODES = 100_000  # values in a document once aliases are expanded
MAX_MATCHES = 10_000_000  # a tournament's schedule is built before its first match
MAX_RUN_NAME = 100  # characters in a scenario name (it names the run directory)
MAX_PATH = 4000  # characters in a run directory's path (Linux PATH_MAX is 4096)
MEMORY_FRACTION = 0.75  # of physical memory that one estimated allocation may take
INT64_MAX = 2**63 - 1  # integers are stored in int64 arrays and checkpoints


def physical_memory() -> int:
    """Bytes of physical memory on this machine."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def check_memory(what: str, nbytes: float) -> None:
    """Refuse (ValueError) an allocation estimated above MEMORY_FRACTION of physical memory."""
    total = physical_memory()
    limit = MEMORY_FRACTION * total
    if nbytes > limit:
        raise ValueError(f"{what} needs about {format_bytes(nbytes)} of memory; this machine has "
                         f"{format_bytes(total)} (limit {format_bytes(limit)})")


def check_count(what: str, count: float, limit: int, hint: str = "") -> None:
    """Refuse (ValueError) a count of things built up front above `limit`."""
    if count > limit:
        raise ValueError(f"{what}: {count:.3g} exceeds the limit of {limit:,}{'; ' + hint if hint else ''}")
