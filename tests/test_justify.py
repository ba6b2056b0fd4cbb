"""The justifiable policy on ICU-Sepsis (marl/debate/justify.py, pipeline.py, the debate kind):
the mixed reward and justifiability by hand, the debate table with a judge whose verdict is known,
and the whole pipeline on a tiny budget (the lambda = 0 policy is optimal, more debate weight buys
justifiability, every stage resumes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from equilibria import scenarios
from equilibria.common.config import ConfigError
from tests.needs import need


@pytest.fixture(scope="module")
def mdp():
    need("icu_sepsis", "debate")
    from equilibria.games.icu_sepsis import load_sepsis

    return load_sepsis()


def test_mixed_reward_and_justifiability_by_hand(mdp):
    from equilibria.games.icu_sepsis import DEATH, SURVIVAL, occupancy
    from equilibria.marl.debate.justify import justifiability, mixed_reward, patient_states

    win = np.full(mdp.P.shape[:2], 0.5)
    r0 = mixed_reward(mdp, win, 0.0)
    np.testing.assert_allclose(r0, 15 * (mdp.P[:, :, SURVIVAL] - mdp.P[:, :, DEATH]))
    np.testing.assert_allclose(mixed_reward(mdp, win, 1.0), 2.5)  # 5 x the win rate
    np.testing.assert_allclose(mixed_reward(mdp, win, 0.5), 0.5 * r0 + 1.25)
    # score 1 where the policy takes action 3, 0 elsewhere: justifiability = the clinician-weighted
    # share of states where it takes action 3
    score = np.zeros(mdp.P.shape[:2])
    score[:, 3] = 1.0
    states = patient_states(mdp)
    actions = np.where(np.arange(mdp.P.shape[0]) % 2 == 0, 3, 4)
    w = occupancy(mdp, mdp.clinician)[states]
    expected = np.sum(w * (actions[states] == 3)) / np.sum(w)
    assert justifiability(mdp, score, actions) == pytest.approx(expected)


def test_debate_table_with_a_judge_that_always_prefers_one_treatment(mdp):
    """A judge that scores treatment 7 highest whatever the evidence: the debater for 7 always
    wins, every other treatment loses against a baseline of 7 and ties with itself."""
    from equilibria.games.debate import DebateRules, random_chooser
    from equilibria.games.icu_sepsis import standardized_features
    from equilibria.marl.debate.justify import debate_outcomes, patient_states

    def judge(values: np.ndarray, mask: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        return (decisions == 7).astype(float)

    x = standardized_features(mdp)
    rules = DebateRules(judge, x.shape[1], mdp.P.shape[1], 2)
    rng = np.random.default_rng(0)
    baseline = np.full(mdp.P.shape[0], 7)
    out = debate_outcomes(mdp, rules, random_chooser(rng), random_chooser(rng), baseline, x)
    s = patient_states(mdp)
    assert np.all(out["win"][s] == 0.0)  # nothing beats 7
    assert np.all(out["score"][s, 7] == 0.5) and np.all(out["score"][s][:, np.arange(25) != 7] == 0.0)
    baseline[:] = 0
    out = debate_outcomes(mdp, rules, random_chooser(rng), random_chooser(rng), baseline, x)
    assert np.all(out["win"][s, 7] == 1.0) and np.all(out["win"][s][:, np.arange(25) != 7] == 0.0)


TINY = {"judge": {"epochs": 1, "preferences": 4000, "eval_preferences": 1000},
        "debaters": {"updates": 4, "num_envs": 32, "hidden": 32}, "eval_debates": 200, "lambdas": [0.0, 1.0]}


def test_the_pipeline_on_a_tiny_budget_and_its_resume(mdp, tmp_path):
    from equilibria.marl.debate.pipeline import SepsisDebateConfig, run_seed

    cfg = SepsisDebateConfig(**TINY)
    res = run_seed(cfg, 0, tmp_path / "seed0", log=lambda m: None)
    rows = {r["lambda"]: r for r in res["lambdas"]}
    # the lambda = 0 policy is planned on the outcome reward: within 0.01 of the optimum (gamma 0.99)
    assert abs(rows[0.0]["survival"] - res["optimum"]) < 0.01
    assert rows[0.0]["justifiability"] == 0.0  # against itself every debate is a tie: nothing won
    assert rows[0.0]["justifiability_ties_half"] == 0.5
    assert rows[1.0]["justifiability"] > 0.2 and rows[1.0]["survival"] < rows[0.0]["survival"]
    for k in ("judge_accuracy", "full_judge_accuracy", "debater_vs_random", "debater_vs_confuser", "agreement_debate"):
        assert np.isfinite(res[k])
    stored = json.loads((tmp_path / "seed0" / "results.json").read_text())
    assert stored == json.loads(json.dumps(res))
    for name in ("judge.pt", "full_judge.pt", "debaters.pt", "confuser.pt"):
        assert (tmp_path / "seed0" / name).exists()
    (tmp_path / "seed0" / "results.json").unlink()  # the trained stages are reused, not retrained
    again = run_seed(cfg, 0, tmp_path / "seed0", log=lambda m: None)
    assert again["judge_accuracy"] == res["judge_accuracy"] and again["lambdas"] == res["lambdas"]


def test_the_debate_kind_reports_the_tradeoff(mdp, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("name: d\nkind: debate\nseeds: 2\nnum_arguments: 4\n"
                    + "".join(f"{k}: {json.dumps(v)}\n" for k, v in TINY.items()))
    result = scenarios.run(scenarios.load(str(path)), out=tmp_path / "runs", quiet=True)
    text = (result.run_dir / "results.md").read_text()
    assert "| 0 |" in text and "| 1 |" in text and "judge held-out" in text
    assert (result.run_dir / "plots" / "tradeoff.png").exists()
    assert result.metrics["seeds"] == 2
    path.write_text(path.read_text() + "game: gems\n")
    with pytest.raises(ConfigError, match="takes no game"):
        scenarios.validate(scenarios.load(str(path)))
