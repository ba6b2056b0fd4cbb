"""Numba kernels of Monte Carlo CFR (Lanctot et al. 2009) on a lazily expanded tree.

The arrays are those of `solvers.lazy_tree.LazyTree`: children contiguous, a node that has not
been expanded yet marked UNKNOWN. A traversal runs in two passes. The forward walk samples
(chance and the other players; for outcome sampling also the updating player) and records what
it visits; strategies come from the regrets as they were when the traversal started, so the
walk changes nothing but the RNG. The backward pass computes the sampled values and applies the
regret and average-policy updates.

When the forward walk meets UNKNOWN nodes, the kernel restores the RNG, reports those nodes in
`frontier` and returns; Python expands them and calls again, and the traversal reruns with the
same random numbers. For that, a draw must not depend on how much of the tree was known when
it was made: outcome sampling walks one path, so its draws come in the same order anyway;
external sampling branches, so each node's draw is keyed by a hash of its path and one draw
of the solver's RNG per traversal (a counter-based RNG). A traversal that finishes is
therefore exactly the traversal on the fully compiled tree, whatever was cached when it started.

Each call runs up to `count` traversals; traversal j updates player `players[(first + j) % len]`.
It returns the number finished; `info[0]` says why it stopped early (FRONTIER: `info[1]` nodes
in `frontier`; SCRATCH: a scratch array is too small, grow it and call again).
"""

from __future__ import annotations

import numpy as np
from numba import njit

CHANCE = -1
TERMINAL = -4
UNKNOWN = -9  # a node whose state has not been looked at yet

DONE = 0
FRONTIER = 1
SCRATCH = 2


