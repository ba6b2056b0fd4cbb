"""Werewolf: rules on hand-built situations, the engine's validation and fallbacks on Werewolf's
text view, the OpenAI-compatible agent against a real local HTTP server, replays, and fixed-seat
Werewolf tournaments (what the play kind was)."""

import io
import json
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from chat_server import ChatServer
from needs import need

from equilibria import games, scenarios
from equilibria.games.core import CHANCE, SIMULTANEOUS
from equilibria.games.engine import AgentUnavailable, ask, play_game
from equilibria.games.testing import api_test
from equilibria.games.werewolf import DOCTOR, ROLES, SEER, VILLAGER, WEREWOLF
from equilibria.games.werewolf_text import FALLBACK_SPEECH, observe, parse_choice
from equilibria.llm_agents.agents import HumanAgent, RandomAgent, make_agent
from equilibria.llm_agents.werewolf_agents import RuleBasedAgent


def dealt(roles, **rules):
    g = games.load("werewolf", num_players=len(roles), werewolves=roles.count(WEREWOLF), seers=roles.count(SEER),
                   doctors=roles.count(DOCTOR), **rules)
    s = g.new_initial_state()
    for r in roles:
        assert s.current_player() == CHANCE
        s.apply_action(ROLES.index(r))
    return g, s


FIVE = [WEREWOLF, SEER, DOCTOR, VILLAGER, VILLAGER]  # seats 0..4


def night(s, victim, inspect, protect):
    assert s.phase == "night_werewolves"
    s.apply_action(victim)
    if s.phase == "night_seer":
        s.apply_action(inspect)
    if s.phase == "night_doctor":
        s.apply_action(protect)


def speak_all(s):
    while s.phase == "day_speech":
        s.apply_action("hello")


def test_api_and_rule_variants():
    api_test(games.load("werewolf"), num_games=10)
    api_test(games.load("werewolf(num_players=9, werewolves=2, tie_rule=random, reveal_roles=true)"), num_games=5)
    with pytest.raises(ValueError, match="win before the game starts"):
        games.load("werewolf(num_players=4, werewolves=2)")


def test_deal_is_uniform_over_role_counts():
    g = games.load("werewolf")
    s = g.new_initial_state()
    assert dict(s.chance_outcomes()) == pytest.approx({0: 2 / 7, 1: 1 / 7, 2: 1 / 7, 3: 3 / 7})


def test_doctor_saves_the_victim_and_otherwise_the_victim_dies():
    _, s = dealt(FIVE)
    night(s, victim=3, inspect=0, protect=3)
    assert s.events[-1]["type"] == "no_death" and all(s.alive)
    seer_sees = [e for e in s.visible_events(1) if e["type"] == "inspection"]
    assert seer_sees[-1]["werewolf"] is True
    assert not [e for e in s.visible_events(3) if e["type"] in ("inspection", "protection", "proposal")]
    _, s = dealt(FIVE)
    night(s, victim=3, inspect=0, protect=2)
    assert not s.alive[3] and s.phase == "day_speech"


def test_tied_vote_eliminates_nobody_or_goes_to_chance():
    for rule in ("none", "random"):
        g, s = dealt(FIVE, tie_rule=rule)
        night(s, victim=3, inspect=4, protect=2)
        speak_all(s)
        assert s.current_player() == SIMULTANEOUS
        # seats 0,1,2,4 alive: 0 and 1 get two votes each
        s.apply_actions([1, 0, 1, g.abstain, 0])
        if rule == "none":
            assert s.events[-2]["type"] == "tie" and s.phase == "night_werewolves" and sum(s.alive) == 4
        else:
            assert s.current_player() == CHANCE and [a for a, _ in s.chance_outcomes()] == [0, 1]
            s.apply_action(0)
            assert s.winner == "villagers"


def test_win_conditions_and_round_cap():
    g, s = dealt(FIVE)
    night(s, victim=3, inspect=0, protect=2)
    speak_all(s)
    s.apply_actions([1, 0, 0, g.abstain, 0])  # the werewolf is voted out
    assert s.winner == "villagers" and s.returns().tolist() == [-1, 1, 1, 1, 1]
    g, s = dealt(FIVE)
    night(s, victim=3, inspect=4, protect=2)
    speak_all(s)
    s.apply_actions([1, 4, 1, g.abstain, 1])  # seer (1) voted out: 1 werewolf vs 2 others
    assert s.phase == "night_werewolves"
    night(s, victim=4, inspect=0, protect=2)  # 1 vs 1: parity
    assert s.winner == "werewolves" and s.returns().tolist() == [1, -1, -1, -1, -1]
    g, s = dealt(FIVE, max_rounds=1)
    night(s, victim=3, inspect=4, protect=3)
    speak_all(s)
    s.apply_actions([g.abstain] * 5)
    assert s.winner == "draw" and not s.returns().any()


