"""Scenario kind `populations`: an MRA-style policy set against its baselines across games that
differ in the number of agents (marl.mra).

Per seed, four kinds of jobs, each an independent learner trained for `budget.steps`:
- `mra`: the policy set on the training populations; in each held-out population it adapts its
  latent distribution by `adapt_steps` first-order steps (network frozen) and is evaluated;
- `random latent`: the same trained policy set with latents drawn from the uniform prior, no
  adaptation (read off the same job);
- `unimodal`: one policy (mra_unimodal: same encoder and critic, no latent) on the same games;
- `reference N`: mra_unimodal trained directly on the held-out population N (an upper reference).
Every job's result is stored under `seeds/<seed>/<job>.json` as it finishes, so `--resume` redoes
nothing finished; jobs run through common.executor (`backend: ray` runs them in parallel).
Report: `results.md` (returns per population with 95% t-intervals over seeds, the discriminator's
held-out accuracy, training times), `metrics.csv`, `plots/returns.png` (return against population
size) and `plots/adaptation.png` (return during adaptation in each held-out population).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, ConfigError, count
from equilibria.common.executor import make_executor
from equilibria.scenarios.loading import Scenario, check_job_backend, load_game
from equilibria.scenarios.plots import markdown_table, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, atomic_write_bytes

Populations = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]


class PopulationsConfig(Config):
    train: Populations = [3, 6]
    """numbers of agents of the training games"""
    heldout: Populations = [4, 9]
    """numbers of agents of the unseen games (evaluation only; at least one larger than any trained on)"""
    seeds: count(100) = 5
    """seeds: the scenario's seed, seed + 1, ..."""
    mra: dict[str, Any] = {}
    """marl.mra.MRAConfig fields for the policy set (the baselines get the same, minus the latent)"""
    references: bool = True
    """also train mra_unimodal directly on each held-out population (the upper reference)"""
    eval_episodes: count(100_000) = 64
    """evaluation episodes per population and method"""
    threads: count(256) = 1
    """torch threads per job (these small networks train fastest on one)"""


@dataclasses.dataclass
class PopulationsPlan:
    scenario: Scenario
    config: PopulationsConfig
    game: Any
    jobs: list[tuple[int, str]]  # (seed, job name)


def prepare_populations(scenario: Scenario) -> PopulationsPlan:
    from equilibria.marl.mra import MRAConfig, _check_game, check_population_memory

    cfg = scenario.config
    check_job_backend(scenario, "populations scenarios")
    game = load_game(scenario)
    try:
        _check_game(game)
    except ValueError as err:
        raise scenario.error(str(err), "game") from None
    if "populations" in cfg.mra:
        raise scenario.error("the training populations are the scenario's `train`; leave mra.populations out",
                             "mra", "populations")
    overlap = sorted(set(cfg.train) & set(cfg.heldout))
    if overlap:
        raise scenario.error(f"{overlap} are both trained on and held out; a held-out population must be unseen",
                             "heldout")
    config = scenario.build(MRAConfig, {**cfg.mra, "populations": cfg.train}, "mra")
    for field, pops, episodes in (("train", cfg.train, config.num_envs),
                                  ("heldout", cfg.heldout, max(cfg.eval_episodes, config.adapt_episodes))):
        try:  # refused here, not in a job after training
            check_population_memory(game, pops, episodes, f"populations {field}")
        except (ValueError, ConfigError) as err:
            raise scenario.error(str(err), field) from None
    if scenario.budget.steps is None:
        raise scenario.error("a populations scenario needs budget.steps (environment steps per learner)", "budget")
    names = ["mra", "unimodal"] + ([f"reference_{n}" for n in cfg.heldout] if cfg.references else [])
    jobs = [(scenario.seed + k, name) for k in range(cfg.seeds) for name in names]
    return PopulationsPlan(scenario, cfg, game, jobs)


