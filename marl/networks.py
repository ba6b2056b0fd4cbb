"""Networks built from a game's declared spaces (games.spaces), shared by every learner.

- `encoder_for(space)`: vector observations pass through flat; `[C, H, W]` grids go through a
  small CNN; `[K, F]` entity lists through a permutation-invariant encoder (DeepSets: a per-row
  MLP, mean- and max-pooled over the present rows, so any number of entities and any order give
  the same features); a Composite concatenates its parts' features. `AttentionSetEncoder`: a
  Composite of the agent's own vector and entity sets, where the agent's embedding attends over
  each set's present rows (MAAC-style scaled dot-product attention; MRA's policy sets use it).
- `GroupActor`: one policy for a group of agents (parameter sharing, the agent's one-hot slot id
  appended, as in the MAPPO code) or one per slot; a Discrete head, or a Candidates head that
  scores each candidate row against the agent's context (dispatch picks one order of many).
- `GroupCritic`: a value per agent from the global state (centralised, MAPPO), from the agent's
  own observation (local, IPPO), or from its observation plus the mean of all present agents'
  encodings (pooled: a centralised view whose size does not grow with the number of agents).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from equilibria.games.spaces import Box, Candidates, Composite, Discrete, Group, Observation

CriticKind = Literal["centralized", "local", "pooled"]


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh, out_gain: float = 0.01) -> nn.Sequential:
    """Orthogonally initialised MLP (as in the MAPPO code), small last layer."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, gain=out_gain if last else np.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- encoders
