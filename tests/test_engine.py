"""The one engine: a second text game (written only for these tests) runs through the engine,
a tournament and `equilibria replay` with no change to the engine; adapters between policies
and agents; structured output for chat APIs; the scenarios layer's shape."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from chat_server import ChatServer
from cli_runner import cli_in_process
from guess_game import Bisector, HonestHost

from equilibria import games, scenarios
from equilibria.games.engine import AgentPolicy, PolicyAgent, play_game
from equilibria.games.testing import api_test

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_text_game_plays_through_the_unchanged_engine():
    game = games.load("guess_number(n=7)")
    api_test(game, num_games=20)
    for seed in range(10):  # an honest host and a bisecting guesser: the guesser always wins
        record = play_game(game, [HonestHost(), Bisector()], seed)
        assert record["outcome"]["winner"] == "guesser" and record["fallbacks"] == 0
        json.dumps(record)

    class Mute:
        name = "mute"

        def act(self, obs):
            return "   "  # an empty hint: refused, asked again, then the game's default

    record = play_game(game, [Mute(), Bisector()], seed=0, max_retries=1)
    hints = [t for t in record["turns"] if t["seat"] == 0]
    assert hints and all(t["fallback"] and len(t["attempts"]) == 2 for t in hints)
    assert all(t["action"] == "no hint" for t in hints)


def test_the_text_game_in_a_tournament_and_its_replay(tmp_path):
    path = tmp_path / "guess.yaml"
    path.write_text("name: guess\nkind: tournament\ngame: guess_number(n=7)\n"
                    "lineup: [{name: rnd, agent: random}, {name: first, scripted: first_action}]\n"
                    "games_per_pairing: 10\nreplays: all\n")
    result = scenarios.run(scenarios.load(str(path)), out=tmp_path / "runs", quiet=True)
    assert result.metrics["matches"] == 20
    files = sorted((result.run_dir / "replays").glob("match_*.json"))
    assert len(files) == 20
    record = json.loads(files[0].read_text())
    assert record["outcome"]["winner"] in ("host", "guesser") and record["players"][0]["role"] == "host"
    res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "replay", str(files[0]), "--prompts"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "seat 0" in res.stdout and "returns" in res.stdout and "attempt 1" in res.stdout


def test_policies_play_as_agents_and_scoring_agents_are_policies():
    game = games.load("kuhn_poker")
    u = games.UniformRandomPolicy()
    record = play_game(game, [PolicyAgent(u), PolicyAgent(u)], seed=3)
    assert record["fallbacks"] == 0 and sum(record["outcome"]["returns"]) == 0

    class Scorer:  # prefers the last option strongly
        name = "scorer"

        def option_scores(self, obs):
            names = obs.option_names()
            return {n: float(i) * 5 for i, n in enumerate(names)}

        def act(self, obs):
            return obs.option_names()[-1]

    state = game.new_initial_state()
    state.apply_action(0)
    state.apply_action(1)
    probs = AgentPolicy(Scorer(), game).action_probabilities(state)
    assert set(probs) == set(state.legal_actions()) and probs[max(probs)] > 0.99
    assert isinstance(AgentPolicy(Scorer(), game), games.Policy)


def test_chat_apis_are_asked_for_a_json_schema_of_the_options_and_fall_back_without_it():
    from equilibria.llm_agents.agents import make_agent
    from equilibria.llm_agents.werewolf_agents import RuleBasedAgent

    server = ChatServer(delay=0.0)
    try:
        agent = make_agent({"type": "openai", "base_url": server.url, "model": "m", "name": "api"})
        record = play_game(games.load("werewolf"), [agent] + [RuleBasedAgent() for _ in range(6)], seed=2)
    finally:
        server.close()
    mine = [t for t in record["turns"] if t["agent"] == "api"]
    assert mine and not any(t["fallback"] for t in mine)
    choices = [r["body"] for r in server.requests if "response_format" in r["body"]]
    speech = [r["body"] for r in server.requests if "response_format" not in r["body"]]
    assert choices and speech  # choices carry the schema, free speech does not
    schema = choices[0]["response_format"]["json_schema"]["schema"]["properties"]["choice"]
    assert schema["type"] == "string" and len(schema["enum"]) >= 2
    assert all(a["raw"].startswith('{"choice"') for t in mine if t["kind"] == "choose" for a in t["attempts"])

    refusing = ChatServer(refuse_schema=True)
    try:
        agent = make_agent({"type": "openai", "base_url": refusing.url, "model": "m", "name": "api"})
        record = play_game(games.load("werewolf"), [agent] + [RuleBasedAgent() for _ in range(6)], seed=2)
    finally:
        refusing.close()
    assert not any(t["fallback"] for t in record["turns"] if t["agent"] == "api")
    schema_requests = [r for r in refusing.requests if "response_format" in r["body"]]
    assert len(schema_requests) == 1  # refused once (HTTP 400), then plain text for the rest of the game


def _module_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # `from package import module`
    return names


def test_scenarios_has_no_import_circle_and_nothing_below_imports_it():
    modules = {}
    for path in (ROOT / "scenarios").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = "equilibria." + ".".join(p for p in rel.parts if p != "__init__")
        modules[name] = {m for m in _module_imports(path) if m.startswith("equilibria.scenarios")}
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
    below = [p for folder in ("games", "solvers", "marl", "llm_agents", "common") for p in (ROOT / folder).rglob("*.py")
             if any(i.startswith("equilibria.scenarios") for i in _module_imports(p))]
    assert not below, below


def test_validate_runs_nothing_expensive_and_writes_nothing(tmp_path, monkeypatch):
    """With solvers, rollouts, training, matches and model loading patched to raise, every
    built-in still validates, and nothing is written."""
    from equilibria.common import executor
    from equilibria.games import engine
    from equilibria.llm_agents import chat_agents
    from equilibria.marl import mappo, population, runtime
    from equilibria.scenarios.registry import registered_kinds
    from equilibria.solvers import base

    # kinds import lazily; import them before patching, or a module importing play_game by name
    # for the first time here would keep the patched function after the test
    registered_kinds()

    def forbidden(*args, **kwargs):
        raise AssertionError("validate ran something expensive")

    monkeypatch.setattr(base.Solver, "run", forbidden)
    monkeypatch.setattr(base, "compile_tree", forbidden)
    monkeypatch.setattr(runtime, "play_episodes", forbidden)
    monkeypatch.setattr(mappo.MAPPO, "__init__", forbidden)
    monkeypatch.setattr(population.RLPSRO, "__init__", forbidden)
    monkeypatch.setattr(engine, "play_game", forbidden)
    monkeypatch.setattr(chat_agents, "_local_model", forbidden)
    monkeypatch.setattr(executor, "ray_init", forbidden)
    monkeypatch.chdir(tmp_path)
    for name in scenarios.builtins():
        scenarios.validate(scenarios.load(name))
    assert list(tmp_path.iterdir()) == []


def test_explain_shows_fields_with_their_help(monkeypatch, tmp_path):
    for name, expected in (("tournament", ["seating", "rotate: round robin"]), ("cfr+", ["regret_matching_plus",
                           "clip cumulative regrets"]), ("leduc_poker", ["num_ranks"]), ("mappo", ["entropy_coef"]),
                           ("rule", ["Werewolf's textbook player"])):
        res = cli_in_process("explain", name, cwd=tmp_path, monkeypatch=monkeypatch)
        assert res.returncode == 0, res.stderr
        for fragment in expected:
            assert fragment in res.stdout, (name, fragment)
    res = cli_in_process("explain", "cfr++", cwd=tmp_path, monkeypatch=monkeypatch)
    assert res.returncode == 2 and "did you mean 'cfr+'" in res.stderr


def test_engine_records_are_deterministic_per_seed():
    game = games.load("werewolf")
    from equilibria.llm_agents.werewolf_agents import RuleBasedAgent

    a = play_game(game, [RuleBasedAgent() for _ in range(7)], seed=11)
    b = play_game(game, [RuleBasedAgent() for _ in range(7)], seed=11)
    assert [t["action"] for t in a["turns"]] == [t["action"] for t in b["turns"]]
    assert np.allclose(a["outcome"]["returns"], b["outcome"]["returns"])
