"""The scripted Werewolf player (agent type `rule`, built through llm_agents.agents.make_agent).

It plays the textbook game: the seer inspects players it knows nothing
about and announces what it found ("I am the seer: Player k is a werewolf."); werewolves
follow their teammate's proposal, kill a player who claimed to be the seer, and counter-claim
when the seer exposes one of them; the doctor protects the claimed seer; villagers vote for
the player the (first) seer claim named, and without evidence for a random uncleared player.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from equilibria.games.werewolf import SEER, WEREWOLF, player_name
from equilibria.games.werewolf_text import WerewolfObservation as Observation

_CLAIM = re.compile(r"seer\W+player\s*(\d+)\s+is\s+(not\s+)?a\s+werewolf", re.IGNORECASE)


def seer_claims(obs: Observation) -> list[tuple[int, int, bool]]:
    """(speaker, target, target is a werewolf) for every public seer claim, oldest first."""
    out = []
    for e in obs.events:
        if e["type"] == "speech":
            for m in _CLAIM.finditer(e["text"]):
                out.append((e["player"], int(m.group(1)) - 1, m.group(2) is None))
    return out


class RuleBasedAgent:
    """`no_evidence_vote`: what a villager votes for when no seer claim accuses anyone: a random
    uncleared player ("random", the default) or nobody ("abstain", a cautious village)."""

    name = "rule"

    def __init__(self, seed: int = 0, no_evidence_vote: str = "random"):
        if no_evidence_vote not in ("random", "abstain"):
            raise ValueError(f"no_evidence_vote must be 'random' or 'abstain', got {no_evidence_vote!r}")
        self.rng = np.random.default_rng(seed)
        self.no_evidence_vote = no_evidence_vote

    def reset(self, seat: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def _pick(self, seats: list[int]) -> int:
        return seats[int(self.rng.integers(len(seats)))]

    def act(self, obs: Observation) -> Any:
        return self._speak(obs) if obs.kind == "speak" else self._choose(obs)

    # -- speech ------------------------------------------------------------------
    def _speak(self, obs: Observation) -> str:
        alive = set(obs.alive)
        claims = [c for c in seer_claims(obs) if c[1] in alive and c[0] in alive]
        if obs.role == SEER:
            wolves = [s for s, w in obs.inspections.items() if w and s in alive]
            if wolves:
                return f"I am the seer: {player_name(wolves[0])} is a werewolf. Vote with me."
            cleared = [s for s, w in obs.inspections.items() if not w and s in alive]
            if cleared:
                return f"I am the seer: {player_name(cleared[-1])} is not a werewolf."
            return "I have nothing to share yet."
        if obs.role == WEREWOLF:
            pack = set(obs.teammates) | {obs.seat}
            exposing = [c for c in claims if c[2] and c[1] in pack and c[0] not in pack]
            if exposing:  # counter-claim against the seer who exposed us
                return f"I am the seer: {player_name(exposing[0][0])} is a werewolf. They are lying."
            return "I am a villager."
        accused = [c for c in claims if c[2]]
        if accused:
            return f"I believe the seer: {player_name(accused[0][1])} is a werewolf."
        return "I am a villager."

    # -- choices -----------------------------------------------------------------
    def _choose(self, obs: Observation) -> int:
        options = [o for o in obs.options if o != obs.abstain]
        alive = set(obs.alive)
        claims = [c for c in seer_claims(obs) if c[0] in alive]
        if obs.phase == "night_werewolves":
            tonight = [e["target"] for e in obs.events
                       if e["type"] == "proposal" and e["round"] == obs.round and e["player"] != obs.seat]
            if tonight and tonight[0] in options:
                return tonight[0]
            claimed_seers = [c[0] for c in claims if c[0] in options]
            return claimed_seers[0] if claimed_seers else self._pick(options)
        if obs.phase == "night_seer":
            unknown = [o for o in options if o not in obs.inspections]
            return self._pick(unknown or options)
        if obs.phase == "night_doctor":
            claimed_seers = [c[0] for c in claims if c[0] in options]
            return claimed_seers[0] if claimed_seers else (obs.seat if obs.seat in options else self._pick(options))
        # day vote
        if obs.role == SEER:
            wolves = [s for s, w in obs.inspections.items() if w and s in options]
            if wolves:
                return wolves[0]
        if obs.role == WEREWOLF:
            pack = set(obs.teammates) | {obs.seat}
            threats = [c[0] for c in claims if c[1] in pack and c[2] and c[0] in options]
            if threats:
                return threats[0]
            village_targets = [c[1] for c in claims if c[2] and c[1] in options and c[1] not in pack]
            return village_targets[0] if village_targets else self._pick([o for o in options if o not in pack])
        accused = [c[1] for c in claims if c[2] and c[1] in options]
        if accused:
            return accused[0]
        # no evidence: a random player nobody has cleared (abstaining would hand the
        # coordinated werewolf votes every elimination: 88% werewolf wins instead of ~50%)
        cleared = {c[1] for c in claims if not c[2]} | {s for s, w in obs.inspections.items() if not w}
        suspects = [o for o in options if o not in cleared]
        return self._pick(suspects) if suspects and self.no_evidence_vote == "random" else obs.abstain


__all__ = ["RuleBasedAgent", "seer_claims"]
