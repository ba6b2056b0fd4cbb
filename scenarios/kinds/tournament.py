"""Scenario kind `tournament`: a lineup (solver snapshots, scripted bots, trained MARL runs,
scripted Werewolf players, language models, people) meets in matches played by the one game
engine, whose results go to SQLite in the run directory.

Two-player games, rotated seats: round robin, ranked by Nash-averaged return (Balduzzi et al.
2018): each entry's mean return against the meta-Nash mixture of the empirical meta-game.
Win-count ratings (Bradley-Terry, Elo with uncertainty) are reported beside it; in poker they
reward winning many small pots (always-bet tops them in Kuhn) and do not follow
exploitability, while the Nash average does.

More players, `seating: draw` (every seat drawn from the lineup) or `seating: fixed` (the same
entries every match, `seats` each, shuffled over the seats; what `kind: play` used to be):
there is no meta-game to solve; entries are ranked by role-adjusted win rate when the game
deals roles (win rate per role re-weighted to the overall role mix, so the luck of the deal
cancels) and by mean return otherwise, with win rates, Bradley-Terry strengths from
seat-vs-seat comparisons, fallback rates, tokens per second, and the win rate of each side
when the game names a winning side.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, Probability, count
from equilibria.common.executor import JobFailed, make_executor
from equilibria.common.limits import MAX_MATCHES, check_count
from equilibria.games.engine import AgentUnavailable
from equilibria.scenarios.lineup import LineupEntry, build_entry, check_entry, same_game, trained_run
from equilibria.scenarios.loading import Scenario, check_job_backend, load_game
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import heatmap, interval_bars, interval_text, markdown_table, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, RunFailed, atomic_write_bytes
from equilibria.scenarios.tournament import (
    AgentSpec,
    ResultsDB,
    draw_schedule,
    fixed_schedule,
    iter_matches,
    schedule,
)
from equilibria.solvers.ratings import wilson


class TournamentConfig(Config):
    lineup: Annotated[list[LineupEntry], Field(min_length=1, max_length=10_000)]
    """the entries"""
    seating: Literal["rotate", "draw", "fixed"] | None = None
    """rotate: round robin of distinct entries; draw: every seat drawn; fixed: the lineup's `seats` every
    match, shuffled (default: rotate for two players, draw for more)"""
    games_per_pairing: count(MAX_MATCHES) = 100
    """rotate: matches per ordered seat assignment"""
    games: count(MAX_MATCHES) = 1000
    """draw and fixed: matches"""
    batch: count(1_000_000) = 200
    """matches per job (a Ray task) and per database transaction"""
    max_retries: Annotated[int, Field(ge=0, le=100)] = 2
    """re-asks after a refused answer, before the legal fallback"""
    replays: Literal["none", "all"] = "none"
    """a JSON game record per match in replays/ (equilibria replay FILE renders one)"""
    max_fallback_rate: Probability = 0.1
    """an entry whose answers fell back more often than this is reported, and the run exits with status 1
    (1.0 allows any rate)"""

    def check(self) -> None:
        names = [e.name for e in self.lineup]
        if len(set(names)) != len(names):
            raise ValueError("lineup: entry names must be unique")


@dataclasses.dataclass
class TournamentPlan:
    scenario: Scenario
    game: Any
    seating: str
    runs: dict[int, Path]  # lineup index -> its train run directory


def prepare_tournament(scenario: Scenario) -> TournamentPlan:
    """Every check of a tournament, running no solver, loading no model or checkpoint."""
    check_job_backend(scenario, "tournaments")
    game = load_game(scenario)
    cfg = scenario.config
    runs: dict[int, Path] = {}
    for i, e in enumerate(cfg.lineup):
        check_entry(scenario, game, e, ("lineup", str(i)))
        if e.run is not None:
            runs[i] = _checked_run(scenario, game, e.run, i)
    seating = cfg.seating or ("rotate" if game.num_players == 2 else "draw")
    if seating == "rotate":
        if len(cfg.lineup) < game.num_players:
            raise scenario.error(f"rotated seats need at least {game.num_players} distinct entries for "
                                 f"{game.num_players} players, the lineup has {len(cfg.lineup)}; use seating: draw",
                                 "seating")
        seatings = math.perm(len(cfg.lineup), game.num_players)
        try:
            check_count("games_per_pairing", seatings * cfg.games_per_pairing, MAX_MATCHES,
                        f"{seatings:,} seat assignments x {cfg.games_per_pairing:,} matches each; the schedule is "
                        "built before the first match")
        except ValueError as err:
            raise scenario.error(str(err).partition(": ")[2], "games_per_pairing") from None
    elif seating == "fixed":
        seats = sum(e.seats for e in cfg.lineup)
        if seats != game.num_players:
            raise scenario.error(f"the lineup fills {seats} seats but the game has {game.num_players} players",
                                 "lineup")
    return TournamentPlan(scenario, game, seating, runs)


def _checked_run(scenario: Scenario, game: Any, run_dir: str, index: int) -> Path:
    """A train run directory, trained on this tournament's game."""
    path, trained_game = trained_run(scenario, run_dir, ("lineup", str(index)))
    if not same_game(trained_game, game):
        raise scenario.error(f"{path} was trained on {trained_game!r}, not on this tournament's game",
                             "lineup", str(index), "run")
    return path


