"""Scenario kind `preference`: self-play preference experiments, several algorithms on the same
games and seeds, compared by exact duality gap against preference queries.

mode: exact    tabular dynamics on the full matrix (solvers.preference); a query is one
               evaluation of the win-rate vector P(. > pi), as in Nash-MP's analysis
mode: sampled  the sample losses on a torch policy (tabular, mlp or tiny_lm); a query is one
               sampled comparison from the oracle
Resumable at the granularity of (algorithm, seed) runs: finished ones are skipped.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, PositiveFloat, PositiveInt, Seed, suggest
from equilibria.scenarios.loading import Scenario, game_spec
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import major_log_labels, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, atomic_write_bytes


class AlgorithmSpec(Config):
    name: str
    """a preference algorithm (sppo, inpo, egpo, nash-mp, nash-md, ...)"""
    config: dict = Field(default_factory=dict)
    """its parameters: the tabular solver's config (exact mode) or NeuralPreferenceConfig (sampled)"""
    label: str | None = None
    """legend label; default the name"""
    report: Literal["paper", "current", "average"] = "paper"
    """exact mode: which iterate to score"""


class PreferenceEval(Config):
    every: PositiveInt = 10
    """iterations between evaluations"""
    gap: Literal["auto", "dg_beta", "dg0"] = "auto"
    """auto: dg_beta when the game's beta > 0"""
    target: PositiveFloat = 1e-6
    """report queries and seconds to reach this gap"""


class PreferenceScenarioConfig(Config):
    algorithms: Annotated[list[AlgorithmSpec], Field(min_length=1, max_length=1000)]
    mode: Literal["exact", "sampled"] = "exact"
    """exact: tabular dynamics on the full matrix; sampled: sample losses on a torch policy"""
    seeds: Annotated[list[Seed], Field(min_length=1, max_length=10_000)] = Field(default_factory=lambda: [0])
    policy: Literal["tabular", "mlp", "tiny_lm"] = "tabular"
    """sampled mode: the torch policy"""
    eval: PreferenceEval = Field(default_factory=PreferenceEval)


EXACT = ("sppo", "spo", "dno", "inpo", "online-ipo", "nash-md", "egpo", "nash-mp", "iterative-dpo")
SAMPLED = ("sppo", "spo", "dno", "inpo", "online-ipo", "nash-md", "egpo", "nash-mp", "dpo", "ipo")


def _check(scenario: Scenario) -> None:
    from equilibria import solvers
    from equilibria.llm_agents.preference_trainer import NeuralPreferenceConfig

    cfg = scenario.config
    names = EXACT if cfg.mode == "exact" else SAMPLED
    for i, a in enumerate(cfg.algorithms):
        if a.name not in names:
            raise scenario.error(f"unknown {cfg.mode} algorithm {a.name!r}{suggest(a.name, list(names))} "
                                 f"(algorithms: {', '.join(names)})", "algorithms", str(i), "name")
        where = ("algorithms", str(i), "config")
        if cfg.mode == "exact":
            solvers.build_config(a.name, a.config, source=scenario.source, path=where)
        else:
            for key in ("algorithm", "iterations", "seed"):  # set by the scenario itself
                if key in a.config:
                    raise scenario.error(f"set by the scenario ({'name' if key == 'algorithm' else key} at its top "
                                         "level), not per algorithm", *where, key)
            scenario.build(NeuralPreferenceConfig, {**a.config, "algorithm": a.name}, *where)
    if scenario.budget.iterations is None:
        raise scenario.error("a preference scenario needs budget.iterations", "budget")


def _game(scenario: Scenario, seed: int) -> Any:
    from equilibria import games

    spec = game_spec(scenario)
    try:
        if isinstance(spec, dict):
            return games.load({**spec, "seed": seed})
        return games.load(spec, seed=seed)
    except ValueError as err:
        raise scenario.error(str(err), "game") from None


def _run_exact(game: Any, alg: AlgorithmSpec, iterations: int, every: int, gap_key: str) -> list[dict]:
    from equilibria import solvers
    from equilibria.solvers.preference import regularized_equilibrium

    solver = solvers.make(alg.name, game, **alg.config)
    star = regularized_equilibrium(game.P, game.reference, game.beta) if game.beta > 0 else None
    rows, t0, spent = [], time.perf_counter(), 0.0
    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        solver.step()
        spent += time.perf_counter() - t0
        if it % every == 0 or it == iterations or it == 1:
            m = _exact_metrics(solver, alg.report, star)
            rows.append({"iteration": it, "queries": m["win_rate_evaluations"], "seconds": spent, **m})
    return rows


