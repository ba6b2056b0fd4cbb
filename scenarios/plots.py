"""Figure and table helpers shared by the scenario kinds: headless pyplot, saving, the two
charts several kinds draw (a matrix heatmap with its values written in, bars with intervals),
and the one way an estimate with its interval is written in tables and logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MIN_INTERVAL_SAMPLES = 5  # fewer independent samples (matches, episodes) give no interval worth printing


def interval_text(value: float, lo: float, hi: float, n: int, fmt: str = "{:.3f}", unit: str = "matches",
                  min_samples: int = MIN_INTERVAL_SAMPLES) -> str:
    """'0.412 [0.371, 0.455]', or the value and why there is no interval ('interval n/a: 3
    matches, needs at least 5') -- never 'nan'."""
    if not np.isfinite(value):
        return f"n/a (no {unit})" if n == 0 else "n/a"
    if n < min_samples or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt.format(value)} (interval n/a: {n} {unit}, needs at least {min_samples})"
    return f"{fmt.format(value)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive backend (runs without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path, dpi: int = 110) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def heatmap(fig: Any, ax: Any, values: np.ndarray, rows: Sequence[str], cols: Sequence[str], *,
            signed: bool = True, fmt: str = "{:+.2f}", annotate: bool = True) -> None:
    """`values[i, j]` as colours (red-blue around zero when signed, 0..1 otherwise), written in
    each cell when `annotate`; nan cells stay blank."""
    v = np.asarray(values, dtype=np.float64)
    if signed:
        lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
        im = ax.imshow(v, cmap="RdBu", vmin=-(lim or 1.0), vmax=lim or 1.0)
    else:
        im = ax.imshow(v, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(map(len, cols), default=0) > 3 else 0, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    if annotate:
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if np.isfinite(v[i, j]):
                    ax.text(j, i, fmt.format(v[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if not signed and v[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)


def interval_bars(ax: Any, labels: Sequence[str], values: Sequence[float], lo: Sequence[float],
                  hi: Sequence[float], colors: Sequence[str] | None = None) -> None:
    """Horizontal bars, top to bottom in the given order, with [lo, hi] error bars."""
    y = np.arange(len(labels))
    v = np.asarray(values, dtype=np.float64)
    err = np.array([v - np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64) - v])
    ax.barh(y, v, xerr=np.nan_to_num(err), capsize=3, color=colors if colors is not None else "#3b75af")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)
