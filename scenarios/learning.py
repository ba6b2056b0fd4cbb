"""Learners in scenarios: the `algorithm:` block of a train scenario checked and built, and a
train run's learner reloaded from its checkpoint (for `equilibria eval` and tournament lineups)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field

from equilibria.common.config import Config, ConfigError, suggest
from equilibria.scenarios.loading import Scenario, load_game, load_run_config
from equilibria.scenarios.rundir import RunContext

Checkpoint = Literal["latest", "best"]
CHECKPOINTS = get_args(Checkpoint)


class LearnerSpec(Config):
    name: str = "mappo"
    """a registered learner (equilibria list learners)"""
    config: dict = Field(default_factory=dict)
    """the learner's parameters, checked against its typed config (equilibria explain NAME)"""


def learner_config(scenario: Scenario, game: Any) -> Any:
    """The checked learner config of a train scenario (nothing is built)."""
    from equilibria import marl

    spec = scenario.config.algorithm
    if spec.name not in marl.registered():
        raise scenario.error(f"unknown learner {spec.name!r}{suggest(spec.name, marl.registered())} "
                             f"(learners: {', '.join(marl.registered())})", "algorithm", "name")
    e = marl.entry(spec.name)
    given = {**e.defaults, **spec.config}
    if "total_steps" in e.config_cls.model_fields and "total_steps" not in spec.config and scenario.budget.steps:
        given["total_steps"] = scenario.budget.steps  # a learner's schedules span the scenario's budget
    config = scenario.build(e.config_cls, given, "algorithm", "config")
    try:
        marl.registry.check_applicable(e, game, config)
    except ValueError as err:
        field = ("game",) if "Markov games" in str(err) else ("algorithm", "config")
        raise scenario.error(str(err), *field) from None
    return config


def build_learner(scenario: Scenario, game: Any, config: Any) -> Any:
    from equilibria import marl

    return marl.make_with(marl.entry(scenario.config.algorithm.name), game, config, seed=scenario.seed)


def load_trained(run_dir: Path, checkpoint: Checkpoint = "latest") -> tuple[Scenario, Any, Any]:
    """(scenario, game, learner) of a train run, with the learner's latest checkpoint loaded, or
    (`checkpoint="best"`) the one of its best evaluation. The game is the one the learner acts in,
    which a learner may have rebuilt from the scenario's (MAPPO-PIS adds its intents and safety module)."""
    run_dir = Path(run_dir)
    scenario = train_run_config(run_dir)
    ctx = RunContext(scenario, resume=run_dir)
    path = ctx.best_checkpoint_path if checkpoint == "best" else ctx.torch_checkpoint_path
    if not path.exists():
        raise ConfigError(f"{run_dir} has no {checkpoint} checkpoint yet ({path})")
    game = load_game(scenario)
    learner = build_learner(scenario, game, learner_config(scenario, game))
    state = load_best(ctx)[0] if checkpoint == "best" else ctx.load_torch_checkpoint(path)
    ctx.restore(learner, state, path)
    return scenario, getattr(learner, "game", game), learner


def train_run_config(run_dir: Path) -> Scenario:
    """The config of a train run whose learner can be loaded (ConfigError otherwise: another kind,
    or RLlib's backend, which keeps no checkpoint); nothing else is read."""
    scenario = load_run_config(run_dir)
    if scenario.kind != "train":
        raise ConfigError(f"{run_dir} is a run of kind '{scenario.kind}', not a train run")
    if scenario.backend == "rllib":
        raise ConfigError(f"{run_dir} was trained by RLlib (backend: rllib), which keeps no checkpoint to load")
    return scenario


def load_best(ctx: RunContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """A train run's best.pt, as the train kind writes it: (the learner's state, its record: when it
    was evaluated and what it scored)."""
    path = ctx.best_checkpoint_path
    saved = ctx.load_torch_checkpoint(path)
    try:
        record = {"env_steps": int(saved["best"]["env_steps"]), "eval_return": float(saved["best"]["eval_return"])}
        if not isinstance(saved["learner"], dict):
            raise TypeError("the learner is not a state")
    except (ValueError, KeyError, TypeError):
        raise ctx.checkpoint_error(path, "is not a best-evaluation checkpoint (a learner and its record)") from None
    return saved["learner"], record


def evaluation_options(learner: Any) -> dict[str, bool]:
    """How a learner's own evaluations act: greedy (no options, every learner's default), or
    sampled for learners that say so (`eval_deterministic = False`)."""
    return {} if getattr(learner, "eval_deterministic", True) else {"deterministic": False}


def evaluate_run(run_dir: Path, episodes: int = 32, checkpoint: Checkpoint = "latest") -> dict[str, float]:
    """Reload a train run's checkpoint and run evaluation episodes as its train kind did (greedy,
    unless the learner evaluates by sampling: `eval_deterministic`)."""
    _, _, learner = load_trained(run_dir, checkpoint)
    options = evaluation_options(learner)
    mean, ci = learner.evaluate(episodes, **options)
    return {"episodes": episodes, "mean_return": mean, "ci95": ci, "env_steps": learner.env_steps,
            "deterministic": options.get("deterministic", True)}