def test_parse_choice_accepts_the_usual_forms_and_refuses_the_rest():
    _, s = dealt(FIVE)
    obs = observe(s, 0)  # werewolf at night: options are seats 1..4
    assert parse_choice("Player 3", obs) == (2, None)
    assert parse_choice("I choose player 4.", obs) == (3, None)
    assert parse_choice('{"target": "Player 2"}', obs) == (1, None)
    assert parse_choice("3", obs) == (2, None)
    assert parse_choice(2, obs) == (2, None)
    assert parse_choice("Player 1", obs)[0] is None  # itself: not an option
    assert parse_choice("the quiet one", obs)[0] is None
    assert parse_choice("abstain", obs)[0] is None  # no abstaining at night


class Scripted:
    """Answers from a list, then repeats the last answer."""

    uses_prompt = True

    def __init__(self, answers, name="scripted"):
        self.answers, self.name, self.calls = list(answers), name, 0

    def act(self, obs):
        self.calls += 1
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(a, Exception):
            raise a
        return a


def test_garbage_answers_are_asked_again_then_replaced_and_recorded():
    g = games.load("werewolf")
    garbage = Scripted(["", "🙂🙂", "<|endoftext|>"], name="garbage")
    record = play_game(g, [garbage] + [RuleBasedAgent() for _ in range(6)], seed=1, max_retries=2)
    mine = [t for t in record["turns"] if t["agent"] == "garbage"]
    assert mine and all(t["fallback"] for t in mine if t["kind"] == "choose")
    assert all(len(t["attempts"]) == 3 and all("error" in a for a in t["attempts"]) for t in mine if t["fallback"])
    assert record["fallbacks"] == sum(t["fallback"] for t in mine)
    for t in mine:
        if t["kind"] == "speak" and t["fallback"]:
            assert t["action"] == FALLBACK_SPEECH
        if t["phase"] == "day_vote":
            assert t["action"] == g.abstain
    json.dumps(record)  # JSON-ready
    # a bad answer, then a good one: one retry, no fallback; the refusal reason reaches the prompt
    _, s = dealt(FIVE)

    agent = Scripted(["Player 9", "Player 2"])
    action, rec = ask(agent, observe(s, 0), max_retries=2)
    assert action == 1 and not rec["fallback"] and len(rec["attempts"]) == 2
    assert "refused" in rec["attempts"][1]["prompt"] and "Player 9 is not an option" in rec["attempts"][1]["prompt"]
    action, rec = ask(Scripted([RuntimeError("model crashed")]), observe(s, 0), max_retries=1)
    assert rec["fallback"] and "model crashed" in rec["attempts"][0]["error"] and action == 1


def test_rule_based_village_beats_a_random_village():
    g = games.load("werewolf")

    class Village:
        name = "mix"

        def __init__(self, random_village):
            self.rule, self.rand, self.random_village = RuleBasedAgent(), RandomAgent(), random_village

        def reset(self, seat, seed):
            self.rule.reset(seat, seed)
            self.rand.reset(seat, seed)

        def act(self, obs):
            return self.rand.act(obs) if self.random_village and obs.role != WEREWOLF else self.rule.act(obs)

    rates = {}
    for random_village in (False, True):
        wins = Counter(play_game(g, [Village(random_village) for _ in range(7)], s)["outcome"]["winner"]
                       for s in range(300))
        rates[random_village] = wins["villagers"] / 300
    # measured: 0.40 with rule-based villagers, 0.03 with random ones (same rule-based werewolves)
    assert rates[False] > 0.25 and rates[True] < 0.1


def test_games_are_deterministic_given_the_seed():
    g = games.load("werewolf")
    a = play_game(g, [RuleBasedAgent() for _ in range(7)], seed=5)
    b = play_game(g, [RuleBasedAgent() for _ in range(7)], seed=5)
    assert a["events"] == b["events"] and a["outcome"] == b["outcome"]


def test_human_agent_reads_the_terminal():
    _, s = dealt(FIVE)
    out = io.StringIO()
    human = HumanAgent(stdin=io.StringIO("player 4\n"), stdout=out)
    assert parse_choice(human.act(observe(s, 0)), observe(s, 0)) == (3, None)
    assert "your role is werewolf" in out.getvalue() and "Options:" in out.getvalue()


# ----------------------------------------------------------------------------- OpenAI-compatible agent
def test_openai_compatible_agent_plays_through_a_local_server(monkeypatch):
    monkeypatch.setenv("EQ_TEST_KEY", "sk-secret-123")
    server = ChatServer(fail_first=True)
    try:
        agent = make_agent({"type": "openai", "base_url": server.url, "model": "scripted", "api_key_env": "EQ_TEST_KEY",
                            "timeout": 5, "retries": 2, "name": "api"})
        agent.backend.backoff = 0.01
        record = play_game(games.load("werewolf"), [agent] + [RuleBasedAgent() for _ in range(6)], seed=2)
    finally:
        server.close()
    mine = [t for t in record["turns"] if t["agent"] == "api"]
    assert mine and not any(t["fallback"] for t in mine)
    assert len(server.requests) == len(mine) + 1  # the first request failed with 500 and was retried
    r = server.requests[-1]
    assert r["path"] == "/v1/chat/completions" and r["auth"] == "Bearer sk-secret-123"
    assert r["body"]["model"] == "scripted" and r["body"]["messages"][0]["role"] == "system"
    assert all(a["tokens"]["completion_tokens"] == 5 for t in mine for a in t["attempts"])
    assert "sk-secret" not in json.dumps(record) and "sk-secret" not in repr(agent.backend)