def _exact_metrics(solver: Any, report: str, star: np.ndarray | None) -> dict:
    from equilibria.solvers.preference import duality_gap, kl_to_equilibrium, regularized_gap, win_rate

    g = solver.game
    pi = {"paper": solver.reported_policy, "current": solver.current_policy,
          "average": solver.average_policy}[report]().probs
    out = {"dg0": duality_gap(g.P, pi, g.context_weights),
           "dg_beta": regularized_gap(g.P, pi, g.reference, g.beta, g.context_weights),
           "win_rate_vs_ref": win_rate(g.P, pi, g.reference, g.context_weights),
           "win_rate_evaluations": float(solver.evaluations[0])}
    if star is not None:
        out["kl_to_equilibrium"] = kl_to_equilibrium(pi, star, g.context_weights)
    return out


def _run_sampled(game: Any, alg: AlgorithmSpec, iterations: int, every: int, seed: int, policy_kind: str) -> list[dict]:
    import torch

    from equilibria.llm_agents.policies import ContextualMLP, TabularLogits, TinyCausalLM
    from equilibria.llm_agents.preference_trainer import NeuralPreferenceConfig, PreferenceTrainer, game_for_policy

    torch.manual_seed(seed)
    if policy_kind == "tiny_lm":
        params = game.info.parameters
        if params.get("oracle") != "tokens":
            raise ValueError("policy tiny_lm needs a token preference game: preference(oracle=tokens, vocab=.., length=..)")
        policy = TinyCausalLM(game.num_contexts, params["vocab"], params["length"], seed=seed)
        game = game_for_policy(game, policy)
    elif policy_kind == "mlp":
        policy = ContextualMLP(game.num_contexts, game.num_responses)
        game = game_for_policy(game, policy)
    else:
        policy = TabularLogits(game.num_contexts, game.num_responses, torch.as_tensor(np.log(game.reference)))
    cfg = NeuralPreferenceConfig.model_validate({**alg.config, "algorithm": alg.name, "iterations": iterations,
                                                 "eval_every": every, "seed": seed})
    trainer = PreferenceTrainer(policy, game, cfg)
    rows, spent = [], 0.0
    first = {"iteration": 0, "seconds": 0.0, **trainer.metrics()}
    rows.append(first)
    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        trainer.step()
        spent += time.perf_counter() - t0
        if it % every == 0 or it == iterations:
            rows.append({"iteration": it, "seconds": spent, **trainer.metrics()})
    return rows


@dataclasses.dataclass
class PreferencePlan:
    scenario: Scenario
    games_by_seed: dict[int, Any]
    gap_key: str


def prepare_preference(scenario: Scenario) -> PreferencePlan:
    if scenario.backend != "local":
        raise scenario.error(f"this kind runs with backend 'local' (got {scenario.backend!r})", "backend")
    cfg = scenario.config
    _check(scenario)
    games_by_seed = {s: _game(scenario, s) for s in cfg.seeds}
    if cfg.mode == "sampled" and cfg.policy == "tiny_lm":
        first = next(iter(games_by_seed.values()))
        if first.info.parameters.get("oracle") != "tokens":
            raise scenario.error("policy tiny_lm needs game preference(oracle=tokens, ...)", "policy")
    beta = next(iter(games_by_seed.values())).beta
    gap_key = cfg.eval.gap if cfg.eval.gap != "auto" else ("dg_beta" if beta > 0 else "dg0")
    return PreferencePlan(scenario, games_by_seed, gap_key)


@register_kind("preference", PreferenceScenarioConfig, prepare=prepare_preference,
               description="self-play preference experiments: algorithms compared by exact gap vs preference queries")
