"""Scenario kind `evaluate`: a grid of games x policies x seeds, each cell `episodes` episodes of
one policy holding every seat of one game, run locally or as Ray tasks (common.executor).

Policies are lineup entries (scenarios.lineup, as in tournaments): a train run's actors, a
scripted bot, a solver snapshot, an agent. A train run on the game it was trained on is
evaluated by its learner's own batched loop (every episode stepped at once); anything else plays
through the one engine, where a JointPolicy holding every seat draws joint actions. A cell's
number is each episode's mean return per agent over the agents that took part
(marl.runtime.mean_over_present, the learners' definition too).

Each finished cell is written to `cells/<key>.json` at once (atomically), keyed by what
determines it (game, entry, seed, episodes, deterministic), so a killed or extended run
computes only the missing cells. The report: `results.csv` (one row per cell), `results.md`
(game x policy: mean with 95% intervals across episodes and across seeds), a grouped bar plot;
and where players report more measures per episode than the return (`evaluation_metrics`: ride
dispatch's served orders, pickup minutes, ...) `measures.csv` (per cell) and `measures.md` (game
x policy: each measure's mean with a 95% interval across episodes).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, Seed, count
from equilibria.common.executor import JobFailed, make_executor
from equilibria.common.limits import check_count
from equilibria.games.engine import AgentUnavailable, GameStopped
from equilibria.games.markov import MarkovGame
from equilibria.games.spaces import matching_group
from equilibria.scenarios.learning import load_trained
from equilibria.scenarios.lineup import LineupEntry, build_entry, check_entry, same_game, trained_run
from equilibria.scenarios.loading import Scenario, check_job_backend, load_game_spec
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import markdown_table, plus_minus_text, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, RunFailed, atomic_write_bytes
from equilibria.scenarios.tournament import play_one

MAX_CELLS = 100_000  # one file each


class EvaluateConfig(Config):
    games: Annotated[list[str | dict], Field(max_length=1000)] = Field(default_factory=list)
    """the games: registry strings or {name: ..., param: ...} mappings"""
    policies: Annotated[list[LineupEntry], Field(max_length=1000)] = Field(default_factory=list)
    """lineup entries ({name, run: DIR}, {name, scripted: random}, {name, solver: ...}, {name, agent: ...});
    each holds every seat of every game"""
    seeds: count(10_000) | Annotated[list[Seed], Field(max_length=10_000)] = 2
    """the seeds of each game x policy: a list, or a count n for the scenario's seed, seed + 1, ..., seed + n - 1"""
    episodes: count(100_000) = 32
    """episodes per cell (one game, one policy, one seed)"""
    deterministic: bool = True
    """train runs take their most likely action (as `equilibria eval` and train's evaluation do); false samples"""
    animate: bool = False
    """write animations/<policy>.svg: one episode of the first game (its first seed) for each policy that can
    record one (lifelong MAPF controllers and followers, ride-dispatch controllers and OSPO learners)"""
    x: str | None = None
    """a numeric game parameter (e.g. num_agents) to plot the score against: one line per policy, each point
    the mean over the games with that value and their seeds, with a 95% interval across those (game, seed) cells"""

    def check(self) -> None:
        if not self.games:
            raise ValueError("games: the grid is empty; give at least one game")
        if not self.policies:
            raise ValueError("policies: the grid is empty; give at least one policy")
        names = [e.name for e in self.policies]
        if len(set(names)) != len(names):
            raise ValueError("policies: entry names must be unique")
        if isinstance(self.seeds, list) and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError("seeds: give at least one seed, each once")


@dataclasses.dataclass
class EvaluatePlan:
    scenario: Scenario
    games: list[Any]
    labels: list[str]  # each game as the scenario spells it
    seeds: list[int]
    runs: dict[int, tuple[Path, Any]]  # policy index -> (train run directory, the game it was trained on)


def _fits(trained_game: Any, game: Any) -> bool:
    """Whether a run's actors can hold every seat of `game` (each group has an actor with its spaces)."""
    if not isinstance(game, MarkovGame):
        return False
    trained = {g.name: g for g in trained_game.groups}
    return all(matching_group(trained, g) is not None for g in game.groups)


