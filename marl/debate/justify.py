"""The justifiable policy (Sukovic & Radanovic, ICLR 2024): a treatment policy rewarded both for the
outcome and for winning debates against a baseline's decisions, on the ICU-Sepsis MDP.

Reward (the paper's R_J, the official code's argo/datasets/sepsis.py):

    r(s, a) = (1 - lambda) * r_env(s, a) + lambda * r_debate(s, a, a_B(s))

- r_env: the outcome, +15 on survival and -15 on death (the code's reward_multiplier 15 on a +-1
  outcome; ICU-Sepsis pays +1 / 0, so death is read from the transition into state 713);
- r_debate = 5 * 1{the judge prefers a over the baseline's a_B(s) after the debate} (the code's
  debate_multiplier 5 and strict win indicator), the debate played by the trained debaters with
  a random first mover: here averaged over both first movers, so r_debate is 5 x the win rate;
- the baseline a_B is the lambda = 0 policy (the paper's), trained the same way.

Because ICU-Sepsis gives the transition matrix, the debate reward is a table D[s, a] over every
(state, decision) pair (716 x 25 debates per first mover, batched), a policy's survival is exact
(games.icu_sepsis.policy_value, no importance sampling) and so is the optimum of any lambda's
reward (`plan`: value iteration). The learned policies (marl.dqn, online in the MDP or offline
from clinician trajectories, as the paper) train on `RewardModelGame(icu_sepsis, mixed reward)`
or on the clinician data with the mixed reward.

Justifiability of a policy (the official code's evaluation: debate outcomes with discount 0, a
win counting 1, a tie or a loss 0): over states weighted by the clinician's occupancy (the data's
state distribution), the fraction of debates against the baseline's decision that the policy's
decision wins, over both first movers. So the baseline against itself scores 0 (every debate
between equal decisions is a tie). `debate_outcomes` also gives the credit with ties counted one
half, reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from equilibria.games.debate import Chooser, DebateRules, Judge, play_debates
from equilibria.games.icu_sepsis import DEATH, SURVIVAL, SepsisMDP, occupancy, value_iteration
from equilibria.games.reward_model import Transition

ENV_SCALE, DEBATE_SCALE = 15.0, 5.0  # the official code's reward_multiplier and debate_multiplier
GAMMA = 0.99  # the paper's protagonist discount


def patient_states(mdp: SepsisMDP) -> np.ndarray:
    """The states a decision is made in (every state but death, survival and the absorbing one)."""
    return np.flatnonzero(~mdp.terminal)


def debate_outcomes(mdp: SepsisMDP, rules: DebateRules, choose_policy: Chooser, choose_baseline: Chooser,
                    baseline: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per (state, decision) [S, A]: "win" the fraction of the two debates (one per first mover)
    the decision's debater wins, and "score" wins + ties / 2 (justifiability's credit)."""
    states = patient_states(mdp)
    actions = np.arange(mdp.P.shape[1])
    s = np.repeat(states, len(actions))
    pairs = np.stack([np.tile(actions, len(states)), baseline[s]], axis=1)
    win = np.zeros(len(s))
    tie = np.zeros(len(s))
    for first in (0, 1):
        p = play_debates(rules, choose_policy, choose_baseline, x[s], pairs, first=np.full(len(s), first))["payoff"]
        win += (p > 0) / 2
        tie += (p == 0) / 2
    out = {k: np.zeros((mdp.P.shape[0], len(actions))) for k in ("win", "score")}
    out["win"][states] = win.reshape(len(states), -1)
    out["score"][states] = (win + tie / 2).reshape(len(states), -1)
    return out


def mixed_reward(mdp: SepsisMDP, debate_win: np.ndarray, lam: float, env_scale: float = ENV_SCALE,
                 debate_scale: float = DEBATE_SCALE) -> np.ndarray:
    """[S, A] expected reward (1 - lam) r_env + lam r_debate: r_env = env_scale (P(survive next) -
    P(die next)), r_debate = debate_scale * win rate against the baseline."""
    r_env = env_scale * (mdp.P[:, :, SURVIVAL] - mdp.P[:, :, DEATH])
    return (1.0 - lam) * r_env + lam * debate_scale * debate_win


