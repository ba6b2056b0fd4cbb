"""Shared test helpers, and numerics pinned before torch loads.

Sampled training amplifies rounding differences: one flipped multinomial draw changes every
later step. ATen picks its vector kernels (AVX-512, AVX2, ...) and MKL its code path by the
CPU, so the same seeded run used to end at different numbers on different x86-64 machines
(a Nash-MD test ended at DG_beta 0.108, 0.205, 0.218 or 0.299 depending only on the kernel
set). Pinning ATen to its AVX2 kernels and MKL to its conditional-numerical-reproducibility
"COMPATIBLE" branch makes the results the same on any x86-64 machine with AVX2.
"""

import os
import platform

if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

import pytest  # noqa: E402

from equilibria.common.yamlio import dump_yaml, load_yaml  # noqa: E402


@pytest.fixture
def extend_run():
    """Raise a finished run's budget in its config.yaml, so `--resume` continues it:
    extend_run(run_dir, "budget", "iterations", value=8)."""

    def extend(run_dir, *keys, value):
        path = run_dir / "config.yaml"
        cfg, _ = load_yaml(path.read_text(), str(path))
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        path.write_text(dump_yaml(cfg))

    return extend
