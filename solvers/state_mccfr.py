"""Outcome-sampling MCCFR that walks States directly, with no tree.

solvers.mccfr caches the visited tree so later iterations run at array speed; that pays when
sampled histories repeat. In games whose histories almost never repeat but whose information
abstraction is small (the latent Werewolf of LSPO: millions of histories per thousand
iterations, a few thousand infosets), the cache only costs memory and expansion time. This
solver keeps regret and average-policy tables per infoset and plays one trajectory per
iteration on a fresh State:

- the updating player (round robin) samples from epsilon-explored regret matching, everyone else
  on-policy and chance by its probabilities, so the sampled counterfactual value of the updating
  player's infoset I at history h is u(z) pi_i(z | h) / q(z) (Lanctot et al. 2009, Sec. 3.2),
  and the regret of each action a at I gains w (pi_i(z | h a) [a sampled] - pi_i(z | h));
- the average policy accumulates the current strategy at the updating player's infosets
  weighted by pi_i(h) / q(h), q(h) the probability that the sample reaches h (chance, the
  others and the updating player's exploration all included), so its expectation is the
  strategy weighted by the player's own reach pi_i(I), as CFR's average needs (the
  weighting of solvers.mccfr_kernels' outcome sampling and OpenSpiel's).

`shared`: tables are keyed by the information-state key alone, not (player, key), so seats
whose keys are anonymous (a role, not a seat) share one policy. State in, state out: the
tables are plain dicts of float arrays; `state_dict` / `load_state_dict` round-trip them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, Action, Game, State, sample_action


def regret_matching(regret: np.ndarray) -> np.ndarray:
    positive = np.maximum(regret, 0.0)
    total = positive.sum()
    return positive / total if total > 0 else np.full(len(regret), 1.0 / len(regret))


class TablePolicy:
    """A policy from per-infoset probability tables. Where a key is unknown (or its legal actions
    differ from the table's) it plays `fallback` (a policy) if given, else uniformly."""

    def __init__(self, tables: Mapping[str, tuple[list[Action], np.ndarray]], shared: bool = True,
                 fallback: Any = None):
        self.tables, self.shared, self.fallback = dict(tables), shared, fallback

    def probabilities(self, key: str, legal: list[Action]) -> np.ndarray:
        entry = self.tables.get(key)
        if entry is None or list(entry[0]) != list(legal):
            return np.full(len(legal), 1.0 / len(legal))
        return entry[1]

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Action, float]:
        player = state.current_player() if player is None else player
        legal = state.legal_actions(player)
        if not legal:
            return {}
        key = _key(state, player, self.shared)
        entry = self.tables.get(key)
        if self.fallback is not None and (entry is None or list(entry[0]) != list(legal)):
            return self.fallback.action_probabilities(state, player)
        return dict(zip(legal, self.probabilities(key, legal).tolist()))

    def to_dict(self) -> dict[str, Any]:
        return {"shared": self.shared,
                "tables": {k: {"actions": [int(a) for a in acts], "probs": p.tolist()}
                           for k, (acts, p) in self.tables.items()}}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> TablePolicy:
        return TablePolicy({k: (list(v["actions"]), np.asarray(v["probs"], dtype=np.float64))
                            for k, v in data["tables"].items()}, bool(data.get("shared", True)))


def _key(state: State, player: int, shared: bool) -> str:
    key = str(state.information_state_key(player))
    return key if shared else f"{player}:{key}"


