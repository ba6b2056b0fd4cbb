"""Werewolf's text view: what a player sees when it must act, how its answer is read, what the
game record keeps, and the night/day transcript of a replay.

The engine (games.engine) asks `Werewolf.observe(state, seat)` for a `WerewolfObservation`:
structured fields (role, alive, teammates, inspections, the visible events) that scripted
agents read, plus `prompt()` / `messages()` for language models, and `parse(answer)` that
accepts a seat number, JSON {"choice" | "target" | "vote": ...}, 'Player k', a bare number k
(1-based, as in the prompt) or 'abstain'.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from equilibria.games.engine import json_choice
from equilibria.games.werewolf import WEREWOLF, WerewolfState, player_name

FALLBACK_SPEECH = "I pass."

QUESTIONS = {
    "night_werewolves": "Night {round}: choose tonight's victim together with your fellow werewolves.",
    "night_seer": "Night {round}: choose one player to inspect; you will learn whether they are a werewolf.",
    "night_doctor": "Night {round}: choose one player to protect from the werewolves tonight.",
    "day_vote": "Day {round}: vote to eliminate one player, or abstain.",
    "day_speech": "Day {round}: it is your turn to speak to everyone. Say one to three sentences "
                  "(at most {chars} characters).",
}

_PLAYER = re.compile(r"\bplayer\s*#?\s*(\d+)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(\d+)\s*[.!]?\s*$")


@dataclasses.dataclass
class WerewolfObservation:
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
    state: Any = dataclasses.field(default=None, repr=False, compare=False)  # for policies; never rendered

    @property
    def name(self) -> str:
        return player_name(self.seat)

    def option_names(self) -> list[str]:
        return ["abstain" if o == self.abstain else player_name(o) for o in self.options]

    def suggested_speech(self) -> list[str]:
        """Lines a player without language can say (the random agent picks one)."""
        others = [s for s in self.alive if s != self.seat]
        return ["I have nothing to share yet.", "I am a villager."] + \
            [f"I suspect {player_name(s)} is a werewolf." for s in others]

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

    def parse(self, answer: Any) -> tuple[Any, str | None]:
        return parse_speech(answer, self) if self.kind == "speak" else parse_choice(answer, self)

    def default(self) -> Any:
        if self.kind == "speak":
            return FALLBACK_SPEECH
        return self.abstain if self.abstain in self.options else self.options[0]


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


def observe(state: WerewolfState, seat: int) -> WerewolfObservation:
    game = state.game
    events = state.visible_events(seat)
    teammates: list[int] = []
    inspections: dict[int, bool] = {}
    for e in events:
        if e["type"] == "teammates":
            teammates = list(e["players"])
        elif e["type"] == "inspection":
            inspections[e["target"]] = e["werewolf"]
    speak = state.phase == "day_speech"
    return WerewolfObservation(seat=seat, role=state.roles[seat], round=state.round, phase=state.phase,
                               kind="speak" if speak else "choose", options=[] if speak else state.legal_actions(seat),
                               abstain=game.abstain, alive=state.living(), teammates=teammates,
                               inspections=inspections, events=events, num_players=game.rules.num_players,
                               max_speech_chars=game.rules.max_speech_chars, state=state)


def parse_choice(answer: Any, obs: WerewolfObservation) -> tuple[int | None, str | None]:
    """(seat, None) for a legal choice, else (None, why)."""
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool):
        return (int(answer), None) if int(answer) in obs.options else (None, f"{answer} is not an option")
    if not isinstance(answer, str):
        return None, f"expected text or a seat number, got {type(answer).__name__}"
    text = json_choice(answer).strip()
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


def parse_speech(answer: Any, obs: WerewolfObservation) -> tuple[str | None, str | None]:
    if not isinstance(answer, str):
        return None, f"expected text, got {type(answer).__name__}"
    text = answer.strip()
    if text.startswith("{"):
        text = _json_say(text)
    text = " ".join(text.replace("<EOS>", " ").split())
    if not text:
        return None, "the speech is empty"
    return text[: obs.max_speech_chars], None


def _json_say(text: str) -> str:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    return str(data.get("say", text)) if isinstance(data, dict) else text


def record_extras(state: WerewolfState) -> dict[str, Any]:
    """What a game record keeps beyond the engine's turns: names and roles, the public and
    private events with their visibility, and the outcome."""
    return {"players": [{"name": player_name(s), "role": state.roles[s]} for s in range(len(state.roles))],
            "events": state.events,
            "outcome": {"winner": state.winner, "rounds": state.round, "survivors": state.living()}}


__all__ = ["FALLBACK_SPEECH", "WerewolfObservation", "observe", "parse_choice", "parse_speech", "record_extras",
           "render_event"]
