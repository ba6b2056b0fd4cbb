"""PSRO (Lanctot et al. 2017) with exact best responses, for two-player zero-sum finite games.

Each player keeps a population of deterministic policies. Every generation solves the
empirical meta-game (exact expected values on the compiled tree) with the LP, combines each
player's population into the meta-Nash mixture (in sequence form, so the mixture is again a
behaviour policy), and adds every player's exact best response to the other's mixture. The
exploitability of the meta-Nash mixture is exact at every generation.
"""

from __future__ import annotations

import numpy as np

from equilibria.common.config import Config, PositiveInt
from equilibria.games.core import Game
from equilibria.solvers import kernels
from equilibria.solvers.base import Solver, TreePolicy, register_solver, tree_of
from equilibria.solvers.exploitability import tree_best_response_policy, tree_policy_values
from equilibria.solvers.normal_form import solve_zero_sum


class PSROConfig(Config):
    """PSRO with exact best responses; the initial population is the uniform policy."""

    max_population: PositiveInt = 100
    """stop adding policies beyond this many per player"""


def mixture(tree, policies: list[np.ndarray], weights: np.ndarray, player: int) -> np.ndarray:
    """The behaviour policy of `player` that plays like the `weights` mixture of `policies`
    (average of sequence-form realisation weights, then renormalised per infoset)."""
    seq = np.zeros(tree.num_slots)
    buf = np.empty(tree.num_slots)
    for w, p in zip(weights, policies):
        if w > 0:
            kernels.sequence_weights(p, tree.infoset_offset, tree.infoset_num_actions, tree.infoset_parent_slot, buf)
            seq += w * buf
    out = TreePolicy.from_mass(tree, seq).probs
    mine = tree.infoset_player[tree.slot_infoset] == player
    return np.where(mine, out, policies[0])


@register_solver("psro", PSROConfig, kind="tree", requires_zero_sum=True,
                 description="PSRO (Lanctot et al. 2017) with exact best responses and an LP meta-solver")
class PSROSolver(Solver):
    def __init__(self, game: Game, config: PSROConfig):
        super().__init__(game, config)
        if game.num_players != 2:
            raise ValueError("psro here is for two-player games")
        self.tree = t = tree_of(game)
        self.populations: list[list[np.ndarray]] = [[t.uniform_policy()], [t.uniform_policy()]]
        self.payoff = np.zeros((1, 1))
        self.payoff[0, 0] = self._value(self.populations[0][0], self.populations[1][0])
        self.meta = [np.ones(1), np.ones(1)]

    def _value(self, p0: np.ndarray, p1: np.ndarray) -> float:
        t = self.tree
        joint = np.where(t.infoset_player[t.slot_infoset] == 0, p0, p1)
        return float(tree_policy_values(t, joint)[0])

    def _mixture(self, player: int) -> np.ndarray:
        return mixture(self.tree, self.populations[player], self.meta[player], player)

    def joint_policy(self) -> np.ndarray:
        t = self.tree
        return np.where(t.infoset_player[t.slot_infoset] == 0, self._mixture(0), self._mixture(1))

    def step(self) -> None:
        self.iteration += 1
        joint = self.joint_policy()  # self.meta is current: solved after every change to the payoff table
        new = [tree_best_response_policy(self.tree, joint, p)[1] for p in range(2)]
        for p in range(2):
            if len(self.populations[p]) < self.config.max_population:
                self.populations[p].append(new[p])
        n0, n1 = len(self.populations[0]), len(self.populations[1])
        payoff = np.zeros((n0, n1))
        payoff[: self.payoff.shape[0], : self.payoff.shape[1]] = self.payoff
        for i in range(n0):
            for j in range(n1):
                if i >= self.payoff.shape[0] or j >= self.payoff.shape[1]:
                    payoff[i, j] = self._value(self.populations[0][i], self.populations[1][j])
        self.payoff = payoff
        self._solve_meta()

    def _solve_meta(self) -> None:
        """Meta-Nash of the empirical payoff table, one LP per player."""
        x, _ = solve_zero_sum(self.payoff)
        y, _ = solve_zero_sum(-self.payoff.T)
        self.meta = [x, y]

    def average_policy(self) -> TreePolicy:
        """The meta-Nash mixture over the populations."""
        return TreePolicy(self.tree, self.joint_policy())

    def current_policy(self) -> TreePolicy:
        return self.average_policy()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def state_dict(self) -> dict:
        out = {f"pop{p}": np.stack(self.populations[p]) for p in range(2)}
        out.update({"payoff": self.payoff, "iteration": self.iteration, "solver": self.name})
        return out

    def load_state_dict(self, state: dict) -> None:
        if str(state.get("solver", self.name)) != self.name:
            raise ValueError(f"checkpoint is for solver {state.get('solver')!r}, not {self.name!r}")
        self.populations = [list(np.asarray(state[f"pop{p}"])) for p in range(2)]
        self.payoff = np.asarray(state["payoff"], dtype=np.float64)
        self.iteration = int(state["iteration"])
        self._solve_meta()
