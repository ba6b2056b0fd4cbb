"""Werewolf with latent speech: the abstract game LSPO solves (Xu et al. 2025; llm_agents.lspo).

The rules are Werewolf's (games.werewolf, 7 players by default: 2 werewolves, seer, doctor,
3 villagers), played on the same engine. What changes is what a decision is:

- **Speech** is a latent strategy: a cluster of the language model's utterances for the
  speaker's role (`SpeechLatent`), said about a target chosen by relation (the top suspect, or
  for the seer a werewolf it found, ...). Its label, with the target's name put in, is what the
  transcript records.
- **Listeners** respond through a listener model measured from the language model: every
  latent carries the shift it causes in a listener's log-odds of voting against the speaker and
  against the named target. Shifts add up to a public suspicion score per player (older days
  weigh `decay` per day), and that score ranks the players.
- **Night actions and votes** are real, but chosen by relation to that ranking (the most or
  least suspected eligible player, a werewolf the seer found, abstaining), so one decision
  means the same thing in every seat and the information state is small: role, phase, round,
  players alive, the player's own place in the ranking, and what its role knows privately.

That abstraction (of information and of actions) is what makes the game finite and small
enough for sampling CFR over States (solvers.state_mccfr) to solve in minutes. `LatentWerewolfState`
also takes concrete decisions (`speak`, `act_seat`), so agents with different latent spaces
can play each other on it (llm_agents.lspo's evaluation).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Action, Game, State
from equilibria.games.registry import register
from equilibria.games.werewolf import (
    DOCTOR,
    ROLES,
    SEER,
    VILLAGER,
    WEREWOLF,
    Werewolf,
    WerewolfRules,
    WerewolfState,
    player_name,
)

TARGET = "Player X"  # where a latent's label names its target
SPEECH = 8  # action ids from here on are speech: SPEECH + 2 * latent + target option


@dataclasses.dataclass(frozen=True)
class SpeechLatent:
    label: str  # a readable member utterance (the cluster's medoid), its target written as TARGET
    speaker_shift: float = 0.0  # listener model: change in log-odds of a vote against the speaker
    target_shift: float = 0.0  # ... and against the player the utterance names


@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """The latent speech strategies of each role and their listener model."""

    latents: Mapping[str, tuple[SpeechLatent, ...]]

    def __post_init__(self) -> None:
        for role in ROLES:
            if not self.latents.get(role):
                raise ValueError(f"the latent space has no speech latent for the {role}")

    @staticmethod
    def neutral() -> LatentSpec:
        """Latents that move no listener, labelled by the canonical speech acts (werewolf 3, seer 2,
        doctor 2, villager 2): the abstract game before any language model was asked."""
        accuse, villager, quiet = f"I suspect {TARGET} is a werewolf.", "I am a villager.", "I have nothing to share yet."
        claim = f"I am the seer: {TARGET} is a werewolf."
        labels = {WEREWOLF: (villager, accuse, claim), SEER: (claim, quiet), DOCTOR: (accuse, villager),
                  VILLAGER: (accuse, quiet)}
        return LatentSpec({r: tuple(SpeechLatent(x) for x in labels[r]) for r in ROLES})

    def to_dict(self) -> dict[str, Any]:
        return {r: [dataclasses.asdict(x) for x in xs] for r, xs in self.latents.items()}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> LatentSpec:
        return LatentSpec({r: tuple(SpeechLatent(str(x["label"]), float(x["speaker_shift"]), float(x["target_shift"]))
                                    for x in data[r]) for r in ROLES})

    @staticmethod
    def load(path: str | Path) -> LatentSpec:
        try:
            data = json.loads(Path(path).read_text())
            return LatentSpec.from_dict(data.get("spec", data))  # an LSPO iteration's latents.json, or a bare spec
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a latent space file ({type(err).__name__}: {err})") from None


def _bucket(x: int, top: int = 2) -> int:
    return min(x, top)


class WerewolfLatent(Game):
    def __init__(self, rules: WerewolfRules, spec: LatentSpec, decay: float = 0.5):
        self.base = Werewolf(rules)
        self.rules, self.spec, self.decay = rules, spec, decay
        k = max(len(xs) for xs in spec.latents.values())
        self.info = dataclasses.replace(
            self.base.info, name="werewolf_latent", action_type="discrete", num_distinct_actions=SPEECH + 2 * k,
            parameters={**dataclasses.asdict(rules), "latents": {r: len(xs) for r, xs in spec.latents.items()},
                        "decay": decay})

    def new_initial_state(self) -> LatentWerewolfState:
        return LatentWerewolfState(self)

    def observation_shape(self) -> tuple[int, ...]:
        return self.base.observation_shape()

    def action_name(self, action: Action) -> str:
        a = int(action)
        if a >= SPEECH:
            return f"latent {(a - SPEECH) // 2} about target option {(a - SPEECH) % 2}"
        return f"option {a}"


class LatentWerewolfState(State):
    def __init__(self, game: WerewolfLatent):
        self.game = game
        self.base: WerewolfState = game.base.new_initial_state()
        self.suspicion = np.zeros(game.rules.num_players)
        self.speeches: list[tuple[int, int, int | None, int]] = []  # (speaker, latent or -1, target, round)
        self._history: list[Action] = []

    # -- the ranking and the relational options ------------------------------------
    def ranked(self, seats: Sequence[int]) -> list[int]:
        """`seats` from the most to the least suspected; ties in seat order, the same for every
        player, so "the top suspect" names one seat for everyone (a focal point)."""
        score = np.round(self.suspicion, 9).tolist()
        return sorted(seats, key=lambda q: (-score[q], q))

    def known(self, player: int) -> tuple[list[int], set[int]]:
        """(werewolves the seer found that are alive, players it cleared)."""
        wolves, cleared = [], set()
        for e in self.base.visible_events(player):
            if e["type"] == "inspection":
                if e["werewolf"] and self.base.alive[e["target"]]:
                    wolves.append(e["target"])
                elif not e["werewolf"]:
                    cleared.add(e["target"])
        return wolves, cleared

    def suspects(self, player: int) -> list[int]:
        """The living others this player's role would accuse, most suspected first."""
        b = self.base
        others = [q for q in b.living() if q != player]
        role = b.roles[player]
        if role == WEREWOLF:
            others = [q for q in others if b.roles[q] != WEREWOLF]
        elif role == SEER:
            wolves, cleared = self.known(player)
            others = [q for q in others if q not in cleared and q not in wolves]
        return self.ranked(others)

    def options(self, player: int) -> list[int | None]:
        """The seats behind this player's legal choices, in option order (None: abstain)."""
        b, phase, role = self.base, self.base.phase, self.base.roles[player]
        if phase == "day_vote" and not b.alive[player]:
            return [None]
        if phase == "night_werewolves":
            prey = self.ranked([q for q in b.living() if b.roles[q] != WEREWOLF])
            return _distinct([prey[0], prey[-1]])
        if phase == "night_seer":
            found, cleared = self.known(player)
            unknown = [q for q in b.living() if q != player and q not in cleared and q not in found]
            pool = self.ranked(unknown or [q for q in b.living() if q != player])
            return _distinct([pool[0], pool[-1]])
        if phase == "night_doctor":
            others = self.ranked([q for q in b.living() if q != player])
            mine = [player] if b.rules.doctor_self_protect else []
            return _distinct(mine + ([others[-1], others[0]] if others else []))
        sus = self.suspects(player)
        known = self.known(player)[0] if role == SEER else []
        if phase == "day_speech":
            if role == WEREWOLF:
                return _distinct([sus[0], sus[-1]] if sus else [None])[:2]
            return _distinct(known[:1] + sus[:2])[:2] or [None]
        if phase == "day_vote":
            return known[:1] + _distinct(sus[:2]) + [None]
        raise ValueError(f"no options in phase {phase}")

    def _speech_latents(self, player: int) -> int:
        return len(self.game.spec.latents[self.base.roles[player]])

    # -- State contract -----------------------------------------------------------
    def current_player(self) -> int:
        return self.base.current_player()

    def is_terminal(self) -> bool:
        return self.base.is_terminal()

    def chance_outcomes(self) -> list[tuple[Action, float]]:
        return self.base.chance_outcomes()

    def legal_actions(self, player: int | None = None) -> list[Action]:
        cur = self.current_player()
        if cur == TERMINAL:
            return []
        if cur == CHANCE:
            return [a for a, _ in self.chance_outcomes()] if player in (None, CHANCE) else []
        if cur == SIMULTANEOUS:
            if player is None or player < 0:
                return []
            p = player
        elif player is not None and player != cur:
            return []
        else:
            p = cur
        n_opt = len(self.options(p))
        if self.base.phase == "day_speech":
            return [SPEECH + 2 * j + t for j in range(self._speech_latents(p)) for t in range(n_opt)]
        return list(range(n_opt))

    def apply_action(self, action: Action) -> None:
        cur = self.current_player()
        if cur == SIMULTANEOUS:
            raise ValueError("the vote is simultaneous: use apply_actions(one option per player)")
        if cur in (CHANCE, TERMINAL):
            self._history.append(action)
            self._base_apply(lambda: self.base.apply_action(action))
            return
        a = int(action)
        if a not in self.legal_actions(cur):
            raise ValueError(f"{action!r} is not legal for {player_name(cur)} in phase {self.base.phase}")
        self._history.append(a)
        if self.base.phase == "day_speech":
            j, t = divmod(a - SPEECH, 2)
            latent = self.game.spec.latents[self.base.roles[cur]][j]
            self._speak(latent.label, self.options(cur)[t], latent.speaker_shift, latent.target_shift, j)
        else:
            self._base_apply(lambda: self.base.apply_action(self.options(cur)[a]))

    def apply_actions(self, actions: Any) -> None:
        if self.current_player() != SIMULTANEOUS:
            raise ValueError("apply_actions is for the simultaneous vote")
        n = self.game.rules.num_players
        if len(actions) != n:
            raise ValueError(f"the vote needs one option per player ({n}), got {len(actions)}")
        seats = []
        for p, a in enumerate(actions):
            opts = self.options(p)
            if not 0 <= int(a) < len(opts):
                raise ValueError(f"vote option {a} is not legal for {player_name(p)}")
            seats.append(opts[int(a)])
        self._history.append(tuple(int(a) for a in actions))
        self._vote(seats)

    # -- concrete decisions (agents with their own latent spaces play through these) --
    def speak(self, text: str, target: int | None, speaker_shift: float, target_shift: float) -> None:
        """The current speaker says `text` (TARGET replaced by the target's name); listeners shift
        their suspicion of the speaker and of the target by the given amounts."""
        if self.base.phase != "day_speech":
            raise ValueError("nobody is speaking now")
        cur = self.current_player()
        if target is not None and (target == cur or target not in self.base.living()):
            raise ValueError(f"a speech can name another living player, not {target!r}")
        if not (np.isfinite(speaker_shift) and np.isfinite(target_shift)):
            raise ValueError(f"listener shifts must be finite, got {speaker_shift}, {target_shift}")
        self._speak(text, target, speaker_shift, target_shift, -1)
        self._history.append(("speech", text, target))

    def act_seat(self, seat: int | None) -> None:
        """A night action by seat (the current player's)."""
        self._base_apply(lambda: self.base.apply_action(seat))  # the engine refuses an illegal seat
        self._history.append(("seat", seat))

    def vote_seats(self, seats: Sequence[int | None]) -> None:
        """The simultaneous vote by seat (None: abstain)."""
        self._vote(seats)
        self._history.append(("votes", tuple(seats)))

    def _speak(self, text: str, target: int | None, speaker_shift: float, target_shift: float, latent: int) -> None:
        cur = self.current_player()
        self.suspicion[cur] += speaker_shift
        if target is not None:
            self.suspicion[target] += target_shift
        self.speeches.append((cur, latent, target, self.base.round))
        name = player_name(target) if target is not None else "nobody in particular"
        self._base_apply(lambda: self.base.apply_action(text.replace(TARGET, name)))

    def _vote(self, seats: Sequence[int | None]) -> None:
        n = self.game.rules.num_players
        self._base_apply(lambda: self.base.apply_actions([n if s is None else s for s in seats]))

    def _base_apply(self, fn: Any) -> None:
        before = self.base.round
        fn()
        if self.base.round != before:  # a new day: yesterday's talk weighs less
            self.suspicion *= self.game.decay

    def returns(self) -> np.ndarray:
        return self.base.returns()

    def information_state_key(self, player: int) -> str:
        b = self.base
        if player >= len(b.roles):
            return "deal"
        role = b.roles[player]
        if len(b.roles) < b.rules.num_players:
            return f"{role}|deal"
        living = b.living()
        order = self.ranked(living)
        parts = [role, b.phase if b.current_player() != SIMULTANEOUS else "day_vote", f"r{b.round}",
                 f"alive{len(living)}"]
        if b.alive[player]:
            parts.append(f"rank{_bucket(order.index(player))}")
        if role == WEREWOLF:
            mates = [q for q in living if b.roles[q] == WEREWOLF and q != player]
            parts.append(f"mate-rank{_bucket(order.index(mates[0]))}" if mates else "alone")
        elif role == SEER:
            wolves, cleared = self.known(player)
            parts.append(f"found{len(wolves)}-cleared{_bucket(len([q for q in cleared if b.alive[q]]))}")
        if b.current_player() not in (CHANCE, TERMINAL) and (b.current_player() == SIMULTANEOUS or
                                                             b.current_player() == player):
            parts.append(f"opts{len(self.options(player))}")
        return "|".join(parts)

    def observation(self, player: int) -> np.ndarray:
        return self.base.observation(player)

    def clone(self) -> LatentWerewolfState:
        new = LatentWerewolfState.__new__(LatentWerewolfState)
        new.game, new.base = self.game, self.base.clone()
        new.suspicion, new.speeches, new._history = self.suspicion.copy(), list(self.speeches), list(self._history)
        return new

    def history(self) -> list[Action]:
        return list(self._history)

    def __str__(self) -> str:
        return f"{self.base}; suspicion {np.round(self.suspicion, 2).tolist()}"


def _distinct(seats: Sequence[int | None]) -> list[int | None]:
    out: list[int | None] = []
    for s in seats:
        if s not in out:
            out.append(s)
    return out


@register("werewolf_latent")
def werewolf_latent(latents: str | None = None, max_rounds: Annotated[int, Field(ge=1, le=100)] = 4,
                    decay: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5) -> WerewolfLatent:
    """Werewolf (7 players) with latent speech strategies and relational choices, the abstract game
    of LSPO. `latents`: a latent space file (llm_agents.lspo writes one per iteration); without
    it, neutral latents (werewolf 3, seer 2, doctor 2, villager 2) that move no listener."""
    spec = LatentSpec.load(latents) if latents else LatentSpec.neutral()
    return WerewolfLatent(WerewolfRules(max_rounds=max_rounds), spec, decay)


__all__ = ["SPEECH", "TARGET", "LatentSpec", "LatentWerewolfState", "SpeechLatent", "WerewolfLatent",
           "werewolf_latent"]
