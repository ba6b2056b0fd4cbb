"""Sample-based Nash-learning losses over log-probabilities of whole responses.

Each function takes tensors of per-response log-probabilities (so it runs unchanged on a
tabular policy, an MLP, a tiny transformer or any Hugging Face causal LM) plus preference
outcomes, and returns a scalar loss. Notation: logp = log pi_theta(y | x) (with grad),
logp_t = log pi_t(y | x) of the current iterate (no grad), logp_ref = log pi_ref(y | x);
o(y, y') in [0, 1] is an oracle outcome (sampled 0/1, or a probability).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sppo_loss(logp: torch.Tensor, logp_t: torch.Tensor, win_rate: torch.Tensor, eta: float) -> torch.Tensor:
    """SPPO (Wu et al. 2025, Eq. 3.6): regress log(pi_theta / pi_t)(y) onto eta (P(y > pi_t) - 1/2),
    the multiplicative-weights target with log Z approximated by eta / 2."""
    return ((logp - logp_t) - eta * (win_rate - 0.5)).pow(2).mean()


def inpo_loss(logp_w: torch.Tensor, logp_l: torch.Tensor, logp_t_w: torch.Tensor, logp_t_l: torch.Tensor,
              logp_ref_w: torch.Tensor, logp_ref_l: torch.Tensor, eta: float, tau: float) -> torch.Tensor:
    """INPO (Zhang et al. 2025, Eq. 8): h = log pi/pi(w,l) - eta tau log ref(w,l) - (1 - eta tau) log pi_t(w,l);
    loss (h - eta / 2)^2; its population minimiser is the online-mirror-descent step."""
    h = (logp_w - logp_l) - eta * tau * (logp_ref_w - logp_ref_l) - (1.0 - eta * tau) * (logp_t_w - logp_t_l)
    return (h - 0.5 * eta).pow(2).mean()


def online_ipo_loss(logp_y: torch.Tensor, logp_y2: torch.Tensor, logp_ref_y: torch.Tensor, logp_ref_y2: torch.Tensor,
                    outcome: torch.Tensor, beta: float) -> torch.Tensor:
    """Online IPO (Calandriello et al. 2024; EGPO's 'Online IPO 2'): y, y' ~ sg(pi_theta),
    (h_theta(y, y') - (o(y, y') - 1/2) / beta)^2 with h the log-ratio difference against the reference."""
    h = (logp_y - logp_ref_y) - (logp_y2 - logp_ref_y2)
    return (h - (outcome - 0.5) / beta).pow(2).mean()


def egpo_loss(logp_y: torch.Tensor, logp_y2: torch.Tensor, logp_ref_y: torch.Tensor, logp_ref_y2: torch.Tensor,
              outcome_y: torch.Tensor, outcome_y2: torch.Tensor, beta: float) -> torch.Tensor:
    """EGPO (Zhou et al. 2025, the 'Online IPO 1' loss): y, y' from a full-support sampler, y'' from the
    opponent; (h_theta(y, y') - (o(y, y'') - o(y', y'')) / beta)^2. Its gradient is the OMD direction;
    the extragradient comes from evaluating it twice (llm_agents.preference_trainer)."""
    h = (logp_y - logp_ref_y) - (logp_y2 - logp_ref_y2)
    return (h - (outcome_y - outcome_y2) / beta).pow(2).mean()


def nash_mp_loss(logp_y: torch.Tensor, logp_y2: torch.Tensor, logp_k_y: torch.Tensor, logp_k_y2: torch.Tensor,
                 logp_ref_y: torch.Tensor, logp_ref_y2: torch.Tensor, win_y: torch.Tensor, win_y2: torch.Tensor,
                 eta: float, beta: float) -> torch.Tensor:
    """Approximate Nash-MP (Tiapkin et al. 2025): regress each prox step's closed form,
    log pi' = c [log pi_k + eta beta log ref + eta P(. > opponent)], c = 1 / (1 + eta beta),
    on pair differences (the log-partition cancels)."""
    c = 1.0 / (1.0 + eta * beta)
    target = c * ((logp_k_y - logp_k_y2) + eta * beta * (logp_ref_y - logp_ref_y2) + eta * (win_y - win_y2))
    return ((logp_y - logp_y2) - target).pow(2).mean()


def nash_md_pg_loss(logp: torch.Tensor, logp_ref: torch.Tensor, outcome: torch.Tensor, beta: float) -> torch.Tensor:
    """Nash-MD-PG (Munos et al. 2024, Sec. 7; TRL's NashMDTrainer): y ~ pi_theta, y' ~ the geometric
    mixture; REINFORCE on (o(y, y') - 1/2) - beta log(pi_theta / ref)(y), 1/2 as control variate."""
    advantage = (outcome - 0.5) - beta * (logp - logp_ref).detach()
    return -(advantage * logp).mean()


def dno_loss(logp_1: torch.Tensor, logp_2: torch.Tensor, logp_t_1: torch.Tensor, logp_t_2: torch.Tensor,
             reward_1: torch.Tensor, reward_2: torch.Tensor, beta: float) -> torch.Tensor:
    """DNO (Rosset et al. 2024, Alg. 1): soft-label logistic regression of beta log(pi_theta / pi_t)
    differences onto the win-rate rewards r_t(y) = P(y > pi_t)."""
    margin = beta * ((logp_1 - logp_t_1) - (logp_2 - logp_t_2))
    label = torch.sigmoid(reward_1 - reward_2)
    return -(label * F.logsigmoid(margin) + (1.0 - label) * F.logsigmoid(-margin)).mean()


def spo_loss(logp: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
    """SPO (Swamy et al. 2024): REINFORCE with the win-rate reward r(y_i) = mean_j o(y_i, y_j),
    the batch mean as baseline."""
    advantage = (reward - reward.mean()).detach()
    return -(advantage * logp).mean()


def dpo_loss(logp_w: torch.Tensor, logp_l: torch.Tensor, logp_ref_w: torch.Tensor, logp_ref_l: torch.Tensor,
             beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, Eq. 7): -log sigma(beta (h_w - h_l))."""
    return -F.logsigmoid(beta * ((logp_w - logp_ref_w) - (logp_l - logp_ref_l))).mean()


def ipo_loss(logp_w: torch.Tensor, logp_l: torch.Tensor, logp_ref_w: torch.Tensor, logp_ref_l: torch.Tensor,
             beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2024, Eq. 17): (h_w - h_l - 1 / (2 beta))^2."""
    return ((logp_w - logp_ref_w) - (logp_l - logp_ref_l) - 0.5 / beta).pow(2).mean()
