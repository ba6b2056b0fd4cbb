"""The agent protocol for text games (Werewolf), and the engine that plays them.

An agent sees an `Observation` (its information state as structured fields plus a rendered
prompt) and returns an answer: text for speech, a seat number or text naming a player for a
choice. The engine never trusts an answer: it parses and validates it, asks again up to
`max_retries` times with the reason appended to the prompt, then substitutes a legal default
(abstain for votes, the first option for night choices, a fixed line for speech) and records
the fallback. Every attempt (prompt, raw output, parsed action, error, seconds, tokens) goes
into the game record, which is written as a JSON replay: what LSPO needs to cluster
utterances by speaker, role and situation.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, sample_chance
from equilibria.games.werewolf import WEREWOLF, Werewolf, WerewolfState, player_name

REPLAY_FORMAT = "equilibria.werewolf.replay/1"


class AgentUnavailable(RuntimeError):
    """An agent cannot answer at all (its server is unreachable, or failed request after
    request): the match ends here instead of continuing on fallbacks."""


class GameStopped(Exception):
    """The game was stopped between decisions (Ctrl-C / SIGTERM); it is not recorded."""
FALLBACK_SPEECH = "I pass."

QUESTIONS = {
    "night_werewolves": "Night {round}: choose tonight's victim together with your fellow werewolves.",
    "night_seer": "Night {round}: choose one player to inspect; you will learn whether they are a werewolf.",
    "night_doctor": "Night {round}: choose one player to protect from the werewolves tonight.",
    "day_vote": "Day {round}: vote to eliminate one player, or abstain.",
    "day_speech": "Day {round}: it is your turn to speak to everyone. Say one to three sentences "
                  "(at most {chars} characters).",
}


@dataclasses.dataclass
class Observation:
    """What one player knows when it must act. `prompt` / `messages()` render it for language models."""

    seat: int
    role: str
    round: int
    phase: str
    kind: str  # "speak" or "choose"
    options: list[int]  # legal seats for a choice (the abstain id included for votes)
    abstain: int
    alive: list[int]
    teammates: list[int]
    inspections: dict[int, bool]  # seer: seat -> is a werewolf
    events: list[dict[str, Any]]  # structured, visible to this player
    num_players: int
    max_speech_chars: int
    error: str | None = None  # why the previous answer was refused

    @property
    def name(self) -> str:
        return player_name(self.seat)

    def option_names(self) -> list[str]:
        return ["abstain" if o == self.abstain else player_name(o) for o in self.options]

    def transcript(self) -> list[str]:
        return [line for e in self.events if (line := render_event(e, self.seat))]

    def question(self) -> str:
        q = QUESTIONS[self.phase].format(round=self.round, chars=self.max_speech_chars)
        if self.kind == "choose":
            q += f" Options: {', '.join(self.option_names())}. Answer with exactly one option, e.g. " \
                 f"'{self.option_names()[0]}'."
        return q

    def system(self) -> str:
        goal = ("You win when the werewolves are at least as many as everyone else; hide your role."
                if self.role == WEREWOLF else "You win when every werewolf has been eliminated.")
        return (f"You are {self.name} in a game of Werewolf with {self.num_players} players. Your role: {self.role}. "
                f"{goal} At night werewolves pick a victim, the seer inspects a player, the doctor protects one. "
                "By day everyone speaks once, then all vote; the most voted player is eliminated.")

    def prompt(self) -> str:
        lines = ["What you know so far:"] + [f"- {t}" for t in self.transcript()]
        if self.error:
            lines.append(f"Your previous answer was refused: {self.error}")
        lines.append(self.question())
        return "\n".join(lines)

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style chat messages."""
        return [{"role": "system", "content": self.system()}, {"role": "user", "content": self.prompt()}]


class Agent(Protocol):
    """Anything with `act(observation) -> answer`; `reset(seat, seed)` is called before each game
    when present; `uses_prompt` says whether the rendered prompt is worth recording."""

    name: str

    def act(self, obs: Observation) -> Any: ...


