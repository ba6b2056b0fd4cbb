"""The `equilibria` command line. A thin layer: every command calls the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

EXIT_USAGE = 2


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _fmt(x: float) -> str:
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def list_games(console: Console) -> None:
    import games

    table = Table(title="registered games", show_lines=False)
    for col in ("name", "players", "dynamics", "chance", "information", "utility", "utility range",
                "max length", "actions", "description"):
        table.add_column(col)
    for name in games.registered():
        entry = games.registry.entry(name)
        try:
            info = games.load(_example_spec(name)).info
        except Exception as err:  # a game that fails to build still gets listed, with the reason
            table.add_row(name, "?", "?", "?", "?", "?", "?", "?", "?", f"(unavailable: {err})")
            continue
        actions = str(info.num_distinct_actions) if info.action_type == "discrete" else "text"
        chance = "sampled" if info.sampled_chance else ("yes" if info.chance else "no")
        table.add_row(name, str(info.num_players), info.dynamics, chance, info.information, info.utility,
                      f"[{_fmt(info.min_utility)}, {_fmt(info.max_utility)}]", str(info.max_game_length),
                      actions, entry.description)
    console.print(table)


def _example_spec(name: str) -> str:
    """Games with required parameters are listed through a representative instance."""
    return {"matrix": "matrix(row=[[1, -1], [-1, 1]])", "openspiel": "openspiel(game=kuhn_poker)"}.get(name, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equilibria", description="Game-theoretic and multi-agent learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list registered games, solvers, scenarios or kinds")
    p_list.add_argument("what", nargs="?", default="games", choices=["games"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = _console()
    if args.command == "list":
        list_games(console)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
