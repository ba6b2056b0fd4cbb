"""One engine that plays any game between agents: scripted bots, policies, language models, people.

An agent is anything with `act(observation) -> answer` (and optionally `reset(seat, seed)`).
At every decision the engine asks the game for the player's observation: a game whose actions
are text (Werewolf, the debate game) supplies its own (`game.observe(state, player)`: the
structured fields its agents read, a prompt and chat messages, and how to parse an answer);
any other game gets a `ChoiceObservation` listing the legal actions by name. The engine never
trusts an answer: it parses and validates it, asks again up to `max_retries` times with the
reason appended, then substitutes the observation's legal default and records the fallback.
Every attempt goes into the game record (JSON-ready), which replays are written from.

Network-bound agents (`io_bound`, chat APIs) are asked concurrently at simultaneous nodes.
`stop()` is checked before every decision (Ctrl-C stops a game between two decisions), and an
agent that cannot answer at all raises AgentUnavailable, which ends the match.

A policy that holds every acting seat of a simultaneous node and implements JointPolicy answers
with one joint action drawn from its joint distribution (`joint_parts`), so correlated agents
stay correlated; in any other seating it plays per seat, from its marginals.

Adapters: `PolicyAgent` makes any Policy an agent, and `AgentPolicy` makes any agent that
scores options (`option_scores(obs)`) a Policy, so tournaments, exploitability and the engine
treat both alike. The engine knows no game by name.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from equilibria.games.core import (
    CHANCE,
    SIMULTANEOUS,
    Action,
    Game,
    JointPolicy,
    State,
    sample_action,
    sample_chance,
)

REPLAY_FORMAT = "equilibria.replay/2"


class AgentUnavailable(RuntimeError):
    """An agent cannot answer at all (its server is unreachable, or failed request after
    request): the match ends here instead of continuing on fallbacks."""


class GameStopped(Exception):
    """The game was stopped between decisions (Ctrl-C / SIGTERM); it is not recorded."""


class Observation(Protocol):
    """What the engine needs of an observation; games add the fields their agents read.
    `state` is the State itself, for policies (PolicyAgent); language models never see it."""

    seat: int
    state: State
    kind: str  # "choose" (among options) or "speak" (free text)
    error: str | None  # why the previous answer was refused

    def option_names(self) -> list[str]: ...

    def prompt(self) -> str: ...

    def messages(self) -> list[dict[str, str]]: ...

    def parse(self, answer: Any) -> tuple[Action | None, str | None]: ...

    def default(self) -> Action: ...


class Agent(Protocol):
    """`act(observation) -> answer`; `reset(seat, seed)` is called before each game when present;
    `uses_prompt` says whether the rendered prompt is worth recording."""

    name: str

    def act(self, obs: Any) -> Any: ...


# ----------------------------------------------------------------------------- generic observation
_JSON_KEYS = ("choice", "target", "vote", "answer", "action")


def json_choice(text: str) -> str:
    """The value of {"choice": ...} (or target / vote / answer / action) in a JSON answer, else the text."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            return text
        if isinstance(data, dict):
            for key in _JSON_KEYS:
                if key in data:
                    return str(data[key])
    return text


@dataclasses.dataclass
class ChoiceObservation:
    """The observation of a game without its own rendering: the legal actions, named by the
    state, and the history so far. Answers may be an action id, an action's name (any case) or
    {"choice": name}."""

    state: State
    seat: int
    options: list[Action]
    names: list[str]
    error: str | None = None
    kind: str = "choose"

    @classmethod
    def of(cls, state: State, seat: int) -> ChoiceObservation:
        legal = state.legal_actions(seat)
        return cls(state, seat, legal, [state.action_to_string(seat, a) for a in legal])

    def option_names(self) -> list[str]:
        return list(self.names)

    def prompt(self) -> str:
        history = " ".join(str(a) for a in self.state.history()) or "(start)"
        lines = [f"You are player {self.seat} in {self.state.__class__.__name__.removesuffix('State')}.",
                 f"Moves so far: {history}"]
        if self.error:
            lines.append(f"Your previous answer was refused: {self.error}")
        lines.append(f"Options: {', '.join(self.names)}. Answer with exactly one option.")
        return "\n".join(lines)

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.prompt()}]

    def parse(self, answer: Any) -> tuple[Action | None, str | None]:
        if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool):
            return (int(answer), None) if int(answer) in self.options else (None, f"{answer} is not an option")
        if not isinstance(answer, str):
            return None, f"expected text or an action id, got {type(answer).__name__}"
        text = json_choice(answer).strip().lower()
        for action, name in zip(self.options, self.names):
            if text == name.lower():
                return action, None
        return None, f"no option named in the answer (options: {', '.join(self.names)})"

    def default(self) -> Action:
        return self.options[0]


