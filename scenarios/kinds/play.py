"""Scenario kind `play`: N games of Werewolf between agents (scripted, language models, humans),
win rates by side and by agent with 95% confidence intervals, a JSON replay per game.

Seats are re-drawn every game (seeded), so each agent plays every role in proportion. One
metrics row per game; a resumed run skips the games already in metrics.csv and plays the rest
with the same seeds, so the totals equal an uninterrupted run's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, Probability, count, suggest
from equilibria.scenarios.core import Interrupted, RunContext, RunFailed, Scenario, load_game, register_kind
from equilibria.scenarios.plots import interval_bars, interval_text, pyplot, save
from equilibria.solvers.ratings import wilson

Seats = count(64)


class AgentEntry(Config):
    name: str
    """the agent's name in tables, plots and replays"""
    type: str
    """random | rule | human | transformers | smollm2 | openai"""
    count: Seats = 1
    """seats this agent fills"""
    config: dict = Field(default_factory=dict)
    """the agent's settings, e.g. {base_url, model, api_key_env} for openai"""

    def check(self) -> None:
        from equilibria.llm_agents.werewolf_agents import AGENT_TYPES

        if self.type not in AGENT_TYPES:
            raise ValueError(f"type: unknown agent type {self.type!r}{suggest(self.type, AGENT_TYPES)} "
                             f"(types: {', '.join(AGENT_TYPES)})")


class PlayConfig(Config):
    agents: Annotated[list[AgentEntry], Field(min_length=1, max_length=64)]
    """who plays, and how many seats each fills"""
    games: count(10_000_000) = 100
    """games to play, seats re-drawn each game"""
    max_retries: Annotated[int, Field(ge=0, le=100)] = 2
    """re-asks after an unparseable or illegal answer, before the fallback"""
    replays: Literal["all", "none"] = "all"
    """a JSON replay per game in replays/"""
    max_fallback_rate: Probability = 0.1
    """an agent whose answers fell back more often than this is reported and the run exits with status 1
    (1.0 allows any rate)"""

    def check(self) -> None:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError("agents: names must be unique")


def _build_agents(scenario: Scenario) -> list[tuple[str, Any]]:
    from equilibria.llm_agents.werewolf_agents import make_agent

    out = []
    for i, entry in enumerate(scenario.config.agents):
        for _ in range(entry.count):
            try:
                out.append((entry.name, make_agent({"type": entry.type, **entry.config})))
            except (TypeError, ValueError, FileNotFoundError) as err:
                raise scenario.error(str(err), "agents", str(i)) from None
    return out


