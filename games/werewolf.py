"""Werewolf (social deduction) as a Game: hidden roles, private night actions, free-text speech.

Rules (defaults: 7 players = 2 werewolves, 1 seer, 1 doctor, 3 villagers, the LSPO setting):
- Roles are dealt by chance, one chance node per seat (outcomes: the role types left, weighted
  by how many of each are left), so every deal is equally likely and the tree stays small.
- Night: the living werewolves propose a victim one after another (each sees the earlier
  proposals); the victim is the most proposed player, ties going to the earliest proposal.
  The seer inspects one living player and learns privately whether it is a werewolf. The
  doctor protects one living player (itself too, unless `doctor_self_protect` is false). The
  victim dies unless protected; everyone learns who died (the role only if `reveal_roles`).
- Day: every living player speaks once, in seat order starting one seat later each round
  (a free-text action, capped at `max_speech_chars`), then all players vote at once (a
  simultaneous node; dead players can only abstain). The most voted player is eliminated;
  a tie eliminates nobody (`tie_rule: none`) or a uniformly drawn tied player
  (`tie_rule: random`, a chance node). All votes are public after the count.
- Werewolves win when they are at least as many as the others; villagers when no werewolf is
  left; after `max_rounds` nights and days the game is a draw. Winners get +1, losers -1.

Actions: seat numbers 0..N-1 for targets and votes, N for abstaining, and strings for
speech. Every text a player sees names seats from 1 ("Player 3" is seat 2). A player's
information state is its seat, its role, what its role saw at night, and the public record.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import PositiveInt
from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Action, Game, GameInfo, State
from equilibria.games.registry import register

WEREWOLF, SEER, DOCTOR, VILLAGER = "werewolf", "seer", "doctor", "villager"
ROLES = (WEREWOLF, SEER, DOCTOR, VILLAGER)
PHASES = ("deal", "night_werewolves", "night_seer", "night_doctor", "day_speech", "day_vote", "tie_break", "over")


def player_name(seat: int) -> str:
    return f"Player {seat + 1}"


@dataclasses.dataclass(frozen=True)
class WerewolfRules:
    num_players: int = 7
    werewolves: int = 2
    seers: int = 1
    doctors: int = 1
    max_rounds: int = 10
    tie_rule: str = "none"  # none | random
    reveal_roles: bool = False  # announce the role of every dead player
    doctor_self_protect: bool = True
    max_speech_chars: int = 500

    def validate(self) -> None:
        if self.werewolves < 1 or self.seers not in (0, 1) or self.doctors not in (0, 1):
            raise ValueError("werewolf needs >= 1 werewolf and at most one seer and one doctor")
        if self.villagers < 0:
            raise ValueError(f"{self.num_players} players cannot hold {self.werewolves} werewolves, "
                             f"{self.seers} seer and {self.doctors} doctor")
        if 2 * self.werewolves >= self.num_players:
            raise ValueError(f"{self.werewolves} werewolves of {self.num_players} players win before the game starts")
        if self.tie_rule not in ("none", "random"):
            raise ValueError(f"tie_rule must be 'none' or 'random', got {self.tie_rule!r}")
        if self.max_rounds < 1 or self.max_speech_chars < 1:
            raise ValueError("max_rounds and max_speech_chars must be >= 1")

    @property
    def villagers(self) -> int:
        return self.num_players - self.werewolves - self.seers - self.doctors

    def role_counts(self) -> dict[str, int]:
        return {WEREWOLF: self.werewolves, SEER: self.seers, DOCTOR: self.doctors, VILLAGER: self.villagers}


class Werewolf(Game):
    def __init__(self, rules: WerewolfRules):
        rules.validate()
        self.rules = rules
        n = rules.num_players
        self.abstain = n
        per_round = rules.werewolves + 2 + n + 1
        self.info = GameInfo(
            name="werewolf", num_players=n, dynamics="simultaneous", chance=True, information="imperfect",
            utility="general", min_utility=-1.0, max_utility=1.0, max_game_length=rules.max_rounds * per_round,
            num_distinct_actions=n + 1, utility_sum=None, action_type="text",
            parameters=dataclasses.asdict(rules),
        )

    def new_initial_state(self) -> WerewolfState:
        return WerewolfState(self)

    def observation_shape(self) -> tuple[int, ...]:
        n = self.rules.num_players
        return (len(ROLES) + 4 * n + len(PHASES) + 1,)

    def action_name(self, action: Action) -> str:
        if isinstance(action, str):
            return action
        return "abstain" if action == self.abstain else player_name(int(action))

    # -- the text view the engine uses (games/werewolf_text.py), and replays ----------
    def observe(self, state: WerewolfState, seat: int) -> Any:
        from equilibria.games import werewolf_text

        return werewolf_text.observe(state, seat)

    def record_extras(self, state: WerewolfState) -> dict[str, Any]:
        from equilibria.games import werewolf_text

        return werewolf_text.record_extras(state)

    def replay_lines(self, record: dict[str, Any], prompts: bool = False) -> list[str]:
        from equilibria.games.werewolf_replay import transcript

        return transcript(record, prompts)


class WerewolfState(State):
    def __init__(self, game: Werewolf):
        self.game, self.rules = game, game.rules
        n = self.rules.num_players
        self.roles: list[str] = []
        self.alive = [True] * n
        self.phase = "deal"
        self.round = 1
        self.queue: list[int] = []  # who still acts in the current sequential phase
        self.proposals: list[tuple[int, int]] = []  # (werewolf, target) tonight
        self.victim: int | None = None
        self.protected: int | None = None
        self.tied: list[int] = []
        self.events: list[dict[str, Any]] = []
        self.winner: str | None = None  # "werewolves" | "villagers" | "draw"
        self._history: list[Action] = []

    # -- helpers ------------------------------------------------------------------
    def living(self, role: str | None = None) -> list[int]:
        return [i for i, a in enumerate(self.alive) if a and (role is None or self.roles[i] == role)]

    def _emit(self, kind: str, visible: Any = "all", **fields: Any) -> None:
        self.events.append({"round": self.round, "phase": self.phase, "type": kind, "visible": visible, **fields})

    def visible_events(self, player: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["visible"] == "all" or player in e["visible"]]

    def _start_night(self) -> None:
        self.proposals, self.victim, self.protected = [], None, None
        self.phase, self.queue = "night_werewolves", self.living(WEREWOLF)

    def _advance_night(self) -> None:
        if self.phase == "night_werewolves" and not self.queue:
            tally = Counter(t for _, t in self.proposals)
            top = max(tally.values())
            self.victim = next(t for _, t in self.proposals if tally[t] == top)
            self._emit("night_victim", self.living(WEREWOLF), target=self.victim)
            self.phase, self.queue = "night_seer", self.living(SEER)
        if self.phase == "night_seer" and not self.queue:
            self.phase, self.queue = "night_doctor", self.living(DOCTOR)
        if self.phase == "night_doctor" and not self.queue:
            self._dawn()

    def _dawn(self) -> None:
        if self.victim is not None and self.victim != self.protected:
            self.alive[self.victim] = False
            self._emit("death", cause="night", player=self.victim,
                       role=self.roles[self.victim] if self.rules.reveal_roles else None)
        else:
            self._emit("no_death")
        if self._check_winner():
            return
        n = self.rules.num_players
        start = (self.round - 1) % n
        self.phase = "day_speech"
        self.queue = [s for s in [(start + k) % n for k in range(n)] if self.alive[s]]

    def _eliminate(self, seat: int | None) -> None:
        if seat is None:
            self._emit("no_elimination")
        else:
            self.alive[seat] = False
            self._emit("death", cause="vote", player=seat,
                       role=self.roles[seat] if self.rules.reveal_roles else None)
        if self._check_winner():
            return
        if self.round >= self.rules.max_rounds:
            self._finish("draw")
            return
        self.round += 1
        self._start_night()

    def _check_winner(self) -> bool:
        wolves = len(self.living(WEREWOLF))
        if wolves == 0:
            self._finish("villagers")
        elif wolves >= len(self.living()) - wolves:
            self._finish("werewolves")
        return self.winner is not None

    def _finish(self, winner: str) -> None:
        self.winner, self.phase, self.queue = winner, "over", []
        self._emit("game_over", winner=winner, roles=list(self.roles))

    # -- State contract -----------------------------------------------------------
    def current_player(self) -> int:
        if self.phase == "over":
            return TERMINAL
        if self.phase in ("deal", "tie_break"):
            return CHANCE
        if self.phase == "day_vote":
            return SIMULTANEOUS
        return self.queue[0]

    def is_terminal(self) -> bool:
        return self.phase == "over"

    def chance_outcomes(self) -> list[tuple[Action, float]]:
        if self.phase == "deal":
            left = Counter(self.rules.role_counts())
            left.subtract(self.roles)
            total = sum(left.values())
            return [(i, left[r] / total) for i, r in enumerate(ROLES) if left[r] > 0]
        if self.phase == "tie_break":
            return [(s, 1.0 / len(self.tied)) for s in self.tied]
        return []

    def legal_actions(self, player: int | None = None) -> list[Action]:
        cur = self.current_player()
        if cur == SIMULTANEOUS:
            if player is None or player < 0:
                return []
            if not self.alive[player]:
                return [self.game.abstain]
            return [s for s in self.living() if s != player] + [self.game.abstain]
        if cur < 0 or (player is not None and player != cur):
            return []
        if self.phase == "night_werewolves":
            return [s for s in self.living() if self.roles[s] != WEREWOLF]
        if self.phase == "night_seer":
            return [s for s in self.living() if s != cur]
        if self.phase == "night_doctor":
            return [s for s in self.living() if self.rules.doctor_self_protect or s != cur]
        return self.speech_menu(cur)

    def speech_menu(self, player: int) -> list[str]:
        """Canonical speech acts, the legal actions a non-language policy picks from; a language
        agent may say anything else (any non-empty text is accepted)."""
        others = [s for s in self.living() if s != player]
        menu = ["I have nothing to share yet.", "I am a villager."]
        menu += [f"I suspect {player_name(s)} is a werewolf." for s in others]
        menu += [f"I am the seer: {player_name(s)} is a werewolf." for s in others]
        menu += [f"I am the seer: {player_name(s)} is not a werewolf." for s in others]
        return menu

    def is_legal(self, player: int, action: Action) -> bool:
        if self.phase == "day_speech" and self.current_player() == player:
            return isinstance(action, str) and bool(action.strip())
        return not isinstance(action, str) and action in self.legal_actions(player)

    def apply_action(self, action: Action) -> None:
        cur = self.current_player()
        if cur == SIMULTANEOUS:
            raise ValueError("the vote is simultaneous: use apply_actions(one vote per player)")
        if cur == TERMINAL:
            raise ValueError("apply_action on a terminal state")
        if cur == CHANCE:
            if action not in dict(self.chance_outcomes()):
                raise ValueError(f"{action!r} is not a chance outcome here")
            self._history.append(action)
            if self.phase == "deal":
                self.roles.append(ROLES[int(action)])
                seat = len(self.roles) - 1
                self._emit("role", [seat], player=seat, role=self.roles[seat])
                if len(self.roles) == self.rules.num_players:
                    wolves = self.living(WEREWOLF)
                    for w in wolves:
                        self._emit("teammates", [w], players=[x for x in wolves if x != w])
                    self._start_night()
            else:
                self.tied = []
                self._eliminate(int(action))
            return
        if not self.is_legal(cur, action):
            raise ValueError(f"{action!r} is not legal for {player_name(cur)} in phase {self.phase}")
        self._history.append(action)
        self.queue.pop(0)
        if self.phase == "day_speech":
            text = " ".join(str(action).split())[: self.rules.max_speech_chars]
            self._emit("speech", player=cur, text=text)
            if not self.queue:
                self.phase = "day_vote"
            return
        target = int(action)
        if self.phase == "night_werewolves":
            self.proposals.append((cur, target))
            self._emit("proposal", self.living(WEREWOLF), player=cur, target=target)
        elif self.phase == "night_seer":
            self._emit("inspection", [cur], player=cur, target=target, werewolf=self.roles[target] == WEREWOLF)
        elif self.phase == "night_doctor":
            self.protected = target
            self._emit("protection", [cur], player=cur, target=target)
        self._advance_night()

    def apply_actions(self, actions: Any) -> None:
        if self.current_player() != SIMULTANEOUS:
            raise ValueError("apply_actions is for the simultaneous vote")
        actions = [int(a) for a in actions]
        n = self.rules.num_players
        if len(actions) != n:
            raise ValueError(f"the vote needs one action per player ({n}), got {len(actions)}")
        for p, a in enumerate(actions):
            if a not in self.legal_actions(p):
                raise ValueError(f"vote {a} is not legal for {player_name(p)}")
        self._history.append(tuple(actions))
        votes = {p: a for p, a in enumerate(actions) if self.alive[p]}
        self._emit("votes", votes={str(p): (None if a == n else a) for p, a in votes.items()})
        tally = Counter(a for a in votes.values() if a != n)
        if not tally:
            self._eliminate(None)
            return
        top = max(tally.values())
        tied = sorted(s for s, c in tally.items() if c == top)
        if len(tied) == 1:
            self._eliminate(tied[0])
        elif self.rules.tie_rule == "random":
            self.tied, self.phase = tied, "tie_break"
            self._emit("tie", players=tied)
        else:
            self._emit("tie", players=tied)
            self._eliminate(None)

    def returns(self) -> np.ndarray:
        n = self.rules.num_players
        if self.winner is None or self.winner == "draw":
            return np.zeros(n)
        wolves_won = self.winner == "werewolves"
        return np.array([1.0 if (r == WEREWOLF) == wolves_won else -1.0 for r in self.roles])

    def information_state_key(self, player: int) -> str:
        role = self.roles[player] if player < len(self.roles) else "?"
        parts = [f"seat {player}", role]
        for e in self.visible_events(player):
            parts.append(repr(sorted((k, v) for k, v in e.items() if k != "visible")))
        if self.current_player() == SIMULTANEOUS:
            parts.append("vote")
        return "|".join(parts)

    def observation(self, player: int) -> np.ndarray:
        n = self.rules.num_players
        out = np.zeros(self.game.observation_shape(), dtype=np.float32)
        if player < len(self.roles):
            out[ROLES.index(self.roles[player])] = 1.0
        base = len(ROLES)
        out[base + player] = 1.0
        out[base + n: base + 2 * n] = self.alive
        for e in self.visible_events(player):
            if e["type"] == "inspection":
                out[base + 2 * n + e["target"]] = 1.0 if e["werewolf"] else -1.0
            elif e["type"] == "teammates":
                out[[base + 3 * n + s for s in e["players"]]] = 1.0
        out[base + 4 * n + PHASES.index(self.phase)] = 1.0
        out[-1] = self.round / self.rules.max_rounds
        return out

    def clone(self) -> WerewolfState:
        new = WerewolfState.__new__(WerewolfState)
        new.__dict__.update(self.__dict__)
        new.roles, new.alive, new.queue = list(self.roles), list(self.alive), list(self.queue)
        new.proposals, new.tied, new._history = list(self.proposals), list(self.tied), list(self._history)
        new.events = list(self.events)  # events are never mutated after they are emitted
        return new

    def history(self) -> list[Action]:
        return list(self._history)

    def __str__(self) -> str:
        return (f"round {self.round} {self.phase}; alive {[player_name(s) for s in self.living()]}; "
                f"roles {self.roles}")


@register("werewolf")
def werewolf(num_players: Annotated[int, Field(ge=3, le=64)] = 7, werewolves: PositiveInt = 2,
             seers: Annotated[int, Field(ge=0, le=1)] = 1, doctors: Annotated[int, Field(ge=0, le=1)] = 1,
             max_rounds: Annotated[int, Field(ge=1, le=1000)] = 10, tie_rule: Literal["none", "random"] = "none",
             reveal_roles: bool = False, doctor_self_protect: bool = True,
             max_speech_chars: Annotated[int, Field(ge=1, le=20_000)] = 500) -> Werewolf:
    """Werewolf: hidden roles, night kills/inspections/protections, free-text speech, simultaneous votes."""
    return Werewolf(WerewolfRules(num_players, werewolves, seers, doctors, max_rounds, tie_rule, reveal_roles,
                                  doctor_self_protect, max_speech_chars))
