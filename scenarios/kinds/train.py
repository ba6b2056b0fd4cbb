"""Scenario kind `train`: MAPPO / IPPO on a batched Markov game, with evaluation, TensorBoard
events, checkpoints (tensors only, loaded with weights_only=True) and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, ConfigError, PositiveInt, count, suggest
from equilibria.scenarios.core import Interrupted, RunContext, Scenario, load_game, register_kind
from equilibria.scenarios.executor import ray_init
from equilibria.scenarios.plots import interval_text, pyplot, save


class LearnerSpec(Config):
    name: str = "mappo"
    """a registered learner: mappo or ippo"""
    config: dict = Field(default_factory=dict)
    """the learner's parameters, checked against marl.mappo.MAPPOConfig"""


class TrainEval(Config):
    every_steps: PositiveInt = 20_000
    """environment steps between evaluations"""
    episodes: count(100_000) = 32
    """deterministic evaluation episodes (run at once, one environment each)"""


class TrainConfig(Config):
    algorithm: LearnerSpec = Field(default_factory=LearnerSpec)
    eval: TrainEval = Field(default_factory=TrainEval)
    checkpoint_every_steps: PositiveInt = 20_000
    """environment steps between checkpoints"""


def build_learner(scenario: Scenario, game: Any) -> Any:
    from equilibria.games.markov import BatchedMarkovGame
    from equilibria.marl import mappo

    spec = scenario.config.algorithm
    if spec.name not in mappo.ALGORITHMS:
        raise scenario.error(f"unknown learner {spec.name!r}{suggest(spec.name, list(mappo.ALGORITHMS))} "
                             f"(learners: {', '.join(mappo.ALGORITHMS)})", "algorithm", "name")
    config = scenario.build(mappo.MAPPOConfig, {**mappo.ALGORITHMS[spec.name], **spec.config}, "algorithm", "config")
    if not isinstance(game, BatchedMarkovGame):
        raise scenario.error(f"train needs a batched Markov game (e.g. cooperative_navigation); {game.info.name} is not one",
                             "game")
    try:
        return mappo.MAPPO(game, config, seed=scenario.seed)
    except ValueError as err:
        raise scenario.error(str(err), "algorithm", "config") from None


