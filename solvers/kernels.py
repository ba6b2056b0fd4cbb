"""Compiled loops over the flat tree arrays of games.tree.CompiledTree.

Node ids are breadth-first, so a forward loop visits parents before children and a
backward loop visits children before parents: every pass here is one linear sweep, with
no recursion and no dictionaries. numba compiles each kernel once per machine (cache=True).
numba's cache records the module's import name, so it is keyed to this file's contents: a
change here (as when the package became `equilibria`) makes every process compile afresh.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CHANCE = -1
TERMINAL = -4


# ----------------------------------------------------------------------------- reach and value
@njit(cache=True)
def forward_reach(node_player, parent, child_start, node_infoset, chance_prob, infoset_offset, policy,
                  reach, creach):
    """reach[n, p]: product of p's own action probabilities on the path to n;
    creach[n]: product of chance probabilities on the path."""
    num_players = reach.shape[1]
    for q in range(num_players):
        reach[0, q] = 1.0
    creach[0] = 1.0
    for n in range(1, len(node_player)):
        par = parent[n]
        pp = node_player[par]
        for q in range(num_players):
            reach[n, q] = reach[par, q]
        creach[n] = creach[par]
        if pp >= 0:
            reach[n, pp] *= policy[infoset_offset[node_infoset[par]] + (n - child_start[par])]
        elif pp == CHANCE:
            creach[n] *= chance_prob[n]


@njit(cache=True)
def cfr_backward(node_player, child_start, num_children, node_infoset, chance_prob, utility, infoset_offset,
                 policy, reach, creach, values, update_player, regret, cum_policy, avg_weight):
    """Expected values of `policy` at every node (values[n, p]); at decision nodes of
    `update_player` (-1: every player, -2: nobody) add counterfactual regrets and reach-weighted
    policy mass (times avg_weight) -- the CFR update of Zinkevich et al. (2007)."""
    num_players = values.shape[1]
    for n in range(len(node_player) - 1, -1, -1):
        pl = node_player[n]
        if pl == TERMINAL:
            for q in range(num_players):
                values[n, q] = utility[n, q]
            continue
        start = child_start[n]
        k = num_children[n]
        for q in range(num_players):
            values[n, q] = 0.0
        if pl == CHANCE:
            for j in range(k):
                c = start + j
                for q in range(num_players):
                    values[n, q] += chance_prob[c] * values[c, q]
            continue
        off = infoset_offset[node_infoset[n]]
        for j in range(k):
            for q in range(num_players):
                values[n, q] += policy[off + j] * values[start + j, q]
    if update_player == -2:
        return
    # Updates in forward (breadth-first) order: within a depth level that is the depth-first
    # order in which OpenSpiel visits an infoset's histories, so sums round identically.
    for n in range(len(node_player)):
        pl = node_player[n]
        if pl < 0 or not (update_player == -1 or update_player == pl):
            continue
        start = child_start[n]
        off = infoset_offset[node_infoset[n]]
        cf = 1.0
        for q in range(num_players):
            if q != pl:
                cf *= reach[n, q]
        cf *= creach[n]
        own = reach[n, pl]
        for j in range(num_children[n]):
            regret[off + j] += cf * (values[start + j, pl] - values[n, pl])
            cum_policy[off + j] += avg_weight * own * policy[off + j]


@njit(cache=True)
def regret_matching(regret, infoset_offset, infoset_num_actions, out):
    """out = regret matching of `regret` per infoset; uniform where no regret is positive."""
    for i in range(len(infoset_offset)):
        off = infoset_offset[i]
        k = infoset_num_actions[i]
        total = 0.0
        for j in range(k):
            r = regret[off + j]
            if r > 0.0:
                total += r
        if total > 0.0:
            for j in range(k):
                r = regret[off + j]
                out[off + j] = r / total if r > 0.0 else 0.0
        else:
            for j in range(k):
                out[off + j] = 1.0 / k


@njit(cache=True)
def normalize_per_infoset(mass, infoset_offset, infoset_num_actions, out):
    """Average policy from accumulated mass; uniform where no mass was accumulated."""
    for i in range(len(infoset_offset)):
        off = infoset_offset[i]
        k = infoset_num_actions[i]
        total = 0.0
        for j in range(k):
            total += mass[off + j]
        for j in range(k):
            out[off + j] = mass[off + j] / total if total > 0.0 else 1.0 / k


# ----------------------------------------------------------------------------- best response
@njit(cache=True)
def br_levels(node_player, child_start, num_children, node_infoset, player, num_infosets):
    """Evaluation order for a best response of `player`: a node's level exceeds its children's,
    and all nodes of one of `player`'s infosets share a level (they are decided together)."""
    n_nodes = len(node_player)
    level = np.zeros(n_nodes, dtype=np.int64)
    inf_level = np.zeros(num_infosets, dtype=np.int64)
    changed = True
    while changed:
        changed = False
        for n in range(n_nodes - 1, -1, -1):
            k = num_children[n]
            if k == 0:
                continue
            m = 0
            for j in range(k):
                c = child_start[n] + j
                if level[c] > m:
                    m = level[c]
            m += 1
            if node_player[n] == player:
                i = node_infoset[n]
                if m > inf_level[i]:
                    inf_level[i] = m
                m = inf_level[i]
            if m != level[n]:
                level[n] = m
                changed = True
    return level


