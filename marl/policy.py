"""Trained multi-agent actors as games Policies.

`MARLPolicy` holds one actor per agent group (marl.networks.GroupActor) and acts for any seat of
a Markov game's single-State view from that seat's own observation (as its group declares it).
An actor trained for a one-agent group (a PSRO best response) acts for any seat whose group has
the same spaces.

A policy whose agents' actions are correlated (a Bayesian-network actor-critic samples its agents
in a DAG order) is a `JointPolicy` (games.core, re-exported here): the engine samples joint actions
from it when it holds every seat of a simultaneous node, and uses the per-seat marginals otherwise
(`marginals`; `CorrelatedPolicy` derives them).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from equilibria.games.core import CorrelatedPolicy, JointAction, JointPolicy, Policy, State, marginals
from equilibria.games.markov import MarkovState
from equilibria.games.spaces import matching_group
from equilibria.marl.networks import GroupActor, as_tensors

__all__ = ["CorrelatedPolicy", "JointAction", "JointPolicy", "MARLPolicy", "marginals"]


class MARLPolicy(Policy):
    """Actors keyed by group name, acting for one seat at a time (see the module docstring)."""

    def __init__(self, actors: Mapping[str, GroupActor], deterministic: bool = False):
        self.actors, self.deterministic = dict(actors), deterministic

    def _actor_for(self, state: MarkovState, player: int) -> tuple[GroupActor, int]:
        group, slot = state.game.seats()[player]
        name = matching_group({k: a.group for k, a in self.actors.items()}, state.game.group(group))
        if name is None:
            raise ValueError(f"this policy has actors for {sorted(self.actors)}, none that fits {group!r} seats")
        actor = self.actors[name]
        return actor, slot if actor.n > 1 else 0

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if player is None or player < 0:
            raise ValueError("MARL policies act for a given player")
        if not isinstance(state, MarkovState):
            raise ValueError(f"MARL policies act in Markov games; got a {type(state).__name__}")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        actor, slot = self._actor_for(state, player)
        with torch.no_grad():
            logits = actor.slot_logits(as_tensors(state.agent_observation(player)), slot)
        probs = torch.softmax(logits, -1).numpy()
        if self.deterministic:
            best = max(legal, key=lambda a: probs[a])
            return {a: float(a == best) for a in legal}
        z = sum(probs[a] for a in legal)
        return {a: float(probs[a] / z) for a in legal}