@register_kind("train", TrainConfig, description="train MAPPO / IPPO on a batched Markov game")
def run_train(scenario: Scenario, ctx: RunContext) -> dict[str, Any]:
    game = load_game(scenario)
    learner = build_learner(scenario, game)
    if scenario.backend == "rllib":
        return _run_rllib(scenario, ctx, game, learner)
    if scenario.backend != "local":
        raise scenario.error("the train kind runs with backend 'local' or 'rllib'", "backend")
    if scenario.budget.steps is None:
        raise scenario.error("a train scenario needs budget.steps (environment steps)", "budget")
    cfg = scenario.config
    ctx.begin()
    state = ctx.load_torch_checkpoint()
    if state is not None:
        ctx.restore(learner, state, ctx.torch_checkpoint_path)
        ctx.truncate_metrics("env_steps", learner.env_steps)
        ctx.log(f"resumed {ctx.run_dir} at {learner.env_steps} environment steps")
    writer = _tensorboard(ctx.run_dir / "tensorboard")
    next_eval = (learner.env_steps // cfg.eval.every_steps + 1) * cfg.eval.every_steps
    next_ckpt = (learner.env_steps // cfg.checkpoint_every_steps + 1) * cfg.checkpoint_every_steps
    row: dict[str, Any] = {}

    def save() -> None:
        ctx.save_torch_checkpoint(learner.state_dict())

    total = scenario.budget.steps
    with ctx.interruptible(), ctx.progress(total, scenario.name) as update:
        if learner.env_steps == 0:
            mean, ci = learner.evaluate(cfg.eval.episodes)
            row = {"env_steps": 0, "eval_return": mean, "eval_ci95": ci}
            ctx.log_metrics(row)
        while learner.env_steps < total:
            stats = learner.train_step()
            if writer is not None:
                for k, v in stats.items():
                    if k != "env_steps" and np.isfinite(v):
                        writer.add_scalar(f"train/{k}", v, learner.env_steps)
            final = learner.env_steps >= total
            if learner.env_steps >= next_eval or final:
                mean, ci = learner.evaluate(cfg.eval.episodes)
                row = {"env_steps": learner.env_steps, "eval_return": mean, "eval_ci95": ci,
                       "train_return": stats["episode_return"], "steps_per_second": stats["steps_per_second"],
                       "entropy": stats["entropy"]}
                ctx.log_metrics(row)
                if writer is not None:
                    writer.add_scalar("eval/return", mean, learner.env_steps)
                update(learner.env_steps, f"eval return {_mean_ci_text(mean, ci, cfg.eval.episodes)}")
                next_eval += cfg.eval.every_steps
            if learner.env_steps >= next_ckpt or final:
                save()
                next_ckpt += cfg.checkpoint_every_steps
            if ctx.stop_requested and not final:
                save()
                raise Interrupted(ctx.run_dir, learner.env_steps)
    if writer is not None:
        writer.close()
    _plot(ctx, scenario)
    if not row:
        rows = ctx.read_metrics()
        row = rows[-1] if rows else {}
    return {"env_steps": learner.env_steps, "eval_return": row.get("eval_return"), "eval_ci95": row.get("eval_ci95")}


def _mean_ci_text(mean: float, half_width: float, episodes: int) -> str:
    return interval_text(mean, mean - half_width, mean + half_width, episodes, "{:.2f}", "episodes")


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: metrics.csv still has everything
        return None
    return SummaryWriter(str(path))


def _plot(ctx: RunContext, scenario: Scenario) -> None:
    plt = pyplot()
    rows = ctx.read_metrics()
    if not rows:
        return
    x = np.array([r["env_steps"] for r in rows])
    y = np.array([r["eval_return"] for r in rows])
    ci = np.array([r.get("eval_ci95", 0.0) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, marker="o")
    ax.fill_between(x, y - np.nan_to_num(ci), y + np.nan_to_num(ci), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("eval return per agent")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{scenario.name}: {scenario.config.algorithm.name} on {scenario.game}\n"
                 f"deterministic evaluation, mean and 95% CI", fontsize=9)
    save(fig, ctx.plot_path("learning_curve.png"))


def load_trained(run_dir: Path) -> tuple[Scenario, Any, Any]:
    """(scenario, game, learner) of a train run, with the learner's latest checkpoint loaded."""
    from equilibria.scenarios.core import _prepare_resume

    run_dir = Path(run_dir)
    scenario = _prepare_resume(run_dir)
    if scenario.kind != "train":
        raise ConfigError(f"{run_dir} is a '{scenario.kind}' run, not a train run")
    ctx = RunContext(scenario, resume=run_dir)
    if not ctx.torch_checkpoint_path.exists():
        raise ConfigError(f"{run_dir} has no checkpoint yet ({ctx.torch_checkpoint_path})")
    game = load_game(scenario)
    learner = build_learner(scenario, game)
    ctx.restore(learner, ctx.load_torch_checkpoint(), ctx.torch_checkpoint_path)
    return scenario, game, learner


def evaluate_run(run_dir: Path, episodes: int = 32) -> dict[str, float]:
    """Reload a train run's checkpoint and run deterministic evaluation episodes."""
    _, _, learner = load_trained(run_dir)
    mean, ci = learner.evaluate(episodes)
    return {"episodes": episodes, "mean_return": mean, "ci95": ci, "env_steps": learner.env_steps}


# ----------------------------------------------------------------------------- RLlib backend
def rllib_ppo_config(game_spec: Any, learner: Any, seed: int) -> Any:
    """RLlib PPO (new API stack) with the same batch, epochs and PPO constants as our MAPPO config.
    Documented subset: parameter sharing (one RLModule), independent critics (RLlib's default)."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from equilibria.games.adapters.rllib import rllib_env_class

    c = learner.config
    batch = c.num_envs * c.rollout_length
    return (PPOConfig().environment(env=rllib_env_class(), env_config={"game": game_spec, "seed": seed})
            .multi_agent(policies={"shared"}, policy_mapping_fn=lambda aid, *a, **k: "shared")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
            .training(train_batch_size_per_learner=batch, minibatch_size=max(1, batch // c.num_minibatches),
                      num_epochs=c.ppo_epochs, lr=c.lr, gamma=c.gamma, lambda_=c.gae_lambda,
                      entropy_coeff=c.entropy_coef, clip_param=c.clip, grad_clip=c.max_grad_norm)
            .rl_module(model_config={"fcnet_hiddens": [c.hidden, c.hidden], "fcnet_activation": "tanh"})
            .debugging(seed=seed))


def rllib_evaluate(algo: Any, game: Any, episodes: int, seed: int = 10_000) -> tuple[float, float]:
    """The same deterministic evaluation as MAPPO.evaluate, with RLlib's module choosing actions."""
    import torch

    from equilibria.marl.runtime import evaluate_episodes

    module = algo.get_module("shared")

    def choose(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = module.forward_inference({"obs": torch.as_tensor(obs.reshape(-1, obs.shape[-1]))})
        return logits["action_dist_inputs"].argmax(-1).numpy().reshape(obs.shape[0], obs.shape[1])

    return evaluate_episodes(game, choose, episodes, seed)


def _run_rllib(scenario: Scenario, ctx: RunContext, game: Any, learner: Any) -> dict[str, Any]:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise scenario.error("backend rllib needs ray[rllib] (pip install 'ray[rllib]')", "backend") from None
    if scenario.budget.steps is None:
        raise scenario.error("a train scenario needs budget.steps (environment steps)", "budget")
    cfg = scenario.config
    ctx.begin()
    ray_init(ctx.address)
    algo = rllib_ppo_config(scenario.game, learner, scenario.seed).build_algo()
    steps, row, next_eval = 0, {}, cfg.eval.every_steps
    mean, ci = rllib_evaluate(algo, game, cfg.eval.episodes)
    ctx.log_metrics({"env_steps": 0, "eval_return": mean, "eval_ci95": ci})
    with ctx.interruptible(), ctx.progress(scenario.budget.steps, scenario.name) as update:
        while steps < scenario.budget.steps:
            result = algo.train()
            steps = int(result.get("num_env_steps_sampled_lifetime", steps))
            final = steps >= scenario.budget.steps
            if steps >= next_eval or final:
                mean, ci = rllib_evaluate(algo, game, cfg.eval.episodes)
                er = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
                row = {"env_steps": steps, "eval_return": mean, "eval_ci95": ci,
                       "train_return": er / game.num_agents}
                ctx.log_metrics(row)
                update(steps, f"eval return {_mean_ci_text(mean, ci, cfg.eval.episodes)}")
                next_eval += cfg.eval.every_steps
            if ctx.stop_requested and not final:
                raise Interrupted(ctx.run_dir, steps)
    algo.stop()
    _plot(ctx, scenario)
    return {"env_steps": steps, "eval_return": row.get("eval_return"), "eval_ci95": row.get("eval_ci95"),
            "backend": "rllib"}
