"""A tiny text game written only for the tests: guess the number, with free-text hints.

Chance picks a secret in 1..n that only the host (seat 0) knows. The guesser (seat 1) names a
number; unless it is right, the host answers with any text (an honest host says "higher" or
"lower"). Three guesses: the guesser wins (+1, host -1) on a right guess, else the host does.
It supplies its own observation, record extras and nothing else: the engine, tournaments and
`equilibria replay` must serve it unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, TERMINAL, Game, GameInfo, State
from equilibria.games.registry import register

HINTS = ["higher", "lower"]


@dataclasses.dataclass
class GuessObservation:
    seat: int
    kind: str  # the guesser chooses, the host speaks
    options: list[Any]
    history: list[tuple[int, str]]  # (guess, hint) so far
    secret: int | None  # the host's alone
    state: Any = dataclasses.field(default=None, repr=False, compare=False)
    error: str | None = None

    def option_names(self) -> list[str]:
        return [str(o) for o in self.options] if self.kind == "choose" else []

    def suggested_speech(self) -> list[str]:
        return list(HINTS)

    def prompt(self) -> str:
        past = "; ".join(f"guess {g}: {h!r}" for g, h in self.history) or "no guesses yet"
        who = f"You are the host; the secret is {self.secret}." if self.seat == 0 else "You are the guesser."
        ask = f"Guess a number. Options: {', '.join(self.option_names())}." if self.kind == "choose" \
            else "Give the guesser a hint in a few words."
        return "\n".join([who, past, *([f"Refused: {self.error}"] if self.error else []), ask])

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.prompt()}]

    def parse(self, answer: Any) -> tuple[Any, str | None]:
        if self.kind == "speak":
            text = " ".join(str(answer).split()) if isinstance(answer, str) else ""
            return (text[:200], None) if text else (None, "the hint is empty")
        text = str(answer).strip()
        if text.startswith("{"):
            try:
                text = str(json.loads(text).get("choice", ""))
            except (json.JSONDecodeError, AttributeError):
                pass
        if text.isdigit() and int(text) in self.options:
            return int(text), None
        return None, f"not one of {', '.join(self.option_names())}"

    def default(self) -> Any:
        return "no hint" if self.kind == "speak" else self.options[0]


class GuessNumber(Game):
    def __init__(self, n: int = 7):
        self.n = n
        self.info = GameInfo(name="guess_number", num_players=2, dynamics="sequential", chance=True,
                             information="imperfect", utility="zero_sum", min_utility=-1.0, max_utility=1.0,
                             max_game_length=7, num_distinct_actions=n + 1, action_type="text",
                             parameters={"n": n})

    def new_initial_state(self) -> GuessState:
        return GuessState(self)

    def observe(self, state: GuessState, seat: int) -> GuessObservation:
        choose = state.current_player() == 1
        return GuessObservation(seat, "choose" if choose else "speak", state.legal_actions(seat),
                                list(zip(state.guesses, state.hints)), state.secret if seat == 0 else None, state)

    def record_extras(self, state: GuessState) -> dict[str, Any]:
        won = state.secret in state.guesses
        return {"players": [{"role": "host"}, {"role": "guesser"}],
                "outcome": {"winner": "guesser" if won else "host", "secret": state.secret}}


class GuessState(State):
    def __init__(self, game: GuessNumber):
        self.game = game
        self.secret: int | None = None
        self.guesses: list[int] = []
        self.hints: list[str] = []

    def current_player(self) -> int:
        if self.secret is None:
            return CHANCE
        if self.is_terminal():
            return TERMINAL
        return 1 if len(self.guesses) == len(self.hints) else 0

    def legal_actions(self, player: int | None = None) -> list[Any]:
        cur = self.current_player()
        if cur < 0 or (player is not None and player != cur):
            return []
        return list(range(1, self.game.n + 1)) if cur == 1 else list(HINTS)

    def chance_outcomes(self) -> list[tuple[int, float]]:
        return [(k, 1.0 / self.game.n) for k in range(1, self.game.n + 1)]

    def apply_action(self, action: Any) -> None:
        cur = self.current_player()
        if cur == CHANCE:
            self.secret = int(action)
        elif cur == 1:
            self.guesses.append(int(action))
        else:
            self.hints.append(str(action))

    def is_terminal(self) -> bool:
        return self.secret is not None and (self.secret in self.guesses or len(self.guesses) == 3)

    def returns(self) -> np.ndarray:
        if not self.is_terminal():
            return np.zeros(2)
        return np.array([-1.0, 1.0]) if self.secret in self.guesses else np.array([1.0, -1.0])

    def information_state_key(self, player: int) -> str:
        secret = self.secret if player == 0 else "?"
        return f"p{player} secret {secret} " + " ".join(f"{g}:{h}" for g, h in zip(self.guesses, self.hints))

    def observation(self, player: int) -> np.ndarray:
        out = np.zeros(self.game.n + 4, dtype=np.float32)
        if player == 0 and self.secret is not None:
            out[self.secret - 1] = 1.0
        out[self.game.n] = len(self.guesses)
        return out

    def clone(self) -> GuessState:
        new = GuessState(self.game)
        new.secret, new.guesses, new.hints = self.secret, list(self.guesses), list(self.hints)
        return new

    def history(self) -> list[Any]:
        out: list[Any] = [] if self.secret is None else [self.secret]
        for i, g in enumerate(self.guesses):
            out.append(g)
            if i < len(self.hints):
                out.append(self.hints[i])
        return out


@register("guess_number")
def guess_number(n: int = 7) -> GuessNumber:
    """Guess the number (tests only): a secret in 1..n, three guesses, free-text hints."""
    return GuessNumber(n)


class HonestHost:
    name = "honest"

    def act(self, obs: GuessObservation) -> str:
        guess = obs.state.guesses[-1]  # the guess this hint answers
        return "higher" if obs.secret > guess else "lower"


class Bisector:
    """Guesses the middle of what the hints leave open."""

    name = "bisect"

    def act(self, obs: GuessObservation) -> str:
        lo, hi = 1, len(obs.options)
        for g, h in obs.history:
            if "higher" in h:
                lo = max(lo, g + 1)
            elif "lower" in h:
                hi = min(hi, g - 1)
        return str((lo + hi) // 2)
