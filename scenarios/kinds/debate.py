"""Scenario kind `debate`: the justifiable-decision pipeline (Sukovic & Radanovic, ICLR 2024) on the
ICU-Sepsis MDP, for several seeds (marl.debate.pipeline): judges, self-play debaters, the debate
reward against the lambda = 0 baseline, one policy per lambda, and the paper's trade-off between
survival (exact, from the known transition matrix) and justifiability.

Each seed's stages are stored under `seeds/<k>/` as they finish (judges, debaters, confuser,
DQN policies, the seed's results), so `equilibria run --resume` redoes nothing finished. The report:
`results.md` (per lambda: survival and justifiability with 95% intervals over seeds; the judges'
accuracy, debaters' win rates and robustness, verdict agreement with the full-information judge),
`metrics.csv` (one row per seed and lambda) and `plots/tradeoff.png` (survival against
justifiability across lambda).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from equilibria.common.config import count
from equilibria.marl.debate.pipeline import SepsisDebateConfig
from equilibria.scenarios.loading import Scenario
from equilibria.scenarios.plots import markdown_table, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, atomic_write_bytes


class DebateScenarioConfig(SepsisDebateConfig):
    seeds: count(100) = 3
    """seeds: the scenario's seed, seed + 1, ...; each trains its own judges, debaters and policies"""
    threads: count(256) = 1
    """torch threads (the train kind's default: these small networks train fastest on one)"""


@dataclasses.dataclass
class DebatePlan:
    scenario: Scenario
    config: DebateScenarioConfig


def prepare_debate(scenario: Scenario) -> DebatePlan:
    if scenario.game is not None:
        raise scenario.error("a debate scenario plays on ICU-Sepsis (the `debate` extra); it takes no game", "game")
    from equilibria.games.icu_sepsis import load_sepsis
    from equilibria.marl.debate.debaters import DebatersConfig
    from equilibria.marl.debate.judge import JudgeConfig
    from equilibria.marl.dqn import DQNConfig

    cfg = scenario.config
    scenario.build(JudgeConfig, {**cfg.judge, "num_arguments": cfg.num_arguments}, "judge")
    scenario.build(DebatersConfig, cfg.debaters, "debaters")
    scenario.build(DQNConfig, cfg.dqn, "dqn")
    load_sepsis()  # a missing `debate` extra is a one-line error before anything runs
    return DebatePlan(scenario, cfg)


@register_kind("debate", DebateScenarioConfig, prepare=prepare_debate,
               description="justifiable decisions on ICU-Sepsis: judges, self-play debaters, a policy per lambda")
def run_debate(plan: DebatePlan, ctx: RunContext) -> dict[str, Any]:
    import torch

    from equilibria.marl.debate.pipeline import run_seed, summarize_seeds

    cfg, seed0 = plan.config, plan.scenario.seed
    torch.set_num_threads(cfg.threads)
    results, rows = [], []
    for k in range(cfg.seeds):
        if ctx.stop_requested:
            break
        res = run_seed(cfg, seed0 + k, ctx.run_dir / "seeds" / str(seed0 + k), ctx.log)
        results.append(res)
        rows += [{"seed": res["seed"], **row} for row in res["lambdas"]]
        ctx.write_metrics(rows)  # rewritten whole: a resumed run's finished seeds come back from their results
    if not results:
        return {}
    summary = summarize_seeds(results)
    _report(ctx, plan, summary, len(results))
    zero, one = summary["lambdas"][min(summary["lambdas"])], summary["lambdas"][max(summary["lambdas"])]
    return {"seeds": len(results), "survival_lambda0": round(zero["survival"][0], 4),
            "justifiability_lambda0": round(zero["justifiability"][0], 4),
            "survival_lambda_max": round(one["survival"][0], 4),
            "justifiability_lambda_max": round(one["justifiability"][0], 4)}


def _pm(pair: tuple[float, float], fmt: str = "{:.3f}") -> str:
    m, h = pair
    return fmt.format(m) + ("" if h != h else " ± " + fmt.format(h))  # h is nan for one seed


def _report(ctx: RunContext, plan: DebatePlan, summary: dict[str, Any], seeds: int) -> None:
    cfg = plan.config
    rows = [[f"{lam:g}", _pm(v["survival"], "{:.4f}"), _pm(v["justifiability"]), _pm(v["justifiability_ties_half"]),
             _pm(v["agrees_with_clinician"])]
            for lam, v in sorted(summary["lambdas"].items())]
    lines = [f"# {plan.scenario.name}: justifiable decisions on ICU-Sepsis", "",
             f"{seeds} seeds (mean ± 95% t-interval); policies: `{cfg.policy}`; {cfg.num_arguments} arguments per "
             f"debate. Survival is exact (value-iteration optimum {summary['optimum'][0]:.4f}, clinician "
             f"{summary['clinician'][0]:.4f}); justifiability = share of debates against the lambda = 0 policy's "
             "decision won (the official code's: a tie or a loss counts 0), over states weighted by the clinician's "
             "occupancy, beside it the same with ties counted half.", "",
             markdown_table(["lambda", "survival", "justifiability", "ties counted half", "agreement with the clinician"],
                            rows), ""]
    names = {"judge_accuracy": "judge held-out preference accuracy", "full_judge_accuracy": "full-information judge",
             "debater_vs_random": "debater's payoff against a random debater",
             "debater_vs_selfplay": "side 0's payoff against its self-play partner (side 0 defends a uniform treatment, "
                                    "side 1 the clinician's half the time)",
             "debater_vs_confuser": "side 0's payoff against a confuser trained against it (robustness: the fall "
                                    "from the line above)",
             "agreement_debate": "debate verdict = full-information verdict (trained debaters)",
             "agreement_random_evidence": "the same with randomly revealed evidence",
             "judge_seconds": "judges' training time (s, both)", "debater_seconds": "debaters' training time (s)"}
    lines.append(markdown_table(["measure", "value"], [[v, _pm(summary[k])] for k, v in names.items() if k in summary]))
    atomic_write_bytes(ctx.run_dir / "results.md", ("\n".join(lines) + "\n").encode())

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for lam, v in sorted(summary["lambdas"].items()):
        (sm, sh), (jm, jh) = v["survival"], v["justifiability"]
        ax.errorbar(jm, sm, xerr=0 if jh != jh else jh, yerr=0 if sh != sh else sh, fmt="o", capsize=3)
        ax.annotate(f"λ={lam:g}", (jm, sm), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axhline(summary["optimum"][0], color="k", ls="--", lw=1, label="optimal survival")
    ax.axhline(summary["clinician"][0], color="grey", ls=":", lw=1, label="clinician")
    ax.set_xlabel("justifiability (debates won against the baseline)")
    ax.set_ylabel("survival probability (exact)")
    ax.legend(fontsize=8)
    ax.set_title(f"{plan.scenario.name}: survival against justifiability, {seeds} seeds", fontsize=9)
    save(fig, ctx.plot_path("tradeoff.png"))
