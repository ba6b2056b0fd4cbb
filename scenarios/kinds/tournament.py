"""Scenario kind `tournament`: a lineup of policies (solver snapshots, scripted bots) meets in
round-robin matches with rotated seats; results go to SQLite in the run directory.

The ranking is by Nash-averaged return (Balduzzi et al. 2018): each policy's mean return
against the meta-Nash mixture of the empirical meta-game. Win-count ratings (Bradley-Terry,
Elo with uncertainty) are reported beside it; in poker they reward winning many small pots
(always-bet tops them in Kuhn) and do not follow exploitability, while the Nash average does."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import numpy as np

from scenarios.core import Interrupted, RunContext, Scenario, load_game, register_kind


@dataclasses.dataclass
class LineupEntry:
    name: str
    solver: str | None = None  # a registered solver, run for `iterations` before the tournament
    iterations: int = 0
    config: dict = dataclasses.field(default_factory=dict)
    policy: Literal["average", "current"] = "average"
    scripted: Literal["random", "first_action", "last_action"] | None = None
    run: str | None = None  # a train run directory: its MARL checkpoint plays (stochastic actor)

    def validate(self) -> None:
        if sum(x is not None for x in (self.solver, self.scripted, self.run)) != 1:
            raise ValueError("give exactly one of solver, scripted or run")
        if self.solver is not None and self.iterations < 1:
            raise ValueError(f"iterations: must be >= 1 for a solver snapshot, got {self.iterations}")


@dataclasses.dataclass
class TournamentConfig:
    lineup: list[LineupEntry]
    games_per_pairing: int = 100  # per ordered seat assignment
    batch: int = 200  # matches per job (a Ray task) and per database transaction

    def validate(self) -> None:
        if len(self.lineup) < 2:
            raise ValueError("lineup: needs at least two policies")
        names = [e.name for e in self.lineup]
        if len(set(names)) != len(names):
            raise ValueError("lineup: policy names must be unique")
        if self.games_per_pairing < 1 or self.batch < 1:
            raise ValueError("games_per_pairing and batch must be >= 1")


class ScriptedPolicy:
    def __init__(self, kind: str):
        self.kind = kind

    def action_probabilities(self, state: Any, player: int | None = None) -> dict:
        player = state.current_player() if player is None else player
        legal = state.legal_actions(player)
        if self.kind == "random":
            return {a: 1.0 / len(legal) for a in legal}
        pick = legal[0] if self.kind == "first_action" else legal[-1]
        return {a: float(a == pick) for a in legal}


def build_lineup(scenario: Scenario, game: Any) -> list[Any]:
    import solvers

    out = []
    for i, e in enumerate(scenario.config.lineup):
        if e.scripted is not None:
            out.append(ScriptedPolicy(e.scripted))
            continue
        if e.run is not None:
            out.append(_trained_policy(scenario, game, e.run, i))
            continue
        try:
            solvers.entry(e.solver)
            solver = solvers.make(e.solver, game, **e.config)
        except ValueError as err:
            raise scenario.error(str(err), "lineup", str(i), "solver") from None
        solver.run(e.iterations)
        out.append(solver.average_policy() if e.policy == "average" else solver.current_policy())
    return out


def _trained_policy(scenario: Scenario, game: Any, run_dir: str, index: int) -> Any:
    """The MARL policy of a train run, checked to have been trained on this very game."""
    from pathlib import Path

    from scenarios.kinds.train import load_trained
    from scenarios.spec import ScenarioError

    path = Path(run_dir)
    if not path.is_absolute() and scenario.source.name not in ("<scenario>", ""):
        candidate = Path(scenario.source.name).parent / path
        path = candidate if candidate.exists() else path
    try:
        trained, trained_game, learner = load_trained(path)
    except ScenarioError as err:
        raise scenario.error(str(err), "lineup", str(index), "run") from None
    if trained_game.info.parameters != game.info.parameters or trained_game.info.name != game.info.name:
        raise scenario.error(f"{path} was trained on {trained.game!r}, not on this tournament's game",
                             "lineup", str(index), "run")
    return learner.policy(deterministic=False)


@register_kind("tournament", TournamentConfig, description="round-robin tournament with ratings and a meta-game")
def run_tournament(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    import solvers
    from scenarios.executor import JobFailed, make_executor
    from scenarios.tournament import ResultsDB, run_matches, schedule
    from solvers.ratings import bradley_terry, elo, meta_nash

    if scenario.backend not in ("local", "ray"):
        raise scenario.error(f"tournaments run with backend 'local' or 'ray', got {scenario.backend!r}", "backend")
    game = load_game(scenario)
    cfg = scenario.config
    if game.num_players != 2:
        raise scenario.error("ratings and the meta-game need a two-player game", "game")
    lineup = build_lineup(scenario, game)
    names = [e.name for e in cfg.lineup]
    matches = schedule(len(lineup), game.num_players, cfg.games_per_pairing, scenario.seed)
    ctx.begin()
    db = ResultsDB(ctx.run_dir / "results.sqlite")
    ids = db.register(names, [json.dumps(dataclasses.asdict(e)) for e in cfg.lineup])
    already = len(db.finished())
    if already:
        ctx.log(f"resumed {ctx.run_dir}: {already} of {len(matches)} matches already played")
    try:
        executor = make_executor(scenario.backend, ctx.address)
    except ValueError as err:
        raise scenario.error(str(err), "backend") from None
    with ctx.interruptible(), ctx.progress(len(matches), scenario.name) as update:
        try:
            run_matches(game, lineup, matches, db, ids, executor, chunk=cfg.batch, stop=lambda: ctx.stop_requested,
                        on_stored=lambda n: update(n, f"{n} matches stored ({executor.name})"))
        except JobFailed as err:
            db.close()
            raise scenario.error(f"{err}; the finished matches are stored, resume with --resume {ctx.run_dir}",
                                 "backend") from None
        if len(db.finished()) < len(matches):
            stored = len(db.finished())
            db.close()
            raise Interrupted(ctx.run_dir, stored)
    payoff, wins, pairs = db.results(names)
    db.close()
    strength = bradley_terry(wins)
    elo_mean, elo_sd = elo(pairs, len(names), seed=scenario.seed)
    zero_sum = game.info.is_zero_sum
    nash = meta_nash(payoff, zero_sum=zero_sum)
    expl = []
    for p in lineup:
        try:
            expl.append(solvers.exploitability(game, p))
        except Exception:  # games without a compiled tree: exploitability is not computable
            expl.append(float("nan"))
    nash_avg = payoff @ nash  # return against the meta-Nash mixture
    order = np.lexsort((-payoff.mean(axis=1), -np.round(nash_avg, 12)))
    rows = []
    for rank, i in enumerate(order, 1):
        rows.append({"rank": rank, "policy": names[i], "nash_averaged_return": float(nash_avg[i]),
                     "bt_strength": float(strength[i]), "elo": float(elo_mean[i]),
                     "elo_sd": float(elo_sd[i]), "meta_nash": float(nash[i]), "mean_return": float(payoff[i].mean()),
                     "exploitability": float(expl[i])})
        ctx.log_metrics(rows[-1])
    table = ["| rank | policy | return vs meta-Nash | BT strength | Elo (sd) | meta-Nash weight | mean return | "
             "exploitability |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['rank']} | {r['policy']} | {r['nash_averaged_return']:+.4f} | {r['bt_strength']:.3f} | "
                     f"{r['elo']:.0f} ({r['elo_sd']:.0f}) | "
                     f"{r['meta_nash']:.3f} | {r['mean_return']:+.3f} | {r['exploitability']:.4g} |")
    (ctx.run_dir / "ranking.md").write_text("\n".join(table) + "\n")
    ctx.log("\n".join(table))
    _plots(ctx, scenario, names, payoff, elo_mean, elo_sd)
    ranked_expl = [r["exploitability"] for r in rows]
    finite = [e for e in ranked_expl if np.isfinite(e)]
    return {"matches": len(matches), "top": rows[0]["policy"],
            "ranking": ",".join(r["policy"] for r in rows),
            "spearman_rank_vs_exploitability": _spearman(np.arange(len(finite)), np.array(finite)) if len(finite) > 2
            else float("nan")}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _plots(ctx: RunContext, scenario: Scenario, names: list[str], payoff: np.ndarray, elo_mean: np.ndarray,
           elo_sd: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    lim = float(np.abs(payoff).max()) or 1.0
    im = ax.imshow(payoff, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{payoff[i, j]:+.2f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"{scenario.name}: mean return of row vs column", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(ctx.plot_path("payoff_heatmap.png"), dpi=110)
    plt.close(fig)
    order = np.argsort(-elo_mean)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.errorbar(elo_mean[order], range(len(names)), xerr=2 * elo_sd[order], fmt="o", capsize=3)
    ax.set_yticks(range(len(names)), [names[i] for i in order])
    ax.invert_yaxis()
    ax.set_xlabel("Elo (mean and 2 sd over match orderings)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.plot_path("ratings.png"), dpi=110)
    plt.close(fig)

