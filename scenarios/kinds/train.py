"""Scenario kind `train`: any registered learner (marl.registry, chosen by `algorithm.name`) on a
Markov game, or RLlib's PPO with `backend: rllib` (mappo's config), with evaluation, TensorBoard
events, checkpoints (tensors only, loaded with weights_only=True) and resume. Besides the latest
checkpoint, a run keeps its learner at its best evaluation (checkpoints/best.pt, which also records
when and what it scored; best.json is a readable copy), as the papers' code keeps its best model;
a `run:` entry plays it with `checkpoint: best`."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, PositiveInt, count
from equilibria.scenarios.learning import LearnerSpec, build_learner, evaluation_options, learner_config, load_best
from equilibria.scenarios.loading import Scenario, load_game
from equilibria.scenarios.loop import run_loop
from equilibria.scenarios.plots import interval_text, pyplot, save
from equilibria.scenarios.registry import register_kind
from equilibria.scenarios.rundir import RunContext, atomic_write_bytes


class TrainEval(Config):
    every_steps: PositiveInt = 20_000
    """environment steps between evaluations"""
    episodes: count(100_000) = 32
    """evaluation episodes (run at once, one environment each): greedy actions, unless the learner
    evaluates by sampling (its `eval_deterministic`, e.g. MAMQL on Gems as the paper evaluates)"""


class TrainConfig(Config):
    algorithm: LearnerSpec = Field(default_factory=LearnerSpec)
    eval: TrainEval = Field(default_factory=TrainEval)
    checkpoint_every_steps: PositiveInt = 20_000
    """environment steps between checkpoints"""
    threads: count(256) = 1
    """torch CPU threads of the local learner. The papers' small networks (64-64 MLPs on a batch
    of a few thousand rows) train fastest on one: a second thread adds synchronisation, and on a
    busy machine spinning threads starve the working one"""


@dataclasses.dataclass
class TrainPlan:
    scenario: Scenario
    game: Any
    config: Any  # the learner's typed config


def prepare_train(scenario: Scenario) -> TrainPlan:
    if scenario.backend not in ("local", "rllib"):
        raise scenario.error("the train kind runs with backend 'local' or 'rllib'", "backend")
    game = load_game(scenario)
    config = learner_config(scenario, game)
    if scenario.budget.steps is None:
        raise scenario.error("a train scenario needs budget.steps (environment steps)", "budget")
    if scenario.backend == "rllib":
        if scenario.config.algorithm.name not in ("mappo", "ippo"):
            raise scenario.error(f"backend rllib runs RLlib's PPO with mappo's config; learner "
                                 f"{scenario.config.algorithm.name!r} runs with backend local", "backend")
        if game.masks_actions:
            raise scenario.error(f"backend rllib does not pass action masks, and {game.info.name} masks actions; "
                                 "use backend local", "backend")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise scenario.error("backend rllib needs ray[rllib] (pip install 'ray[rllib]')", "backend") from None
    return TrainPlan(scenario, game, config)


@register_kind("train", TrainConfig, prepare=prepare_train, description="train a registered learner (MAPPO, IPPO, ...) on a Markov game")
def run_train(plan: TrainPlan, ctx: RunContext) -> dict[str, Any]:
    scenario, game = plan.scenario, plan.game
    cfg = scenario.config
    if scenario.backend == "rllib":
        from equilibria.marl.rllib import RLlibPPO

        learner: Any = RLlibPPO(game, scenario.game, plan.config, seed=scenario.seed, address=ctx.address)
        save = None
    else:
        import torch

        torch.set_num_threads(cfg.threads)
        learner = build_learner(scenario, game, plan.config)
        state = ctx.load_torch_checkpoint()
        if state is not None:
            ctx.restore(learner, state, ctx.torch_checkpoint_path)
            ctx.truncate_metrics("env_steps", learner.env_steps)
            ctx.log(f"resumed {ctx.run_dir} at {learner.env_steps} environment steps")

        def save() -> None:
            ctx.save_torch_checkpoint(learner.state_dict())
    writer = _tensorboard(ctx.run_dir / "tensorboard")
    best = load_best(ctx)[1] if save is not None and ctx.best_checkpoint_path.exists() else None

    def step() -> dict[str, float]:
        stats = learner.train_step()
        if writer is not None:
            for k, v in stats.items():
                if k != "env_steps" and np.isfinite(v):
                    writer.add_scalar(f"train/{k}", v, learner.env_steps)
        return stats

    def evaluate(stats: dict[str, float] | None) -> dict[str, Any]:
        mean, ci = learner.evaluate(cfg.eval.episodes, **evaluation_options(learner))
        row = {"env_steps": learner.env_steps, "eval_return": mean, "eval_ci95": ci}
        extra = getattr(learner, "extra_evaluation", None)  # e.g. bnac: the return with its DAG's edges removed
        if extra is not None:
            row.update(extra(cfg.eval.episodes))
        if stats is not None:
            row["train_return"] = stats["episode_return"]
            row.update({k: stats[k] for k in ("steps_per_second", "entropy", "open_ratio") if k in stats})
        if writer is not None:
            writer.add_scalar("eval/return", mean, learner.env_steps)
        nonlocal best
        if save is not None and np.isfinite(mean) and (best is None or mean > best["eval_return"]):
            # the learner of the best evaluation so far, for `run:` entries with `checkpoint: best`;
            # its record travels inside the same file (one atomic write), best.json is a readable copy
            best = {"env_steps": int(learner.env_steps), "eval_return": float(mean)}
            ctx.save_torch_checkpoint({"learner": learner.state_dict(), "best": best}, ctx.best_checkpoint_path)
            atomic_write_bytes(ctx.best_checkpoint_path.with_suffix(".json"), json.dumps(best).encode())
        return row

    try:
        row = run_loop(ctx, label=scenario.name, total=scenario.budget.steps, position=lambda: learner.env_steps,
                       step=step, evaluate=evaluate, eval_every=cfg.eval.every_steps, eval_at_start=True,
                       save=save, save_every=cfg.checkpoint_every_steps,
                       describe=lambda r: f"eval return {_mean_ci_text(r['eval_return'], r['eval_ci95'], cfg.eval.episodes)}")
    finally:
        if writer is not None:
            writer.close()
        if scenario.backend == "rllib":
            learner.stop()
    _plot(ctx, scenario, getattr(learner, "eval_deterministic", True))
    out = {"env_steps": learner.env_steps, "eval_return": row.get("eval_return"), "eval_ci95": row.get("eval_ci95")}
    if best is not None:
        out.update(best_eval_return=best["eval_return"], best_env_steps=best["env_steps"])
    return {**out, "backend": "rllib"} if scenario.backend == "rllib" else out


def _mean_ci_text(mean: float, half_width: float, episodes: int) -> str:
    return interval_text(mean, mean - half_width, mean + half_width, episodes, "{:.2f}", "episodes")


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: metrics.csv still has everything
        return None
    return SummaryWriter(str(path))


def _plot(ctx: RunContext, scenario: Scenario, deterministic: bool = True) -> None:
    plt = pyplot()
    rows = ctx.read_metrics()
    if not rows:
        return
    x = np.array([r["env_steps"] for r in rows])
    y = np.array([r["eval_return"] for r in rows])
    ci = np.array([r.get("eval_ci95", 0.0) for r in rows])
    density = "threshold" in rows[-1]  # a learner with a DAG over its agents (bnac)
    fig, axes = plt.subplots(2 if density else 1, 1, figsize=(7, 6.5 if density else 4), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(x, y, marker="o", label="with the DAG" if density else None)
    ax.fill_between(x, y - np.nan_to_num(ci), y + np.nan_to_num(ci), alpha=0.2)
    if density:
        y2 = np.array([r["eval_return_no_edges"] for r in rows])
        ci2 = np.array([r.get("eval_no_edges_ci95", 0.0) for r in rows])
        ax.plot(x, y2, marker="s", label="edges removed (decentralised)")
        ax.fill_between(x, y2 - np.nan_to_num(ci2), y2 + np.nan_to_num(ci2), alpha=0.2)
        ax.legend(fontsize=8)
        dax = axes[1, 0]
        dax.plot(x, [r["threshold"] for r in rows], label="threshold", linestyle="--")
        dax.plot(x, [r.get("open_ratio", np.nan) for r in rows], marker=".", label="edge density (open_ratio)")
        dax.set_ylabel("edge density")
        dax.set_ylim(-0.05, 1.05)
        dax.legend(fontsize=8)
        dax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("environment steps")
    ax.set_ylabel("eval return per agent")
    ax.grid(True, alpha=0.3)
    ax.set_title(textwrap.fill(f"{scenario.name}: {scenario.config.algorithm.name} on {scenario.game}", 90) + "\n"
                 f"{'deterministic' if deterministic else 'sampled'} evaluation, mean and 95% CI",
                 fontsize=9)
    save(fig, ctx.plot_path("learning_curve.png"))


