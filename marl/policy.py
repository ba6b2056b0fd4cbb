"""Trained multi-agent actors as games Policies, per seat or jointly.

`MARLPolicy` holds one actor per agent group (marl.networks.GroupActor) and acts for any seat of
a Markov game's single-State view from that seat's own observation (as its group declares it).
An actor trained for a one-agent group (a PSRO best response) acts for any seat whose group has
the same spaces.

`JointPolicy` is the view of a policy whose agents' actions are correlated (a Bayesian-network
actor-critic samples its agents in a DAG order): `joint_action_probabilities(state)` gives a
distribution over joint actions. Tournaments and evaluation sample joint actions from it when
one entry holds every seat, and use the per-seat marginals otherwise (`marginals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from equilibria.games.core import Policy, State
from equilibria.games.markov import MarkovState
from equilibria.marl.networks import GroupActor, as_tensors

JointAction = tuple[int, ...]


@runtime_checkable
class JointPolicy(Protocol):
    """A policy over joint actions: one probability per joint action (one action per seat, None
    for seats with no legal action)."""

    def joint_action_probabilities(self, state: State) -> dict[JointAction, float]: ...


def marginals(joint: Mapping[JointAction, float], player: int) -> dict[int, float]:
    """One seat's marginal distribution of a joint-action distribution."""
    out: dict[int, float] = {}
    for actions, p in joint.items():
        a = actions[player]
        if a is not None:
            out[a] = out.get(a, 0.0) + p
    return out


def sample_joint(joint: Mapping[JointAction, float], rng: np.random.Generator) -> JointAction:
    actions = list(joint)
    p = np.fromiter(joint.values(), dtype=np.float64, count=len(actions))
    return actions[int(rng.choice(len(actions), p=p / p.sum()))]


class MARLPolicy(Policy):
    """Actors keyed by group name, acting for one seat at a time (see the module docstring)."""

    def __init__(self, actors: Mapping[str, GroupActor], deterministic: bool = False):
        self.actors, self.deterministic = dict(actors), deterministic

    def _actor_for(self, state: MarkovState, player: int) -> tuple[GroupActor, int]:
        group, slot = state.game.seats()[player]
        actor = self.actors.get(group)
        if actor is None and len(self.actors) == 1:
            actor = next(iter(self.actors.values()))
            spec = state.game.group(group)
            if (actor.group.observation, actor.group.action) != (spec.observation, spec.action):
                actor = None
        if actor is None:
            raise ValueError(f"this policy has actors for {sorted(self.actors)}, none for {group!r} seats")
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
