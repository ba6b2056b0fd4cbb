"""A game tree compiled on first visit: the part of a game that sampling has reached, as
growing flat arrays that numba kernels sweep (solvers.mccfr_kernels).

The layout is the compiled tree's (games.tree): node_player, child_start / num_children with
children contiguous, node_infoset, chance_prob, utility, and per infoset a range of
legal-action slots. The difference is that a node starts UNKNOWN and is expanded (its state
looked at, its children allocated UNKNOWN) only when a traversal reaches it, so games far
beyond `compile_tree`'s limit run at array speed wherever sampling goes often.

- Infosets get ids on first visit, keyed per player by the information-state key (a string,
  or the repr of a non-string key); ids and slots are never moved, so per-slot tables
  (regrets, average-policy mass) only grow. `slots` holds those tables; the tree grows them.
- The nodes are a cache: at `max_nodes` the tree is cut back to a prefix (the root and what was
  expanded first) and the rest is expanded again when visited. Results do not depend on it.
- States are rebuilt by replaying actions from the nearest cached ancestor; a bounded cache
  keeps the states of recently expanded nodes, whose children are expanded next.
- Simultaneous nodes are sequentialised as in compile_tree: one node per player, each with
  the information-state key of the unchanged state, so later movers do not see earlier choices.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, TERMINAL, Game, Policy, State
from equilibria.solvers.mccfr_kernels import UNKNOWN

STATE_CACHE = 1 << 16  # states kept for expanding children (a replay rebuilds any other)
# node arrays: dtype and the value of a row not in use (rows past num_nodes always hold it, so a
# new block of children needs only its parent, actions and chance probabilities written)
_NODE_FIELDS = {"node_player": (np.int8, UNKNOWN), "parent": (np.int32, -1), "node_action": (np.int64, 0),
                "child_start": (np.int32, -1), "num_children": (np.int32, 0), "node_infoset": (np.int32, -1),
                "chance_prob": (np.float64, 1.0), "node_sim": (np.bool_, False)}


def canonical_key(key: Hashable) -> str:
    """Information-state keys as strings (so tables can be checkpointed as plain arrays)."""
    return key if isinstance(key, str) else repr(key)


def _grown(arr: np.ndarray, size: int, fill: Any = 0) -> np.ndarray:
    """`arr` with room for at least `size` rows (doubling), new rows set to `fill`."""
    if len(arr) >= size:
        return arr
    cap = max(size, 2 * len(arr), 16)
    out = np.full((cap, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[:len(arr)] = arr
    return out


class LazyTree:
    """The visited part of `game`'s tree. `slot_tables` names the per-slot float tables to keep
    (zero-initialised); `fixed` maps players who do not learn to the policy they play, written
    into the 'fixed' table when each of their infosets is first seen."""

    def __init__(self, game: Game, max_nodes: int, slot_tables: tuple[str, ...] = ("regret", "cum_policy"),
                 fixed: Mapping[int, Policy] | None = None):
        if max_nodes < 2:
            raise ValueError(f"max_nodes must be at least 2, got {max_nodes}")
        self.game = game
        self.num_players = game.num_players
        self.max_nodes = max_nodes
        self.ops = state_ops(game)
        self.fixed = dict(fixed or {})
        self.slot_names = (*slot_tables, "fixed") if self.fixed else tuple(slot_tables)
        self.cuts = 0  # times the node cache was cut back
        self.version = 0  # changes whenever an array is replaced (kernels' argument lists are cached)
        self._reset_nodes()
        self._reset_infosets()

    # ------------------------------------------------------------------ storage
    def _reset_nodes(self, capacity: int = 1024) -> None:
        cap = min(capacity, self.max_nodes)
        for name, (dtype, fill) in _NODE_FIELDS.items():
            setattr(self, name, np.full(cap, fill, dtype=dtype))
        self.utility = np.zeros((cap, self.num_players))
        self.num_nodes = 1  # the root, UNKNOWN
        self.max_width = 1
        self._states: dict[int, tuple[Any, tuple]] = {}
        self.version += 1

    def _reset_infosets(self) -> None:
        self.index: list[dict[str, int]] = [{} for _ in range(self.num_players)]
        self.keys: list[str] = []
        self.infoset_player = np.zeros(256, dtype=np.int32)
        self.infoset_offset = np.zeros(256, dtype=np.int64)
        self.infoset_num_actions = np.zeros(256, dtype=np.int32)
        self.slot_action = np.zeros(1024, dtype=np.int64)
        self.slots = {name: np.zeros(1024) for name in self.slot_names}
        self.num_infosets = 0
        self.num_slots = 0

    def _reserve_nodes(self, size: int) -> None:
        if size <= len(self.node_player):
            return
        cap = min(max(size, 2 * len(self.node_player)), self.max_nodes)
        for name, (_, fill) in _NODE_FIELDS.items():
            setattr(self, name, _grown(getattr(self, name), cap, fill))
        self.utility = _grown(self.utility, cap)
        self.version += 1

    def _new_infoset(self, player: int, key: str, actions: list[int], state: State) -> int:
        i, k = self.num_infosets, len(actions)
        off = self.num_slots
        if i >= len(self.infoset_player) or off + k > len(self.slot_action):
            self.infoset_player = _grown(self.infoset_player, i + 1)
            self.infoset_offset = _grown(self.infoset_offset, i + 1)
            self.infoset_num_actions = _grown(self.infoset_num_actions, i + 1)
            self.slot_action = _grown(self.slot_action, off + k)
            for name in self.slot_names:
                self.slots[name] = _grown(self.slots[name], off + k)
            self.version += 1
        self.infoset_player[i], self.infoset_offset[i], self.infoset_num_actions[i] = player, off, k
        self.slot_action[off:off + k] = actions
        if player in self.fixed:
            self.slots["fixed"][off:off + k] = _policy_row(self.fixed[player], self.ops.public(state), player,
                                                           actions, key)
        self.index[player][key] = i
        self.keys.append(key)
        self.num_infosets += 1
        self.num_slots += k
        return i

    # ------------------------------------------------------------------ states
    def _state(self, n: int) -> tuple[Any, tuple]:
        """The state at node n and the partial joint action of a sequentialised simultaneous move,
        replayed from the nearest cached ancestor (the states rebuilt on the way are cached: their
        other children are usually expanded next)."""
        states = self._states
        p = int(self.parent[n])
        entry = states.get(p)
        if entry is not None:  # the usual case: the parent was expanded recently
            return self.ops.child(*entry, int(self.node_action[n]), bool(self.node_sim[p]))
        path = [n]
        m = p
        while m > 0 and m not in states:
            path.append(m)
            m = int(self.parent[m])
        entry = states[m] if m in states else (self.ops.root(), ())
        if m < 0:  # n is the root
            return entry
        for c in reversed(path):
            entry = self.ops.child(*entry, int(self.node_action[c]), bool(self.node_sim[int(self.parent[c])]))
            if c != n:
                self._cache(c, entry)
        return entry

    def _cache(self, n: int, entry: tuple[Any, tuple]) -> None:
        states = self._states
        states[n] = entry
        if len(states) > STATE_CACHE:  # keep the newer half: their children are expanded next
            self._states = dict(itertools.islice(states.items(), len(states) // 2, None))

    # ------------------------------------------------------------------ expansion
    def expand(self, nodes: np.ndarray) -> bool:
        """Expand UNKNOWN `nodes`. Returns False if the tree had to be cut back to stay within
        max_nodes (some of `nodes` may then be gone; the caller's rerun finds them again)."""
        base = self.num_nodes
        new_parent: list[int] = []
        new_action: list[int] = []
        new_prob: list[float] = []
        rows: list[tuple[int, int, int, int, int, bool]] = []  # node, player, infoset, child_start, k, simultaneous
        terminal: list[tuple[int, Any]] = []
        describe, node_player = self.ops.describe, self.node_player
        full = False
        for n in nodes.tolist():
            if node_player[n] != UNKNOWN:
                continue
            entry = self._state(n)
            player, actions, probs, key, sim = describe(*entry)
            if player == TERMINAL:
                rows.append((n, TERMINAL, -1, -1, 0, False))
                terminal.append((n, actions))  # describe gives the returns in place of actions
                continue
            k = len(actions)
            if not k:
                raise ValueError(f"player {player} has no legal actions at a non-terminal node "
                                 f"(history {entry[0].history()})")
            iid = -1
            if player != CHANCE:
                iid = self.index[player].get(key, -1)
                if iid < 0:
                    iid = self._new_infoset(player, key, actions, entry[0])
                else:
                    self._check_actions(iid, player, key, actions)
            start = base + len(new_parent)
            if start + k > self.max_nodes:
                full = True
                break
            rows.append((n, player, iid, start, k, sim))
            new_parent += [n] * k
            new_action += actions
            new_prob += probs if probs is not None else [1.0] * k
            if k > self.max_width:
                self.max_width = k
            self._cache(n, entry)
        self._write(base, new_parent, new_action, new_prob, rows, terminal)
        if full:
            self.cut()
            return False
        return True

    def _check_actions(self, i: int, player: int, key: str, actions: list[int]) -> None:
        off, k = int(self.infoset_offset[i]), int(self.infoset_num_actions[i])
        if k != len(actions) or self.slot_action[off:off + k].tolist() != actions:
            raise ValueError(f"information state {key!r} of player {player} has different legal actions at "
                             f"different histories ({self.slot_action[off:off + k].tolist()} vs {actions})")

    def _write(self, base: int, new_parent: list[int], new_action: list[int], new_prob: list[float],
               rows: list[tuple[int, int, int, int, int, bool]], terminal: list[tuple[int, Any]]) -> None:
        """Write one batch of expansions (new rows already hold the defaults)."""
        end = base + len(new_parent)
        self._reserve_nodes(end)
        if end > base:
            self.parent[base:end] = new_parent
            self.node_action[base:end] = new_action
            self.chance_prob[base:end] = new_prob
        if len(rows) == 1:  # outcome sampling expands one node at a time: numpy per batch costs more
            n, player, iid, start, k, sim = rows[0]
            self.node_player[n], self.node_infoset[n], self.child_start[n] = player, iid, start
            self.num_children[n], self.node_sim[n] = k, sim
        elif rows:
            n, player, iid, start, k, sim = (np.asarray(c) for c in zip(*rows))
            self.node_player[n] = player
            self.node_infoset[n] = iid
            self.child_start[n] = start
            self.num_children[n] = k
            self.node_sim[n] = sim
        for n, returns in terminal:
            self.utility[n] = returns
        self.num_nodes = end

    def cut(self) -> None:
        """Cut the node cache back to its first half (at a boundary between child blocks); kept
        nodes whose children are dropped become UNKNOWN again. Infosets are not touched."""
        self.cuts += 1
        n = self.num_nodes
        starts = self.child_start[:n]
        starts = starts[(starts > 0) & (starts <= self.max_nodes // 2)]
        keep = int(starts.max()) if len(starts) else 1
        dropped = np.flatnonzero(self.child_start[:keep] >= keep)
        for name, (_, fill) in _NODE_FIELDS.items():
            arr = getattr(self, name)
            if name not in ("parent", "node_action", "chance_prob"):  # kept nodes keep their place
                arr[dropped] = fill
            arr[keep:n] = fill
        self.utility[keep:n] = 0.0
        self.num_nodes = keep
        self._states = {m: s for m, s in self._states.items() if m < keep}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays: the nodes, the infoset table (keys as one UTF-8 blob with offsets), the slot tables."""
        n, i, s = self.num_nodes, self.num_infosets, self.num_slots
        out = {f"tree_{name}": getattr(self, name)[:n].copy() for name in _NODE_FIELDS}
        out["tree_utility"] = self.utility[:n].copy()
        encoded = [k.encode() for k in self.keys]
        out["tree_key_bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        out["tree_key_ends"] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        out["tree_infoset_player"] = self.infoset_player[:i].copy()
        out["tree_infoset_num_actions"] = self.infoset_num_actions[:i].copy()
        out["tree_slot_action"] = self.slot_action[:s].copy()
        for name in self.slot_names:
            out[f"tree_slot_{name}"] = self.slots[name][:s].copy()
        out["tree_cuts"] = np.int64(self.cuts)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = [k for k in ("tree_node_player", "tree_key_bytes", "tree_slot_action") if k not in state]
        if missing:
            raise ValueError(f"checkpoint lacks the lazy tree's arrays {missing}")
        n = len(state["tree_node_player"])
        if not 1 <= n <= self.max_nodes:
            raise ValueError(f"checkpoint holds {n} tree nodes; this solver keeps at most {self.max_nodes}")
        self._reset_nodes(capacity=n)
        for name, (dtype, _) in _NODE_FIELDS.items():
            getattr(self, name)[:n] = np.asarray(state[f"tree_{name}"], dtype=dtype)
        self.utility[:n] = np.asarray(state["tree_utility"], dtype=np.float64).reshape(n, self.num_players)
        self.num_nodes = n
        self.max_width = int(max(1, self.num_children[:n].max()))
        self._reset_infosets()
        blob = np.asarray(state["tree_key_bytes"], dtype=np.uint8).tobytes()
        ends = np.asarray(state["tree_key_ends"], dtype=np.int64).tolist()
        players = np.asarray(state["tree_infoset_player"]).tolist()
        counts = np.asarray(state["tree_infoset_num_actions"], dtype=np.int64)
        actions = np.asarray(state["tree_slot_action"], dtype=np.int64)
        if len(ends) != len(players) or len(counts) != len(players) or counts.sum() != len(actions):
            raise ValueError("checkpoint's infoset table is inconsistent (keys, players and slots differ in length)")
        i, s = len(players), len(actions)
        self.infoset_player = _grown(self.infoset_player, i)
        self.infoset_offset = _grown(self.infoset_offset, i)
        self.infoset_num_actions = _grown(self.infoset_num_actions, i)
        self.slot_action = _grown(self.slot_action, s)
        self.infoset_player[:i] = players
        self.infoset_num_actions[:i] = counts
        self.infoset_offset[:i] = np.concatenate([[0], np.cumsum(counts)[:-1]]) if i else []
        self.slot_action[:s] = actions
        start = 0
        for j, (p, end) in enumerate(zip(players, ends)):
            key = blob[start:end].decode()
            self.index[p][key] = j
            self.keys.append(key)
            start = end
        for name in self.slot_names:
            table = np.asarray(state[f"tree_slot_{name}"], dtype=np.float64)
            if table.shape != (s,):
                raise ValueError(f"checkpoint table {name!r} has shape {table.shape}, expected ({s},)")
            self.slots[name] = _grown(self.slots[name], s)
            self.slots[name][:s] = table
        self.num_infosets, self.num_slots = i, s
        self.cuts = int(state.get("tree_cuts", 0))
        self.version += 1

    def nbytes(self) -> int:
        """Bytes held in arrays (nodes, infoset table, slot tables), capacity included."""
        arrays = [getattr(self, name) for name in _NODE_FIELDS] + [self.utility, self.infoset_player,
                                                                    self.infoset_offset, self.infoset_num_actions,
                                                                    self.slot_action, *self.slots.values()]
        return sum(a.nbytes for a in arrays)


class GameStates:
    """How the tree looks at states: through the Game / State contract."""

    def __init__(self, game: Game):
        self.game = game
        self.num_players = game.num_players

    def root(self) -> Any:
        return self.game.new_initial_state()

    def child(self, state: Any, joint: tuple, action: int, simultaneous: bool) -> tuple[Any, tuple]:
        """The (state, partial joint action) after `action`; cached states are never modified."""
        if not simultaneous:
            return state.child(action), ()
        joint = (*joint, action)
        if len(joint) < self.num_players:
            return state, joint
        nxt = state.clone()
        nxt.apply_actions(list(joint))
        return nxt, ()

    def describe(self, state: Any, joint: tuple) -> tuple[int, Any, list[float] | None, str | None, bool]:
        """(player, actions, chance probabilities, key, simultaneous); at a terminal state
        (TERMINAL, returns, None, None, False)."""
        if state.is_terminal():
            return TERMINAL, state.returns(), None, None, False
        cur = state.current_player()
        if cur == CHANCE:
            outcomes = state.chance_outcomes()
            return CHANCE, [int(a) for a, _ in outcomes], [float(p) for _, p in outcomes], None, False
        sim = cur == SIMULTANEOUS
        player = len(joint) if sim else cur
        actions = [int(a) for a in state.legal_actions(player)]
        return player, actions, None, canonical_key(state.information_state_key(player)), sim

    def public(self, state: Any) -> State:
        """The State that policies see."""
        return state


class OpenSpielStates(GameStates):
    """The same on raw pyspiel states (whose child / clone / apply_actions GameStates.child
    uses as they are): the adapter's wrappers cost more than pyspiel itself
    per node, and expansion is the per-node cost of games that do not repeat. Keys come from
    the adapter (OpenSpielGame.information_state_key), so policies find them through it."""

    def root(self) -> Any:
        return self.game.os_game.new_initial_state()

    def describe(self, state: Any, joint: tuple) -> tuple[int, Any, list[float] | None, str | None, bool]:
        if state.is_terminal():
            return TERMINAL, state.returns(), None, None, False
        cur = state.current_player()
        if cur == CHANCE:
            outcomes = state.chance_outcomes()
            return CHANCE, [a for a, _ in outcomes], [p for _, p in outcomes], None, False
        if cur == SIMULTANEOUS:
            return len(joint), state.legal_actions(len(joint)), None, \
                self.game.information_state_key(state, len(joint)), True
        return cur, state.legal_actions(), None, self.game.information_state_key(state, cur), False

    def public(self, state: Any) -> State:
        from equilibria.games.adapters.openspiel import OpenSpielState

        return OpenSpielState(self.game, state)


def state_ops(game: Game) -> GameStates:
    from equilibria.games.adapters.openspiel import OpenSpielGame

    return OpenSpielStates(game) if isinstance(game, OpenSpielGame) else GameStates(game)


def _policy_row(policy: Policy, state: State, player: int, actions: list[int], key: str) -> np.ndarray:
    probs = policy.action_probabilities(state, player)
    row = np.array([probs.get(a, 0.0) for a in actions], dtype=np.float64)
    if not row.sum() > 0:
        raise ValueError(f"the fixed policy of player {player} gives no probability to any legal action at {key!r}")
    return row / row.sum()


class InfosetPolicy:
    """A policy over a LazyTree's infosets (a snapshot of per-slot probabilities); uniform over the
    legal actions at information states the tree has not seen."""

    def __init__(self, tree: LazyTree, probs: np.ndarray):
        self.tree = tree
        self.num_infosets = tree.num_infosets
        self.index = tree.index  # append-only: ids at or above num_infosets are unknown to this snapshot
        self.offset = tree.infoset_offset[:self.num_infosets].copy()
        self.num_actions = tree.infoset_num_actions[:self.num_infosets].copy()
        self.slot_action = tree.slot_action[:tree.num_slots].copy()
        self.probs = probs

    def _id(self, player: int, key: Hashable) -> int:
        i = self.index[player].get(canonical_key(key), -1) if 0 <= player < len(self.index) else -1
        return i if i < self.num_infosets else -1

    def action_probabilities(self, state: State, player: int | None = None) -> dict[Any, float]:
        player = state.current_player() if player is None else player
        i = self._id(player, state.information_state_key(player))
        if i < 0:
            actions = state.legal_actions(player)
            return {a: 1.0 / len(actions) for a in actions} if actions else {}
        off, k = int(self.offset[i]), int(self.num_actions[i])
        return {int(self.slot_action[off + j]): float(self.probs[off + j]) for j in range(k)}

    def tree_array(self, tree: Any) -> np.ndarray:
        """This policy as flat slot probabilities of a compiled tree (games.tree.CompiledTree),
        matched by information-state key: no states are rebuilt."""
        out = tree.uniform_policy()
        for i, key in enumerate(tree.infoset_keys):
            j = self._id(int(tree.infoset_player[i]), key)
            if j < 0:
                continue
            off, k = int(tree.infoset_offset[i]), int(tree.infoset_num_actions[i])
            mine, mk = int(self.offset[j]), int(self.num_actions[j])
            if mk == k and np.array_equal(self.slot_action[mine:mine + k], tree.slot_action[off:off + k]):
                out[off:off + k] = self.probs[mine:mine + k]
            else:
                raise ValueError(f"information state {key!r} has different legal actions in the two trees")
        return out

    def table(self) -> dict[str, dict[int, float]]:
        return {key: {int(self.slot_action[self.offset[i] + j]): float(self.probs[self.offset[i] + j])
                      for j in range(int(self.num_actions[i]))}
                for i, key in enumerate(self.tree.keys[:self.num_infosets])}

    def to_openspiel(self) -> Any:
        """This policy as an OpenSpiel TabularPolicy (for games with an OpenSpiel equivalent)."""
        from equilibria.games.adapters.openspiel import to_openspiel_policy

        return to_openspiel_policy(self.tree.game, self)