def observe(game: Game, state: State, seat: int) -> Any:
    """The game's own observation when it renders one, else a ChoiceObservation."""
    render = getattr(game, "observe", None)
    return render(state, seat) if render is not None else ChoiceObservation.of(state, seat)


# ----------------------------------------------------------------------------- adapters
class PolicyAgent:
    """Any Policy as an agent: it samples from action_probabilities at the observation's state."""

    uses_prompt = False

    def __init__(self, policy: Any, name: str = "policy"):
        self.policy, self.name = policy, name
        self.rng = np.random.default_rng(0)

    def reset(self, seat: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any) -> Action:
        return sample_action(self.policy.action_probabilities(obs.state, obs.seat), self.rng)


@dataclasses.dataclass
class JointPart:
    """Answers each seat's part of one joint action drawn for the node (see joint_parts)."""

    name: str
    joint: tuple[Action, ...]
    uses_prompt = False

    def act(self, obs: Any) -> Action:
        return self.joint[obs.seat]


def joint_parts(agents: Sequence[Any], seats: Sequence[int], state: State) -> list[JointPart] | None:
    """When one JointPolicy holds every seat that acts at a simultaneous node (the same policy
    behind each of those seats' PolicyAgents), draw one joint action from it, with the lowest
    seat's generator, and give every seat an agent that answers its part, so correlated choices
    stay correlated and are still validated like any answer. None otherwise: each seat asks its
    own agent, and a JointPolicy answers from its marginals."""
    first = agents[seats[0]] if seats else None
    if not (isinstance(first, PolicyAgent) and isinstance(first.policy, JointPolicy)):
        return None
    if any(not isinstance(agents[s], PolicyAgent) or agents[s].policy is not first.policy for s in seats):
        return None
    drawn = tuple(sample_action(first.policy.joint_action_probabilities(state), first.rng))
    return [JointPart(getattr(a, "name", type(a).__name__), drawn) for a in agents]


class AgentPolicy:
    """An agent that scores options (`option_scores(obs) -> {name: log-probability}`) as a
    Policy: the softmax of its scores over the legal options, at `temperature`."""

    def __init__(self, agent: Any, game: Game, temperature: float = 1.0):
        if not hasattr(agent, "option_scores"):
            raise ValueError(f"{getattr(agent, 'name', agent)!r} cannot score options, so it is not a Policy")
        self.agent, self.game, self.temperature = agent, game, temperature

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        obs = observe(self.game, state, player)
        scores = self.agent.option_scores(obs)
        names = obs.option_names()
        z = np.array([scores[n] for n in names], dtype=np.float64) / max(self.temperature, 1e-8)
        p = np.exp(z - z.max())
        p /= p.sum()
        out: dict[Action, float] = {}
        for name, prob in zip(names, p):
            action, _ = obs.parse(name)
            out[action] = out.get(action, 0.0) + float(prob)
        return out


