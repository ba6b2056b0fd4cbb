"""Game records written by the engine (games.engine.play_game), read back and rendered.

`load_replay(path)` checks the file and its format; `render(record)` asks the recorded game for
its own transcript (`game.replay_lines(record, prompts)`, e.g. Werewolf's night/day account)
and falls back to a generic decision-by-decision listing for games that have none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape

from equilibria.games.engine import REPLAY_FORMAT


class ReplayError(ValueError):
    pass


def load_replay(path: Path, limit: int = 64 << 20) -> dict[str, Any]:
    path = Path(path)
    try:
        if not path.is_file():
            raise ReplayError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
        if path.stat().st_size > limit:
            raise ReplayError(f"{path}: larger than {limit >> 20} MB, not a replay")
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReplayError(f"{path}: not a JSON replay ({err})") from None
    if not isinstance(data, dict) or data.get("format") != REPLAY_FORMAT:
        raise ReplayError(f"{path}: not a game replay (expected format {REPLAY_FORMAT!r})")
    for key in ("game", "players", "turns", "outcome"):
        if key not in data:
            raise ReplayError(f"{path}: replay is missing {key!r}")
    return data


def render(record: dict[str, Any], prompts: bool = False) -> list[str]:
    """Lines of rich markup: the game's own transcript, or the generic one."""
    from equilibria import games

    try:
        game = games.load(record["game"])
    except ValueError:
        game = None
    own = getattr(game, "replay_lines", None)
    return own(record, prompts) if own is not None else generic_lines(record, prompts)


def generic_lines(record: dict[str, Any], prompts: bool = False) -> list[str]:
    players = {p["seat"]: p for p in record["players"]}
    lines = [f"[bold]{escape(str(record['game']))}[/bold], seed {record['seed']}, {len(players)} players"]
    lines += [f"  seat {s}: {escape(str(p['agent']))}" for s, p in players.items()]
    for i, t in enumerate(record["turns"]):
        fb = " [red](fallback)[/red]" if t["fallback"] else ""
        lines.append(f"{i:4d}  seat {t['seat']} ({escape(str(t['agent']))}): {escape(repr(t['action']))}{fb}")
        if prompts:
            lines += decision_lines(t)
    returns = ", ".join(f"{r:+g}" for r in record["outcome"]["returns"])
    lines.append(f"\n[bold]returns[/bold] {returns}; {record.get('fallbacks', 0)} fallback(s); "
                 f"{record.get('seconds', 0.0):.2f} s")
    return lines


def decision_lines(t: dict[str, Any]) -> list[str]:
    """Every attempt of one decision: the prompt (if recorded), the raw answer, the refusal."""
    out = []
    for i, a in enumerate(t["attempts"], 1):
        if "prompt" in a:
            out.append(f"[dim]{escape(a['prompt'])}[/dim]")
        out.append(f"  attempt {i}: {escape(repr(a.get('raw')))}"
                   + (f" [red]refused: {escape(a['error'])}[/red]" if a.get("error") else ""))
    return out
