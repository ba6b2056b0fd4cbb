"""Magnetic mirror descent (Sokota et al. 2023) for extensive-form games, with the dilated
entropy over the sequence form. `solvers.make("mmd", game)` picks this for tree games and
the normal-form MMD (solvers.normal_form) for matrix games: one name, one config.

With alpha > 0 the last iterate converges to the alpha-regularised equilibrium (a QRE of the
reduced normal form); OpenSpiel's mmd_dilated.MMDDilatedEnt is the same algorithm, and with
the same alpha and stepsize the iterates agree (tests/test_solvers_mirror.py). Its default
stepsize, alpha / max|A|^2 over the sequence-form payoff matrix A, is kept.
"""

from __future__ import annotations

import numpy as np

from equilibria.games.core import Game, Policy
from equilibria.solvers import kernels
from equilibria.solvers.base import Solver, TreePolicy, has_payoff_tensor, register_solver, tree_of
from equilibria.solvers.normal_form import MirrorConfig, MirrorSolver


class DilatedMMDSolver(Solver):
    def __init__(self, game: Game, config: MirrorConfig):
        super().__init__(game, config)
        if config.geometry != "entropy":
            raise ValueError("extensive-form mmd uses the dilated entropy; geometry must be 'entropy'")
        if config.init is not None or config.magnet is not None:
            raise ValueError("init and magnet are per-player strategies of normal-form games; extensive-form mmd "
                             "starts from and regularises toward the uniform policy")
        self.tree = t = tree_of(game)
        self.policy = t.uniform_policy()
        self.cum_seq = np.zeros(t.num_slots)
        self.use_magnet = False
        self.log_magnet = np.zeros(t.num_slots)
        self._last = kernels.last_own_slots(t.node_player, t.parent, t.child_start, t.node_infoset,
                                            t.infoset_offset, t.num_players)
        self._terminals = np.flatnonzero(t.node_player == kernels.TERMINAL)
        self._reach = np.empty((t.num_nodes, t.num_players))
        self._creach = np.empty(t.num_nodes)
        self.eta = config.eta if config.eta is not None else self._default_eta()
        # the average runs over x_0, ..., x_T (the initial iterate included, as in OpenSpiel)
        kernels.sequence_weights(self.policy, t.infoset_offset, t.infoset_num_actions, t.infoset_parent_slot,
                                 self.cum_seq)

    def _default_eta(self) -> float:
        t, term = self.tree, self._terminals
        # sequence-form payoff matrix entries: terminals grouped by their pair of last slots
        pairs = self._last[term] + 1
        keys = pairs[:, 0] * (t.num_slots + 1) + pairs[:, 1]
        _, inv = np.unique(keys, return_inverse=True)
        entries = np.bincount(inv, weights=t.utility[term, 0] * self._chance_reach()[term])
        return float(self.config.alpha / np.max(np.abs(entries)) ** 2)

    def _chance_reach(self) -> np.ndarray:
        t = self.tree
        kernels.forward_reach(t.node_player, t.parent, t.child_start, t.node_infoset, t.chance_prob,
                              t.infoset_offset, t.uniform_policy(), self._reach, self._creach)
        return self._creach.copy()

    def _gradients(self) -> list[np.ndarray]:
        """d u_p / d x_p over the sequence form: terminal utilities weighted by the reach of
        chance and the other players, credited to the player's last action on the path."""
        t, term = self.tree, self._terminals
        kernels.forward_reach(t.node_player, t.parent, t.child_start, t.node_infoset, t.chance_prob,
                              t.infoset_offset, self.policy, self._reach, self._creach)
        out = []
        for p in range(t.num_players):
            others = np.prod(np.delete(self._reach[term], p, axis=1), axis=1) * self._creach[term]
            slots = self._last[term, p]
            ok = slots >= 0
            out.append(np.bincount(slots[ok], weights=(t.utility[term, p] * others)[ok], minlength=t.num_slots))
        return out

    def step(self) -> None:
        self.iteration += 1
        t, c = self.tree, self.config
        grads = self._gradients()
        new = np.empty_like(self.policy)
        for p in range(t.num_players):
            kernels.dilated_entropy_step(self.policy, grads[p], self.log_magnet, self.use_magnet, self.eta, c.alpha,
                                         t.infoset_offset, t.infoset_num_actions, t.infoset_parent_slot,
                                         t.infoset_player, p, new)
        self.policy = new
        seq = np.empty(t.num_slots)
        kernels.sequence_weights(self.policy, t.infoset_offset, t.infoset_num_actions, t.infoset_parent_slot, seq)
        self.cum_seq += seq

    def average_policy(self) -> Policy:
        return TreePolicy.from_mass(self.tree, self.cum_seq)

    def current_policy(self) -> Policy:
        return TreePolicy(self.tree, self.policy.copy())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"policy": self.policy, "cum_seq": self.cum_seq}

    def load_state_dict(self, state: dict) -> None:
        self.policy = np.array(state["policy"], dtype=np.float64)  # replaced, not mutated, each step
        super().load_state_dict(state)


@register_solver("mmd", MirrorConfig, kind="any", requires_zero_sum=True, alpha=0.1, eta=None,
                 description="magnetic mirror descent (Sokota et al. 2023); dilated entropy on trees, last iterate -> QRE")
def make_mmd(game: Game, config: MirrorConfig) -> Solver:
    if has_payoff_tensor(game):
        return MirrorSolver(game, config)
    if not game.info.is_finite:
        raise ValueError(f"mmd needs a finite game; {game.info.name} cannot be enumerated")
    return DilatedMMDSolver(game, config)
