"""An animated SVG of one ride-dispatch episode (games.dispatch): the street grid, every vehicle
moving and coloured by its passengers on board, the open orders' pickup points, the assignments
of each decision flashing as vehicle -> pickup lines, and a step counter with the served and
dropped orders. SMIL animation, no script, looping, as games.mapf_render (same pace, so the HTML
report's step slider fits).

Small for a large fleet: one <circle> per vehicle whose positions are one `values` list of an
animateTransform (vehicles that never move have none), its colour a discrete animation at the
steps it changes only; the orders and the assignment lines are one <path> per step, shown during
that step."""

from __future__ import annotations

from typing import Any

import numpy as np

from equilibria.games.mapf_render import SECONDS_PER_STEP, _escape

SIZE = 720  # pixels of the city's longer side
MARGIN = 10
CAPTION = 44  # pixels below the map: the title line, the step counter and the legend
LEGEND = 310  # pixels of the legend's width
PASSENGER_COLOURS = ("#aaa", "#eb0", "#e70", "#c22")  # 0, 1, 2, 3 passengers on board
ORDER_COLOUR, ASSIGN_COLOUR, STREET_COLOUR = "#1a7f37", "#1f6feb", "#dcdcdc"


def _time(k: int, steps: int) -> str:
    return f"{k / steps:.4f}".rstrip("0").rstrip(".") or "0"


def _keyed(values: list[str], steps: int, discrete: bool) -> tuple[str, str | None]:
    """A track of one value per frame (frames k at times k / steps): the `values` list alone, or
    with `keyTimes` at the frames that matter when that is shorter (where the value changes: a
    discrete track keeps its changes, a linear one the ends of every still spell)."""
    n = len(values)
    if discrete:
        keep = [k for k in range(n) if k == 0 or values[k] != values[k - 1]]
    else:
        keep = [k for k in range(n) if k in (0, n - 1) or values[k] != values[k - 1] or values[k] != values[k + 1]]
    full = ";".join(values)
    if len(keep) == n:
        return full, None
    short, times = ";".join(values[k] for k in keep), ";".join(_time(k, steps) for k in keep)
    return (short, times) if len(short) + len(times) + 12 < len(full) else (full, None)


def _shown_during(step: int, steps: int, dur: str) -> str:
    """An opacity animation showing its element during step `step` (between frames step and step + 1)."""
    if step == 0:
        values, times = "1;0", f"0;{_time(1, steps)}"
    else:
        values, times = "0;1;0", f"0;{_time(step, steps)};{_time(step + 1, steps)}"
    return (f'<animate attributeName="opacity" values="{values}" keyTimes="{times}" dur="{dur}" calcMode="discrete" '
            f'repeatCount="indefinite"/>')