def run_job(game_spec: dict, job: str, mra_config: dict, train: list[int], heldout: list[int], steps: int,
            seed: int, episodes: int, threads: int) -> dict[str, Any]:
    """Train one learner and evaluate it on every population; a pure function of its arguments."""
    import torch

    from equilibria import games
    from equilibria.marl import registry
    from equilibria.marl.mra import with_population

    torch.set_num_threads(threads)
    game = games.load(game_spec)
    if job.startswith("reference_"):
        algo, pops = "mra_unimodal", [int(job.split("_")[1])]
    else:
        algo, pops = ("mra" if job == "mra" else "mra_unimodal"), train
    # the baselines share every setting but what makes mra_unimodal unimodal (its registered
    # defaults), which the scenario's mra settings must not override
    config = {**mra_config, "populations": pops, **registry.entry(algo).defaults}
    learner = registry.make(algo, with_population(game, pops[0]), seed=seed, **config)
    t0 = time.perf_counter()
    curve = []
    while learner.env_steps < steps:
        row = learner.train_step()
        curve.append([row["env_steps"], row["episode_return"]])
    out: dict[str, Any] = {"job": job, "seed": seed, "algorithm": algo, "num_latents": learner.config.num_latents,
                           "train_seconds": time.perf_counter() - t0, "curve": curve, "returns": {}}
    for n in (pops if job.startswith("reference_") else sorted(set(train) | set(heldout))):
        g = with_population(game, n)
        res: dict[str, Any] = {"trained": float(learner.returns_on(g, learner.probs_for(n), episodes).mean())}
        if algo == "mra":
            res["disc_accuracy"] = learner.discriminator_accuracy(g, episodes)
        if algo == "mra" and n in heldout:  # in a trained population "trained" is the policy set's own p_g
            probs, adapt_curve = learner.adapt(g)
            res.update(random_latent=res["trained"],  # an unseen population's distribution is the prior
                       adapted=float(learner.returns_on(g, probs, episodes).mean()),
                       adapted_probs=probs.tolist(), adapt_curve=adapt_curve)
        out["returns"][str(n)] = res
    return out


@register_kind("populations", PopulationsConfig, prepare=prepare_populations,
               description="MRA-style policy sets against a unimodal policy across games with different populations")
def run_populations(plan: PopulationsPlan, ctx: RunContext) -> dict[str, Any]:
    cfg, scenario = plan.config, plan.scenario
    spec = {"name": plan.game.info.name, **plan.game.info.parameters}
    results: dict[tuple[int, str], dict] = {}
    todo = []
    for seed, job in plan.jobs:
        path = _job_path(ctx.run_dir, seed, job)
        if path.exists():
            results[(seed, job)] = json.loads(path.read_text())
        else:
            todo.append((seed, job))
    if results:
        ctx.log(f"{len(results)} finished jobs found; {len(todo)} to run")
    executor = make_executor(scenario.backend, ctx.address)
    args = [(spec, job, cfg.mra, cfg.train, cfg.heldout, scenario.budget.steps, seed, cfg.eval_episodes, cfg.threads)
            for seed, job in todo]
    with ctx.progress(len(plan.jobs), "populations") as update:
        update(len(results), "")
        for i, res in executor.run_unordered(run_job, args, stop=lambda: ctx.stop_requested):
            seed, job = todo[i]
            path = _job_path(ctx.run_dir, seed, job)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, json.dumps(res).encode())
            results[(seed, job)] = res
            update(len(results), f"seed {seed} {job}: {res['train_seconds']:.0f} s")
    summary = summarize(results, cfg)
    if not summary["seeds"]:
        return {}
    ctx.write_metrics(summary["rows"], fields=["seed", "population", *METHODS, "disc_accuracy"])
    _report(ctx, plan, summary)
    return {"seeds": summary["seeds"], **{f"{m.replace(' ', '_')}_{n}": round(v[0], 3)
                                          for (m, n), v in summary["table"].items()
                                          if n in cfg.heldout and m in ("mra", "unimodal", "random latent")}}


METHODS = ("mra", "random latent", "unimodal", "reference")


def _job_path(run_dir: Path, seed: int, job: str) -> Path:
    return run_dir / "seeds" / str(seed) / f"{job}.json"


