"""Werewolf's replay transcript (`equilibria replay FILE`): an omniscient night/day account with
every player's role and agent, fallbacks marked, and optionally each prompt and raw answer."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from equilibria.games.replay import decision_lines
from equilibria.games.werewolf import player_name


def transcript(record: dict[str, Any], prompts: bool = False) -> list[str]:
    """Lines of rich markup: who held which role, each night and day, the winner."""
    players = record["players"]
    who = {p["seat"]: f"{escape(str(p['name']))} [dim]({p['role']}, {escape(str(p['agent']))})[/dim]" for p in players}
    short = {p["seat"]: f"{escape(str(p['name']))} ({p['role']})" for p in players}
    fallback_turns = {(t["round"], t["phase"], t["seat"]): t for t in record["turns"]}
    lines = [f"[bold]Werewolf[/bold], seed {record['seed']}, {len(players)} players"]
    lines += [f"  {who[p['seat']]}" for p in players]
    section = None

    def mark(e: dict[str, Any]) -> str:
        t = fallback_turns.get((e["round"], e["phase"], e.get("player")))
        return " [red][fallback][/red]" if t is not None and t["fallback"] else ""

    for e in record["events"]:
        kind, r = e["type"], e["round"]
        header = None
        if kind in ("proposal", "night_victim", "inspection", "protection"):
            header = f"Night {r}"
        elif kind in ("death", "no_death", "speech", "votes", "tie", "no_elimination"):
            header = f"Day {r}"
        if header and header != section:
            section = header
            lines.append(f"\n[bold cyan]── {header} ──[/bold cyan]")
        if kind == "proposal":
            lines.append(f"  {short[e['player']]} proposes to kill {short[e['target']]}{mark(e)}")
        elif kind == "night_victim":
            lines.append(f"  the werewolves choose {short[e['target']]}")
        elif kind == "inspection":
            verdict = "[red]a werewolf[/red]" if e["werewolf"] else "not a werewolf"
            lines.append(f"  {short[e['player']]} inspects {short[e['target']]}: {verdict}{mark(e)}")
        elif kind == "protection":
            lines.append(f"  {short[e['player']]} protects {short[e['target']]}{mark(e)}")
        elif kind == "death":
            how = "killed in the night" if e["cause"] == "night" else "voted out"
            lines.append(f"  [bold]{short[e['player']]} is {how}[/bold]")
        elif kind == "no_death":
            lines.append("  nobody died in the night")
        elif kind == "speech":
            lines.append(f"  {short[e['player']]}: “{escape(e['text'])}”{mark(e)}")
        elif kind == "votes":
            for p, v in e["votes"].items():
                t = fallback_turns.get((r, "day_vote", int(p)))
                fb = " [red][fallback][/red]" if t is not None and t["fallback"] else ""
                lines.append(f"  vote: {player_name(int(p))} -> {'abstain' if v is None else player_name(v)}{fb}")
        elif kind == "tie":
            lines.append("  tie between " + ", ".join(player_name(s) for s in e["players"]))
        elif kind == "no_elimination":
            lines.append("  nobody is voted out")
    out = record["outcome"]
    lines.append(f"\n[bold]{out['winner']} win[/bold] after {out['rounds']} round(s); "
                 f"{record.get('fallbacks', 0)} fallback(s); {record.get('seconds', 0.0):.2f} s")
    if prompts:
        lines.append("\n[bold]Decisions[/bold]")
        for t in record["turns"]:
            lines.append(f"[bold]{t['phase']} {t['round']}, {short[t['seat']]}, {t['agent']}[/bold] -> "
                         f"{t['action']!r}{' [red](fallback)[/red]' if t['fallback'] else ''}")
            lines += decision_lines(t)
    return lines

