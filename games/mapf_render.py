"""An animated SVG of one lifelong MAPF episode: the map, every agent moving (SMIL animation, no
script, opens in any browser) and each agent's current target in its colour, looping."""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

CELL = 14  # pixels per cell
SECONDS_PER_STEP = 0.25


def _colour(i: int, n: int) -> str:
    r, g, b = colorsys.hsv_to_rgb((i * 0.61803398875) % 1.0, 0.75, 0.9)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _values(track: np.ndarray) -> str:
    return ";".join(str(int(v)) for v in track)


def episode_svg(record: dict[str, Any], title: str = "") -> str:
    """`record`: obstacles [H, W], positions and targets [T + 1, N, 2] (row, column) per step,
    and optionally throughput (targets reached per step, for the caption)."""
    obstacles = np.asarray(record["obstacles"])
    pos, tgt = np.asarray(record["positions"]), np.asarray(record["targets"])
    h, w = obstacles.shape
    steps, n = pos.shape[0], pos.shape[1]
    dur = f"{max(steps - 1, 1) * SECONDS_PER_STEP:.2f}s"
    # targets jump, agents glide: both keyed to the same step times k / (steps - 1)
    key_times = ";".join(f"{k / max(steps - 1, 1):.5f}" for k in range(steps))
    caption = title
    if "reached" in record:
        caption += f"  -  {int(np.sum(record['reached']))} targets in {steps - 1} steps"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * CELL}" height="{h * CELL + 22}" '
           f'viewBox="0 0 {w * CELL} {h * CELL + 22}" font-family="sans-serif">',
           f'<rect width="{w * CELL}" height="{h * CELL}" fill="#f7f7f7"/>']
    blocks = "".join(f"M{c * CELL},{r * CELL}h{CELL}v{CELL}h-{CELL}z" for r, c in zip(*np.nonzero(obstacles)))
    out.append(f'<path d="{blocks}" fill="#3a3a3a"/>')
    for i in range(n):
        colour = _colour(i, n)
        tx, ty = tgt[:, i, 1] * CELL + CELL // 4, tgt[:, i, 0] * CELL + CELL // 4
        out.append(f'<rect x="{tx[0]}" y="{ty[0]}" width="{CELL // 2}" height="{CELL // 2}" fill="none" '
                   f'stroke="{colour}" stroke-width="1.5">'
                   f'<animate attributeName="x" values="{_values(tx)}" keyTimes="{key_times}" dur="{dur}" '
                   f'calcMode="discrete" repeatCount="indefinite"/><animate attributeName="y" values="{_values(ty)}" '
                   f'keyTimes="{key_times}" dur="{dur}" calcMode="discrete" repeatCount="indefinite"/></rect>')
        cx, cy = pos[:, i, 1] * CELL + CELL // 2, pos[:, i, 0] * CELL + CELL // 2
        out.append(f'<circle cx="{cx[0]}" cy="{cy[0]}" r="{CELL * 0.4:.1f}" fill="{colour}">'
                   f'<animate attributeName="cx" values="{_values(cx)}" dur="{dur}" repeatCount="indefinite"/>'
                   f'<animate attributeName="cy" values="{_values(cy)}" dur="{dur}" repeatCount="indefinite"/>'
                   f'</circle>')
    out.append(f'<text x="4" y="{h * CELL + 16}" font-size="12">{_escape(caption)}</text></svg>')
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["episode_svg"]