def plan(mdp: SepsisMDP, reward: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """The optimal policy of a reward table by value iteration (the MDP is known): one-hot [S, A]."""
    return value_iteration(mdp, reward=reward, gamma=gamma)[2]


def policy_actions(pi: np.ndarray) -> np.ndarray:
    """[S] the action of a deterministic policy [S, A]."""
    return np.asarray(pi).argmax(1)


def justifiability(mdp: SepsisMDP, credit: np.ndarray, actions: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean over patient states of credit[s, actions[s]] (debate_outcomes' "win": the
    share of debates won against the baseline's decision; or "score", ties counted half; or the
    clinician's probability of the action, for agreement), weighted by `weights` [S] (default: the
    clinician's occupancy)."""
    states = patient_states(mdp)
    w = occupancy(mdp, mdp.clinician)[states] if weights is None else np.asarray(weights)[states]
    return float(np.sum(w * credit[states, actions[states]]) / np.sum(w))


def greedy_policy_of(q_actions: Callable[[np.ndarray, np.ndarray], np.ndarray], observations: np.ndarray,
                     mdp: SepsisMDP) -> np.ndarray:
    """One-hot [S, A] from a learner's greedy actions on every state's observation [S, D]
    (`q_actions(obs [S, 1, D], legal [S, 1, A]) -> [S, 1]`); terminal rows take action 0."""
    a = np.asarray(q_actions(np.array(observations[:, None, :]), np.array(mdp.admissible[:, None, :]))).reshape(-1)
    pi = np.zeros(mdp.P.shape[:2])
    pi[np.arange(len(a)), a] = 1.0
    return pi


def state_of(obs: Any, num_states: int) -> np.ndarray:
    """The MDP state from icu_sepsis(observation=both|onehot) observations [..., D] (the one-hot is last)."""
    return np.asarray(obs)[..., -num_states:].argmax(-1)


def realised_reward(debate_win: np.ndarray, lam: float, states: np.ndarray, actions: np.ndarray,
                    survived: np.ndarray, died: np.ndarray) -> np.ndarray:
    """The mixed reward of observed steps: (1 - lam) * (+15 survival, -15 death at the step that
    ends the episode) + lam * 5 * the (state, decision)'s debate win rate. Arrays broadcast."""
    r_env = ENV_SCALE * (survived.astype(float) - died.astype(float))
    return (1 - lam) * r_env + lam * DEBATE_SCALE * debate_win[states, actions]


def reward_model(mdp: SepsisMDP, debate_win: np.ndarray, lam: float, group: str = "patient"
                 ) -> Callable[[Transition], dict[str, np.ndarray]]:
    """`realised_reward` as a games.reward_model reward for icu_sepsis(observation=both|onehot)."""
    n = mdp.P.shape[0]

    def reward(step: Transition) -> dict[str, np.ndarray]:
        survived = step.game_rewards[group] > 0
        r = realised_reward(debate_win, lam, state_of(step.obs[group], n), np.maximum(step.actions[group], 0),
                            survived, step.terminated[:, None] & ~survived)
        return {group: np.where(step.active[group], r, 0.0)}

    return reward


def offline_reward(mdp: SepsisMDP, debate_win: np.ndarray, lam: float) -> Callable[[Any], torch.Tensor]:
    """`realised_reward` for offline data (marl.demos.Transitions of icu_sepsis with the one-hot):
    for DQN's `reward_fn`."""
    n = mdp.P.shape[0]

    def reward(t: Any) -> torch.Tensor:
        survived = t.rewards.numpy() > 0
        r = realised_reward(debate_win, lam, state_of(t.obs.numpy(), n), t.actions.clamp(min=0).numpy(),
                            survived, (t.terminated.numpy()[:, None] > 0) & ~survived)
        return torch.as_tensor(r, dtype=torch.float32)

    return reward


def judge_on_raw(judge: Judge, mean: np.ndarray, std: np.ndarray) -> Judge:
    """A judge of raw features used on standardised ones (debaters see x_std = (x - mean) / std;
    revealed values are mapped back before judging, unrevealed ones stay hidden)."""

    def scores(values: np.ndarray, mask: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        return judge(np.where(mask, values * std + mean, 0.0), mask, decisions)

    return scores


__all__ = ["DEBATE_SCALE", "ENV_SCALE", "GAMMA", "debate_outcomes", "greedy_policy_of",
           "judge_on_raw", "justifiability", "mixed_reward", "offline_reward", "patient_states", "plan",
           "policy_actions", "realised_reward", "reward_model", "state_of"]
