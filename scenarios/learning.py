"""Learners in scenarios: the `algorithm:` block of a train scenario checked and built, and a
train run's learner reloaded from its checkpoint (for `equilibria eval` and tournament lineups)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from equilibria.common.config import Config, ConfigError, suggest
from equilibria.scenarios.loading import Scenario, load_game, load_run_config
from equilibria.scenarios.rundir import RunContext


class LearnerSpec(Config):
    name: str = "mappo"
    """a registered learner: mappo or ippo"""
    config: dict = Field(default_factory=dict)
    """the learner's parameters, checked against marl.mappo.MAPPOConfig"""


def learner_config(scenario: Scenario, game: Any) -> Any:
    """The checked learner config of a train scenario (nothing is built)."""
    from equilibria.games.markov import BatchedMarkovGame
    from equilibria.marl import mappo

    spec = scenario.config.algorithm
    if spec.name not in mappo.ALGORITHMS:
        raise scenario.error(f"unknown learner {spec.name!r}{suggest(spec.name, list(mappo.ALGORITHMS))} "
                             f"(learners: {', '.join(mappo.ALGORITHMS)})", "algorithm", "name")
    config = scenario.build(mappo.MAPPOConfig, {**mappo.ALGORITHMS[spec.name], **spec.config}, "algorithm", "config")
    if not isinstance(game, BatchedMarkovGame):
        raise scenario.error(f"train needs a batched Markov game (e.g. cooperative_navigation); {game.info.name} is "
                             "not one", "game")
    try:
        mappo.check_memory_of(game, config)
    except ValueError as err:
        raise scenario.error(str(err), "algorithm", "config") from None
    return config


def build_learner(scenario: Scenario, game: Any, config: Any) -> Any:
    from equilibria.marl import mappo

    return mappo.MAPPO(game, config, seed=scenario.seed)


def load_trained(run_dir: Path) -> tuple[Scenario, Any, Any]:
    """(scenario, game, learner) of a train run, with the learner's latest checkpoint loaded."""
    run_dir = Path(run_dir)
    scenario = load_run_config(run_dir)
    if scenario.kind != "train":
        raise ConfigError(f"{run_dir} is a '{scenario.kind}' run, not a train run")
    ctx = RunContext(scenario, resume=run_dir)
    if not ctx.torch_checkpoint_path.exists():
        raise ConfigError(f"{run_dir} has no checkpoint yet ({ctx.torch_checkpoint_path})")
    game = load_game(scenario)
    learner = build_learner(scenario, game, learner_config(scenario, game))
    ctx.restore(learner, ctx.load_torch_checkpoint(), ctx.torch_checkpoint_path)
    return scenario, game, learner


def evaluate_run(run_dir: Path, episodes: int = 32) -> dict[str, float]:
    """Reload a train run's checkpoint and run deterministic evaluation episodes."""
    _, _, learner = load_trained(run_dir)
    mean, ci = learner.evaluate(episodes)
    return {"episodes": episodes, "mean_return": mean, "ci95": ci, "env_steps": learner.env_steps}