# ----------------------------------------------------------------------------- asking
def ask(agent: Any, obs: Any, max_retries: int) -> tuple[Action, dict[str, Any]]:
    """One decision with validation, re-asking and a recorded fallback."""
    record: dict[str, Any] = {"seat": obs.seat, "agent": getattr(agent, "name", type(agent).__name__),
                              "kind": obs.kind, "attempts": []}
    for key in ("round", "phase", "role"):  # the game's own labels for the decision, when it has them
        if hasattr(obs, key):
            record[key] = getattr(obs, key)
    t0 = time.perf_counter()
    for _ in range(max_retries + 1):
        attempt: dict[str, Any] = {"prompt": obs.prompt()} if getattr(agent, "uses_prompt", False) else {}
        record["attempts"].append(attempt)
        try:
            raw = agent.act(obs)
        except AgentUnavailable:
            raise
        except Exception as err:  # an agent's own failure (network, model) counts as a bad answer
            raw, action, error = None, None, f"{type(err).__name__}: {err}"
        else:
            action, error = obs.parse(raw)
        attempt["raw"] = raw if isinstance(raw, (str, int, float)) or raw is None else repr(raw)
        usage = getattr(agent, "last_usage", None)
        if usage:
            attempt["tokens"] = dict(usage)
        scores = getattr(agent, "last_scores", None)
        if scores:  # the agent's log-probability of each option (choices scored by a local model)
            attempt["option_logprobs"] = {k: round(float(v), 4) for k, v in scores.items()}
        if error is None:
            record.update(action=action, fallback=False, seconds=time.perf_counter() - t0)
            return action, record
        attempt["error"] = error
        obs = dataclasses.replace(obs, error=error)
    action = obs.default()
    record.update(action=action, fallback=True, seconds=time.perf_counter() - t0)
    return action, record


def ask_simultaneous(agents: Sequence[Any], questions: Sequence[tuple[int, Any]],
                     max_retries: int) -> list[tuple[int, tuple[Action, dict[str, Any]]]]:
    """Ask several seats at a simultaneous node. Agents that wait on the network (`io_bound`)
    are asked concurrently, one thread each; the rest in turn. Nobody sees another's answer
    either way, and results come back in seat order, so the game and its record are the same
    as asking one by one."""
    def concurrent(seat: int) -> bool:
        agent = agents[seat]  # an agent object sitting in several seats keeps its state: ask it in turn
        return getattr(agent, "io_bound", False) and sum(a is agent for a in agents) == 1

    parallel = [(seat, obs) for seat, obs in questions if concurrent(seat)]
    answers: dict[int, tuple[Action, dict[str, Any]]] = {}
    if len(parallel) > 1:
        with ThreadPoolExecutor(max_workers=len(parallel)) as pool:
            futures = {seat: pool.submit(ask, agents[seat], obs, max_retries) for seat, obs in parallel}
            for seat, obs in questions:
                if seat not in futures:
                    answers[seat] = ask(agents[seat], obs, max_retries)
            answers.update({seat: f.result() for seat, f in futures.items()})
    else:
        answers = {seat: ask(agents[seat], obs, max_retries) for seat, obs in questions}
    return [(seat, answers[seat]) for seat, _ in questions]


# ----------------------------------------------------------------------------- playing
def agent_seed(seed: int, seat: int) -> int:
    """The seed an agent in `seat` is reset with for the game seeded `seed`."""
    return int(np.random.SeedSequence([seed, seat]).generate_state(1)[0])


