"""Nash learning from preferences, exactly: metrics and the tabular algorithms.

Notation (one row per context x): P[x] is the preference matrix, rho = pi_ref, beta the
KL strength, w = P pi the win rates P(y > pi). The beta-regularised game has the unique
symmetric equilibrium pi*_beta(y) ∝ rho(y) exp(w*(y) / beta).

Every algorithm is a mirror-descent map on the simplex (the same dynamics as
solvers.normal_form), written as a small pure function of (logits, P, rho, beta, eta):

  sppo        pi' ∝ pi exp(eta w(pi))                           multiplicative weights; average iterate
  spo         same map on win-rate rewards; average iterate    (Swamy et al. 2024)
  dno         pi' ∝ pi exp(w(pi) / beta_dno)                    batched policy iteration (Rosset et al. 2024)
  inpo        pi' ∝ pi^(1-eta beta) rho^(eta beta) exp(eta w(pi))   online mirror descent (Zhang et al. 2025)
  online-ipo  the same OMD map: online IPO's population fixed point (Calandriello et al. 2024)
  nash-md     mixture pi_mu ∝ pi^(1-eta beta) rho^(eta beta); pi' ∝ pi_mu exp(eta w(pi_mu))  (Munos et al. 2024)
  egpo        extragradient on the OMD map: half step from pi with w(pi), full step from pi with w(pi_half)
  nash-mp     mirror prox with the regulariser in the prox: c = 1/(1+eta beta),
              log pi_half = c[log pi + eta beta log rho + eta w(pi)], full step with w(pi_half)
              (= solvers.normal_form.entropy_step with alpha=beta, magnet=rho)
  iterative-dpo  a transitive baseline: fit a Bradley-Terry reward to on-policy pairs, pi' ∝ pi exp(eta r)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat
from equilibria.games.core import Game, State
from equilibria.solvers.base import Solver, register_solver
from equilibria.solvers.normal_form import entropy_step


# ----------------------------------------------------------------------------- helpers
def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def win_rates(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """w[x, y] = P(y > pi | x)."""
    return np.einsum("xij,xj->xi", P, pi)


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per context."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return t.sum(axis=-1)


# ----------------------------------------------------------------------------- exact metrics
def duality_gap(P: np.ndarray, pi: np.ndarray, weights: np.ndarray | None = None) -> float:
    """DG0(pi) = 2 max_y P(y > pi) - 1 (the symmetric profile's NashConv), averaged over contexts."""
    g = 2.0 * win_rates(P, pi).max(axis=-1) - 1.0
    return float(np.average(g, weights=weights))


def regularized_gap(P: np.ndarray, pi: np.ndarray, ref: np.ndarray, beta: float,
                    weights: np.ndarray | None = None) -> float:
    """DG_beta(pi) = 2 beta log sum_y rho(y) exp(w(y)/beta) + 2 beta KL(pi || rho) - 1, in closed form."""
    if beta <= 0:
        return duality_gap(P, pi, weights)
    z = win_rates(P, pi) / beta + np.log(ref)
    m = z.max(axis=-1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=-1))
    g = 2.0 * beta * lse + 2.0 * beta * kl(pi, ref) - 1.0
    return float(np.average(np.maximum(g, 0.0), weights=weights))


def regularized_equilibrium(P: np.ndarray, ref: np.ndarray, beta: float, tol: float = 1e-13,
                            max_iters: int = 200_000) -> np.ndarray:
    """pi*_beta to near machine precision: mirror prox (linear last-iterate convergence), then
    Newton steps on the fixed point log pi = log rho + P pi / beta + c."""
    if beta <= 0:
        raise ValueError("the regularised equilibrium needs beta > 0")
    c_, n = ref.shape
    logits = np.log(ref).copy()
    eta = 1.0  # mirror prox is stable for eta * max|P| <= 1
    for it in range(max_iters):
        pi = softmax(logits)
        if it % 50 == 0 and regularized_gap(P, pi, ref, beta) < 1e-11:
            break
        logits = nash_mp_step(logits, P, ref, beta, eta)
    for _ in range(30):  # Newton on F(z) = z - log rho - P softmax(z) / beta = 0 (F(z + c) = F(z) + c fixes the gauge)
        pi = softmax(logits)
        done = True
        for x in range(c_):
            f = logits[x] - np.log(ref[x]) - P[x] @ pi[x] / beta
            if np.ptp(f) > tol * max(1.0, 1.0 / beta):
                done = False
            jac = np.eye(n) - P[x] @ (np.diag(pi[x]) - np.outer(pi[x], pi[x])) / beta
            logits[x] = logits[x] - np.linalg.solve(jac, f)
        if done:
            break
    return softmax(logits)