class FlatEncoder(nn.Module):
    """A vector observation as it is (the trunk MLP does the work)."""

    def __init__(self, box: Box):
        super().__init__()
        self.out_dim = box.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class GridEncoder(nn.Module):
    """[..., C, H, W] -> [..., hidden]: two 3x3 convolutions, then a linear layer."""

    def __init__(self, box: Box, hidden: int = 64, channels: int = 32):
        super().__init__()
        c, h, w = box.shape
        self.shape = box.shape
        self.conv = nn.Sequential(nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(channels * h * w, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: -3]
        y = self.conv(x.reshape(-1, *self.shape))
        return self.head(y.flatten(1)).reshape(*lead, -1)


class EntityEncoder(nn.Module):
    """[..., K, F] -> [..., 2 * hidden]: a per-row MLP, mean- and max-pooled over present rows
    (column 0 is the presence flag); an empty set encodes to zeros."""

    def __init__(self, box: Box, hidden: int = 64):
        super().__init__()
        self.row = mlp([box.shape[1], hidden, hidden], activation=nn.ReLU, out_gain=np.sqrt(2))
        self.out_dim = 2 * hidden

    def rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row features [..., K, hidden] and the presence mask [..., K]."""
        return torch.relu(self.row(x)), x[..., 0] > 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, present = self.rows(x)
        m = present.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(-2) / m.sum(-2).clamp(min=1.0)
        big = torch.finfo(h.dtype).min
        mx = h.masked_fill(~present.unsqueeze(-1), big).amax(-2)
        mx = torch.where(present.any(-1, keepdim=True), mx, torch.zeros_like(mx))
        return torch.cat([mean, mx], dim=-1)


class AttentionSetEncoder(nn.Module):
    """Composite {query: [D], set_k: [K_k, F_k] entities, ...} -> [hidden * (1 + sets)]: the
    query part's embedding, and per set the attention-weighted sum of its present rows' values,
    with the query embedding as the attention query (scaled dot product). Invariant to the order
    of rows and defined for any number of them; a set with no present row contributes zeros."""

    def __init__(self, observation: Composite, hidden: int = 64, query: str = "self"):
        super().__init__()
        parts = observation.parts
        if query not in parts or parts[query].layout != "vector":
            raise ValueError(f"an attention set encoder needs a vector part {query!r}; parts: {sorted(parts)}")
        self.query, self.sets = query, [k for k, b in parts.items() if b.layout == "entities"]
        if not self.sets or len(self.sets) + 1 != len(parts):
            raise ValueError(f"an attention set encoder takes {query!r} and entity sets only; parts: {sorted(parts)}")
        self.embed_query = mlp([parts[query].shape[0], hidden], activation=nn.ReLU, out_gain=np.sqrt(2))
        self.rows = nn.ModuleDict({k: mlp([parts[k].shape[1], hidden], activation=nn.ReLU, out_gain=np.sqrt(2))
                                   for k in self.sets})
        self.q = nn.ModuleDict({k: nn.Linear(hidden, hidden, bias=False) for k in self.sets})
        self.k = nn.ModuleDict({k: nn.Linear(hidden, hidden, bias=False) for k in self.sets})
        self.v = nn.ModuleDict({k: nn.Linear(hidden, hidden, bias=False) for k in self.sets})
        self.scale = 1.0 / np.sqrt(hidden)
        self.out_dim = hidden * (1 + len(self.sets))

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        me = self.embed_query(x[self.query])  # [..., H]
        out = [me]
        for k in self.sets:
            h, present = self.rows[k](x[k]), x[k][..., 0] > 0.5  # [..., K, H], [..., K]
            scores = (self.k[k](h) @ self.q[k](me).unsqueeze(-1)).squeeze(-1) * self.scale
            weights = torch.softmax(scores.masked_fill(~present, -1e9), -1) * present.to(h.dtype)
            out.append((weights.unsqueeze(-1) * self.v[k](h)).sum(-2))
        return torch.cat(out, -1)


def set_encoder(observation: Observation, hidden: int = 64) -> nn.Module:
    """AttentionSetEncoder where the observation is the agent's own "self" vector plus entity
    sets; encoder_for otherwise."""
    if isinstance(observation, Composite) and "self" in observation.parts \
            and observation.parts["self"].layout == "vector" and len(observation.parts) > 1 \
            and all(b.layout == "entities" for k, b in observation.parts.items() if k != "self"):
        return AttentionSetEncoder(observation, hidden)
    return encoder_for(observation, hidden)


def encoder_for(observation: Observation, hidden: int = 64, skip: str | None = None) -> nn.Module:
    """The encoder of an observation space (see the module docstring); `skip` leaves out one part
    of a Composite (the candidates a Candidates head scores itself)."""
    if isinstance(observation, Composite):
        return CompositeEncoder(observation, hidden, skip)
    if observation.layout == "vector":
        return FlatEncoder(observation)
    if observation.layout == "grid":
        return GridEncoder(observation, hidden)
    return EntityEncoder(observation, hidden)


class CompositeEncoder(nn.Module):
    def __init__(self, observation: Composite, hidden: int = 64, skip: str | None = None):
        super().__init__()
        self.names = [k for k in observation.parts if k != skip]
        self.parts = nn.ModuleDict({k: encoder_for(observation.parts[k], hidden) for k in self.names})
        self.out_dim = sum(self.parts[k].out_dim for k in self.names)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.parts[k](x[k]) for k in self.names], dim=-1)


def as_tensors(value: Any) -> Any:
    """An observation batch (an array or a dict of arrays) as float32 tensors."""
    if isinstance(value, dict):
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in value.items()}
    return torch.as_tensor(value, dtype=torch.float32)


def with_ids(net: nn.Sequential, x: torch.Tensor, n: int, slot: int | None | str) -> torch.Tensor:
    """net(cat([x, one_hot(slot, n)])) without building the concatenation: the first layer's
    id columns are a per-slot bias. slot "all": x [..., n, D] and row i gets id i; an int: that
    id for every row; None: net(x) (the net has no id inputs)."""
    if slot is None:
        return net(x)
    first = net[0]
    d = first.in_features - n
    h = nn.functional.linear(x, first.weight[:, :d], first.bias)
    ids = first.weight[:, d:].T  # [n, H]
    h = h + (ids if slot == "all" else ids[slot])
    return net[1:](h)


# ----------------------------------------------------------------------------- actors
class GroupActor(nn.Module):
    """The policy of one group's agents. Input: observations [..., n, *obs] (the group's slots
    along the second-to-observation axis); output: logits [..., n, A] with illegal actions (and
    padded candidates) at -1e9."""

    def __init__(self, group: Group, hidden: int = 64, share: bool = True, ids: bool = True):
        super().__init__()
        self.group, self.share, self.n = group, share, group.size
        self.ids = share and ids  # separate networks need no id
        candidates = group.action.field if isinstance(group.action, Candidates) else None
        ids = group.size if self.ids else 0
        copies = 1 if share else group.size
        self.encoders = nn.ModuleList([encoder_for(group.observation, hidden, skip=candidates) for _ in range(copies)])
        feat = self.encoders[0].out_dim + ids
        if isinstance(group.action, Discrete):
            self.heads = nn.ModuleList([mlp([feat, hidden, hidden, group.num_actions]) for _ in range(copies)])
        else:
            rows = group.observation.parts[candidates].shape[1]
            self.context = nn.ModuleList([mlp([feat, hidden, hidden], out_gain=np.sqrt(2)) for _ in range(copies)])
            self.heads = nn.ModuleList([mlp([hidden + rows, hidden, 1]) for _ in range(copies)])
        self.candidates = candidates

    def _one(self, k: int, x: Any, slot: int | None | Literal["all"]) -> torch.Tensor:
        """Net k on encoded observations; `slot`: the one-hot id appended ("all": x has the slot
        axis and slot i gets id i; None: no id)."""
        slot = slot if self.ids else None
        feat = self.encoders[k](x)
        if self.candidates is None:
            return with_ids(self.heads[k], feat, self.n, slot)
        cand = x[self.candidates]  # [..., K, F]
        ctx = torch.tanh(with_ids(self.context[k], feat, self.n, slot))
        ctx = ctx.unsqueeze(-2).expand(*cand.shape[:-1], ctx.shape[-1])
        return self.heads[k](torch.cat([ctx, cand], dim=-1)).squeeze(-1)

    def _masked(self, out: torch.Tensor, obs: Any, mask: torch.Tensor | None) -> torch.Tensor:
        """Logits with illegal actions and padded candidates (feature 0 is "present") at -1e9."""
        if self.candidates is not None:
            present = obs[self.candidates][..., 0] > 0.5
            mask = present if mask is None else (mask & present)
        return out if mask is None else out.masked_fill(~mask, -1e9)

    def logits(self, obs: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        """obs [..., n, *obs] -> logits [..., n, A]."""
        if self.share:
            out = self._one(0, obs, "all")
        else:
            out = torch.stack([self._one(i, select_slot(obs, self.group.observation, i), None) for i in range(self.n)], dim=-2)
        return self._masked(out, obs, mask)

    def slot_logits(self, obs: Any, slot: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [..., A] of one slot from that slot's observations [..., *obs] only (a policy
        acting for one seat of a game)."""
        if self.share:
            out = self._one(0, obs, slot)
        else:
            out = self._one(slot, obs, None)
        return self._masked(out, obs, mask)


