"""Lineup entries: the one model of "who plays" that tournaments and evaluations share (a solver
snapshot, a scripted bot, a train run's actors, an agent), how an entry is checked against a game
without building anything expensive, and how it is built to play."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from equilibria.common.config import Config, ConfigError, count
from equilibria.games.core import ScriptedPolicy
from equilibria.scenarios.learning import Checkpoint, load_trained, train_run_config
from equilibria.scenarios.loading import Scenario, builtin_dir, load_game
from equilibria.scenarios.tournament import AgentSpec

Seats = count(64)


class LineupEntry(Config):
    name: str
    """the entry's name in tables, plots and replays"""
    solver: str | None = None
    """a registered solver, run for `iterations` before play"""
    controller: str | None = None
    """a registered controller holding every seat of a Markov game (mapf_planner, pibt, ...; evaluate only)"""
    iterations: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """solver iterations before the snapshot is taken"""
    config: dict = Field(default_factory=dict)
    """the solver's or the controller's parameters"""
    policy: Literal["average", "current"] = "average"
    """which policy of the solver plays"""
    scripted: Literal["random", "first_action", "last_action"] | None = None
    """a scripted bot"""
    run: str | None = None
    """a train run directory: its MARL checkpoint plays (a stochastic actor in tournaments)"""
    checkpoint: Checkpoint = "latest"
    """with run: its latest checkpoint, or the learner of its best evaluation (best)"""
    agent: str | dict | None = None
    """an agent: its type (random, rule, human, smollm2, transformers, openai) or {type: ..., ...}"""
    seats: Seats = 1
    """seating fixed: how many seats this entry fills in every match"""

    def agent_spec(self) -> dict[str, Any]:
        return {"type": self.agent} if isinstance(self.agent, str) else dict(self.agent or {})

    def check(self) -> None:
        if sum(x is not None for x in (self.solver, self.scripted, self.run, self.agent, self.controller)) != 1:
            raise ValueError("give exactly one of solver, scripted, run, agent or controller")
        if self.checkpoint != "latest" and self.run is None:
            raise ValueError("checkpoint: only a run entry has checkpoints")
        if self.solver is not None and self.iterations < 1:
            raise ValueError(f"iterations: must be >= 1 for a solver snapshot, got {self.iterations}")


def check_entry(scenario: Scenario, game: Any, e: LineupEntry, where: tuple[str, ...]) -> None:
    """The checks of an agent or solver entry that plays `game` (a model is not loaded, a solver
    not run); a run entry is checked by the kind, against its own notion of a fitting game."""
    from equilibria import solvers
    from equilibria.llm_agents.agents import check_agent_spec
    from equilibria.solvers.base import check_applicable

    if e.controller is not None:
        from equilibria.marl import controllers

        if scenario.kind != "evaluate":
            raise scenario.error("a controller holds every seat of a Markov game at once; use it in kind: evaluate",
                                 *where, "controller")
        try:
            controllers.make(e.controller, game, **e.config)
        except (TypeError, ValueError) as err:
            raise scenario.error(str(err), *where, "controller" if isinstance(err, ConfigError) else "config") \
                from None
    elif e.agent is not None:
        try:
            check_agent_spec(e.agent_spec(), game.info.name)  # no model is loaded here
        except (TypeError, ValueError) as err:
            raise scenario.error(str(err), *where, "agent") from None
        if scenario.backend == "ray" and e.agent_spec().get("type") == "human":
            raise scenario.error("a human agent plays at this terminal; use backend 'local'", "backend")
    elif e.solver is not None:
        try:
            entry = solvers.entry(e.solver)
            solvers.build_config(e.solver, e.config, source=scenario.source, path=(*where, "config"))
            check_applicable(entry, game)
        except ConfigError:
            raise
        except ValueError as err:
            raise scenario.error(str(err), *where, "solver") from None


def trained_run(scenario: Scenario, run_dir: str, where: tuple[str, ...]) -> tuple[Path, Any]:
    """A train run directory (relative paths also from the scenario file's folder) and the game it
    was trained on; nothing is loaded but its config."""
    path = Path(run_dir)
    if not path.is_absolute() and scenario.source.name.endswith(" (built-in)"):
        candidate = builtin_dir() / path  # runs shipped beside the built-ins (the FollowerLite weights)
        path = candidate if candidate.exists() else path
    elif not path.is_absolute() and scenario.source.name not in ("scenario", ""):
        candidate = Path(scenario.source.name).parent / path
        path = candidate if candidate.exists() else path
    try:
        trained_game = load_game(train_run_config(path))
    except ConfigError as err:
        raise scenario.error(str(err), *where, "run") from None
    return path, trained_game


def same_game(a: Any, b: Any) -> bool:
    """The same game with the same parameters (however its spec was spelled)."""
    return a.info.name == b.info.name and a.info.parameters == b.info.parameters


def build_entry(e: LineupEntry, game: Any, run: Path | None = None) -> Any:
    """One entry as it plays `game`: a solver snapshot runs here, a trained actor loads here (from
    `run`, the entry's checked run directory), an agent stays a spec built where it plays."""
    from equilibria import solvers

    if e.agent is not None:
        return AgentSpec(json.dumps(e.agent_spec(), sort_keys=True), e.name)
    if e.scripted is not None:
        return ScriptedPolicy(e.scripted)
    if e.controller is not None:
        from equilibria.marl import controllers

        return controllers.make(e.controller, game, **e.config)
    if e.run is not None:
        return load_trained(run, e.checkpoint)[2].policy(deterministic=False)
    solver = solvers.make(e.solver, game, **e.config)
    solver.run(e.iterations)
    return solver.average_policy() if e.policy == "average" else solver.current_policy()


__all__ = ["LineupEntry", "build_entry", "check_entry", "same_game", "trained_run"]
