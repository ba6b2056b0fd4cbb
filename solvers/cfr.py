"""Counterfactual regret minimisation on the compiled tree: one class, named variants as
configurations. (Sampling variants, MCCFR, live in solvers.mccfr and need no compiled tree.)

Variants (all share forward_reach / cfr_backward / regret_matching in solvers.kernels):
- cfr:  Zinkevich et al. (2007); uniform averaging, alternating updates (OpenSpiel's default)
- cfr+: Tammelin (2014); regret-matching+ (clip cumulative regrets at 0), linear averaging
- lcfr: Brown & Sandholm (2019) linear CFR = DCFR(1, 1, 1)
- dcfr: Brown & Sandholm (2019) discounted CFR, (alpha, beta, gamma) = (1.5, 0, 2)
The update order matches OpenSpiel's CFRSolver / CFRPlusSolver / DCFRSolver, so the
exploitability sequences agree to rounding (tests/test_solvers_cfr.py).
"""

from __future__ import annotations

import numpy as np

from equilibria.common.config import Config, NonNegativeFloat
from equilibria.games.core import Game, Policy
from equilibria.solvers import kernels
from equilibria.solvers.base import Solver, TreePolicy, register_solver, tree_of


class CFRConfig(Config):
    """Counterfactual regret minimisation and its discounted / plus variants."""

    regret_matching_plus: bool = False
    """clip cumulative regrets at zero after each update (CFR+)"""
    alternating_updates: bool = True
    """update one player per pass, the next seeing the new policy"""
    averaging_power: NonNegativeFloat = 0.0
    """average-policy weight t^power: 0 uniform, 1 linear (CFR+), 2 (DCFR)"""
    alpha: float | None = None
    """DCFR: positive regrets times t^alpha / (t^alpha + 1); null: no discount"""
    beta: float | None = None
    """DCFR: negative regrets times t^beta / (t^beta + 1)"""

    def check(self) -> None:
        if (self.alpha is None) != (self.beta is None):
            raise ValueError("alpha: DCFR discounting needs both alpha and beta (or neither)")


_CFR_DOC = "counterfactual regret minimisation on the compiled tree"


@register_solver("cfr", CFRConfig, kind="tree", description="CFR (Zinkevich et al. 2007), " + _CFR_DOC)
@register_solver("cfr+", CFRConfig, kind="tree", description="CFR+ (Tammelin 2014): regret matching+, linear averaging",
                 regret_matching_plus=True, averaging_power=1.0)
@register_solver("lcfr", CFRConfig, kind="tree", description="Linear CFR (Brown & Sandholm 2019)",
                 alpha=1.0, beta=1.0, averaging_power=1.0)
@register_solver("dcfr", CFRConfig, kind="tree", description="Discounted CFR (Brown & Sandholm 2019), alpha 1.5 beta 0 gamma 2",
                 alpha=1.5, beta=0.0, averaging_power=2.0)
class CFRSolver(Solver):
    def __init__(self, game: Game, config: CFRConfig):
        super().__init__(game, config)
        self.tree = t = tree_of(game)
        self.regret = np.zeros(t.num_slots)
        self.cum_policy = np.zeros(t.num_slots)
        self.policy = t.uniform_policy()
        self._reach = np.empty((t.num_nodes, t.num_players))
        self._creach = np.empty(t.num_nodes)
        self._values = np.empty((t.num_nodes, t.num_players))
        self._player_slots = [t.infoset_player[t.slot_infoset] == p for p in range(t.num_players)]

    def _pass(self, update_player: int, weight: float) -> None:
        t = self.tree
        kernels.forward_reach(t.node_player, t.parent, t.child_start, t.node_infoset, t.chance_prob,
                              t.infoset_offset, self.policy, self._reach, self._creach)
        kernels.cfr_backward(t.node_player, t.child_start, t.num_children, t.node_infoset, t.chance_prob, t.utility,
                             t.infoset_offset, self.policy, self._reach, self._creach, self._values, update_player,
                             self.regret, self.cum_policy, weight)

    def _after_pass(self, update_player: int) -> None:
        c, it = self.config, self.iteration
        if c.alpha is not None:
            mask = self._player_slots[update_player] if update_player >= 0 else slice(None)
            r = self.regret[mask]
            pos = it**c.alpha / (it**c.alpha + 1.0)
            neg = it**c.beta / (it**c.beta + 1.0)
            self.regret[mask] = np.where(r >= 0, r * pos, r * neg)
        if c.regret_matching_plus:
            np.maximum(self.regret, 0.0, out=self.regret)
        t = self.tree
        kernels.regret_matching(self.regret, t.infoset_offset, t.infoset_num_actions, self.policy)

    def step(self) -> None:
        self.iteration += 1
        weight = float(self.iteration) ** self.config.averaging_power
        if self.config.alternating_updates:
            for p in range(self.tree.num_players):
                self._pass(p, weight)
                self._after_pass(p)
        else:
            self._pass(-1, weight)
            self._after_pass(-1)

    def average_policy(self) -> Policy:
        return TreePolicy.from_mass(self.tree, self.cum_policy)

    def current_policy(self) -> Policy:
        return TreePolicy(self.tree, self.policy.copy())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"regret": self.regret, "cum_policy": self.cum_policy, "policy": self.policy}
