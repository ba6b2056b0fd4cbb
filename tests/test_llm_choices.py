"""Language-model agents choosing by scoring the legal options: a tiny chat model (random
weights, its own BPE tokenizer and chat template, saved to disk and loaded as a `transformers`
agent) never gives an ill-formed choice, and the cached-prompt scorer equals the full forward."""

import json

import numpy as np
import pytest
import torch

from equilibria import games, scenarios
from equilibria.games.engine import play_game
from equilibria.llm_agents.agents import make_agent
from equilibria.llm_agents.werewolf_agents import RuleBasedAgent


def test_cached_prompt_scoring_equals_the_full_forward(tiny_chat_model):
    from equilibria.llm_agents.hf import completion_log_probs, load_causal_lm, shared_prompt_log_probs

    model, tok = load_causal_lm(tiny_chat_model)
    prompt = "Night 1: choose one player to protect. Options: Player 1, Player 2, abstain."
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True,
                                  return_dict=True)["input_ids"]
    options = [tok.encode(o, add_special_tokens=False) + [tok.eos_token_id] for o in ("Player 1", "Player 12", "abstain")]
    with torch.no_grad():
        full = completion_log_probs(model, tok, [prompt] * 3, options)
    np.testing.assert_allclose(shared_prompt_log_probs(model, ids, options).numpy(), full.numpy(), rtol=1e-5)
    # the cache is restored between options: scoring in another order gives the same numbers
    np.testing.assert_allclose(shared_prompt_log_probs(model, ids, options[::-1]).numpy(), full.numpy()[::-1],
                               rtol=1e-5)


def test_scored_choices_are_always_legal_and_recorded(tiny_chat_model):
    game = games.load("werewolf")
    spec = {"type": "transformers", "model": str(tiny_chat_model), "speech_tokens": 8}
    agents = [make_agent(spec), make_agent(spec)] + [RuleBasedAgent() for _ in range(5)]
    assert agents[0].choices == "score"  # the default for a local model
    record = play_game(game, agents, seed=4)
    choices = [t for t in record["turns"] if t["seat"] < 2 and t["kind"] == "choose"]
    assert choices and not any(t["fallback"] for t in choices)
    assert all(len(t["attempts"]) == 1 for t in choices)  # never asked twice
    for t in choices:
        scores = t["attempts"][0]["option_logprobs"]
        assert len(scores) >= 2 and all(v < 0 for v in scores.values())
        assert t["attempts"][0]["raw"] in scores
    json.dumps(record)  # the replay stays JSON
    again = play_game(game, [make_agent(spec), make_agent(spec)] + [RuleBasedAgent() for _ in range(5)], seed=4)
    assert [t["action"] for t in again["turns"]] == [t["action"] for t in record["turns"]]


def test_greedy_scoring_picks_the_most_likely_option(tiny_chat_model):
    agent = make_agent({"type": "transformers", "model": str(tiny_chat_model), "temperature": 0.0})
    game = games.load("werewolf")
    record = play_game(game, [agent] + [RuleBasedAgent() for _ in range(6)], seed=1)
    choices = [t for t in record["turns"] if t["seat"] == 0 and t["kind"] == "choose"]
    assert choices
    for t in choices:
        scores = t["attempts"][0]["option_logprobs"]
        assert t["attempts"][0]["raw"] == max(scores, key=scores.get)


def test_scoring_needs_a_local_model():
    with pytest.raises(scenarios.ConfigError, match="choices: 'score' needs a local model"):
        scenarios.validate(scenarios.load("tournament-werewolf", [
            "lineup=[{name: api, agent: {type: openai, base_url: 'http://127.0.0.1:9', model: m, choices: score}}, "
            "{name: r, agent: rule}]"]))
    with pytest.raises(scenarios.ConfigError, match="choices must be 'generate' or 'score'"):
        scenarios.validate(scenarios.load("werewolf-scripted", [
            "lineup=[{name: s, agent: {type: smollm2, choices: vote}}, {name: r, agent: rule, seats: 6}]"]))