def _dims(observation: Observation) -> dict[str | None, int]:
    if isinstance(observation, Composite):
        return {k: len(b.shape) for k, b in observation.parts.items()}
    return {None: len(observation.shape)}


def select_slot(obs: Any, observation: Observation, i: int) -> Any:
    """obs [..., n, *obs] -> [..., *obs] of slot i (each part of a composite observation)."""
    if isinstance(obs, dict):
        dims = _dims(observation)
        return {k: v.select(-(dims[k] + 1), i) for k, v in obs.items()}
    return obs.select(-(len(observation.shape) + 1), i)


def unsqueeze_slot(obs: Any, observation: Observation) -> Any:
    """obs [..., *obs] -> [..., 1, *obs]."""
    if isinstance(obs, dict):
        dims = _dims(observation)
        return {k: v.unsqueeze(v.dim() - dims[k]) for k, v in obs.items()}
    return obs.unsqueeze(obs.dim() - len(observation.shape))


# ----------------------------------------------------------------------------- critics
class GroupCritic(nn.Module):
    """Values [..., n] of one group's agents (see the module docstring for the three kinds)."""

    def __init__(self, group: Group, kind: CriticKind, state_dim: int, hidden: int = 64, share: bool = True):
        super().__init__()
        self.group, self.kind, self.share, self.n = group, kind, share, group.size
        ids = group.size if share else 0
        copies = 1 if share else group.size
        if kind == "centralized":
            self.encoders = None
            inp = state_dim
        else:
            self.encoders = nn.ModuleList([encoder_for(group.observation, hidden) for _ in range(copies)])
            inp = self.encoders[0].out_dim * (2 if kind == "pooled" else 1)
        self.nets = nn.ModuleList([mlp([inp + ids, hidden, hidden, 1], out_gain=1.0) for _ in range(copies)])

    def forward(self, obs: Any, state: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """obs [..., n, *obs], state [..., S], active [..., n] bool -> values [..., n]."""
        if self.kind == "centralized":
            if self.share:
                return with_ids(self.nets[0], state.unsqueeze(-2), self.n, "all").squeeze(-1)
            return torch.stack([net(state).squeeze(-1) for net in self.nets], dim=-1)
        if self.share:
            feat = self.encoders[0](obs)  # [..., n, H]
        else:
            feat = torch.stack([enc(select_slot(obs, self.group.observation, i)) for i, enc in enumerate(self.encoders)], -2)
        if self.kind == "pooled":
            m = active.unsqueeze(-1).to(feat.dtype)
            pooled = (feat * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp(min=1.0)
            feat = torch.cat([feat, pooled.expand_as(feat)], dim=-1)
        if self.share:
            return with_ids(self.nets[0], feat, self.n, "all").squeeze(-1)
        return torch.stack([net(feat[..., i, :]).squeeze(-1) for i, net in enumerate(self.nets)], dim=-1)