def play_game(game: Game, agents: Sequence[Any], seed: int, max_retries: int = 2,
              labels: Sequence[str] | None = None, stop: Callable[[], bool] | None = None,
              keep_turns: bool = True, max_steps: int = 100_000) -> dict[str, Any]:
    """Play one game with `agents[seat]` in each seat; returns the game record (JSON-ready).

    Deterministic given the seed and deterministic agents: chance draws from its own stream,
    and each agent is reset with `agent_seed(seed, seat)`. `labels` names each seat's agent in
    the record (a lineup's name for it). `keep_turns=False` keeps only per-seat counts, for
    fast tournaments. A simultaneous node asks every player with more than one legal action;
    a lone legal action is applied without asking; when one JointPolicy holds every seat that
    acts there, the seats answer their parts of one joint action drawn from it (`joint_parts`).
    `took_part` in the record says which seats had a legal action at some decision (Markov
    games: which agents were present). Games may add to the record through
    `game.record_extras(state)` (players' roles, public events, the winner, ...)."""
    if len(agents) != game.num_players:
        raise ValueError(f"{game.num_players} seats need {game.num_players} agents, got {len(agents)}")
    if labels is not None and len(labels) != len(agents):
        raise ValueError(f"{len(agents)} agents need {len(agents)} labels, got {len(labels)}")
    t_start = time.perf_counter()
    for seat, agent in enumerate(agents):
        if hasattr(agent, "reset"):
            agent.reset(seat=seat, seed=agent_seed(seed, seat))
    chance_rng = np.random.default_rng([seed, 0])
    state = game.new_initial_state(seed=seed) if game.info.sampled_chance else game.new_initial_state()
    names = list(labels) if labels is not None else [getattr(a, "name", type(a).__name__) for a in agents]
    turns: list[dict[str, Any]] = []
    decisions = np.zeros(len(agents), dtype=np.int64)
    fallbacks = np.zeros(len(agents), dtype=np.int64)
    took_part = np.zeros(len(agents), dtype=bool)
    usage = [{"completion_tokens": 0, "model_seconds": 0.0} for _ in agents]

    def keep(rec: dict[str, Any]) -> None:
        seat = rec["seat"]
        decisions[seat] += 1
        fallbacks[seat] += int(rec["fallback"])
        for attempt in rec["attempts"]:
            tokens = attempt.get("tokens")
            if tokens and "scored_tokens" not in tokens:  # generation only: scoring generates nothing
                usage[seat]["completion_tokens"] += tokens.get("completion_tokens") or 0
                usage[seat]["model_seconds"] += tokens.get("seconds", 0.0)
        if keep_turns:
            rec["agent"] = names[seat]
            turns.append(rec)

    for _ in range(max_steps):
        if state.is_terminal():
            break
        cur = state.current_player()
        if cur == CHANCE:
            state.apply_action(sample_chance(state, chance_rng))
            continue
        if stop is not None and stop():
            raise GameStopped("stopped between two decisions")
        if cur == SIMULTANEOUS:
            joint: list[Action] = []
            questions = []
            for p in range(game.num_players):
                legal = state.legal_actions(p)
                joint.append(legal[0] if legal else None)  # seats with no legal action pass None
                took_part[p] |= bool(legal)
                if len(legal) > 1:
                    questions.append((p, observe(game, state, p)))
            parts = joint_parts(agents, [p for p, a in enumerate(joint) if a is not None], state) if questions else None
            for seat, (action, rec) in ask_simultaneous(parts or agents, questions, max_retries):
                joint[seat] = action
                keep(rec)
            state.apply_actions(joint)
        else:
            took_part[cur] = True
            action, rec = ask(agents[cur], observe(game, state, cur), max_retries)
            keep(rec)
            state.apply_action(action)
    else:
        raise RuntimeError(f"{game!r}: the game did not end within {max_steps} steps")
    extras = getattr(game, "record_extras", None)
    extra = extras(state) if extras is not None else {}
    players = [{"seat": s, "agent": names[s], **(extra.get("players") or [{}] * len(agents))[s]}
               for s in range(len(agents))]
    record = {"format": REPLAY_FORMAT, "game": repr(game), "seed": seed, "rules": dict(game.info.parameters),
              "players": players, "turns": turns,
              "outcome": {"returns": np.asarray(state.returns(), dtype=np.float64).tolist(),
                          **(extra.get("outcome") or {})},
              "decisions": decisions.tolist(), "took_part": took_part.tolist(), "fallbacks": int(fallbacks.sum()), "seat_fallbacks": fallbacks.tolist(),
              "usage": usage, "seconds": time.perf_counter() - t_start}
    for key, value in extra.items():
        if key not in ("players", "outcome"):
            record[key] = value
    return record



__all__ = ["AgentPolicy", "AgentUnavailable", "ChoiceObservation", "GameStopped", "JointPart", "Observation",
           "PolicyAgent", "REPLAY_FORMAT", "agent_seed", "ask", "ask_simultaneous", "joint_parts", "json_choice",
           "observe", "play_game"]