def render_event(e: dict[str, Any], seat: int) -> str | None:
    t, r = e["type"], e["round"]
    if t == "role":
        return f"You are {player_name(seat)}; your role is {e['role']}."
    if t == "teammates":
        names = ", ".join(player_name(s) for s in e["players"]) or "none (you are the only werewolf)"
        return f"Your fellow werewolves: {names}."
    if t == "proposal":
        who = "You" if e["player"] == seat else player_name(e["player"])
        return f"Night {r}: {who} proposed to kill {player_name(e['target'])}."
    if t == "night_victim":
        return f"Night {r}: the werewolves chose {player_name(e['target'])}."
    if t == "inspection":
        verdict = "a werewolf" if e["werewolf"] else "not a werewolf"
        return f"Night {r}: you inspected {player_name(e['target'])}: {verdict}."
    if t == "protection":
        return f"Night {r}: you protected {player_name(e['target'])}."
    if t == "death":
        how = "was killed in the night" if e["cause"] == "night" else "was voted out"
        role = f" (a {e['role']})" if e.get("role") else ""
        return f"Day {r}: {player_name(e['player'])}{role} {how}."
    if t == "no_death":
        return f"Day {r}: nobody died in the night."
    if t == "speech":
        return f"Day {r}, {player_name(e['player'])} said: \"{e['text']}\""
    if t == "votes":
        parts = [f"{player_name(int(p))} -> {'abstain' if v is None else player_name(v)}"
                 for p, v in e["votes"].items()]
        return f"Day {r} votes: " + "; ".join(parts) + "."
    if t == "tie":
        return f"Day {r}: the vote is tied between " + " and ".join(player_name(s) for s in e["players"]) + "."
    if t == "no_elimination":
        return f"Day {r}: nobody was voted out."
    if t == "game_over":
        return f"Game over: {e['winner']} win." if e["winner"] != "draw" else "Game over: draw (round limit)."
    return None


def observe(state: WerewolfState, seat: int) -> Observation:
    game: Werewolf = state.game
    events = state.visible_events(seat)
    teammates: list[int] = []
    inspections: dict[int, bool] = {}
    for e in events:
        if e["type"] == "teammates":
            teammates = list(e["players"])
        elif e["type"] == "inspection":
            inspections[e["target"]] = e["werewolf"]
    speak = state.phase == "day_speech"
    return Observation(seat=seat, role=state.roles[seat], round=state.round, phase=state.phase,
                       kind="speak" if speak else "choose", options=[] if speak else state.legal_actions(seat),
                       abstain=game.abstain, alive=state.living(), teammates=teammates, inspections=inspections,
                       events=events, num_players=game.rules.num_players, max_speech_chars=game.rules.max_speech_chars)


# ----------------------------------------------------------------------------- parsing
_PLAYER = re.compile(r"\bplayer\s*#?\s*(\d+)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(\d+)\s*[.!]?\s*$")


def parse_choice(answer: Any, obs: Observation) -> tuple[int | None, str | None]:
    """(seat, None) for a legal choice, else (None, why). Accepts an int seat, JSON
    {"target": ...}, 'Player k', a bare number k (1-based, as in the prompt) or 'abstain'."""
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool):
        return (int(answer), None) if int(answer) in obs.options else (None, f"{answer} is not an option")
    if not isinstance(answer, str):
        return None, f"expected text or a seat number, got {type(answer).__name__}"
    text = answer.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            text = str(data.get("target", data.get("vote", data.get("answer", ""))))
        except (json.JSONDecodeError, AttributeError):
            pass
    if obs.abstain in obs.options and re.search(r"\babstain", text, re.IGNORECASE):
        return obs.abstain, None
    named = [int(m) - 1 for m in _PLAYER.findall(text)]
    if not named and (m := _NUMBER.match(text)):
        named = [int(m.group(1)) - 1]
    legal = [s for s in named if s in obs.options and s != obs.abstain]
    if legal:
        return legal[0], None
    if named:
        return None, f"{player_name(named[0])} is not an option (options: {', '.join(obs.option_names())})"
    return None, f"no option named in the answer (options: {', '.join(obs.option_names())})"


def parse_speech(answer: Any, obs: Observation) -> tuple[str | None, str | None]:
    if not isinstance(answer, str):
        return None, f"expected text, got {type(answer).__name__}"
    text = answer.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("say", text))
        except (json.JSONDecodeError, AttributeError):
            pass
    text = " ".join(text.replace("<EOS>", " ").split())
    if not text:
        return None, "the speech is empty"
    return text[: obs.max_speech_chars], None


def default_action(obs: Observation) -> Any:
    if obs.kind == "speak":
        return FALLBACK_SPEECH
    return obs.abstain if obs.abstain in obs.options else obs.options[0]


