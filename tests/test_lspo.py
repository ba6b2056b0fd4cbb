"""LSPO: the abstract latent Werewolf, the State-walking MCCFR that solves it, the latent space
(embeddings, clusters, listener model), DPO, and the loop's resume after a kill at any stage."""

import json

import numpy as np
import pytest

from equilibria import games, solvers
from equilibria.games.testing import api_test
from equilibria.games.werewolf import SEER, VILLAGER, WEREWOLF, WerewolfRules
from equilibria.games.werewolf_latent import SPEECH, TARGET, LatentSpec, SpeechLatent, WerewolfLatent
from equilibria.solvers.state_mccfr import StateOutcomeMCCFR, TablePolicy
from tests.needs import need


def _dealt(game, roles):
    """A state after a deal of `roles` (seat order)."""
    from equilibria.games.werewolf import ROLES

    state = game.new_initial_state()
    for r in roles:
        state.apply_action(ROLES.index(r))
    return state


ROLES7 = [WEREWOLF, SEER, VILLAGER, "doctor", WEREWOLF, VILLAGER, VILLAGER]


def test_latent_werewolf_passes_the_api_test_and_plays_the_werewolf_rules():
    api_test(games.load("werewolf_latent"), num_games=30)
    spec = LatentSpec.neutral()
    api_test(WerewolfLatent(WerewolfRules(max_rounds=2), spec), num_games=10, seed=3)


def test_options_are_relational_and_speech_moves_suspicion():
    spec = LatentSpec({r: (SpeechLatent(f"{r}: {TARGET} is a werewolf.", speaker_shift=-0.5, target_shift=2.0),)
                       for r in (WEREWOLF, SEER, "doctor", VILLAGER)})
    game = WerewolfLatent(WerewolfRules(), spec)
    state = _dealt(game, ROLES7)
    # night: the werewolves choose only non-werewolves, by suspicion (all 0: nearest seat first)
    assert state.base.phase == "night_werewolves"
    assert all(s is not None and ROLES7[s] != WEREWOLF for s in state.options(0))
    state.apply_action(0)  # wolf 0: the most suspected non-wolf
    state.apply_action(0)  # wolf 4 follows
    state.apply_action(0)  # seer inspects the most suspected uninspected
    inspected = [e["target"] for e in state.base.events if e["type"] == "inspection"][0]
    state.apply_action(0)  # doctor protects itself
    assert state.base.phase == "day_speech"
    if ROLES7[inspected] == WEREWOLF:  # the seer's first speech option is the werewolf it found
        assert state.options(1)[0] == inspected
    speaker = state.current_player()
    target = state.options(speaker)[0]
    before = state.suspicion.copy()
    state.apply_action(SPEECH + 0)  # latent 0 about target option 0
    assert state.suspicion[target] - before[target] == pytest.approx(2.0)
    assert state.suspicion[speaker] - before[speaker] == pytest.approx(-0.5)
    said = [e for e in state.base.events if e["type"] == "speech"][-1]["text"]
    assert TARGET not in said and f"Player {target + 1}" in said
    # the most suspected player is now the top vote option of a villager
    assert state.suspects(2)[0] == target or target == 2


def test_state_mccfr_solves_kuhn_poker():
    game = games.load("kuhn_poker")
    solver = StateOutcomeMCCFR(game, seed=0, shared=False).run(100_000)
    policy = solver.average_policy()
    assert solvers.exploitability(game, policy) < 0.02
    assert solvers.policy_value(game, policy)[0] == pytest.approx(-1 / 18, abs=0.02)
    # checkpoints round-trip: a resumed solver continues identically
    a = StateOutcomeMCCFR(game, seed=1, shared=False).run(500)
    b = StateOutcomeMCCFR(game, seed=9, shared=False)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    a.run(300), b.run(300)
    assert all(np.array_equal(a.regret[k], b.regret[k]) for k in a.regret)
    again = TablePolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert solvers.exploitability(game, again) == pytest.approx(solvers.exploitability(game, policy))


def test_cfr_in_the_abstract_game_learns():
    """With a latent that makes listeners vote for its target, the solved village does better than
    a village that plays uniformly at random, against the solved werewolves and against random
    ones (the werewolves' structural edge keeps every village return low: 7 players, 3 days)."""
    from equilibria.llm_agents.lspo import team_outcome

    accuse = SpeechLatent(f"I am the seer: {TARGET} is a werewolf.", speaker_shift=0.0, target_shift=1.5)
    quiet = SpeechLatent("I have nothing to share yet.")
    spec = LatentSpec({r: (accuse, quiet) for r in (WEREWOLF, SEER, "doctor", VILLAGER)})
    game = WerewolfLatent(WerewolfRules(max_rounds=3), spec)
    policy = StateOutcomeMCCFR(game, seed=0).run(15_000).average_policy()
    uniform = TablePolicy({})
    solved = team_outcome(game, policy, policy, "villagers", 1500, seed=1)[0]
    naive = team_outcome(game, uniform, policy, "villagers", 1500, seed=1)[0]
    assert solved > naive + 0.05, (solved, naive)  # mean return; measured -0.68 vs -0.78 (seeds 0 and 1)
    solved = team_outcome(game, policy, uniform, "villagers", 1500, seed=1)[0]
    naive = team_outcome(game, uniform, uniform, "villagers", 1500, seed=1)[0]
    assert solved > naive + 0.03, (solved, naive)  # measured -0.69 vs -0.76