def build_lineup(plan: TournamentPlan) -> list[Any]:
    """The entries as they play."""
    return [build_entry(e, plan.game, plan.runs.get(i)) for i, e in enumerate(plan.scenario.config.lineup)]


@register_kind("tournament", TournamentConfig, prepare=prepare_tournament,
               description="tournament between policies or agents: ratings, meta-game")
def run_tournament(plan: TournamentPlan, ctx: RunContext) -> dict[str, Any]:
    scenario, game, seating = plan.scenario, plan.game, plan.seating
    cfg = scenario.config
    names = [e.name for e in cfg.lineup]
    lineup = build_lineup(plan)
    if scenario.backend == "local":
        for i, entry in enumerate(lineup):  # fail before the first match (models load once, then cached)
            if isinstance(entry, AgentSpec):
                try:
                    entry.build()
                except (TypeError, ValueError, FileNotFoundError, ImportError) as err:
                    raise scenario.error(str(err), "lineup", str(i), "agent") from None
    if seating == "rotate":
        matches = schedule(len(lineup), game.num_players, cfg.games_per_pairing, scenario.seed)
    elif seating == "fixed":
        matches = fixed_schedule([e.seats for e in cfg.lineup], cfg.games, scenario.seed)
    else:
        matches = draw_schedule(len(lineup), game.num_players, cfg.games, scenario.seed)
    replay_dir = ctx.run_dir / "replays" if cfg.replays == "all" else None
    if replay_dir is not None:
        replay_dir.mkdir(exist_ok=True)
    db_path = ctx.run_dir / "results.sqlite"
    if ctx.resume_dir is not None and not db_path.exists():
        ctx.note(f"{db_path} is missing: all {len(matches)} matches will be played again")
    db = ResultsDB(db_path, fresh_hint=f"equilibria run --resume {ctx.run_dir} --fresh")
    try:
        ids = db.register(names, [json.dumps(e.model_dump()) for e in cfg.lineup])
        stored = {"n": len(db.finished())}
        if stored["n"]:
            ctx.log(f"resumed {ctx.run_dir}: {stored['n']} of {len(matches)} matches already played")
        executor = make_executor(scenario.backend, ctx.address)
        chunks = iter_matches(game, lineup, names, matches, db, ids, executor, chunk=cfg.batch,
                              stop=lambda: ctx.stop_requested, max_retries=cfg.max_retries, replay_dir=replay_dir)

        def step() -> dict[str, Any]:
            try:
                stored["n"] = next(chunks)
            except StopIteration:  # stopped early (Ctrl-C): the loop raises Interrupted
                if not ctx.stop_requested:
                    raise RuntimeError("the match schedule ended before every match was stored") from None
            return {"stored": stored["n"]}

        try:
            run_loop(ctx, label=scenario.name, total=len(matches), position=lambda: stored["n"], step=step,
                     describe=lambda r: f"{r['stored']} matches stored ({executor.name})")
        except JobFailed as err:
            raise scenario.error(f"{err}; the finished matches are stored, resume with --resume {ctx.run_dir}",
                                 "backend") from None
        except AgentUnavailable as err:
            raise RunFailed(f"{err}; the {len(db.finished())} finished matches are stored, resume with: "
                            f"equilibria run --resume {ctx.run_dir}") from None
        if seating == "rotate" and game.num_players == 2:
            return _two_player_report(ctx, scenario, game, lineup, names, db, len(matches))
        return _seat_report(ctx, scenario, game, names, db, len(matches))
    finally:
        db.close()