class StateOutcomeMCCFR:
    """`learns(state, player)`: whether that decision learns (default: every one); the others
    play `fixed` (a policy), which makes the solver a sampled best response of the learners to
    it. A predicate, not a list of players, because who is on a team can depend on the deal."""

    def __init__(self, game: Game, epsilon: float = 0.6, seed: int = 0, shared: bool = True,
                 fixed: Any = None, learns: Callable[[State, int], bool] | None = None):
        if not 0 < epsilon <= 1:
            raise ValueError(f"epsilon must be in (0, 1], got {epsilon}")
        if (fixed is None) != (learns is None):
            raise ValueError("give both `fixed` (what the others play) and `learns` (who learns), or neither")
        self.game, self.epsilon, self.shared = game, epsilon, shared
        self.fixed, self.learns = fixed, learns
        self.rng = np.random.default_rng(seed)
        self.regret: dict[str, np.ndarray] = {}
        self.cum_policy: dict[str, np.ndarray] = {}
        self.actions: dict[str, list[Action]] = {}
        self.iteration = 0

    def _strategy(self, key: str, legal: list[Action]) -> np.ndarray:
        if key not in self.regret:
            self.regret[key] = np.zeros(len(legal))
            self.cum_policy[key] = np.zeros(len(legal))
            self.actions[key] = list(legal)
        elif len(self.actions[key]) != len(legal):
            raise ValueError(f"information state {key!r} has {len(legal)} legal actions here and "
                             f"{len(self.actions[key])} elsewhere")
        return regret_matching(self.regret[key])

    def _policy(self, state: State, player: int, legal: list[Action]) -> tuple[str | None, np.ndarray]:
        if self.learns is None or self.learns(state, player):
            key = _key(state, player, self.shared)
            return key, self._strategy(key, legal)
        probs = self.fixed.action_probabilities(state, player)
        return None, np.array([probs.get(a, 0.0) for a in legal], dtype=np.float64)

    def run(self, iterations: int) -> StateOutcomeMCCFR:
        for _ in range(iterations):
            self._trajectory(self.iteration % self.game.num_players)
            self.iteration += 1
        return self

    def _trajectory(self, me: int) -> None:
        state = self.game.new_initial_state()
        visits = []  # (key, strategy, sampled index, my reach, full sample reach) at my decisions
        my_reach, sample_reach, full_reach = 1.0, 1.0, 1.0  # pi_i, q_i (mine only), q (everything)
        eps = self.epsilon
        while not state.is_terminal():
            cur = state.current_player()
            if cur == CHANCE:
                outcomes = state.chance_outcomes()
                probs = np.array([p for _, p in outcomes])
                i = self._draw(probs)
                full_reach *= probs[i] / probs.sum()
                state.apply_action(outcomes[i][0])
                continue
            movers = range(self.game.num_players) if cur == SIMULTANEOUS else [cur]
            joint = []
            for p in movers:
                legal = state.legal_actions(p)
                if not legal:
                    joint.append(None)
                    continue
                key, sigma = self._policy(state, p, legal)
                if p == me and key is not None:
                    sample = (1 - eps) * sigma + eps / len(legal)
                    i = self._draw(sample)
                    visits.append((key, sigma, i, my_reach, full_reach))
                    my_reach *= sigma[i]
                    sample_reach *= sample[i]
                    full_reach *= sample[i]
                else:
                    i = self._draw(sigma)
                    full_reach *= sigma[i] / sigma.sum()
                joint.append(legal[i])
            if cur == SIMULTANEOUS:
                state.apply_actions(joint)
            else:
                state.apply_action(joint[0])
        utility = float(state.returns()[me])
        # tail = pi_i(z | h): my strategy's probability of my actions from h on
        tail = 1.0
        for key, sigma, i, reach, q in reversed(visits):
            w = utility / sample_reach
            tail_after = tail  # pi_i(z | h a): my actions after this one
            tail = tail_after * sigma[i]
            regret = self.regret[key]
            regret -= w * tail
            regret[i] += w * tail_after
            self.cum_policy[key] += (reach / q) * sigma

    def _draw(self, probs: np.ndarray) -> int:
        return int(sample_action(dict(enumerate(probs.tolist())), self.rng))

    def average_policy(self) -> TablePolicy:
        tables = {}
        for key, cum in self.cum_policy.items():
            total = cum.sum()
            tables[key] = (self.actions[key], cum / total if total > 0 else np.full(len(cum), 1.0 / len(cum)))
        return TablePolicy(tables, self.shared)

    def greedy_policy(self, fallback: Any = None) -> TablePolicy:
        """The action of largest cumulative regret per infoset (a best response once the others are
        fixed); infosets whose regrets never moved are left to `fallback` (uniform without one)."""
        tables = {}
        for key, r in self.regret.items():
            if not np.any(r):
                continue
            out = np.zeros(len(r))
            out[int(np.argmax(r))] = 1.0
            tables[key] = (self.actions[key], out)
        return TablePolicy(tables, self.shared, fallback)

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "rng": self.rng.bit_generator.state,
                "tables": {k: {"actions": [int(a) for a in self.actions[k]], "regret": self.regret[k].tolist(),
                               "cum_policy": self.cum_policy[k].tolist()} for k in self.regret}}

    def load_state_dict(self, data: Mapping[str, Any]) -> None:
        self.iteration = int(data["iteration"])
        self.rng.bit_generator.state = data["rng"]
        self.actions = {k: list(v["actions"]) for k, v in data["tables"].items()}
        self.regret = {k: np.asarray(v["regret"], dtype=np.float64) for k, v in data["tables"].items()}
        self.cum_policy = {k: np.asarray(v["cum_policy"], dtype=np.float64) for k, v in data["tables"].items()}


__all__ = ["StateOutcomeMCCFR", "TablePolicy", "regret_matching"]
