"""LSPO's latent strategy space: utterances -> embeddings -> k-means clusters per role, and the
listener model that says how a language-model listener reacts to each utterance.

- `mask_players` writes every player name of an utterance as games.werewolf_latent.TARGET, so
  clusters group what is said (accuse, claim, defend...), not about whom; the abstract game
  puts the target back by relation.
- `cluster`: k-means (k-means++ seeding, cosine on unit vectors) with k grown from 1 until the
  mean cosine of the members to their centroid reaches `tightness` (or k_max); clusters smaller
  than `min_size` are dropped. The number of clusters kept measures how far the strategies
  spread, the mean member-centroid cosine how sharp they are (both reported per iteration).
- `jury_shifts`: the listener model. A language model in a villager's seat hears one utterance
  (the speaker and the named target are two of three candidates) and is asked whom to vote
  out; the log-probabilities of its answers give the shift in log-odds of voting against the
  speaker and against the target, relative to a third player nobody mentioned. The three seat
  numbers rotate through the three parts, so a model's liking of one number cancels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from equilibria.games.werewolf_latent import TARGET

_NAMED = re.compile(r"\bplayer\s*#?\s*\d+\b", re.IGNORECASE)


def mask_players(text: str) -> str:
    return _NAMED.sub(TARGET, text)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(unit centroids [k, d], assignment [N]) of unit rows `x` by spherical k-means, k-means++ seeded."""
    n = len(x)
    k = min(k, n)
    centers = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        dist = np.maximum(1.0 - np.max(x @ np.array(centers).T, axis=1), 0.0)
        p = dist / dist.sum() if dist.sum() > 0 else np.full(n, 1.0 / n)
        centers.append(x[int(rng.choice(n, p=p))])
    c = np.array(centers)
    assign = np.full(n, -1)
    for _ in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                m = members.sum(0)
                c[j] = m / max(np.linalg.norm(m), 1e-12)
    return c, assign


def cluster(x: np.ndarray, k_max: int, tightness: float, min_size: int, seed: int = 0) -> dict[str, Any]:
    """Clusters of unit rows: {centroids, assign (-1: dropped), members, medoids, k, sharpness}."""
    if len(x) == 0:
        raise ValueError("no utterances to cluster")
    rng = np.random.default_rng(seed)
    for k in range(1, k_max + 1):
        centroids, assign = kmeans(x, k, rng)
        sim = np.sum(x * centroids[assign], axis=1)
        if sim.mean() >= tightness or k == min(k_max, len(x)):
            break
    keep = [j for j in range(len(centroids)) if np.sum(assign == j) >= min_size]
    if not keep:  # everything is small: keep the largest
        keep = [int(np.bincount(assign).argmax())]
    remap = {j: i for i, j in enumerate(keep)}
    final = np.array([remap.get(int(a), -1) for a in assign])
    members = [np.flatnonzero(final == i).tolist() for i in range(len(keep))]
    medoids = [m[int(np.argmax(x[m] @ centroids[j]))] for m, j in zip(members, keep)]
    kept = final >= 0
    return {"centroids": centroids[keep], "assign": final, "members": members, "medoids": medoids,
            "k": len(keep), "sharpness": float(np.mean(np.sum(x[kept] * centroids[assign[kept]], axis=1)))}


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.argmax(x @ centroids.T, axis=1)


JURY_SEATS = ((1, 4, 3), (4, 3, 1), (3, 1, 4))  # (speaker, target, nobody) seat indices, rotated


def jury_messages(masked: str, speaker: int, target: int, nobody: int) -> tuple[list[dict[str, str]], list[str]]:
    from equilibria.games.werewolf import player_name

    names = [player_name(s) for s in sorted((speaker, target, nobody))]
    text = masked.replace(TARGET, player_name(target))
    system = ("You are Player 7 in a game of Werewolf with 7 players. Your role: villager. You win when every "
              "werewolf has been eliminated. By day everyone speaks once, then all vote; the most voted player "
              "is eliminated.")
    user = (f"Day 1, {player_name(speaker)} said: \"{text}\"\nDay 1: vote to eliminate one player. Options: "
            f"{', '.join(names)}. Answer with exactly one option, e.g. '{names[0]}'.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], names


def jury_shifts(backend: Any, masked: Sequence[str]) -> np.ndarray:
    """[N, 2] (speaker shift, target shift) in log-odds of a vote, averaged over the seat rotations.
    `backend` scores options (llm_agents.chat_agents.TransformersChat)."""
    from equilibria.games.werewolf import player_name

    out = np.zeros((len(masked), 2))
    for i, text in enumerate(masked):
        for speaker, target, nobody in JURY_SEATS:
            messages, names = jury_messages(text, speaker, target, nobody)
            scores, _ = backend.score(messages, names)
            lp = dict(zip(names, scores))
            base = lp[player_name(nobody)]
            out[i, 0] += (lp[player_name(speaker)] - base) / len(JURY_SEATS)
            out[i, 1] += (lp[player_name(target)] - base) / len(JURY_SEATS)
    return out


__all__ = ["cluster", "jury_messages", "jury_shifts", "kmeans", "mask_players", "nearest"]