def _two_player_report(ctx: RunContext, scenario: Scenario, game: Any, lineup: list[Any], names: list[str],
                       db: Any, num_matches: int) -> dict[str, Any]:
    from equilibria import solvers
    from equilibria.solvers.ratings import bradley_terry, elo, meta_nash

    payoff, wins, pairs = db.results(names)
    strength = bradley_terry(wins)
    elo_mean, elo_sd = elo(pairs, len(names), seed=scenario.seed)
    nash = meta_nash(payoff, zero_sum=game.info.is_zero_sum)
    expl = []
    for p in lineup:
        try:
            expl.append(solvers.exploitability(game, p))
        except Exception:  # games without a compiled tree: exploitability is not computable
            expl.append(float("nan"))
    nash_avg = payoff @ nash  # return against the meta-Nash mixture
    played = (wins + wins.T) > 0  # rotated seats never pair an entry with itself
    mean_return = np.array([payoff[i, played[i]].mean() if played[i].any() else np.nan for i in range(len(names))])
    order = np.lexsort((-np.nan_to_num(mean_return), -np.round(nash_avg, 12)))
    rows = []
    for rank, i in enumerate(order, 1):
        rows.append({"rank": rank, "policy": names[i], "nash_averaged_return": float(nash_avg[i]),
                     "bt_strength": float(strength[i]), "elo": float(elo_mean[i]),
                     "elo_sd": float(elo_sd[i]), "meta_nash": float(nash[i]), "mean_return": float(mean_return[i]),
                     "exploitability": float(expl[i])})
    ctx.write_metrics(rows)  # the final table: a resumed finished run rewrites it, never appends
    table = markdown_table(["rank", "policy", "return vs meta-Nash", "BT strength", "Elo (sd)", "meta-Nash weight",
                    "mean return", "exploitability"],
                   [[str(r["rank"]), r["policy"], f"{r['nash_averaged_return']:+.4f}", f"{r['bt_strength']:.3f}",
                     f"{r['elo']:.0f} ({r['elo_sd']:.0f})", f"{r['meta_nash']:.3f}", f"{r['mean_return']:+.3f}",
                     f"{r['exploitability']:.4g}"] for r in rows])
    atomic_write_bytes(ctx.run_dir / "ranking.md", (table + "\n").encode())
    ctx.log(table)
    ranked = [names[i] for i in order]  # rows and columns in ranking order
    ranked_payoff = np.where(played, payoff, np.nan)[np.ix_(order, order)]
    atomic_write_bytes(ctx.run_dir / "payoff.json", json.dumps({  # the report's interactive heatmap
        "entries": ranked, "payoff": [[None if not np.isfinite(v) else float(v) for v in row] for row in ranked_payoff],
        "meta_nash": [float(nash[i]) for i in order], "label": "mean return of the row entry against the column"}).encode())
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.0 * len(names) + 1.5))
    heatmap(fig, ax, ranked_payoff, ranked, ranked,
            label="mean return of the row entry")
    ax.set_title(f"{scenario.name}: mean return of row vs column (rows ranked; '-' never played)", fontsize=9)
    save(fig, ctx.plot_path("payoff_heatmap.png"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2), sharey=True)
    y = np.arange(len(names))
    axes[0].barh(y, nash_avg[order], color="#3b75af")
    axes[0].axvline(0, color="#666666", lw=0.8)
    axes[0].set_xlabel("return against the meta-Nash mixture")
    axes[0].set_title("ranking: Nash averaging", fontsize=9)
    axes[1].errorbar(elo_mean[order], y, xerr=2 * elo_sd[order], fmt="o", capsize=3, color="#7a7a7a")
    axes[1].set_xlabel("Elo (mean, 2 sd over match orderings)")
    axes[1].set_title("Elo, for comparison (a win-count rating)", fontsize=9)
    axes[0].set_yticks(y, ranked)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"{scenario.name}: {num_matches} matches of {game.info.name}, entries in ranking order", fontsize=10)
    save(fig, ctx.plot_path("ratings.png"))
    finite = [r["exploitability"] for r in rows if np.isfinite(r["exploitability"])]
    return {"matches": num_matches, "top": rows[0]["policy"],
            "ranking": ",".join(r["policy"] for r in rows),
            "spearman_rank_vs_exploitability": _spearman(np.arange(len(finite)), np.array(finite)) if len(finite) > 2
            else float("nan")}