def _transfers(run_dir: Path) -> Callable[[Any, Any], bool]:
    """The run's learner's own test of the games it evaluates on beyond its groups' spaces
    (`evaluates_on(trained_game, game, config)`: the follower acts in lifelong_mapf games whose
    observation window holds its network's)."""
    from equilibria.marl import registry
    from equilibria.scenarios.loading import load_run_config

    algorithm = load_run_config(run_dir).config.algorithm
    test = getattr(registry.entry(algorithm.name).cls, "evaluates_on", None)
    if test is None:
        return lambda trained, game: False
    config = registry.build_config(algorithm.name, algorithm.config)
    return lambda trained, game: test(trained, game, config)


def prepare_evaluate(scenario: Scenario) -> EvaluatePlan:
    """Every check of the grid: games built (cheap), entries checked against every game, runs'
    configs read; no checkpoint, model or solver is loaded or run."""
    check_job_backend(scenario, "evaluations")
    if scenario.game is not None:
        raise scenario.error("an evaluate scenario takes its games as a list: games: [spec, ...]", "game")
    cfg = scenario.config
    games = [load_game_spec(scenario, spec, "games", str(i)) for i, spec in enumerate(cfg.games)]
    labels = [spec if isinstance(spec, str) else repr(g) for spec, g in zip(cfg.games, games)]
    for i, g in enumerate(games):
        if any(same_game(g, h) for h in games[:i]):
            raise scenario.error(f"{labels[i]} is already in the grid", "games", str(i))
    runs: dict[int, tuple[Path, Any]] = {}
    for i, e in enumerate(cfg.policies):
        where = ("policies", str(i))
        if e.seats != 1:
            raise scenario.error("an evaluated policy holds every seat; seats is for tournaments' fixed seating",
                                 *where, "seats")
        for g in games:
            check_entry(scenario, g, e, where)
        if e.run is not None:
            path, trained_game = trained_run(scenario, e.run, where)
            transfers = _transfers(path)
            for label, g in zip(labels, games):
                if not (_fits(trained_game, g) or transfers(trained_game, g)):
                    raise scenario.error(f"{path} was trained on {trained_game!r}; its actors cannot hold the seats "
                                         f"of {label} (not a Markov game with the same agent groups and spaces)",
                                         *where, "run")
            runs[i] = (path, trained_game)
    if cfg.x is not None:
        for i, g in enumerate(games):
            value = g.info.parameters.get(cfg.x)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise scenario.error(f"{labels[i]} has no numeric parameter {cfg.x!r} (its parameters: "
                                     f"{', '.join(g.info.parameters) or 'none'})", "x")
    seeds = list(cfg.seeds) if isinstance(cfg.seeds, list) else [scenario.seed + k for k in range(cfg.seeds)]
    try:
        check_count("seeds", len(games) * len(cfg.policies) * len(seeds), MAX_CELLS,
                    f"{len(games)} games x {len(cfg.policies)} policies x {len(seeds)} seeds cells, one file each")
    except ValueError as err:
        raise scenario.error(str(err).partition(": ")[2], "seeds") from None
    return EvaluatePlan(scenario, games, labels, seeds, runs)