def kl_to_equilibrium(pi: np.ndarray, star: np.ndarray, weights: np.ndarray | None = None) -> float:
    """KL(pi*_beta || pi), averaged over contexts."""
    return float(np.average(kl(star, pi), weights=weights))


def win_rate(P: np.ndarray, pi: np.ndarray, other: np.ndarray, weights: np.ndarray | None = None) -> float:
    """P(pi > other), averaged over contexts."""
    return float(np.average(np.einsum("xi,xij,xj->x", pi, P, other), weights=weights))


# ----------------------------------------------------------------------------- pure updates (log space)
def mwu_step(logits: np.ndarray, P: np.ndarray, eta: float) -> np.ndarray:
    return logits + eta * win_rates(P, softmax(logits))


def omd_step(logits: np.ndarray, P: np.ndarray, ref: np.ndarray, beta: float, eta: float,
             opponent: np.ndarray | None = None) -> np.ndarray:
    """INPO / online IPO: pi' ∝ pi^(1-eta beta) rho^(eta beta) exp(eta P(. > opponent))."""
    lp = log_softmax(logits)
    opp = softmax(logits) if opponent is None else opponent
    return (1.0 - eta * beta) * lp + eta * beta * np.log(ref) + eta * win_rates(P, opp)


def nash_md_step(logits: np.ndarray, P: np.ndarray, ref: np.ndarray, beta: float, eta: float) -> np.ndarray:
    lp_mix = log_softmax((1.0 - eta * beta) * log_softmax(logits) + eta * beta * np.log(ref))
    return lp_mix + eta * win_rates(P, np.exp(lp_mix))


def egpo_step(logits: np.ndarray, P: np.ndarray, ref: np.ndarray, beta: float, eta: float) -> tuple[np.ndarray, np.ndarray]:
    half = omd_step(logits, P, ref, beta, eta)
    return omd_step(logits, P, ref, beta, eta, opponent=softmax(half)), half


def nash_mp_step(logits: np.ndarray, P: np.ndarray, ref: np.ndarray, beta: float, eta: float,
                 return_half: bool = False):
    """Mirror prox with the regulariser inside the prox (the normal-form entropy step per context)."""
    pi = softmax(logits)
    half = np.stack([entropy_step(pi[x], P[x] @ pi[x], eta, beta, ref[x]) for x in range(len(pi))])
    full = np.stack([entropy_step(pi[x], P[x] @ half[x], eta, beta, ref[x]) for x in range(len(pi))])
    out = np.log(np.maximum(full, 1e-300))
    return (out, np.log(np.maximum(half, 1e-300))) if return_half else out


def bradley_terry_fit(P: np.ndarray, pair_weights: np.ndarray, iters: int = 50) -> np.ndarray:
    """Maximum-likelihood BT rewards for soft pairwise outcomes P weighted by pair_weights (per context)."""
    c, n, _ = P.shape
    r = np.zeros((c, n))
    for _ in range(iters):
        s = 1.0 / (1.0 + np.exp(-(r[:, :, None] - r[:, None, :])))
        grad = ((P - s) * pair_weights).sum(axis=2) - ((P - s) * pair_weights).sum(axis=1)
        r += 2.0 * grad / (pair_weights.sum(axis=(1, 2), keepdims=False)[:, None] + 1e-12)
        r -= r.mean(axis=1, keepdims=True)
    return r


# ----------------------------------------------------------------------------- solvers
class PreferenceConfig(Config):
    """Tabular Nash-learning dynamics. Defaults follow the papers' tabular settings where they exist
    (EGPO's protocol: beta 0.1, eta 1; Nash-MD's decreasing schedule eta_t = 2 / (beta (t + 2)))."""

    eta: PositiveFloat = 1.0
    """step size on the win-rate (P) scale"""
    beta: NonNegativeFloat | None = None
    """KL strength; null: the game's beta"""
    schedule: Literal["constant", "decreasing"] = "constant"
    """nash-md: decreasing is eta_t = 2 / (beta (t + 2))"""
    init: Literal["reference", "uniform"] = "reference"
    """starting policy"""


class PreferencePolicy:
    """One distribution over responses per context."""

    def __init__(self, probs: np.ndarray):
        self.probs = probs

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        ctx = max(getattr(state, "context", 0), 0)
        return {a: float(p) for a, p in enumerate(self.probs[ctx])}


