"""Monte Carlo CFR (Lanctot et al. 2009) on a lazily expanded tree, for games of any size.

One solver; the sampling scheme is a config field, and the registered names are thin
configurations of it:
- mccfr-external: external sampling. Each iteration traverses once per player; the updating
  player's actions are all explored, chance and the others are sampled. Average policy by
  'simple' averaging at the next player's sampled nodes (OpenSpiel's default).
- mccfr-outcome: outcome sampling. Each iteration samples one trajectory per player, with
  epsilon-exploration at the updating player's nodes (OpenSpiel's epsilon 0.6).

The tree is compiled on first visit (solvers.lazy_tree): nodes become array rows when a
traversal first reaches them, so later iterations run in numba at array speed, and games far
beyond compile_tree's limit (phantom_ttt, oshi_zumo) run too, within `max_nodes` of cached
nodes. Regrets live per infoset, in tables that grow as infosets are discovered.

Checkpoints (`state_dict`) are plain arrays: the tree, the infoset table with its keys, the
regret and average-policy tables and the RNG (splitmix64, one uint64), so a resumed run is
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, Seed
from equilibria.games.core import Game, Policy
from equilibria.solvers import kernels
from equilibria.solvers import mccfr_kernels as mk
from equilibria.solvers.base import Solver, register_solver
from equilibria.solvers.lazy_tree import InfosetPolicy, LazyTree

CHUNK = 1 << 16  # traversals per kernel call: Ctrl-C is seen between calls
FRONTIER_BATCH = 1 << 14  # nodes expanded per round; each round reruns the traversal's walk


class MCCFRConfig(Config):
    """Monte Carlo CFR (Lanctot et al. 2009) on a tree expanded where sampling goes."""

    sampling: Literal["external", "outcome"] = "external"
    """external: explore every action of the updating player, sample chance and the others; outcome: sample one trajectory per player"""
    seed: Seed = 0
    """seeds the sampling"""
    epsilon: Annotated[float, Field(gt=0, le=1)] = 0.6
    """outcome sampling: exploration at the updating player's nodes (OpenSpiel's default)"""
    max_nodes: Annotated[int, Field(ge=16, le=2**31 - 1)] = 10_000_000
    """tree nodes kept in memory (about 50 bytes each); when full, the tree is cut back to its first half and re-expanded where visited (results unchanged, only time)"""


_DOC = "(Lanctot et al. 2009) on a lazily expanded tree, any finite game"


@register_solver("mccfr", MCCFRConfig, kind="sampled", description="Monte Carlo CFR " + _DOC)
@register_solver("mccfr-external", MCCFRConfig, kind="sampled", sampling="external",
                 description="external-sampling MCCFR " + _DOC + ": sample chance and opponents")
@register_solver("mccfr-outcome", MCCFRConfig, kind="sampled", sampling="outcome",
                 description="outcome-sampling MCCFR " + _DOC + ": sample one trajectory, epsilon-explore")
class MCCFRSolver(Solver):
    """`fixed` (not a config: policies are objects) maps players who do not learn to the policy
    they play; the others learn against it (solvers.sampled_eval's best response uses this)."""

    def __init__(self, game: Game, config: MCCFRConfig, fixed: Mapping[int, Policy] | None = None):
        super().__init__(game, config)
        fixed = dict(fixed or {})
        n = game.num_players
        if any(not 0 <= p < n for p in fixed):
            raise ValueError(f"fixed players must lie in [0, {n}), got {sorted(fixed)}")
        self.learning = np.array([p not in fixed for p in range(n)], dtype=np.bool_)
        self.players = np.flatnonzero(self.learning).astype(np.int64)
        if len(self.players) == 0:
            raise ValueError("every player is fixed: there is nobody to learn")
        self.tree = LazyTree(game, config.max_nodes, fixed=fixed)
        seed_mix = np.random.SeedSequence(config.seed).generate_state(1, dtype=np.uint64)
        self.rng_state = np.asarray(seed_mix, dtype=np.uint64)
        self._info = np.zeros(2, dtype=np.int64)
        self._frontier = np.zeros(FRONTIER_BATCH, dtype=np.int64)
        self._strategy = np.zeros(0)
        self._none = np.zeros(1)
        self._positions = 0
        self._depth = 0
        self._scratch_version = 0
        self._args_version = (-1, -1)
        self._grow_scratch()
        self._cut_without_progress = False

    # ------------------------------------------------------------------ iterations
    def step(self) -> None:
        self._iterate(1)

    def run(self, iterations: int) -> MCCFRSolver:
        """`iterations` iterations in as few kernel calls as the tree's growth allows."""
        self._iterate(iterations)
        return self

    def _iterate(self, iterations: int) -> None:
        per = len(self.players)
        start, total, done = self.iteration, iterations * per, 0
        while done < total:
            n = self._kernel(done % per, min(total - done, CHUNK))
            done += n
            self.iteration = start + done // per
            if n:
                self._cut_without_progress = False
            status = int(self._info[0])
            if status == mk.FRONTIER:
                if not self.tree.expand(self._frontier[:int(self._info[1])]):
                    if self._cut_without_progress:
                        raise ValueError(f"one sampled traversal needs more than about half of max_nodes="
                                         f"{self.config.max_nodes:,} tree nodes; raise max_nodes "
                                         "(or use sampling: outcome)")
                    self._cut_without_progress = True
            elif status == mk.SCRATCH:
                self._grow_scratch()

    def _kernel(self, first: int, count: int) -> int:
        t = self.tree
        if self.config.sampling == "outcome" and self._os[2].shape[1] < t.max_width:
            self._os[2] = np.zeros((self._depth, t.max_width))
            self._scratch_version += 1
        if self._args_version != (t.version, self._scratch_version):  # arrays were replaced: rebuild the lists
            if len(self._strategy) < len(t.slots["regret"]):
                self._strategy = np.zeros(len(t.slots["regret"]))
            tree_args = (t.node_player, t.child_start, t.num_children, t.node_infoset, t.chance_prob, t.utility,
                         t.infoset_offset, t.slots["regret"], t.slots["cum_policy"], self.learning,
                         t.slots.get("fixed", self._none), self.players)
            if self.config.sampling == "external":
                self._tail = (self.rng_state, *self._es, self._strategy, self._frontier, self._info)
            else:
                self._tail = (self.config.epsilon, self.rng_state, *self._os, self._frontier, self._info)
            self._head = tree_args
            self._args_version = (t.version, self._scratch_version)
        if self.config.sampling == "external":
            return mk.external_sampling(*self._head, first, count, *self._tail)
        return mk.outcome_sampling(*self._head, first, count, *self._tail)

    def _grow_scratch(self) -> None:
        """Scratch sized by the sampled subtree (external) or the trajectory (outcome); doubled on demand."""
        self._scratch_version += 1
        if self.config.sampling == "external":
            self._positions = max(4096, 2 * self._positions)
            p = self._positions
            self._es = [np.zeros(p, dtype=np.int64), np.zeros(p, dtype=np.int64), np.zeros(p, dtype=np.int64),
                        np.zeros(p), np.zeros(p, dtype=np.int64), np.zeros(p),
                        np.zeros(p, dtype=np.int64), np.zeros(p, dtype=np.int64), np.zeros(p, dtype=np.int64),
                        np.zeros(p, dtype=np.uint64)]
        else:
            self._depth = max(64, 2 * self._depth)
            d = self._depth
            self._os = [np.zeros(d, dtype=np.int64), np.zeros(d, dtype=np.int64),
                        np.zeros((d, self.tree.max_width)), np.zeros(d), np.zeros(d), np.zeros(d)]

    # ------------------------------------------------------------------ policies
    def _with_fixed(self, probs: np.ndarray) -> np.ndarray:
        """Players who do not learn play their fixed policy in every returned policy."""
        t = self.tree
        if "fixed" in t.slots:
            owner = np.repeat(t.infoset_player[:t.num_infosets], t.infoset_num_actions[:t.num_infosets])
            mask = ~self.learning[owner]
            probs[mask] = t.slots["fixed"][:t.num_slots][mask]
        return probs

    def average_policy(self) -> InfosetPolicy:
        t = self.tree
        out = np.empty(t.num_slots)
        kernels.normalize_per_infoset(t.slots["cum_policy"], t.infoset_offset[:t.num_infosets],
                                      t.infoset_num_actions[:t.num_infosets], out)
        return InfosetPolicy(t, self._with_fixed(out))

    def current_policy(self) -> InfosetPolicy:
        t = self.tree
        out = np.empty(t.num_slots)
        kernels.regret_matching(t.slots["regret"], t.infoset_offset[:t.num_infosets],
                                t.infoset_num_actions[:t.num_infosets], out)
        return InfosetPolicy(t, self._with_fixed(out))

    def greedy_policy(self) -> InfosetPolicy:
        """The first action of largest cumulative regret at each infoset, i.e. the best sampled
        counterfactual value summed over iterations (a best response once the others are fixed)."""
        t = self.tree
        s, i = t.num_slots, t.num_infosets
        out = np.zeros(s)
        if i:
            regret = t.slots["regret"][:s]
            owner = np.repeat(np.arange(i), t.infoset_num_actions[:i])
            best = np.maximum.reduceat(regret, t.infoset_offset[:i])
            at_max = np.flatnonzero(regret == best[owner])
            _, first = np.unique(owner[at_max], return_index=True)
            out[at_max[first]] = 1.0
        return InfosetPolicy(t, self._with_fixed(out))

    # ------------------------------------------------------------------ checkpoints
    def _arrays(self) -> dict[str, np.ndarray]:
        t = self.tree
        return {"regret": t.slots["regret"][:t.num_slots], "cum_policy": t.slots["cum_policy"][:t.num_slots],
                "rng_state": self.rng_state}

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.tree.state_dict()
        out.update(rng_state=self.rng_state.copy(), iteration=self.iteration, solver=self.name)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if str(state.get("solver", self.name)) != self.name:
            raise ValueError(f"checkpoint is for solver {state.get('solver')!r}, not {self.name!r}")
        if "rng_state" not in state or "iteration" not in state:
            raise ValueError(f"checkpoint lacks 'rng_state' or 'iteration' for solver {self.name!r}")
        rng = np.asarray(state["rng_state"])
        if rng.shape != (1,):
            raise ValueError(f"checkpoint array 'rng_state' has shape {rng.shape}, expected (1,)")
        self.tree.load_state_dict(state)
        self.rng_state[...] = rng.astype(np.uint64)
        self.iteration = int(state["iteration"])
        self._cut_without_progress = False