def episode_seed(seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def evaluate_cell(game: Any, player: Any, label: str, episodes: int, seed: int, deterministic: bool,
                  stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, float, dict[str, list[float]]] | None:
    """One cell, a pure function of its arguments (the unit of work of every backend): each
    episode's mean return per agent over the agents that took part, the seconds it took, and the
    player's other per-episode measures (a player with `evaluation_metrics`, e.g. ride dispatch's
    served orders and pickup minutes; {} otherwise). `player` holds every seat: a learner or a
    controller (its own batched loop) or a policy or agent spec (the engine, one episode at a
    time). None when stopped (this process only) before the end."""
    from equilibria.marl.runtime import mean_over_present  # torch loads only when something is evaluated

    t0 = time.perf_counter()
    if hasattr(player, "evaluation_metrics"):
        metrics = player.evaluation_metrics(episodes, seed=seed, deterministic=deterministic)
        return np.asarray(metrics["return"]), time.perf_counter() - t0, per_episode_measures(metrics, episodes)
    if hasattr(player, "evaluation_returns"):
        return np.asarray(player.evaluation_returns(episodes, seed=seed, deterministic=deterministic)), \
            time.perf_counter() - t0, {}
    values = np.empty(episodes)
    for i in range(episodes):
        if stop is not None and stop():
            return None
        try:
            record, _ = play_one(game, [player] * game.num_players, [label] * game.num_players,
                                 episode_seed(seed, i), stop=stop)
        except GameStopped:
            return None
        values[i] = mean_over_present(record["outcome"]["returns"], record["took_part"])
    return values, time.perf_counter() - t0, {}


def per_episode_measures(metrics: dict[str, Any], episodes: int) -> dict[str, list[float]]:
    """The numeric measures of `evaluation_metrics` with one value per episode, "return" aside (it
    is the cell's returns)."""
    out = {}
    for name, value in metrics.items():
        v = np.asarray(value)
        if name != "return" and v.shape == (episodes,) and v.dtype.kind in "biuf":
            out[str(name)] = v.astype(np.float64).tolist()
    return out


@dataclasses.dataclass(frozen=True)
class Cell:
    game: int
    policy: int
    seed: int
    key: str  # names its file in cells/: a hash of everything that determines its result


def _cells(plan: EvaluatePlan) -> list[Cell]:
    cfg = plan.scenario.config
    out = []
    for gi, game in enumerate(plan.games):
        for pi, entry in enumerate(cfg.policies):
            for seed in plan.seeds:
                identity = {"game": repr(game), "policy": entry.model_dump(), "seed": seed, "episodes": cfg.episodes,
                            "deterministic": cfg.deterministic}
                key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
                out.append(Cell(gi, pi, seed, key))
    return out


def _stored(path: Path, episodes: int) -> dict | None:
    """A finished cell's file, or None when it is missing or not a whole cell (recomputed)."""
    try:
        data = json.loads(path.read_text())
        return data if len(data["returns"]) == episodes else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _players(plan: EvaluatePlan, todo: list[Cell]) -> dict[tuple[int, int], Any]:
    """What holds the seats of each (game, policy) still to evaluate: a run's learner on its own
    game (batched), its actors elsewhere, any other entry as the tournament builds it."""
    cfg = plan.scenario.config
    learners: dict[int, Any] = {}
    out: dict[tuple[int, int], Any] = {}
    for gi, pi in sorted({(c.game, c.policy) for c in todo}):
        game, entry = plan.games[gi], cfg.policies[pi]
        if entry.run is None:
            out[gi, pi] = build_entry(entry, game)
            continue
        path, trained_game = plan.runs[pi]
        if pi not in learners:
            learners[pi] = load_trained(path, entry.checkpoint)[2]
        learner = learners[pi]
        if same_game(trained_game, game) and hasattr(learner, "evaluation_returns"):
            out[gi, pi] = learner
        elif hasattr(learner, "on_game") and (bound := learner.on_game(game)) is not None:
            out[gi, pi] = bound  # the learner's batched evaluation on another game of its family
        else:
            out[gi, pi] = learner.policy(deterministic=cfg.deterministic)
    return out


@register_kind("evaluate", EvaluateConfig, prepare=prepare_evaluate,
               description="evaluation grid of games x policies x seeds: mean episode return per agent with intervals")
def run_evaluate(plan: EvaluatePlan, ctx: RunContext) -> dict[str, Any]:
    scenario, cfg = plan.scenario, plan.scenario.config
    cells = _cells(plan)
    store = ctx.run_dir / "cells"
    store.mkdir(exist_ok=True)
    results = {c.key: r for c in cells if (r := _stored(store / f"{c.key}.json", cfg.episodes)) is not None}
    if results:
        ctx.log(f"resumed {ctx.run_dir}: {len(results)} of {len(cells)} cells already evaluated")
    todo = [c for c in cells if c.key not in results]
    executor = make_executor(scenario.backend, ctx.address)
    players = _players(plan, todo)
    shared_games = {gi: executor.share(plan.games[gi]) for gi in {c.game for c in todo}}
    shared_players = {k: executor.share(v) for k, v in players.items()}
    local_stop = (lambda: ctx.stop_requested) if executor.name == "local" else None  # a Ray task finishes its cell
    jobs = [(shared_games[c.game], shared_players[c.game, c.policy], cfg.policies[c.policy].name, cfg.episodes,
             c.seed, cfg.deterministic, local_stop) for c in todo]
    finished = executor.run_unordered(evaluate_cell, jobs, lambda: ctx.stop_requested)

    def step() -> dict[str, Any]:
        for i, out in finished:
            if out is None:  # stopped mid-cell: nothing of it is kept
                continue
            c, (values, seconds, measures) = todo[i], out
            by = "engine" if not hasattr(players[c.game, c.policy], "evaluation_returns") else \
                "controller" if cfg.policies[c.policy].controller is not None else "learner"
            results[c.key] = {"game": plan.labels[c.game], "policy": cfg.policies[c.policy].name, "seed": c.seed,
                              "evaluated_by": by, "seconds": seconds, "returns": values.tolist()}
            if measures:
                results[c.key]["measures"] = measures
            atomic_write_bytes(store / f"{c.key}.json", json.dumps(results[c.key]).encode())
            break
        else:
            if not ctx.stop_requested:
                raise RuntimeError("the executor ended before every cell was stored")
        return {"stored": len(results)}

    try:
        run_loop(ctx, label=scenario.name, total=len(cells), position=lambda: sum(c.key in results for c in cells),
                 step=step, describe=lambda r: f"{r['stored']} cells stored ({executor.name})")
    except JobFailed as err:
        raise scenario.error(f"{err}; the finished cells are stored, resume with --resume {ctx.run_dir}",
                             "backend") from None
    except AgentUnavailable as err:
        raise RunFailed(f"{err}; the finished cells are stored, resume with: equilibria run --resume {ctx.run_dir}") \
            from None
    if cfg.animate and not ctx.stop_requested:
        shown = [c for c in cells if c.game == 0 and c.seed == plan.seeds[0]]  # the players built above serve
        _animate(ctx, plan, {**_players(plan, [c for c in shown if (c.game, c.policy) not in players]),
                             **{(c.game, c.policy): players[c.game, c.policy] for c in shown
                                if (c.game, c.policy) in players}})
    return _report(ctx, plan, [(c, results[c.key]) for c in cells])


def _animate(ctx: RunContext, plan: EvaluatePlan, players: dict[tuple[int, int], Any]) -> None:
    game = plan.games[0]
    if not hasattr(game, "animation"):
        ctx.log(f"animate: {plan.labels[0]} draws no animations")
        return
    folder = ctx.run_dir / "animations"
    folder.mkdir(exist_ok=True)
    for (_, pi), player in sorted(players.items()):
        name = plan.scenario.config.policies[pi].name
        if not hasattr(player, "record_episode"):
            ctx.log(f"animate: {name} cannot record an episode; skipped")
            continue
        record = player.record_episode(plan.seeds[0], plan.scenario.config.deterministic)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        atomic_write_bytes(folder / f"{safe}.svg",
                           game.animation(record, f"{name} on {plan.labels[0]}, seed {plan.seeds[0]}").encode())


def _report(ctx: RunContext, plan: EvaluatePlan, rows: list[tuple[Cell, dict]]) -> dict[str, Any]:
    """results.csv (per cell), metrics.csv and results.md (per game x policy), the bar plot."""
    from equilibria.marl.runtime import mean_ci

    cfg = plan.scenario.config
    names = [e.name for e in cfg.policies]
    metric, factors = score_of(plan.games)
    fields = ["game", "policy", "seed", "episodes", "mean_return", "ci95", "score", "evaluated_by", "seconds"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for c, r in rows:  # names from this run's grid: a stored cell is found by its key, however it was labelled
        mean, ci = mean_ci(np.asarray(r["returns"]))
        w.writerow({"game": plan.labels[c.game], "policy": names[c.policy], "seed": c.seed,
                    "episodes": len(r["returns"]), "mean_return": mean, "ci95": ci, "score": mean * factors[c.game],
                    "evaluated_by": r["evaluated_by"],
                    "seconds": round(r["seconds"], 3)})
    atomic_write_bytes(ctx.run_dir / "results.csv", buf.getvalue().encode())
    summary, cells = [], []
    for gi, label in enumerate(plan.labels):
        for pi, name in enumerate(names):
            mine = [r for c, r in rows if (c.game, c.policy) == (gi, pi)]
            pooled = np.concatenate([r["returns"] for r in mine]) * factors[gi]
            per_seed = np.array([np.mean(r["returns"]) for r in mine]) * factors[gi]
            mean, ci_episodes = mean_ci(pooled)
            ci_seeds = mean_ci(per_seed)[1]
            summary.append({"game": label, "policy": name, "mean_return": mean / factors[gi], "score": mean,
                            "ci95_episodes": ci_episodes, "ci95_seeds": ci_seeds, "episodes": len(pooled),
                            "seeds": len(mine)})
            cells.append([label, name, plus_minus_text(mean, ci_episodes, len(pooled)),
                          plus_minus_text(mean, ci_seeds, len(mine), unit="seeds"), str(len(pooled)), str(len(mine))])
    ctx.write_metrics(summary)  # the final table: a resumed finished run rewrites it, never appends
    table = markdown_table(["game", "policy", "mean ± 95% CI across episodes", "mean ± 95% CI across seeds",
                            "episodes", "seeds"], cells)
    note = (f"{metric[0].upper()}{metric[1:]}. Intervals: 95% normal intervals of the "
            "mean, across all episodes of all seeds, and across the per-seed means.")
    if plan.runs:
        note += f" Train runs act {'greedily' if cfg.deterministic else 'stochastically'}."
    if cfg.x is not None:
        curve = _curve(plan, rows, factors)
        table += "\n\n" + markdown_table(
            ["policy", *[f"{cfg.x} = {v:g}" for v in curve["x"]]],
            [[name, *[plus_minus_text(m, h, n, unit="cells") for m, h, n in zip(*curve[name])]] for name in names])
        _plot_curve(ctx, plan, curve, names, metric)
    atomic_write_bytes(ctx.run_dir / "results.md", f"{table}\n\n{note}\n".encode())
    ctx.log(f"{table}\n\n{note}")
    _report_measures(ctx, plan, rows)
    _plot(ctx, plan, summary, names, metric)
    return {"cells": len(rows), "episodes": sum(len(r["returns"]) for _, r in rows),
            **{f"{s['policy']} @ {s['game']}": s["score"] for s in summary}}


def _report_measures(ctx: RunContext, plan: EvaluatePlan, rows: list[tuple[Cell, dict]]) -> None:
    """The players' other per-episode measures (cells stored with "measures"): measures.csv (per
    cell, each measure's mean over its episodes) and measures.md (per game x policy, each
    measure's mean with a 95% interval across all episodes of all seeds). Nothing without any."""
    from equilibria.marl.runtime import mean_ci

    measures: list[str] = []
    for _, r in rows:
        measures += [m for m in r.get("measures", {}) if m not in measures]
    if not measures:
        return
    names = [e.name for e in plan.scenario.config.policies]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["game", "policy", "seed", "episodes", *measures])
    for c, r in rows:
        got = r.get("measures", {})
        w.writerow([plan.labels[c.game], names[c.policy], c.seed, len(r["returns"]),
                    *[float(np.mean(got[m])) if m in got else "" for m in measures]])
    atomic_write_bytes(ctx.run_dir / "measures.csv", buf.getvalue().encode())
    table = []
    for gi, label in enumerate(plan.labels):
        for pi, name in enumerate(names):
            mine = [r for c, r in rows if (c.game, c.policy) == (gi, pi) and r.get("measures")]
            if not mine:
                continue
            cells = []
            for m in measures:
                pooled = np.array([v for r in mine for v in r["measures"].get(m, [])], dtype=np.float64)
                cells.append(plus_minus_text(*mean_ci(pooled), len(pooled)) if len(pooled) else "n/a")
            table.append([label, name, *cells, str(sum(len(r["returns"]) for r in mine))])
    text = markdown_table(["game", "policy", *measures, "episodes"], table)
    note = ("Each policy's own measures of its episodes (players that report them: "
            "evaluation_metrics), mean ± 95% normal interval across all episodes of all seeds.")
    atomic_write_bytes(ctx.run_dir / "measures.md", f"{text}\n\n{note}\n".encode())
    ctx.log(f"{text}\n\n{note}")


def score_of(games: list[Any]) -> tuple[str, list[float]]:
    """What the report shows: the games' own metric where they all declare the same one
    (MarkovGame.report_metric: lifelong MAPF's average throughput), else the mean episode return
    per agent; and each game's factor from the mean return per agent to it."""
    metrics = {getattr(g, "report_metric", None) and g.report_metric[0] for g in games}
    if len(metrics) == 1 and None not in metrics:
        return metrics.pop(), [g.report_metric[1] for g in games]
    return "mean episode return per agent (over the agents that took part)", [1.0] * len(games)


def _curve(plan: EvaluatePlan, rows: list[tuple[Cell, dict]], factors: list[float]) -> dict[str, Any]:
    """Per policy and value of the `x` parameter: the mean score over the (game, seed) cells with
    that value, its 95% interval across them and their count."""
    from equilibria.marl.runtime import mean_ci

    xs = sorted({plan.games[c.game].info.parameters[plan.scenario.config.x] for c, _ in rows})
    out: dict[str, Any] = {"x": xs}
    for pi, entry in enumerate(plan.scenario.config.policies):
        means, halves, counts = [], [], []
        for v in xs:
            cells = np.array([np.mean(r["returns"]) * factors[c.game] for c, r in rows
                              if c.policy == pi and plan.games[c.game].info.parameters[plan.scenario.config.x] == v])
            m, h = mean_ci(cells)
            means.append(m), halves.append(h), counts.append(len(cells))
        out[entry.name] = (means, halves, counts)
    return out


def _plot_curve(ctx: RunContext, plan: EvaluatePlan, curve: dict[str, Any], names: list[str],
                metric: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        m, h, _ = (np.asarray(v, dtype=float) for v in curve[name])
        ax.plot(curve["x"], m, marker="o", label=name)
        ax.fill_between(curve["x"], m - np.nan_to_num(h), m + np.nan_to_num(h), alpha=0.2)
    ax.set_xlabel(plan.scenario.config.x)
    ax.set_ylabel(textwrap.fill(metric, 40))
    ax.grid(True, alpha=0.3)
    ax.legend(title="policy", fontsize=8)
    ax.set_title(f"{plan.scenario.name}: mean over maps and seeds, 95% CI across (game, seed) cells", fontsize=9)
    save(fig, ctx.plot_path("curve.png"))


def _plot(ctx: RunContext, plan: EvaluatePlan, summary: list[dict], names: list[str], metric: str) -> None:
    plt = pyplot()
    mean = np.array([s["score"] for s in summary]).reshape(len(plan.labels), len(names))
    ci = np.array([s["ci95_episodes"] for s in summary]).reshape(len(plan.labels), len(names))
    width = 0.8 / len(names)
    x = np.arange(len(plan.labels))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(names) * len(plan.labels) + 2), 4.5))
    for j, name in enumerate(names):
        ax.bar(x + (j - (len(names) - 1) / 2) * width, mean[:, j], width, yerr=np.nan_to_num(ci[:, j]), capsize=3,
               label=name)
    ax.axhline(0, color="#666666", lw=0.8)
    ax.set_xticks(x, [textwrap.fill(label, 40, break_long_words=False) for label in plan.labels], fontsize=8)
    ax.set_xlabel("game")
    ax.set_ylabel(textwrap.fill(metric, 40))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="policy", fontsize=8)
    episodes, seeds = plan.scenario.config.episodes, len(plan.seeds)
    ax.set_title(f"{plan.scenario.name}: {episodes} episode{'s' * (episodes != 1)} x {seeds} "
                 f"seed{'s' * (seeds != 1)} per bar "
                 "(95% CI across episodes)", fontsize=9)
    save(fig, ctx.plot_path("returns.png"))