def test_api_agents_vote_concurrently_with_the_same_result():
    server = ChatServer(delay=0.05)

    def play(concurrent: bool):
        agents = [make_agent({"type": "openai", "base_url": server.url, "model": "m", "name": f"api{i}"})
                  for i in range(4)]
        for a in agents:
            a.backend.io_bound = concurrent
        return play_game(games.load("werewolf"), agents + [RuleBasedAgent() for _ in range(3)], seed=3)

    try:
        sequential = play(False)
        assert server.max_in_flight == 1
        concurrent = play(True)
    finally:
        server.close()
    assert server.max_in_flight > 1  # the votes were in flight together
    assert [(t["seat"], t["phase"], t["action"]) for t in concurrent["turns"]] == \
        [(t["seat"], t["phase"], t["action"]) for t in sequential["turns"]]
    assert concurrent["outcome"] == sequential["outcome"] and concurrent["fallbacks"] == 0


def test_openai_agent_unreachable_endpoint_ends_the_match_at_once():
    """Not a game of fallbacks: an unreachable server raises AgentUnavailable on the first ask."""
    agent = make_agent({"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "timeout": 1,
                        "retries": 2})
    _, s = dealt(FIVE)
    t0 = time.monotonic()
    with pytest.raises(AgentUnavailable, match="unreachable"):
        ask(agent, observe(s, 0), max_retries=1)
    assert time.monotonic() - t0 < 5


# ----------------------------------------------------------------------------- fixed-seat tournaments and replays
def test_fixed_seat_werewolf_reports_win_rates_writes_replays_and_resumes(tmp_path, extend_run):
    full = scenarios.run(scenarios.load("werewolf-scripted", ["games=24"]), out=tmp_path / "a", quiet=True)
    assert full.metrics["matches"] == 24 and len(list((full.run_dir / "replays").glob("*.json"))) == 24
    assert full.metrics["werewolves_win_rate"] + full.metrics["villagers_win_rate"] + \
        full.metrics["draw_win_rate"] == pytest.approx(1.0)
    ranking = (full.run_dir / "ranking.md").read_text()
    assert "| side |" in ranking and full.plots[0].name == "ratings.png"
    short = scenarios.run(scenarios.load("werewolf-scripted", ["games=10"]), out=tmp_path / "b", quiet=True)
    extend_run(short.run_dir, "games", value=24)
    resumed = scenarios.run(None, resume=short.run_dir, quiet=True)
    assert resumed.metrics == full.metrics
    # the replay renders from the command line; a broken file is a one-line exit-2 error
    replay = sorted((full.run_dir / "replays").glob("*.json"))[0]
    res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "replay", str(replay)], capture_output=True, text=True)
    assert res.returncode == 0 and "Night 1" in res.stdout and "Day 1" in res.stdout and " win" in res.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    res = subprocess.run([sys.executable, "-m", "equilibria.scenarios.cli", "replay", str(broken)], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "not a JSON replay" in res.stderr


def test_fixed_seats_refuse_bad_lineups():
    with pytest.raises(scenarios.ConfigError, match="fills 6 seats but the game has 7"):
        scenarios.validate(scenarios.load("werewolf-scripted", ["lineup=[{name: r, agent: rule, seats: 6}]"]))
    with pytest.raises(scenarios.ConfigError, match="lineup.0.agent: an openai agent needs base_url"):
        scenarios.validate(scenarios.load("werewolf-scripted", [
            "lineup=[{name: api, agent: {type: openai, model: m}}, {name: r, agent: rule, seats: 6}]"]))
    with pytest.raises(scenarios.ConfigError, match="unknown agent type 'gpt'"):
        scenarios.validate(scenarios.load("werewolf-scripted", ["lineup=[{name: r, agent: gpt, seats: 7}]"]))
    with pytest.raises(scenarios.ConfigError, match="agent type 'rule' plays werewolf, not kuhn_poker"):
        scenarios.validate(scenarios.load("tournament-kuhn", ["lineup=[{name: r, agent: rule}, {name: b, scripted: random}]"]))


@pytest.mark.slow
def test_smollm2_plays_one_game(tmp_path):
    need("gguf", "llm")
    result = scenarios.run(scenarios.load("werewolf-smollm", ["games=1"]), out=tmp_path, quiet=True)  # one match
    record = json.loads(next((result.run_dir / "replays").glob("*.json")).read_text())
    mine = [t for t in record["turns"] if t["agent"] == "smollm2"]
    assert mine and all(a.get("raw") is not None for t in mine for a in t["attempts"])
    assert not any(t["fallback"] for t in mine if t["kind"] == "choose")  # scored choices are always legal
    assert result.metrics["tokens_per_second_smollm2"] > 0
    assert np.isfinite(result.metrics["win_rate_smollm2"])