def run_preference(plan: PreferencePlan, ctx: RunContext) -> dict[str, Any]:
    scenario, gap_key = plan.scenario, plan.gap_key
    cfg = scenario.config
    done = {(r["algorithm"], int(r["seed"])) for r in ctx.read_rows() if r.get("final") == "1"}
    if ctx.resume_dir is not None:  # rows of a half-finished (algorithm, seed) run are recomputed
        ctx.keep_metrics(lambda r: (r["algorithm"], int(r["seed"])) in done)
    iterations = scenario.budget.iterations
    todo = [(a, s) for a in cfg.algorithms for s in cfg.seeds if (a.label or a.name, s) not in done]
    units = len(cfg.algorithms) * len(cfg.seeds)
    finished = {"n": units - len(todo)}
    queue = iter(todo)

    def step() -> dict[str, Any]:  # one (algorithm, seed) run; its rows are the checkpoint
        alg, seed = next(queue)
        label = alg.label or alg.name
        game = plan.games_by_seed[seed]
        rows = (_run_exact(game, alg, iterations, cfg.eval.every, gap_key) if cfg.mode == "exact"
                else _run_sampled(game, alg, iterations, cfg.eval.every, seed, cfg.policy))
        for i, row in enumerate(rows):
            ctx.log_metrics({"algorithm": label, "seed": seed, "final": int(i == len(rows) - 1),
                             "gap": row[gap_key], **{k2: row.get(k2, "") for k2 in _FIELDS}})
        finished["n"] += 1
        return {"algorithm": label, "seed": seed, gap_key: rows[-1][gap_key]}

    run_loop(ctx, label=scenario.name, total=units, position=lambda: finished["n"], step=step,
             describe=lambda r: f"{r['algorithm']} seed {r['seed']}: {gap_key} {r[gap_key]:.3g}")
    table = _summarise(ctx, cfg, gap_key)
    _plot(ctx, scenario, gap_key)
    atomic_write_bytes(ctx.run_dir / "comparison.md", (table + "\n").encode())
    ctx.log(table)
    return {"gap_metric": gap_key, "algorithms": len(cfg.algorithms), "seeds": len(cfg.seeds),
            **{f"final_{r['algorithm']}": r["median"] for r in _finals(ctx, gap_key)}}


_FIELDS = ("iteration", "queries", "seconds", "dg0", "dg_beta", "kl_to_equilibrium", "win_rate_vs_ref")


def _curves(ctx: RunContext, gap_key: str) -> dict[str, dict[int, list[tuple[float, float, float]]]]:
    out: dict[str, dict[int, list[tuple[float, float, float]]]] = {}
    for r in ctx.read_rows():
        out.setdefault(r["algorithm"], {}).setdefault(int(r["seed"]), []).append(
            (float(r["queries"] or 0), float(r["gap"]), float(r["seconds"] or 0)))
    return out


def _finals(ctx: RunContext, gap_key: str) -> list[dict]:
    out = []
    for alg, seeds in _curves(ctx, gap_key).items():
        finals = [c[-1][1] for c in seeds.values()]
        out.append({"algorithm": alg, "median": float(np.median(finals))})
    return out


def _summarise(ctx: RunContext, cfg: PreferenceScenarioConfig, gap_key: str) -> str:
    lines = [f"| algorithm | median final {gap_key} | min / max over seeds | median queries to {cfg.eval.target:g} | "
             f"median seconds to {cfg.eval.target:g} | reached (seeds) |", "|---|---|---|---|---|---|"]
    for alg, seeds in _curves(ctx, gap_key).items():
        finals = [c[-1][1] for c in seeds.values()]
        reach_q, reach_s = [], []
        for c in seeds.values():
            hit = next(((q, s) for q, g, s in c if g <= cfg.eval.target), None)
            if hit is not None:
                reach_q.append(hit[0])
                reach_s.append(hit[1])
        q = f"{np.median(reach_q):.4g}" if reach_q else "—"
        s = f"{np.median(reach_s):.3g}" if reach_s else "—"
        lines.append(f"| {alg} | {np.median(finals):.3g} | {min(finals):.2g} / {max(finals):.2g} | {q} | {s} | "
                     f"{len(reach_q)}/{len(finals)} |")
    return "\n".join(lines)


def _plot(ctx: RunContext, scenario: Scenario, gap_key: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for alg, seeds in _curves(ctx, gap_key).items():
        # median over seeds at each evaluation point (seeds share the evaluation schedule)
        length = min(len(c) for c in seeds.values())
        q = np.array([c[:length] for c in seeds.values()])
        xs = np.median(q[:, :, 0], axis=0)
        ys = np.maximum(np.median(q[:, :, 1], axis=0), 1e-16)
        ax.plot(np.maximum(xs, 1), ys, label=alg)
        if len(seeds) > 1:
            ax.fill_between(np.maximum(xs, 1), np.maximum(q[:, :, 1].min(0), 1e-16), q[:, :, 1].max(0), alpha=0.15)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("preference queries" + (" (win-rate evaluations)" if scenario.config.mode == "exact" else
                                          " (sampled comparisons)"))
    ax.set_ylabel(gap_key.replace("dg_beta", "regularised duality gap DG_beta").replace("dg0", "duality gap DG0"))
    ax.grid(True, which="both", alpha=0.3)
    major_log_labels(ax)
    ax.legend(fontsize=8)
    ax.set_title(f"{scenario.name}: {scenario.game}", fontsize=9)
    save(fig, ctx.plot_path("gap_vs_queries.png"))
