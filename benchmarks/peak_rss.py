"""Peak resident memory of this process, measured from a chosen point (benchmarks' memory per agent)."""

from __future__ import annotations

import resource


def maxrss_kib() -> int:
    """This process's peak RSS in KiB: VmHWM, the high-water mark of its own memory map. getrusage's
    ru_maxrss is not used where VmHWM exists: Linux folds the parent's peak at fork/exec into it, so a
    child of a big process starts with the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Lower the peak-RSS mark to the current RSS (Linux clear_refs 5), so that it grows from here rather
    than from the transient peak of imports and warm-up; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
