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
from typing import Any

import numpy as np
import torch

from equilibria.games.core import CorrelatedPolicy, JointAction, JointPolicy, Policy, State, marginals
from equilibria.games.markov import MarkovState
from equilibria.games.spaces import matching_group
from equilibria.marl.demos import flat
from equilibria.marl.networks import GroupActor, as_tensors

__all__ = ["CorrelatedPolicy", "JointAction", "JointPolicy", "MARLPolicy", "QPolicy", "marginals", "over_legal"]


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
        return over_legal(torch.softmax(logits, -1).numpy(), legal, self.deterministic)


class QPolicy:
    """A Q-learner as a games Policy: one seat's Boltzmann (or greedy) action from the observations
    of the State's agents. The learner gives `n` (its group's slots) and `action_probs(obs [B, n,
    D]) -> [B, n, A]` (MAMQL's softmax of its critics, a joint critic averaged over the others; DQN's)."""

    def __init__(self, learner: Any, deterministic: bool = False):
        self.learner, self.deterministic = learner, deterministic

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if not isinstance(state, MarkovState) or player is None or player < 0:
            raise ValueError("a Q-learner's policy acts for a given player of a Markov game")
        legal = state.legal_actions(player)
        if not legal:
            return {}
        obs = np.stack([flat(state.agent_observation(j), 0).reshape(-1) for j in range(self.learner.n)])[None]
        with torch.no_grad():
            probs = self.learner.action_probs(torch.as_tensor(obs))[0, player].numpy()
        return over_legal(probs, legal, self.deterministic)


def over_legal(probs: np.ndarray, legal: list[int], deterministic: bool) -> dict[int, float]:
    """A network's action probabilities as a policy's over the legal actions: renormalised, or
    all on the most probable legal action when `deterministic`."""
    if deterministic:
        best = max(legal, key=lambda a: probs[a])
        return {a: float(a == best) for a in legal}
    z = sum(probs[a] for a in legal)
    return {a: float(probs[a] / z) for a in legal}
