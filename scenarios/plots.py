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
                  min_samples: int = MIN_INTERVAL_SAMPLES, missing: str = "the resamples could not estimate it") -> str:
    """'0.412 [0.371, 0.455]', or the value and why there is no interval ('interval n/a: 3
    matches, needs at least 5'; `missing` says why when there are enough) -- never 'nan'."""
    if not np.isfinite(value):
        return f"n/a (no {unit})" if n == 0 else "n/a"
    if n < min_samples:
        return f"{fmt.format(value)} (interval n/a: {n} {unit}, needs at least {min_samples})"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt.format(value)} (interval n/a: {missing})"
    return f"{fmt.format(value)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def plus_minus_text(mean: float, half_width: float, n: int, fmt: str = "{:.3f}", unit: str = "episodes") -> str:
    """'-16.512 ± 0.310' (a symmetric interval's half-width), or interval_text's reason when there
    is no interval worth printing."""
    if np.isfinite(mean) and np.isfinite(half_width) and n >= MIN_INTERVAL_SAMPLES:
        return f"{fmt.format(mean)} ± {fmt.format(half_width)}"
    return interval_text(mean, mean - half_width, mean + half_width, n, fmt, unit)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive backend (runs without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def major_log_labels(ax: Any) -> None:
    """Readable log axes: decades only when an axis spans two or more, else 1-2-5 steps written
    as plain numbers (matplotlib's own minor labels on short spans run into each other)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, scale, limits in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log":
            continue
        lo, hi = sorted(limits)
        if lo > 0 and np.log10(hi / lo) < 2:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            axis.set_major_locator(LogLocator(base=10, numticks=12))
        axis.set_minor_formatter(NullFormatter())


def save(fig: Any, path: Path, dpi: int = 110) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def heatmap(fig: Any, ax: Any, values: np.ndarray, rows: Sequence[str], cols: Sequence[str], *, label: str,
            signed: bool = True, fmt: str = "{:+.2f}", annotate: bool = True) -> None:
    """`values[i, j]` as colours (red-blue around zero when signed, 0..1 otherwise), written in
    each cell when `annotate` (white on dark cells); nan cells (never played) stay grey with a
    dash. `label` names the colour scale."""
    import matplotlib

    v = np.asarray(values, dtype=np.float64)
    cmap = matplotlib.colormaps["RdBu" if signed else "viridis"].with_extremes(bad="#d9d9d9")
    if signed:
        lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
        norm = matplotlib.colors.Normalize(-(lim or 1.0), lim or 1.0)
    else:
        norm = matplotlib.colors.Normalize(0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(v), cmap=cmap, norm=norm)
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(map(len, cols), default=0) > 3 else 0, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    if annotate:
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if not np.isfinite(v[i, j]):
                    ax.text(j, i, "-", ha="center", va="center", fontsize=8, color="#666666")
                    continue
                r, g, b, _ = cmap(norm(v[i, j]))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, fmt.format(v[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)


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