# ----------------------------------------------------------------------------- engine
def ask(agent: Any, obs: Observation, max_retries: int) -> tuple[Any, dict[str, Any]]:
    """One decision with validation, re-asking and a recorded fallback."""
    parse = parse_speech if obs.kind == "speak" else parse_choice
    record: dict[str, Any] = {"round": obs.round, "phase": obs.phase, "seat": obs.seat, "role": obs.role,
                              "agent": getattr(agent, "name", type(agent).__name__), "kind": obs.kind,
                              "attempts": []}
    t0 = time.perf_counter()
    for _ in range(max_retries + 1):
        if getattr(agent, "uses_prompt", False):
            record["attempts"].append({"prompt": obs.prompt()})
        else:
            record["attempts"].append({})
        try:
            raw = agent.act(obs)
        except AgentUnavailable:
            raise
        except Exception as err:  # an agent's own failure (network, model) counts as a bad answer
            raw, action, error = None, None, f"{type(err).__name__}: {err}"
        else:
            action, error = parse(raw, obs)
        last = record["attempts"][-1]
        last["raw"] = raw if isinstance(raw, (str, int, float)) or raw is None else repr(raw)
        usage = getattr(agent, "last_usage", None)
        if usage:
            last["tokens"] = dict(usage)
        scores = getattr(agent, "last_scores", None)
        if scores:  # the agent's log-probability of each option (choices scored by a local model)
            last["option_logprobs"] = {k: round(float(v), 4) for k, v in scores.items()}
        if error is None:
            record.update(action=action, fallback=False, seconds=time.perf_counter() - t0)
            return action, record
        last["error"] = error
        obs = dataclasses.replace(obs, error=error)
    action = default_action(obs)
    record.update(action=action, fallback=True, seconds=time.perf_counter() - t0)
    return action, record


def ask_simultaneous(agents: Sequence[Any], questions: Sequence[tuple[int, Observation]],
                     max_retries: int) -> list[tuple[int, tuple[Any, dict[str, Any]]]]:
    """Ask several seats at a simultaneous node (a vote). Agents that wait on the network
    (`io_bound`, e.g. chat-API agents) are asked concurrently, one thread each; the rest in
    turn. Nobody sees another's answer either way, and results come back in seat order, so the
    game and its record are the same as asking one by one."""
    def concurrent(seat: int) -> bool:
        agent = agents[seat]  # an agent object sitting in several seats keeps its state: ask it in turn
        return getattr(agent, "io_bound", False) and sum(a is agent for a in agents) == 1

    parallel = [(seat, obs) for seat, obs in questions if concurrent(seat)]
    answers: dict[int, tuple[Any, dict[str, Any]]] = {}
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


def play_game(game: Werewolf, agents: Sequence[Any], seed: int, max_retries: int = 2,
              labels: Sequence[str] | None = None, stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Play one game with `agents[seat]` in each seat; returns the replay record (JSON-ready).
    Deterministic given the seed and deterministic agents. `labels` names each seat's agent in
    the record (a scenario's or lineup's name for it); by default the agent's own name. `stop`
    is asked before every decision: when it says so the game ends with GameStopped.
    AgentUnavailable from an agent ends it too."""
    if len(agents) != game.num_players:
        raise ValueError(f"{game.num_players} seats need {game.num_players} agents, got {len(agents)}")
    if labels is not None and len(labels) != len(agents):
        raise ValueError(f"{len(agents)} agents need {len(agents)} labels, got {len(labels)}")
    t_start = time.perf_counter()
    for seat, agent in enumerate(agents):
        if hasattr(agent, "reset"):
            agent.reset(seat=seat, seed=int(np.random.SeedSequence([seed, seat]).generate_state(1)[0]))
    chance_rng = np.random.default_rng([seed, 0])
    state = game.new_initial_state()
    turns: list[dict[str, Any]] = []
    while not state.is_terminal():
        cur = state.current_player()
        if stop is not None and cur != CHANCE and stop():
            raise GameStopped(f"stopped in round {state.round}")
        if cur == CHANCE:
            state.apply_action(sample_chance(state, chance_rng))
        elif cur == SIMULTANEOUS:
            votes = [game.abstain] * game.num_players
            for seat, (vote, rec) in ask_simultaneous(agents, [(s, observe(state, s)) for s in state.living()],
                                                      max_retries):
                votes[seat] = vote
                turns.append(rec)
            state.apply_actions(votes)
        else:
            action, rec = ask(agents[cur], observe(state, cur), max_retries)
            turns.append(rec)
            state.apply_action(action)
    names = list(labels) if labels is not None else [getattr(a, "name", type(a).__name__) for a in agents]
    for t in turns:
        t["agent"] = names[t["seat"]]
    return {
        "format": REPLAY_FORMAT, "seed": seed, "rules": dict(game.info.parameters),
        "players": [{"seat": s, "name": player_name(s), "role": state.roles[s], "agent": names[s]}
                    for s in range(len(agents))],
        "events": state.events, "turns": turns,
        "outcome": {"winner": state.winner, "returns": state.returns().tolist(), "rounds": state.round,
                    "survivors": state.living()},
        "fallbacks": sum(t["fallback"] for t in turns),
        "seconds": time.perf_counter() - t_start,
    }


__all__ = ["Agent", "AgentUnavailable", "GameStopped", "Observation", "ask", "ask_simultaneous", "observe", "parse_choice", "parse_speech", "play_game", "render_event"]