@njit(cache=True)
def best_response_values(node_player, parent, child_start, num_children, node_infoset, chance_prob, utility,
                         infoset_offset, policy, player, order, group_start, best_slot):
    """Value of `player`'s best response to everyone else's `policy`; fills best_slot[infoset]
    for the player's infosets. `order`/`group_start` list nodes level by level (br_levels)."""
    n_nodes = len(node_player)
    w = np.empty(n_nodes)  # reach of everyone but `player`, chance included
    w[0] = 1.0
    for n in range(1, n_nodes):
        par = parent[n]
        pp = node_player[par]
        w[n] = w[par]
        if pp == CHANCE:
            w[n] *= chance_prob[n]
        elif pp >= 0 and pp != player:
            w[n] *= policy[infoset_offset[node_infoset[par]] + (n - child_start[par])]
    values = np.zeros(n_nodes)
    q = np.zeros(len(policy))
    decided = np.zeros(len(infoset_offset), dtype=np.bool_)
    for g in range(len(group_start) - 1):
        lo = group_start[g]
        hi = group_start[g + 1]
        for t in range(lo, hi):
            n = order[t]
            pl = node_player[n]
            if pl == TERMINAL:
                values[n] = utility[n, player]
            elif pl == CHANCE:
                v = 0.0
                for j in range(num_children[n]):
                    c = child_start[n] + j
                    v += chance_prob[c] * values[c]
                values[n] = v
            elif pl != player:
                off = infoset_offset[node_infoset[n]]
                v = 0.0
                for j in range(num_children[n]):
                    v += policy[off + j] * values[child_start[n] + j]
                values[n] = v
            else:
                off = infoset_offset[node_infoset[n]]
                for j in range(num_children[n]):
                    q[off + j] += w[n] * values[child_start[n] + j]
        for t in range(lo, hi):
            n = order[t]
            if node_player[n] == player:
                i = node_infoset[n]
                if not decided[i]:
                    off = infoset_offset[i]
                    best = 0
                    for j in range(1, num_children[n]):
                        if q[off + j] > q[off + best]:
                            best = j
                    best_slot[i] = off + best
                    decided[i] = True
                values[n] = values[child_start[n] + best_slot[i] - infoset_offset[i]]
    return values[0]


# ----------------------------------------------------------------------------- sequence form (MMD)
@njit(cache=True)
def last_own_slots(node_player, parent, child_start, node_infoset, infoset_offset, num_players):
    """last[n, p]: the slot of p's most recent action on the path to n (-1: none yet)."""
    n_nodes = len(node_player)
    last = np.full((n_nodes, num_players), -1, dtype=np.int64)
    for n in range(1, n_nodes):
        par = parent[n]
        for q in range(num_players):
            last[n, q] = last[par, q]
        pp = node_player[par]
        if pp >= 0:
            last[n, pp] = infoset_offset[node_infoset[par]] + (n - child_start[par])
    return last


@njit(cache=True)
def dilated_entropy_step(policy, grad, log_magnet, use_magnet, eta, alpha, infoset_offset, infoset_num_actions,
                         infoset_parent_slot, infoset_player, player, out):
    """One magnetic-mirror-descent step for `player` with the dilated entropy, in closed form
    (Sokota et al. 2023; Kroer et al. 2020): bottom-up over the player's infosets,
        s_a = eta grad(I,a) [+ eta alpha log magnet(a|I)] + log pi(a|I) + sum_J V_J,
        pi'(.|I) = softmax(s / k),  V_I = k logsumexp(s / k),  k = 1 + eta alpha,
    where J ranges over the infosets that follow action a at I."""
    k_temp = 1.0 + eta * alpha
    child_value = np.zeros(len(policy))
    for i in range(len(infoset_offset) - 1, -1, -1):  # children are discovered after parents
        if infoset_player[i] != player:
            continue
        off = infoset_offset[i]
        k = infoset_num_actions[i]
        m = -np.inf
        s = np.empty(k)
        for j in range(k):
            v = eta * grad[off + j] + np.log(max(policy[off + j], 1e-300)) + child_value[off + j]
            if use_magnet:
                v += eta * alpha * log_magnet[off + j]
            s[j] = v / k_temp
            if s[j] > m:
                m = s[j]
        total = 0.0
        for j in range(k):
            s[j] = np.exp(s[j] - m)
            total += s[j]
        for j in range(k):
            out[off + j] = s[j] / total
        parent_slot = infoset_parent_slot[i]
        if parent_slot >= 0:
            child_value[parent_slot] += k_temp * (m + np.log(total))


@njit(cache=True)
def sequence_weights(policy, infoset_offset, infoset_num_actions, infoset_parent_slot, out):
    """Sequence-form realisation weights x[slot] = x[parent slot] * pi(a|I)."""
    for i in range(len(infoset_offset)):  # parents first
        parent_slot = infoset_parent_slot[i]
        base = 1.0 if parent_slot < 0 else out[parent_slot]
        off = infoset_offset[i]
        for j in range(infoset_num_actions[i]):
            out[off + j] = base * policy[off + j]