@njit(cache=True)
def uniform01(rng_state):
    """splitmix64: a tiny RNG whose whole state is one uint64 (so checkpoints can hold it)."""
    rng_state[0] += np.uint64(0x9E3779B97F4A7C15)
    return (mix64(rng_state[0]) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def mix64(z):
    """splitmix64's finaliser: a bijection of uint64 that scrambles every bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def child_hash(h, j):
    """The path hash of child j of a node with path hash h."""
    return mix64(h + np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15))


@njit(cache=True)
def keyed01(key, h):
    """A uniform number in [0, 1) that depends only on the traversal key and the node's path."""
    return (mix64(key ^ h) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def sample_index(probs, off, k, u):
    """The index j in [0, k) with cumulative probs[off..off+j] first above u."""
    acc = 0.0
    for j in range(k):
        acc += probs[off + j]
        if u < acc:
            return j
    return k - 1


@njit(cache=True)
def strategy_at(regret, fixed_probs, learning, pl, off, k, out, out_off):
    """out[out_off:out_off+k] = regret matching of slots off..off+k (uniform where no regret
    is positive), or the fixed policy there for a player who does not learn."""
    if not learning[pl]:
        for j in range(k):
            out[out_off + j] = fixed_probs[off + j]
        return
    total = 0.0
    for j in range(k):
        if regret[off + j] > 0.0:
            total += regret[off + j]
    for j in range(k):
        if total > 0.0:
            out[out_off + j] = regret[off + j] / total if regret[off + j] > 0.0 else 0.0
        else:
            out[out_off + j] = 1.0 / k


@njit(cache=True)
def external_sampling(node_player, child_start, num_children, node_infoset, chance_prob, utility, infoset_offset,
                      regret, cum_policy, learning, fixed_probs, players, first, count, rng_state,
                      visit, parent_pos, child_j, value, cbase, cbuf, stack_node, stack_pos, stack_j, stack_h,
                      strategy, frontier, info):
    """External-sampling traversals: every action of the updating player is explored, chance
    and the other players are sampled. The average policy is accumulated at the sampled nodes
    of the next player ('simple' averaging, OpenSpiel's default). Scratch arrays are indexed by
    visit position, so they grow with the sampled subtree, not with the tree."""
    num_players = utility.shape[1]
    info[0] = DONE
    info[1] = 0
    done = 0
    while done < count:
        player = players[(first + done) % len(players)]
        nxt = (player + 1) % num_players
        saved = rng_state[0]
        rng_state[0] += np.uint64(0x9E3779B97F4A7C15)
        key = mix64(rng_state[0])
        stack_node[0] = 0
        stack_pos[0] = -1
        stack_j[0] = 0
        stack_h[0] = np.uint64(0)
        top = 1
        m = 0  # positions used
        nb = 0  # child-value slots used
        nf = 0
        status = DONE
        while top > 0:
            top -= 1
            n = stack_node[top]
            h = stack_h[top]
            pl = node_player[n]
            if pl == UNKNOWN:
                frontier[nf] = n
                nf += 1
                status = FRONTIER
                if nf == len(frontier):
                    break
                continue
            if m == len(visit):
                status = SCRATCH
                break
            t = m
            m += 1
            visit[t] = n
            parent_pos[t] = stack_pos[top]
            child_j[t] = stack_j[top]
            if pl == TERMINAL:
                continue
            k = num_children[n]
            start = child_start[n]
            if pl == CHANCE:
                j = sample_index(chance_prob, start, k, keyed01(key, h))
            else:
                off = infoset_offset[node_infoset[n]]
                strategy_at(regret, fixed_probs, learning, pl, off, k, strategy, off)
                if pl == player:
                    if nb + k > len(cbuf) or top + k > len(stack_node):
                        status = SCRATCH
                        break
                    cbase[t] = nb
                    nb += k
                    for j in range(k):
                        stack_node[top] = start + j
                        stack_pos[top] = t
                        stack_j[top] = j
                        stack_h[top] = child_hash(h, j)
                        top += 1
                    continue
                j = sample_index(strategy, off, k, keyed01(key, h))
            stack_node[top] = start + j
            stack_pos[top] = t
            stack_j[top] = j
            stack_h[top] = child_hash(h, j)
            top += 1
        if status != DONE:
            rng_state[0] = saved  # the rerun draws the same numbers
            info[0] = status
            info[1] = nf
            return done
        # reverse visit order is a post-order: children before parents
        for t in range(m - 1, -1, -1):
            n = visit[t]
            pl = node_player[n]
            if pl == TERMINAL:
                v = utility[n, player]
            elif pl == player:
                off = infoset_offset[node_infoset[n]]
                k = num_children[n]
                b = cbase[t]
                v = 0.0
                for j in range(k):
                    v += strategy[off + j] * cbuf[b + j]
                for j in range(k):
                    regret[off + j] += cbuf[b + j] - v
            else:
                v = value[t]
            if pl == nxt and learning[pl]:
                off = infoset_offset[node_infoset[n]]
                for j in range(num_children[n]):
                    cum_policy[off + j] += strategy[off + j]
            p = parent_pos[t]
            if p >= 0:
                if node_player[visit[p]] == player:
                    cbuf[cbase[p] + child_j[t]] = v
                else:
                    value[p] = v
        done += 1
    return done


@njit(cache=True)
def outcome_sampling(node_player, child_start, num_children, node_infoset, chance_prob, utility, infoset_offset,
                     regret, cum_policy, learning, fixed_probs, players, first, count, epsilon, rng_state,
                     path_node, path_choice, path_probs, reach_my, reach_opp, reach_sample, frontier, info):
    """Outcome-sampling episodes: one trajectory, epsilon-exploration at the updating player's
    nodes, on-policy elsewhere; importance-weighted regrets, and the average policy weighted by
    the player's own reach over the sample reach (OpenSpiel's OutcomeSamplingMCCFRSolver)."""
    info[0] = DONE
    info[1] = 0
    width = path_probs.shape[1]
    done = 0
    while done < count:
        player = players[(first + done) % len(players)]
        saved = rng_state[0]
        n = 0
        d = 0
        my = 1.0
        opp = 1.0
        smp = 1.0
        status = DONE
        while True:
            pl = node_player[n]
            if pl == UNKNOWN:
                frontier[0] = n
                status = FRONTIER
                break
            if pl == TERMINAL:
                break
            k = num_children[n]
            if d == len(path_node) or k > width:
                status = SCRATCH
                break
            reach_my[d] = my
            reach_opp[d] = opp
            reach_sample[d] = smp
            path_node[d] = n
            start = child_start[n]
            if pl == CHANCE:
                j = sample_index(chance_prob, start, k, uniform01(rng_state))
                p = chance_prob[start + j]
                opp *= p
                smp *= p
            else:
                off = infoset_offset[node_infoset[n]]
                row = path_probs[d]
                strategy_at(regret, fixed_probs, learning, pl, off, k, row, 0)
                u = uniform01(rng_state)
                if pl == player:
                    acc = 0.0
                    j = k - 1
                    for a in range(k):
                        acc += epsilon / k + (1.0 - epsilon) * row[a]
                        if u < acc:
                            j = a
                            break
                    my *= row[j]
                    smp *= epsilon / k + (1.0 - epsilon) * row[j]
                else:
                    j = sample_index(row, 0, k, u)
                    opp *= row[j]
                    smp *= row[j]
            path_choice[d] = j
            d += 1
            n = start + j
        if status != DONE:
            rng_state[0] = saved
            info[0] = status
            info[1] = 1 if status == FRONTIER else 0
            return done
        value = utility[n, player]
        for e in range(d - 1, -1, -1):
            n = path_node[e]
            pl = node_player[n]
            if pl == CHANCE:
                continue
            k = num_children[n]
            j = path_choice[e]
            local = path_probs[e]
            if pl == player:
                smp_j = epsilon / k + (1.0 - epsilon) * local[j]
            else:
                smp_j = local[j]
            child_value = value / smp_j  # importance-weighted value of the sampled child
            estimate = local[j] * child_value
            if pl == player:
                off = infoset_offset[node_infoset[n]]
                w = reach_opp[e] / reach_sample[e]
                for a in range(k):
                    cav = child_value if a == j else 0.0
                    regret[off + a] += (cav - estimate) * w
                for a in range(k):
                    cum_policy[off + a] += reach_my[e] * local[a] / reach_sample[e]
            value = estimate
        done += 1
    return done