def summarize(results: dict[tuple[int, str], dict], cfg: PopulationsConfig) -> dict[str, Any]:
    """Per (method, population): mean and 95% t-interval over the seeds whose mra and unimodal jobs
    finished (a reference cell counts the seeds whose reference finished)."""
    from equilibria.marl.runtime import seed_interval

    seeds = sorted({s for s, _ in results if (s, "mra") in results and (s, "unimodal") in results})
    rows, values = [], {}
    for s in seeds:
        mra, uni = results[(s, "mra")], results[(s, "unimodal")]
        for n_text, r in mra["returns"].items():
            n = int(n_text)
            row = {"seed": s, "population": n, "mra": r["adapted"] if n in cfg.heldout else r["trained"],
                   "unimodal": uni["returns"][n_text]["trained"], "disc_accuracy": r["disc_accuracy"]}
            if n in cfg.heldout:
                row["random latent"] = r["random_latent"]
            ref = results.get((s, f"reference_{n}"))
            if ref is not None:
                row["reference"] = ref["returns"][n_text]["trained"]
            rows.append(row)
            for m in (*METHODS, "disc_accuracy"):
                if m in row:
                    values.setdefault((m, n), []).append(row[m])
    table = {k: seed_interval(v) for k, v in values.items()}
    seconds = {}
    for (_, job), res in results.items():
        kind = "reference" if job.startswith("reference_") else job
        seconds.setdefault(kind, []).append(res["train_seconds"])
    curves = {}
    for s in seeds:
        for n_text, r in results[(s, "mra")]["returns"].items():
            if int(n_text) in cfg.heldout:
                curves.setdefault(int(n_text), []).append(r["adapt_curve"])
    num_latents = len(results[(seeds[0], "mra")]["returns"][str(cfg.heldout[0])]["adapted_probs"]) if seeds else 0
    return {"seeds": len(seeds), "rows": rows, "table": table, "curves": curves, "num_latents": num_latents,
            "seconds": {k: float(np.mean(v)) for k, v in seconds.items()}}


def _pm(pair: tuple[float, float]) -> str:
    m, h = pair
    return f"{m:.3f}" + ("" if h != h else f" ± {h:.3f}")


def _report(ctx: RunContext, plan: PopulationsPlan, summary: dict[str, Any]) -> None:
    cfg, scenario = plan.config, plan.scenario
    table = summary["table"]
    pops = sorted(set(cfg.train) | set(cfg.heldout))
    methods = ["mra", "random latent", "unimodal"] + (["reference"] if cfg.references else [])
    rows = []
    for n in pops:
        label = f"{n}" + (" (held out)" if n in cfg.heldout else " (trained)")
        rows.append([label] + [_pm(table[(m, n)]) if (m, n) in table else "" for m in methods]
                    + [_pm(table[("disc_accuracy", n)]) if ("disc_accuracy", n) in table else ""])
    header = ["agents", "MRA (adapted on held-out)", "random latent", "unimodal", *(["reference (trained on N)"]
              if cfg.references else []), f"discriminator accuracy (chance {1 / summary['num_latents']:.2f})"]
    lines = [f"# {scenario.name}: MRA-style policy sets across populations", "",
             f"Game `{scenario.game}`; trained on {cfg.train} agents, held out {cfg.heldout}; {summary['seeds']} seeds "
             f"(mean ± 95% t-interval), {scenario.budget.steps:,} environment steps per learner, "
             f"{cfg.eval_episodes} greedy evaluation episodes per cell. Return = mean episode return per agent.", "",
             markdown_table(header, rows), "",
             "Training time per learner (s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(summary["seconds"].items())),
             ""]
    atomic_write_bytes(ctx.run_dir / "results.md", ("\n".join(lines) + "\n").encode())

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for m, style in zip(methods, ("o-", "s--", "^-", "d:")):
        xs = [n for n in pops if (m, n) in table]
        ax.errorbar(xs, [table[(m, n)][0] for n in xs], yerr=[np.nan_to_num(table[(m, n)][1]) for n in xs],
                    fmt=style, capsize=3, label=m)
    for n in cfg.heldout:
        ax.axvspan(n - 0.3, n + 0.3, color="grey", alpha=0.12)
    ax.set_xlabel("number of agents (shaded: held out)")
    ax.set_ylabel("mean return per agent")
    ax.legend(fontsize=8)
    ax.set_title(f"{scenario.name}: return against population size, {summary['seeds']} seeds", fontsize=9)
    save(fig, ctx.plot_path("returns.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for n, curves in sorted(summary["curves"].items()):
        c = np.asarray(curves)
        mean = c.mean(0)
        ax.plot(np.arange(len(mean)), mean, "o-", ms=3, label=f"{n} agents")
        if len(c) > 1:
            half = 1.96 * c.std(0, ddof=1) / np.sqrt(len(c))
            ax.fill_between(np.arange(len(mean)), mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("adaptation step (first-order step on the latent logits, network frozen)")
    ax.set_ylabel("mean return per agent (greedy, the step's episodes)")
    ax.legend(fontsize=8)
    ax.set_title(f"{scenario.name}: return during adaptation in held-out games", fontsize=9)
    save(fig, ctx.plot_path("adaptation.png"))