def _seat_report(ctx: RunContext, scenario: Scenario, game: Any, names: list[str], db: Any,
                 num_matches: int) -> dict[str, Any]:
    """Ratings for drawn seats or more than two players (solvers.ratings.seat_ratings)."""
    from equilibria.solvers.ratings import bradley_terry, seat_ratings

    seat_rows = db.seat_rows(names)
    entry = [r.entry for r in seat_rows]
    roles = [r.role for r in seat_rows]
    sr = seat_ratings(entry, [r.ret for r in seat_rows], game.num_players, len(names),
                      roles if any(r is not None for r in roles) else None, seed=scenario.seed)

    def per_entry(values: list[float]) -> np.ndarray:
        return np.bincount(entry, weights=values, minlength=len(names))

    decisions, fallbacks = per_entry([r.decisions for r in seat_rows]), per_entry([r.fallbacks for r in seat_rows])
    tokens, model_seconds = per_entry([r.tokens for r in seat_rows]), per_entry([r.model_seconds for r in seat_rows])
    strength = bradley_terry(sr.pairwise_wins)
    by_role = bool(sr.roles) and bool(np.isfinite(sr.role_adjusted).all())
    key, (lo, hi) = ((sr.role_adjusted, sr.role_adjusted_interval) if by_role
                     else (sr.mean_return, sr.return_interval))
    if sr.roles and not by_role:
        ctx.log("not every entry has played every role yet, so there is no role-adjusted win rate: "
                "ranked by mean return (play more matches)")
    order = np.lexsort((-strength, -np.nan_to_num(key, nan=-np.inf)))
    cells, metric_rows = [], []
    for rank, i in enumerate(order, 1):
        row: dict[str, Any] = {"rank": rank, "entry": names[i], "seats": int(sr.seats[i]),
                               "role_adjusted_win_rate": float(sr.role_adjusted[i]),
                               "role_adjusted_lo": float(sr.role_adjusted_interval[0, i]),
                               "role_adjusted_hi": float(sr.role_adjusted_interval[1, i]),
                               "win_rate": float(sr.win_rate[i]), "win_lo": float(sr.win_interval[0, i]),
                               "win_hi": float(sr.win_interval[1, i]), "mean_return": float(sr.mean_return[i]),
                               "return_lo": float(sr.return_interval[0, i]), "return_hi": float(sr.return_interval[1, i]),
                               "bt_strength": float(strength[i]),
                               "fallback_rate": float(fallbacks[i] / decisions[i]) if decisions[i] else 0.0,
                               "tokens_per_second": float(tokens[i] / model_seconds[i]) if model_seconds[i] > 0 else 0.0}
        for k, role in enumerate(sr.roles):
            n = sr.role_seats[i, k]
            row[f"win_rate_{role}"] = float(sr.role_wins[i, k] / n) if n else float("nan")
        metric_rows.append(row)
        cells.append([str(rank), names[i], str(row["seats"]),
                      interval_text(row["role_adjusted_win_rate"], row["role_adjusted_lo"], row["role_adjusted_hi"],
                                    num_matches, missing="some resample dealt this entry no seat of a role")
                      if by_role else "",
                      _interval(row, "win_rate", "win", "{:.3f}", num_matches),
                      _interval(row, "mean_return", "return", "{:+.3f}", num_matches),
                      f"{strength[i]:+.3f}", f"{row['fallback_rate']:.3f}" if decisions[i] else "",
                      f"{row['tokens_per_second']:.1f}" if model_seconds[i] > 0 else ""]
                     + [f"{row[f'win_rate_{role}']:.3f} ({int(sr.role_seats[i, k])})" if sr.role_seats[i, k]
                        else "n/a (never dealt)" for k, role in enumerate(sr.roles)])
    ctx.write_metrics(metric_rows)  # the final table: a resumed finished run rewrites it, never appends
    limit = scenario.config.max_fallback_rate
    for i in range(len(names)):
        if decisions[i] and fallbacks[i] / decisions[i] > limit:
            ctx.alarm(f"{names[i]}'s answers fell back to the legal default in {fallbacks[i] / decisions[i]:.0%} of "
                      f"{int(decisions[i])} decisions (max_fallback_rate {limit:g}): its results measure the fallback, "
                      "not the agent")
    table = markdown_table(["rank", "entry", "seats", "role-adjusted win rate [95%]", "win rate [95%]",
                    "mean return [95%]", "BT strength", "fallbacks per decision", "tokens/s"]
                   + [f"as {role} (seats)" for role in sr.roles], cells)
    sides, side_rates = _sides(db.outcomes(), num_matches)
    atomic_write_bytes(ctx.run_dir / "ranking.md", (
        table + "\n\nIntervals: 95% bootstrap over matches. Role-adjusted win rate: the win rate per role "
        "weighted by each role's share of all seats.\n" + (f"\n{sides}\n" if sides else "")).encode())
    ctx.log(table + (f"\n\n{sides}" if sides else ""))
    plt = pyplot()
    ranked = [names[i] for i in order]
    fig, axes = plt.subplots(1, 2 if sr.roles else 1, figsize=(11 if sr.roles else 7, 0.5 * len(names) + 2),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2]} if sr.roles else None)
    interval_bars(axes[0, 0], ranked, key[order], lo[order], hi[order])
    axes[0, 0].set_xlabel(("role-adjusted win rate" if by_role else "mean return") + " (95% bootstrap interval)")
    if sr.roles:
        rate = np.divide(sr.role_wins, sr.role_seats, out=np.full_like(sr.role_wins, np.nan), where=sr.role_seats > 0)
        heatmap(fig, axes[0, 1], rate[order], ranked, sr.roles, signed=False, fmt="{:.2f}", label="win rate")
        axes[0, 1].set_title("win rate by role", fontsize=9)
    fig.suptitle(f"{scenario.name}: {num_matches} matches of {game.info.name}", fontsize=10)
    save(fig, ctx.plot_path("ratings.png"))
    out: dict[str, Any] = {"matches": num_matches, "top": names[order[0]], "ranking": ",".join(ranked),
                           **side_rates}
    for i, name in enumerate(names):
        out[f"{'role_adjusted_win_rate' if by_role else 'mean_return'}_{name}"] = float(key[i])
        out[f"win_rate_{name}"] = float(sr.win_rate[i])
        out[f"fallback_rate_{name}"] = float(fallbacks[i] / decisions[i]) if decisions[i] else 0.0
        if model_seconds[i] > 0:
            out[f"tokens_per_second_{name}"] = float(tokens[i] / model_seconds[i])
    return out


def _sides(outcomes: list[dict], matches: int) -> tuple[str, dict[str, float]]:
    """How often each side won, when the game names the winning side (Werewolf: werewolves,
    villagers or a draw), with 95% Wilson intervals."""
    winners = [o["winner"] for o in outcomes if "winner" in o]
    if not winners:
        return "", {}
    rows, rates = [], {}
    for side in sorted(set(winners)) if "draw" in winners else sorted(set(winners)) + ["draw"]:
        k = sum(w == side for w in winners)
        p, lo, hi = wilson(k, len(winners))
        rates[f"{side}_win_rate"] = p
        rows.append([side, str(k), interval_text(p, lo, hi, len(winners), unit="matches", min_samples=1)])
    return markdown_table(["side", "wins", f"win rate of {len(winners)} matches [95% Wilson]"], rows), rates


def _interval(row: dict[str, Any], value: str, prefix: str, fmt: str, matches: int) -> str:
    return interval_text(row[value], row[prefix + "_lo"], row[prefix + "_hi"], matches, fmt)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])