def episode_svg(record: dict[str, Any], title: str = "") -> str:
    """`record` as games.dispatch_platform.record_episode writes it: the city (`xy` [n, 2] metres,
    `edges` [M, 2]), frames t = 0..T of `positions` [T + 1, N, 2] metres, `onboard` [T + 1, N] and
    `orders` (T + 1 arrays [M_t, 2]: open pickups), and per decision `assignments` [A_t, 2, 2],
    `served`, `dropped` (cumulative) and `capacity`."""
    xy = np.asarray(record["xy"], dtype=np.float64)
    pos, onboard = np.asarray(record["positions"], dtype=np.float64), np.asarray(record["onboard"])
    steps, n = pos.shape[0] - 1, pos.shape[1]
    lo, hi = xy.min(0), xy.max(0)
    scale = SIZE / max(float((hi - lo).max()), 1.0)
    width = int(round((hi[0] - lo[0]) * scale)) + 2 * MARGIN
    height = int(round((hi[1] - lo[1]) * scale)) + 2 * MARGIN

    def px(points: np.ndarray) -> np.ndarray:  # metres -> integer pixels, north up
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return np.stack([np.rint(MARGIN + (p[:, 0] - lo[0]) * scale),
                         np.rint(MARGIN + (hi[1] - p[:, 1]) * scale)], axis=1).astype(np.int64)

    edges = np.asarray(record["edges"], dtype=np.int64).reshape(-1, 2)
    ends = px(xy)
    block = float(np.median(np.linalg.norm(ends[edges[:, 0]] - ends[edges[:, 1]], axis=1))) if len(edges) else 20.0
    radius = float(np.clip(0.22 * block, 2.0, 6.0))
    dur = f"{max(steps, 1) * SECONDS_PER_STEP:.2f}s"
    served, dropped = list(record.get("served", [])), list(record.get("dropped", []))
    caption = title
    if served:
        caption += f"  -  {served[-1]} orders served, {dropped[-1]} dropped in {steps} steps"
    full = max(width, LEGEND + 260)  # room for the step counter and the legend below a narrow city
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{full}" height="{height + CAPTION}" '
           f'viewBox="0 0 {full} {height + CAPTION}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="#f7f7f7"/>']
    a, b = ends[edges[:, 0]], ends[edges[:, 1]]
    streets = "".join(f"M{x0} {y0}L{x1} {y1}" for (x0, y0), (x1, y1) in zip(a.tolist(), b.tolist()))
    out.append(f'<path d="{streets}" stroke="{STREET_COLOUR}" stroke-width="{max(1.0, radius * 0.6):.1f}" fill="none"/>')
    # each decision's assignments: vehicle -> pickup, shown during that step
    for t, lines in enumerate(record.get("assignments", [])[:steps]):
        p = px(np.asarray(lines).reshape(-1, 2))
        if not len(p):
            continue
        d = "".join(f"M{x0} {y0}L{x1} {y1}" for (x0, y0), (x1, y1) in zip(p[0::2].tolist(), p[1::2].tolist()))
        out.append(f'<path d="{d}" stroke="{ASSIGN_COLOUR}" stroke-width="1.5" fill="none" opacity="{int(t == 0)}">'
                   f'{_shown_during(t, steps, dur)}</path>')
    # the fleet: one circle each, its positions one translate list, its colour where it changes
    colours = np.asarray(PASSENGER_COLOURS)[np.clip(onboard, 0, len(PASSENGER_COLOURS) - 1)]
    tracks = px(pos).reshape(steps + 1, n, 2)
    out.append(f'<g fill="{PASSENGER_COLOURS[0]}">')
    for i in range(n):
        track = [f"{x} {y}" for x, y in tracks[:, i].tolist()]
        fill = colours[:, i].tolist()
        head = f'<circle r="{radius:.1f}" transform="translate({track[0]})"' + \
            (f' fill="{fill[0]}"' if fill[0] != PASSENGER_COLOURS[0] else "")
        body = []
        if len(set(track)) > 1:
            values, times = _keyed(track, steps, discrete=False)
            body.append(f'<animateTransform attributeName="transform" type="translate" values="{values}"'
                        + (f' keyTimes="{times}"' if times else "") + f' dur="{dur}" repeatCount="indefinite"/>')
        if len(set(fill)) > 1:
            values, times = _keyed(fill, steps, discrete=True)
            body.append(f'<animate attributeName="fill" values="{values}"' + (f' keyTimes="{times}"' if times else "")
                        + f' dur="{dur}" calcMode="discrete" repeatCount="indefinite"/>')
        out.append(f"{head}>{''.join(body)}</circle>" if body else f"{head}/>")
    out.append("</g>")
    # open orders at each step's decision: hollow squares at the pickup points
    half = max(2, int(round(radius)))
    for t, points in enumerate(record.get("orders", [])[:steps]):
        p = px(points)
        if not len(p):
            continue
        d = "".join(f"M{x - half} {y - half}h{2 * half}v{2 * half}h-{2 * half}z" for x, y in p.tolist())
        out.append(f'<path d="{d}" stroke="{ORDER_COLOUR}" stroke-width="1.2" fill="none" opacity="{int(t == 0)}">'
                   f'{_shown_during(t, steps, dur)}</path>')
    out.append(f'<text x="4" y="{height + 16}" font-size="12">{_escape(caption)}</text>')
    # the step counter: during step t (numbered as the HTML report's slider) the totals after decision t
    for t in range(min(steps, len(served))):
        out.append(f'<text x="4" y="{height + 36}" font-size="12" opacity="{int(t == 0)}">step {t} / {steps}: '
                   f'{served[t]} served, {dropped[t]} dropped{_shown_during(t, steps, dur)}</text>')
    out.append(_legend(full - LEGEND, height + 32, int(record.get("capacity", len(PASSENGER_COLOURS) - 1))))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(x: int, y: int, capacity: int) -> str:
    parts = [f'<text x="{x}" y="{y + 4}" font-size="11">on board:</text>']
    for k in range(capacity + 1):
        cx = x + 58 + 26 * k
        parts.append(f'<circle cx="{cx}" cy="{y}" r="4" fill="{PASSENGER_COLOURS[k]}"/>'
                     f'<text x="{cx + 7}" y="{y + 4}" font-size="11">{k}</text>')
    x += 58 + 26 * (capacity + 1) + 6
    parts.append(f'<rect x="{x}" y="{y - 4}" width="8" height="8" fill="none" stroke="{ORDER_COLOUR}"/>'
                 f'<text x="{x + 12}" y="{y + 4}" font-size="11">order</text>')
    x += 52
    parts.append(f'<path d="M{x} {y}h16" stroke="{ASSIGN_COLOUR}" stroke-width="1.5"/>'
                 f'<text x="{x + 20}" y="{y + 4}" font-size="11">assigned</text>')
    return "".join(parts)


__all__ = ["episode_svg"]
