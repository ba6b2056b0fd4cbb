"""Compile a finite game into flat numpy arrays, once.

`compile_tree(game)` walks every history breadth-first and records it as array rows, so
CFR, best responses and exploitability run as array passes instead of Python recursion.
Simultaneous nodes are sequentialised (player 0 picks, then player 1 without seeing it,
...), which is exactly OpenSpiel's `turn_based_simultaneous_game` view.

Layout (N = num_nodes, I = num_infosets, S = total legal-action slots over infosets):
- node_player[N]: acting player, CHANCE or TERMINAL
- parent[N], node_action[N] (the action or chance outcome that led here), depth[N]
- child_start[N], num_children[N]: children are contiguous (BFS order, so depth-sorted)
- node_infoset[N]: infoset id of a decision node, -1 otherwise
- chance_prob[N]: probability of this node given its parent when the parent is chance, else 1
- utility[N, P]: returns at terminal nodes (0 elsewhere)
- infoset_player[I], infoset_num_actions[I], infoset_offset[I]: slot range of each infoset
- slot_action[S], slot_infoset[S]: the action id and owner of each slot
- infoset_parent_slot[I]: the player's previous (infoset, action) slot, -1 at the root (sequence form)
- infoset_keys[I]: information-state keys; infoset_index maps (player, key) -> id
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from equilibria.common.limits import check_memory
from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, Policy, State


@dataclass(eq=False)  # identity equality and hash: trees key weak caches (solvers.exploitability)
class CompiledTree:
    game: Game
    num_players: int
    node_player: np.ndarray
    parent: np.ndarray
    node_action: np.ndarray
    depth: np.ndarray
    child_start: np.ndarray
    num_children: np.ndarray
    node_infoset: np.ndarray
    chance_prob: np.ndarray
    utility: np.ndarray
    infoset_player: np.ndarray
    infoset_num_actions: np.ndarray
    infoset_offset: np.ndarray
    slot_action: np.ndarray
    slot_infoset: np.ndarray
    infoset_parent_slot: np.ndarray
    infoset_keys: list[Hashable]
    infoset_index: dict[tuple[int, Hashable], int] = field(repr=False)
    # simultaneous nodes are split into one node per player; this marks the nodes that
    # carry a partial joint action (the state has not moved yet)
    pending: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def num_nodes(self) -> int:
        return len(self.node_player)

    @property
    def num_infosets(self) -> int:
        return len(self.infoset_player)

    @property
    def num_slots(self) -> int:
        return len(self.slot_action)

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    def uniform_policy(self) -> np.ndarray:
        """Flat slot array of the uniform policy."""
        return 1.0 / self.infoset_num_actions[self.slot_infoset]

    def policy_to_array(self, policy: Policy) -> np.ndarray:
        """Evaluate any Policy at one representative state of each infoset -> flat slot probabilities."""
        out = np.zeros(self.num_slots)
        first_node = np.full(self.num_infosets, -1, dtype=np.int64)
        dec = np.flatnonzero(self.node_infoset >= 0)
        # first occurrence of each infoset in BFS order
        _, idx = np.unique(self.node_infoset[dec], return_index=True)
        first_node[self.node_infoset[dec[idx]]] = dec[idx]
        for i in range(self.num_infosets):
            state = self.state_at(int(first_node[i]))
            player = int(self.infoset_player[i])
            probs = policy.action_probabilities(state, player)
            off, k = self.infoset_offset[i], self.infoset_num_actions[i]
            for j in range(k):
                out[off + j] = probs.get(int(self.slot_action[off + j]), 0.0)
            total = out[off:off + k].sum()
            if total <= 0:
                raise ValueError(f"policy gives no probability to any legal action at {self.infoset_keys[i]!r}")
            out[off:off + k] /= total
        return out

    def array_to_table(self, probs: np.ndarray) -> dict[Hashable, dict[int, float]]:
        """Flat slot probabilities -> {infoset key: {action: prob}} (for TabularPolicy)."""
        table: dict[Hashable, dict[int, float]] = {}
        for i, key in enumerate(self.infoset_keys):
            off, k = int(self.infoset_offset[i]), int(self.infoset_num_actions[i])
            table[key] = {int(self.slot_action[off + j]): float(probs[off + j]) for j in range(k)}
        return table

    def path(self, node: int) -> list[int]:
        out = []
        while node > 0:
            out.append(node)
            node = int(self.parent[node])
        return out[::-1]

    def state_at(self, node: int) -> State:
        """Rebuild the game state of `node` by replaying its path (a simultaneous move is
        applied once every player's part of it is on the path)."""
        state = self.game.new_initial_state()
        joint: list[int] = []
        for n in self.path(node):
            a = int(self.node_action[n])
            if self.node_player[self.parent[n]] >= 0 and state.current_player() == SIMULTANEOUS:
                joint.append(a)
                if len(joint) == self.num_players:
                    state.apply_actions(joint)
                    joint = []
            else:
                state.apply_action(a)
        return state


TREE_BYTES_PER_NODE = 600  # peak memory while compiling (measured: 560 on a 518,721-node Leduc variant)
MAX_TREE_NODES = 20_000_000


def estimate_histories(game: Game, probes: int = 256, seed: int = 0) -> float:
    """Knuth's estimator of the number of nodes of the sequentialised tree: the mean over
    random root-to-leaf walks of the sum, over depths, of the product of branching factors
    (unbiased; a handful of walks places a game within an order of magnitude)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(probes):
        state, width, count = game.new_initial_state(), 1.0, 1.0
        while not state.is_terminal():
            cur = state.current_player()
            if cur == CHANCE:
                outcomes = state.chance_outcomes()
                width *= len(outcomes)
                state.apply_action(outcomes[int(rng.integers(len(outcomes)))][0])
            elif cur == SIMULTANEOUS:
                joint = []
                for p in range(game.num_players):
                    legal = state.legal_actions(p)
                    width *= max(len(legal), 1)
                    count += width
                    joint.append(legal[int(rng.integers(len(legal)))] if legal else 0)
                state.apply_actions(joint)
                continue
            else:
                legal = state.legal_actions(cur)
                width *= len(legal)
                state.apply_action(legal[int(rng.integers(len(legal)))])
            count += width
        total += count
    return total / probes


def check_tree_size(game: Game, max_nodes: int = MAX_TREE_NODES) -> float:
    """The game's estimated number of histories (its own estimate, else sampled), refused at once
    with the estimate and the MCCFR hint when the compiled tree could not hold it."""
    est = getattr(game, "size_estimate", None)
    histories = est.histories if est is not None and est.histories is not None else estimate_histories(game)
    hint = "use a sampling solver (mccfr-external / mccfr-outcome) or a smaller variant"
    if histories > max_nodes:
        raise ValueError(f"compile_tree: {game!r} has about {histories:.3g} histories, more than the compiled tree's "
                         f"limit of {max_nodes:,}; {hint}")
    try:
        check_memory(f"compile_tree: {game!r} ({histories:.3g} histories)", histories * TREE_BYTES_PER_NODE)
    except ValueError as err:
        raise ValueError(f"{err}; {hint}") from None
    return histories


def compile_tree(game: Game, max_nodes: int = MAX_TREE_NODES) -> CompiledTree:
    """Traverse a finite game once (breadth-first) and return its CompiledTree.

    Raises ValueError for games that cannot be enumerated (text actions, sampled chance) or
    whose estimated size exceeds `max_nodes` or the machine's memory (use a sampling solver such
    as MCCFR there); the estimate is checked before walking."""
    info = game.info
    if not info.is_finite:
        raise ValueError(f"compile_tree: {info.name} is not finite (text actions or sampled chance); "
                         "it cannot be enumerated")
    check_tree_size(game, max_nodes)
    n_players = info.num_players
    node_player: list[int] = []
    parent: list[int] = []
    node_action: list[int] = []
    depth: list[int] = []
    node_infoset: list[int] = []
    chance_prob: list[float] = []
    num_children: list[int] = []
    pending: list[bool] = []
    utility_rows: dict[int, np.ndarray] = {}
    infoset_index: dict[tuple[int, Hashable], int] = {}
    infoset_keys: list[Hashable] = []
    infoset_player: list[int] = []
    infoset_actions: list[list[int]] = []
    infoset_parent_slot: list[int] = []
    slot_offsets: list[int] = []
    n_slots = 0

    # queue items: (state, partial joint action, parent id, action, prob, depth, last own slot per player)
    root = game.new_initial_state()
    queue: deque = deque([(root, (), -1, -1, 1.0, 0, (-1,) * n_players)])
    while queue:
        state, joint, par, act, prob, d, last_slot = queue.popleft()
        nid = len(node_player)
        if nid >= max_nodes:
            raise ValueError(f"compile_tree: {game!r} has more than {max_nodes} nodes; "
                             "use a sampling solver (mccfr-external / mccfr-outcome)")
        parent.append(par)
        node_action.append(act)
        depth.append(d)
        chance_prob.append(prob)
        pending.append(len(joint) > 0)
        cur = state.current_player()
        if cur == SIMULTANEOUS:
            cur = len(joint)  # the sequentialised mover
        if state.is_terminal():
            node_player.append(TERMINAL)
            node_infoset.append(-1)
            num_children.append(0)
            utility_rows[nid] = np.asarray(state.returns(), dtype=np.float64)
            continue
        if cur == CHANCE:
            outcomes = state.chance_outcomes()
            node_player.append(CHANCE)
            node_infoset.append(-1)
            num_children.append(len(outcomes))
            for a, p in outcomes:
                queue.append((state.child(a), (), nid, int(a), float(p), d + 1, last_slot))
            continue
        actions = [int(a) for a in state.legal_actions(cur)]
        if not actions:
            raise ValueError(f"compile_tree: player {cur} has no legal actions at a non-terminal node "
                             f"(history {state.history()})")
        key = state.information_state_key(cur)
        ikey = (cur, key)
        iid = infoset_index.get(ikey)
        if iid is None:
            iid = len(infoset_keys)
            infoset_index[ikey] = iid
            infoset_keys.append(key)
            infoset_player.append(cur)
            infoset_actions.append(actions)
            infoset_parent_slot.append(last_slot[cur])
            slot_offsets.append(n_slots)
            n_slots += len(actions)
        elif infoset_actions[iid] != actions:
            raise ValueError(f"compile_tree: information state {key!r} of player {cur} has different legal "
                             f"actions at different histories ({infoset_actions[iid]} vs {actions})")
        elif infoset_parent_slot[iid] != last_slot[cur]:
            raise ValueError(f"compile_tree: information state {key!r} of player {cur} is reached by different "
                             "own action sequences; the game does not have perfect recall")
        node_player.append(cur)
        node_infoset.append(iid)
        num_children.append(len(actions))
        simultaneous = state.current_player() == SIMULTANEOUS
        for j, a in enumerate(actions):
            slots = list(last_slot)
            slots[cur] = slot_offsets[iid] + j
            if simultaneous:
                new_joint = (*joint, a)
                if len(new_joint) == n_players:
                    child = state.clone()
                    child.apply_actions(list(new_joint))
                    queue.append((child, (), nid, a, 1.0, d + 1, tuple(slots)))
                else:
                    queue.append((state, new_joint, nid, a, 1.0, d + 1, tuple(slots)))
            else:
                queue.append((state.child(a), (), nid, a, 1.0, d + 1, tuple(slots)))

    n = len(node_player)
    num_children_a = np.asarray(num_children, dtype=np.int64)
    # BFS assigns children contiguous ids in parent order
    child_start = np.ones(n, dtype=np.int64) + np.concatenate([[0], np.cumsum(num_children_a)[:-1]])
    child_start[num_children_a == 0] = -1
    utility = np.zeros((n, n_players))
    for nid, row in utility_rows.items():
        utility[nid] = row
    counts = np.asarray([len(a) for a in infoset_actions], dtype=np.int64)
    slot_infoset = np.repeat(np.arange(len(infoset_actions), dtype=np.int64), counts)
    return CompiledTree(
        game=game, num_players=n_players,
        node_player=np.asarray(node_player, dtype=np.int64),
        parent=np.asarray(parent, dtype=np.int64),
        node_action=np.asarray(node_action, dtype=np.int64),
        depth=np.asarray(depth, dtype=np.int64),
        child_start=child_start, num_children=num_children_a,
        node_infoset=np.asarray(node_infoset, dtype=np.int64),
        chance_prob=np.asarray(chance_prob, dtype=np.float64),
        utility=utility,
        infoset_player=np.asarray(infoset_player, dtype=np.int64),
        infoset_num_actions=counts,
        infoset_offset=np.asarray(slot_offsets, dtype=np.int64),
        slot_action=np.asarray([a for acts in infoset_actions for a in acts], dtype=np.int64),
        slot_infoset=slot_infoset,
        infoset_parent_slot=np.asarray(infoset_parent_slot, dtype=np.int64),
        infoset_keys=infoset_keys, infoset_index=infoset_index,
        pending=np.asarray(pending, dtype=bool),
    )