_ALGORITHMS = {
    "sppo": "SPPO (Wu et al. 2025): multiplicative weights in self-play; report the average iterate",
    "spo": "SPO (Swamy et al. 2024): self-play with win-rate reward; average iterate",
    "dno": "DNO (Rosset et al. 2024): batched policy iteration pi' ∝ pi exp(w / beta)",
    "inpo": "INPO (Zhang et al. 2025): online mirror descent on the regularised game",
    "online-ipo": "online IPO (Calandriello et al. 2024): same OMD fixed point",
    "nash-md": "Nash-MD (Munos et al. 2024): regularised MD against the geometric mixture",
    "egpo": "EGPO (Zhou et al. 2025): extragradient on the OMD map",
    "nash-mp": "Nash-MP (Tiapkin et al. 2025): mirror prox, regulariser in the prox",
    "iterative-dpo": "iterative DPO: Bradley-Terry fit on on-policy pairs (transitive baseline)",
}


def _preference_solver(name: str):
    return register_solver(name, PreferenceConfig, kind="preference", description=_ALGORITHMS[name],
                           **({"schedule": "decreasing"} if name == "nash-md" else {}))


@_preference_solver("iterative-dpo")
@_preference_solver("nash-mp")
@_preference_solver("egpo")
@_preference_solver("nash-md")
@_preference_solver("online-ipo")
@_preference_solver("inpo")
@_preference_solver("dno")
@_preference_solver("spo")
@_preference_solver("sppo")
class PreferenceSolver(Solver):
    """Exact (full-matrix) tabular dynamics on a PreferenceGame."""

    def __init__(self, game: Game, config: PreferenceConfig):
        super().__init__(game, config)
        if not hasattr(game, "P"):
            raise ValueError(f"preference algorithms run on preference games, not {game.info.name}")
        self.P, self.ref = game.P, game.reference
        self.beta = game.beta if config.beta is None else config.beta
        self.weights = game.context_weights
        start = self.ref if config.init == "reference" else np.full_like(self.ref, 1.0 / self.ref.shape[1])
        self.logits = np.log(start).copy()
        self.avg = np.zeros_like(self.ref)
        self.evaluations = np.zeros(1)  # evaluations of the win-rate vector P(. > pi), all contexts
        self._last_half: np.ndarray | None = None

    def _eta(self) -> float:
        c = self.config
        if c.schedule == "decreasing":
            if self.beta <= 0:
                raise ValueError("the decreasing schedule 2 / (beta (t + 2)) needs beta > 0")
            return min(2.0 / (self.beta * (self.iteration + 1)), 1.0 / self.beta)
        return c.eta

    def step(self) -> None:
        self.iteration += 1
        eta, beta, P, ref = self._eta(), self.beta, self.P, self.ref
        name = self.name
        if name in ("sppo", "spo"):
            self.logits = mwu_step(self.logits, P, eta)
            evals = 1
        elif name == "dno":
            self.logits = mwu_step(self.logits, P, 1.0 / beta if beta > 0 else eta)
            evals = 1
        elif name in ("inpo", "online-ipo"):
            self.logits = omd_step(self.logits, P, ref, beta, eta)
            evals = 1
        elif name == "nash-md":
            self.logits = nash_md_step(self.logits, P, ref, beta, eta)
            evals = 1
        elif name == "egpo":
            self.logits, _ = egpo_step(self.logits, P, ref, beta, eta)
            evals = 2
        elif name == "nash-mp":
            self.logits = nash_mp_step(self.logits, P, ref, beta, eta)
            evals = 2
        else:  # iterative-dpo
            pi = softmax(self.logits)
            sampling = 0.9 * pi + 0.1 / pi.shape[1]
            r = bradley_terry_fit(P, sampling[:, :, None] * sampling[:, None, :])
            self.logits = log_softmax(self.logits) + eta * r
            evals = 1
        self.logits = log_softmax(self.logits)
        self.avg += softmax(self.logits)
        self.evaluations[0] += evals

    def current_policy(self) -> PreferencePolicy:
        return PreferencePolicy(softmax(self.logits))

    def average_policy(self) -> PreferencePolicy:
        if self.iteration == 0:
            return self.current_policy()
        return PreferencePolicy(self.avg / self.iteration)

    def reported_policy(self) -> PreferencePolicy:
        """What each paper reports: the average iterate for the unregularised no-regret methods."""
        return self.average_policy() if self.name in ("sppo", "spo") else self.current_policy()

    def metrics(self, star: np.ndarray | None = None) -> dict[str, float]:
        pi = self.reported_policy().probs
        out = {"dg0": duality_gap(self.P, pi, self.weights),
               "dg_beta": regularized_gap(self.P, pi, self.ref, self.game.beta, self.weights),
               "win_rate_vs_ref": win_rate(self.P, pi, self.ref, self.weights),
               "win_rate_evaluations": float(self.evaluations[0]),
               "comparisons": float(self.evaluations[0]) * self.P.shape[1] ** 2 * self.P.shape[0]}
        if star is not None:
            out["kl_to_equilibrium"] = kl_to_equilibrium(pi, star, self.weights)
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"logits": self.logits, "avg": self.avg, "evaluations": self.evaluations}