def test_clusters_grow_until_tight_and_drop_small_ones():
    from equilibria.llm_agents.lspo_latents import cluster, mask_players

    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    x = np.concatenate([c + 0.03 * rng.normal(size=(20, 8)) for c in centres] + [np.eye(8)[5:6]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = cluster(x, k_max=6, tightness=0.985, min_size=3, seed=0)  # 3 clusters are not tight with the outlier in one
    assert out["k"] == 3 and out["sharpness"] > 0.95
    assert out["assign"][-1] == -1  # the lone point is dropped
    assert sorted(len(m) for m in out["members"]) == [20, 20, 20]
    assert mask_players("I think player 3 and Player 12 lie") == f"I think {TARGET} and {TARGET} lie"


def test_listener_rotation_cancels_a_liking_for_one_seat_number():
    from equilibria.llm_agents.lspo_latents import jury_shifts

    class Biased:  # likes "Player 2", and votes against whoever the utterance names
        def score(self, messages, options):
            said = messages[-1]["content"]
            return [(1.0 if o == "Player 2" else 0.0) + (2.0 if f"said: \"{o}" in said else 0.0) for o in options], {}

    shifts = jury_shifts(Biased(), [f"{TARGET} is lying"])
    assert shifts[0] == pytest.approx([0.0, 2.0])


def test_sentence_embeddings_put_paraphrases_together():
    need("all_minilm_l6_v2", "lspo")
    from equilibria.llm_agents.embedder import SentenceEmbedder

    e = SentenceEmbedder().embed(["I am the seer and I checked Player 3, he is a werewolf",
                                  "Player 3 is a werewolf, I am the seer", "I have nothing to share yet."])
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.8 > 0.4 > e[0] @ e[2]


def test_a_cache_built_by_two_processes_keeps_the_first(tmp_path):
    """Two test workers (or two users' runs) may extract the same model at once: the second
    build is dropped, the first stays whole."""
    from equilibria.llm_agents.hf import cache_tmp, publish

    target = tmp_path / "model"
    first, second = tmp_path / "model.tmp1", tmp_path / "model.tmp2"
    for d, text in ((first, "one"), (second, "two")):
        d.mkdir()
        (d / "weights").write_text(text)
    publish(first, target)
    publish(second, target)
    assert (target / "weights").read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert cache_tmp(target).name.startswith("model.tmp")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should go")
    build = tmp_path / "build"
    build.mkdir()
    with pytest.raises(OSError):  # a real failure is not taken for a lost race
        publish(build, blocked)


def test_dpo_raises_the_chosen_margin(tiny_chat_model):
    from equilibria.llm_agents.hf import dpo_finetune, load_causal_lm

    model, tok = load_causal_lm(tiny_chat_model)
    good, bad = tok.encode("I am the seer", add_special_tokens=False), tok.encode("Player 4", add_special_tokens=False)
    stats = dpo_finetune(model, tok, [("Day 1: speak.", good, bad)] * 4, beta=0.5, lr=3e-3, epochs=5, seed=0)
    assert stats["last_loss"] < stats["first_loss"] and stats["margin"] > 1.0


def test_preference_pairs_take_the_best_and_worst_latent_of_each_context():
    from equilibria.llm_agents.lspo import preference_pairs

    cands = [{"role": WEREWOLF, "context": c} for c in (0, 0, 0, 1, 1)]
    members = {WEREWOLF: [[0, 3], [1], [2, 4]]}
    values = {WEREWOLF: [0.1, 0.5, -0.2]}
    assert preference_pairs(cands, members, values) == [(1, 2), (3, 4)]


# ----------------------------------------------------------------------------- the loop
def _tiny_loop(run, model_dir, fail_at=None):
    from equilibria.llm_agents.embedder import SentenceEmbedder
    from equilibria.llm_agents.hf import load_causal_lm
    from equilibria.llm_agents.lspo import LSPO, LSPOConfig

    cfg = LSPOConfig(iterations=2, contexts_per_role=2, candidates=3, max_new_tokens=8, cfr_iterations=400,
                     br_iterations=100, value_episodes=10, eval_episodes=50, min_cluster=1, seed=0)
    loop = LSPO(cfg, run, lambda: load_causal_lm(model_dir), _EMBEDDER.get(SentenceEmbedder), log=lambda m: None)
    if fail_at is not None:
        original = getattr(loop, f"_{fail_at[1]}")

        def killed(i):
            if i == fail_at[0]:
                if fail_at[1] == "solve":  # die after the first checkpoint, inside the stage
                    from equilibria.llm_agents import lspo as module

                    real = module.StateOutcomeMCCFR.run
                    calls = {"n": 0}

                    def run_then_die(self, n):
                        calls["n"] += 1
                        if calls["n"] == 3:
                            raise KeyboardInterrupt
                        return real(self, n)

                    module.StateOutcomeMCCFR.run = run_then_die
                    try:
                        return original(i)
                    finally:
                        module.StateOutcomeMCCFR.run = real
                raise KeyboardInterrupt
            return original(i)

        setattr(loop, f"_{fail_at[1]}", killed)
    loop.run_all()
    return loop


class _Cache:
    def __init__(self):
        self.value = None

    def get(self, make):
        if self.value is None:
            self.value = make()
        return self.value


_EMBEDDER = _Cache()


def test_the_loop_resumes_after_a_kill_at_any_stage(tmp_path, tiny_chat_model):
    need("all_minilm_l6_v2", "lspo")
    from equilibria.llm_agents.lspo import STAGES
    from equilibria.llm_agents.lspo_play import evaluate_run, latent_measures

    whole = tmp_path / "whole"
    _tiny_loop(whole, tiny_chat_model)
    files = sorted(p.relative_to(whole) for p in whole.rglob("*.json") if p.name not in ("timings.json", "dpo.json"))
    assert (whole / "iter_0" / "model" / "config.json").exists() and not (whole / "iter_1" / "model").exists()
    # one run killed at every stage in turn: each resume picks up where the last kill left it and
    # is itself killed at the next stage (in solve: inside the stage, after its first checkpoint)
    run = tmp_path / "killed"
    for i, stage in [(0, s) for s in STAGES] + [(1, "solve")]:
        with pytest.raises(KeyboardInterrupt):
            _tiny_loop(run, tiny_chat_model, fail_at=(i, stage))
        if stage == "solve":
            assert (run / f"iter_{i}" / "solve.ckpt.json").exists()  # killed mid-stage, after a checkpoint
    _tiny_loop(run, tiny_chat_model)
    for f in files:
        assert json.loads((run / f).read_text()) == json.loads((whole / f).read_text()), f
    ev = evaluate_run(whole, 2, 20, seed=0)
    assert set(ev["vs_plain"][1]) == {"werewolves", "villagers", "adjusted"}
    m = latent_measures(whole, 2)
    assert m[0]["total_latents"] >= 4 and m[0]["infosets"] > 0


def test_the_scenario_refuses_what_it_cannot_use(tmp_path):
    from equilibria import scenarios

    with pytest.raises(scenarios.ConfigError, match="game.*werewolf_latent"):
        scenarios.validate(scenarios.load("werewolf-lspo", ["game=werewolf", f"model={tmp_path}"]))
    with pytest.raises(scenarios.ConfigError, match="model.*no config.json"):
        scenarios.validate(scenarios.load("werewolf-lspo", [f"model={tmp_path}"]))
    with pytest.raises(scenarios.ConfigError, match="lspo.*max_rounds"):
        scenarios.validate(scenarios.load("werewolf-lspo", ["lspo.max_rounds=3"]))
    with pytest.raises(scenarios.ConfigError, match="lspo.candidates"):
        scenarios.validate(scenarios.load("werewolf-lspo", ["lspo.candidates=0"]))


def test_the_scenario_runs_reports_and_resumes(tmp_path, tiny_chat_model):
    need("all_minilm_l6_v2", "lspo")
    from equilibria import scenarios

    s = scenarios.load("werewolf-lspo", [
        f"model={tiny_chat_model}", "eval_games=20", "lspo.iterations=2", "lspo.contexts_per_role=2",
        "lspo.candidates=3", "lspo.max_new_tokens=8", "lspo.cfr_iterations=300", "lspo.br_iterations=100",
        "lspo.value_episodes=10", "lspo.eval_episodes=20", "lspo.min_cluster=1"])
    res = scenarios.run(s, out=tmp_path)
    text = (res.run_dir / "results.md").read_text()
    assert "Latent space per iteration" in text and "role-adjusted" in text and "Time per stage" in text
    assert (res.run_dir / "plots" / "win_rates.png").exists() and (res.run_dir / "plots" / "latents.png").exists()
    assert len((res.run_dir / "metrics.csv").read_text().splitlines()) == 3
    stamp = (res.run_dir / "iter_1" / "solve.json").stat().st_mtime_ns
    scenarios.run(None, resume=res.run_dir)
    assert (res.run_dir / "iter_1" / "solve.json").stat().st_mtime_ns == stamp  # nothing finished is redone
