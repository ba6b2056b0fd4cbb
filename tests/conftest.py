"""Shared test helpers, and numerics pinned before torch loads.

Sampled training amplifies rounding differences: one flipped multinomial draw changes every
later step. ATen picks its vector kernels (AVX-512, AVX2, ...) and MKL its code path by the
CPU, so the same seeded run used to end at different numbers on different x86-64 machines
(a Nash-MD test ended at DG_beta 0.108, 0.205, 0.218 or 0.299 depending only on the kernel
set). Pinning ATen to its AVX2 kernels and MKL to its conditional-numerical-reproducibility
"COMPATIBLE" branch makes the results the same on any x86-64 machine with AVX2.
"""

import os
import platform

if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

import pytest  # noqa: E402

from equilibria.common.yamlio import dump_yaml, load_yaml  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test, and the module fixtures it sets up, starts on one torch thread. The learning
    thresholds were measured so; a kind that sets its own `threads` (lspo, debate, train) must not
    change the numbers of whatever test a worker runs next, and a file run alone must see the same
    count as in the full suite. A test that wants more threads sets them itself."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def extend_run():
    """Raise a finished run's budget in its config.yaml, so `--resume` continues it:
    extend_run(run_dir, "budget", "iterations", value=8)."""

    def extend(run_dir, *keys, value):
        path = run_dir / "config.yaml"
        cfg, _ = load_yaml(path.read_text(), str(path))
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        path.write_text(dump_yaml(cfg))

    return extend


CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory):
    """A tiny chat model (random weights, its own BPE tokenizer and chat template) saved to disk:
    what the language-model code paths run on in the fast suite."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["You are Player 3 in a game of Werewolf. Night 1: choose one player to inspect. Options: Player 1, "
              "abstain. Day 2 votes: Player 4 -> Player 6. I am the seer: Player 2 is a werewolf."] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                  unk_token="<unk>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                         max_position_embeddings=8192, eos_token_id=tok.eos_token_id,
                                         pad_token_id=tok.pad_token_id))
    path = tmp_path_factory.mktemp("tiny-chat")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
