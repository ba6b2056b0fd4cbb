"""A learnable general preference model (GPM; Zhang et al. 2024) in torch.

Each response gets a unit embedding v in R^{2k}; the score s(i, j) = <R v_i, v_j> uses the
block-diagonal skew-symmetric R = diag([[0, -1], [1, 0]], ...), so s(i, j) = -s(j, i) and
P(i > j) = sigmoid(s(i, j)) is a proper preference that can represent cycles, at O(K) cost
per response (embed once, compare by dot products). Fit it to comparisons with `fit`, then
use `matrix()` as the oracle of a PreferenceGame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class GPMPreferenceModel(nn.Module):
    def __init__(self, num_responses: int, dim: int = 4, num_contexts: int = 1, scale: float = 4.0):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1 (embeddings live in R^(2 dim)), got {dim}")
        self.num_contexts, self.num_responses, self.dim = num_contexts, num_responses, dim
        self.embed = nn.Parameter(torch.randn(num_contexts, num_responses, 2 * dim) * 0.5)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(scale))))

    def vectors(self) -> torch.Tensor:
        return torch.nn.functional.normalize(self.embed, dim=-1)

    def scores(self, x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        v = self.vectors()
        vi, vj = v[x, i], v[x, j]
        rvi = torch.stack([-vi[..., 1::2], vi[..., 0::2]], dim=-1).flatten(-2)  # R v_i
        return self.log_scale.exp() * (rvi * vj).sum(-1)

    def prob(self, x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.scores(x, i, j))

    @torch.no_grad()
    def matrix(self) -> np.ndarray:
        n = self.num_responses
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        rows = [self.prob(torch.full_like(i, x), i, j).double().numpy() for x in range(self.num_contexts)]
        p = np.stack(rows)
        return (p + (1.0 - p.transpose(0, 2, 1))) / 2.0  # exact skew-symmetry despite float32 rounding

    def fit(self, x: np.ndarray, i: np.ndarray, j: np.ndarray, outcome: np.ndarray, steps: int = 500,
            lr: float = 0.05) -> float:
        """Maximum likelihood on comparisons (outcome 1: i beat j). Returns the final mean BCE."""
        xs, a, b = (torch.as_tensor(np.asarray(t), dtype=torch.long) for t in (x, i, j))
        y = torch.as_tensor(np.asarray(outcome), dtype=torch.float32)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        loss = torch.zeros(())
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(self.scores(xs, a, b), y)
            loss.backward()
            opt.step()
        return float(loss.detach())