@register_kind("play", PlayConfig, description="games of Werewolf between agents: win rates, replays")
def run_play(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    from equilibria.games.werewolf import WEREWOLF, Werewolf
    from equilibria.llm_agents.protocol import AgentUnavailable, GameStopped, play_game
    from equilibria.scenarios.core import atomic_write_bytes

    game = load_game(scenario)
    if not isinstance(game, Werewolf):
        raise scenario.error(f"the play kind runs Werewolf games; {game.info.name} is not one", "game")
    cfg = scenario.config
    seats = sum(a.count for a in cfg.agents)
    if seats != game.num_players:
        raise scenario.error(f"the agents fill {seats} seats but the game has {game.num_players} players", "agents")
    if scenario.backend != "local":
        raise scenario.error("the play kind runs with backend 'local'", "backend")
    names = [a.name for a in cfg.agents]
    from equilibria.llm_agents.werewolf_agents import check_agent_spec

    for i, entry in enumerate(cfg.agents):
        try:
            check_agent_spec({"type": entry.type, **entry.config})
        except (TypeError, ValueError) as err:
            raise scenario.error(str(err), "agents", str(i), "config") from None
    ctx.begin()
    agents = _build_agents(scenario)
    (ctx.run_dir / "replays").mkdir(exist_ok=True)
    done = {int(r["game"]) for r in ctx.read_rows()} if ctx.resume_dir is not None else set()
    if done:
        ctx.log(f"resumed {ctx.run_dir}: {len(done)} of {cfg.games} games already played")
    with ctx.interruptible(), ctx.progress(cfg.games, scenario.name) as update:
        for g in range(cfg.games):
            if g in done:
                continue
            seed = int(np.random.SeedSequence([scenario.seed, g]).generate_state(1)[0])
            order = np.random.default_rng([seed, 7]).permutation(len(agents))
            seated = [agents[i] for i in order]
            try:
                record = play_game(game, [a for _, a in seated], seed, cfg.max_retries, labels=[n for n, _ in seated],
                                   stop=lambda: ctx.stop_requested)
            except GameStopped:  # Ctrl-C / SIGTERM between two decisions: the finished games are kept
                raise Interrupted(ctx.run_dir, len(ctx.read_rows())) from None
            except AgentUnavailable as err:
                raise RunFailed(f"game {g}: {err}; the {len(ctx.read_rows())} finished games are kept in "
                                f"{ctx.run_dir} (resume with: equilibria run --resume {ctx.run_dir})") from None
            if cfg.replays == "all":
                atomic_write_bytes(ctx.run_dir / "replays" / f"game_{g:05d}.json", json.dumps(record, indent=1).encode())
            row: dict[str, Any] = {"game": g, "seed": seed, "winner": record["outcome"]["winner"],
                                   "rounds": record["outcome"]["rounds"], "seconds": round(record["seconds"], 4),
                                   "fallbacks": record["fallbacks"]}
            returns = record["outcome"]["returns"]
            for name in names:
                mine = [s for s, (label, _) in enumerate(seated) if label == name]
                turns = [t for t in record["turns"] if t["seat"] in mine]
                row[f"seats_{name}"] = len(mine)
                row[f"wins_{name}"] = sum(returns[s] > 0 for s in mine)
                row[f"werewolf_seats_{name}"] = sum(record["players"][s]["role"] == WEREWOLF for s in mine)
                row[f"decisions_{name}"] = len(turns)
                row[f"fallbacks_{name}"] = sum(t["fallback"] for t in turns)
                attempts = [a.get("tokens", {}) for t in turns for a in t["attempts"]]
                row[f"tokens_{name}"] = sum(u.get("completion_tokens") or 0 for u in attempts)
                # generation time only: scored choices take model time but generate no tokens
                row[f"model_seconds_{name}"] = round(sum(u.get("seconds", 0.0) for u in attempts
                                                         if "scored_tokens" not in u), 4)
            ctx.log_metrics(row)
            update(g + 1, f"game {g}: {row['winner']} win (replays/game_{g:05d}.json)")
            if ctx.stop_requested and g + 1 < cfg.games:
                raise Interrupted(ctx.run_dir, g + 1)
    return _report(ctx, scenario, names)


def _report(ctx: RunContext, scenario: Scenario, names: list[str]) -> dict[str, Any]:
    rows = ctx.read_rows()  # strings: the winner column is text
    n = len(rows)
    out: dict[str, Any] = {"games": n}
    table = ["| who | games or seats | win rate [95% CI] | fallbacks per decision | tokens/s |", "|---|---|---|---|---|"]
    bars = []
    for side in ("werewolves", "villagers", "draw"):
        k = sum(r["winner"] == side for r in rows)
        p, lo, hi = wilson(k, n)
        out[f"{side}_win_rate"] = p
        table.append(f"| side: {side} | {n} | {interval_text(p, lo, hi, n, unit='games', min_samples=1)} | | |")
        bars.append((f"side: {side}", p, lo, hi))
    for name in names:
        seats = sum(int(r[f"seats_{name}"]) for r in rows)
        wins = sum(int(r[f"wins_{name}"]) for r in rows)
        decisions = sum(int(r[f"decisions_{name}"]) for r in rows)
        fallbacks = sum(int(r[f"fallbacks_{name}"]) for r in rows)
        tokens = sum(int(r[f"tokens_{name}"]) for r in rows)
        model_s = sum(float(r[f"model_seconds_{name}"]) for r in rows)
        p, lo, hi = wilson(wins, seats)
        out[f"win_rate_{name}"] = p
        out[f"fallback_rate_{name}"] = fallbacks / decisions if decisions else 0.0
        tps = f"{tokens / model_s:.1f}" if model_s > 0 else ""
        if model_s > 0:
            out[f"tokens_per_second_{name}"] = tokens / model_s
        table.append(f"| agent: {name} | {seats} | {interval_text(p, lo, hi, seats, unit='seats', min_samples=1)} | "
                     f"{out[f'fallback_rate_{name}']:.3f} | {tps} |")
        if decisions and fallbacks / decisions > scenario.config.max_fallback_rate:
            ctx.alarm(f"{name}'s answers fell back to the legal default in {fallbacks / decisions:.0%} of {decisions} "
                      f"decisions (max_fallback_rate {scenario.config.max_fallback_rate:g}): its results measure the "
                      "fallback, not the agent")
        bars.append((f"agent: {name}", p, lo, hi))
    (ctx.run_dir / "results.md").write_text("\n".join(table) + "\n")
    ctx.log("\n".join(table))
    _plot(ctx, scenario, bars, n)
    return out


def _plot(ctx: RunContext, scenario: Scenario, bars: list[tuple[str, float, float, float]], games: int) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 0.45 * len(bars) + 1.5))
    interval_bars(ax, [b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars], [b[3] for b in bars],
                  colors=["#7a7a7a" if b[0].startswith("side") else "#3b75af" for b in bars])
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate (95% Wilson interval)")
    ax.set_title(f"{scenario.name}: {games} games", fontsize=10)
    save(fig, ctx.plot_path("win_rates.png"))
