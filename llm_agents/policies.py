"""Torch policies over whole responses, for preference optimisation.

Every policy maps (context ids, response ids) to log pi(y | x) of the whole response and can
sample responses. Enumerable policies (tabular, MLP, tiny LM) also return the full table of
log-probabilities, so exact duality gaps stay computable.

- TabularLogits     one free logit per (context, response)
- ContextualMLP     one-hot context -> MLP -> logits over a finite response set (EGPO: 3 layers, hidden 10)
- TinyCausalLM      a small transformers causal LM built locally from a config (no download);
                    responses are token sequences of fixed length over a small vocabulary
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class ResponsePolicy(nn.Module):
    """Interface: log_probs(contexts [B], responses [B]) -> [B]; table() -> [C, N] log-probs."""

    num_contexts: int
    num_responses: int

    def table(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_probs(self, contexts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return self.table()[contexts, responses]

    @torch.no_grad()
    def sample(self, contexts: torch.Tensor, num: int, generator: torch.Generator,
               mixture_logits: torch.Tensor | None = None, mixture_coef: float = 0.0) -> torch.Tensor:
        """num responses per context [B, num]. With mixture_coef c > 0, sample from the geometric
        mixture whose log-probs are (1 - c) log pi + c * mixture_logits (Nash-MD's opponent)."""
        logits = self.table()[contexts]
        if mixture_coef > 0:
            logits = (1.0 - mixture_coef) * logits + mixture_coef * mixture_logits[contexts]
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, num, replacement=True, generator=generator)


class TabularLogits(ResponsePolicy):
    def __init__(self, num_contexts: int, num_responses: int, init_log_probs: torch.Tensor | None = None):
        super().__init__()
        self.num_contexts, self.num_responses = num_contexts, num_responses
        init = torch.zeros(num_contexts, num_responses) if init_log_probs is None else init_log_probs.clone().float()
        self.logits = nn.Parameter(init)

    def table(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=-1)


class ContextualMLP(ResponsePolicy):
    def __init__(self, num_contexts: int, num_responses: int, hidden: int = 10, layers: int = 3):
        super().__init__()
        self.num_contexts, self.num_responses = num_contexts, num_responses
        dims = [num_contexts] + [hidden] * (layers - 1)
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        mods.append(nn.Linear(dims[-1], num_responses))
        self.net = nn.Sequential(*mods)

    def table(self) -> torch.Tensor:
        return torch.log_softmax(self.net(torch.eye(self.num_contexts)), dim=-1)


class TinyCausalLM(ResponsePolicy):
    """A real autoregressive transformer (transformers' LlamaForCausalLM from a tiny config).

    Token ids: 0..vocab-1 are response tokens, vocab + x is the prompt token of context x.
    Response index k <-> the length-L sequence of its base-vocab digits (most significant first).
    """

    def __init__(self, num_contexts: int = 1, vocab: int = 4, length: int = 3, hidden: int = 32, layers: int = 2,
                 heads: int = 2, seed: int = 0):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        if not (2 <= vocab <= 16 and 1 <= length <= 6 and vocab**length <= 65536):
            raise ValueError(f"TinyCausalLM keeps vocab**length enumerable; got vocab={vocab}, length={length}")
        self.num_contexts, self.vocab, self.length = num_contexts, vocab, length
        self.num_responses = vocab**length
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=vocab + num_contexts, hidden_size=hidden, intermediate_size=2 * hidden,
                             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=length + 1, tie_word_embeddings=False)
        self.model = LlamaForCausalLM(config)
        seqs = torch.tensor(list(itertools.product(range(vocab), repeat=length)), dtype=torch.long)
        self.register_buffer("sequences", seqs, persistent=False)  # [N, L]

    def _token_log_probs(self, contexts: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
        prompt = (self.vocab + contexts).unsqueeze(1)
        ids = torch.cat([prompt, seqs], dim=1)
        logits = self.model(input_ids=ids).logits[:, :-1, : self.vocab]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, seqs.unsqueeze(-1)).squeeze(-1)  # [B, L]

    def log_probs(self, contexts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return self._token_log_probs(contexts, self.sequences[responses]).sum(-1)

    def table(self) -> torch.Tensor:
        n = self.num_responses
        rows = []
        for x in range(self.num_contexts):
            ctx = torch.full((n,), x, dtype=torch.long)
            rows.append(self._token_log_probs(ctx, self.sequences).sum(-1))
        return torch.stack(rows)
