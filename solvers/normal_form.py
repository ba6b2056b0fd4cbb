"""The mirror-descent family on normal-form games, plus fictitious play and an exact LP.

Every method runs all players simultaneously on the payoff tensor. The core updates are
small pure functions (state in, state out); the named solvers are thin configurations:

- mwu             Hedge / multiplicative weights: x' ∝ x exp(eta g). Average iterate converges.
- optimistic-mwu  x' ∝ x exp(eta (2 g_t - g_{t-1})) (Rakhlin & Sridharan 2013). Last iterate converges.
- extragradient   Korpelevich (1976): y = Π(x + eta g(x)), x' = Π(x + eta g(y)), Euclidean projection.
- mirror-prox     Nemirovski (2004): the same two steps in the entropy geometry.
- mmd             magnetic mirror descent (Sokota et al. 2023): x' ∝ (x ρ^{eta α} exp(eta g))^{1/(1+eta α)};
                  the last iterate converges to the α-regularised (QRE) equilibrium.
- fictitious-play Brown (1951): best respond to the others' empirical average.
- lp              exact two-player zero-sum equilibrium with SciPy's HiGHS (ground truth).

With alpha > 0 the entropy-geometry methods solve the game regularised by -alpha KL(x || magnet),
which is the KL-regularised preference game of the Nash-learning algorithms (SPPO, Nash-MD,
EGPO, Nash-MP are configurations of these; see llm_agents / the preference scenarios).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Strategies
from equilibria.games.core import Game, Policy
from equilibria.solvers.base import NormalFormPolicy, Solver, register_solver
from equilibria.solvers.exploitability import _action_values


# ----------------------------------------------------------------------------- pure updates
def normalize_log(logits: np.ndarray) -> np.ndarray:
    """softmax of unnormalised log-probabilities."""
    z = logits - logits.max()
    p = np.exp(z)
    return p / p.sum()


def entropy_step(x: np.ndarray, g: np.ndarray, eta: float, alpha: float = 0.0,
                 magnet: np.ndarray | None = None) -> np.ndarray:
    """argmax_x' eta <g, x'> - eta alpha KL(x' || magnet) - KL(x' || x), in closed form."""
    log_x = np.log(np.maximum(x, 1e-300))
    if alpha == 0.0:
        return normalize_log(log_x + eta * g)
    log_m = np.log(np.maximum(magnet, 1e-300))
    return normalize_log((log_x + eta * alpha * log_m + eta * g) / (1.0 + eta * alpha))


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ind = np.arange(1, len(v) + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    theta = css[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def euclidean_step(x: np.ndarray, g: np.ndarray, eta: float) -> np.ndarray:
    return project_simplex(x + eta * g)


def gradients(payoffs: np.ndarray, strategies: list[np.ndarray]) -> list[np.ndarray]:
    """Each player's payoff per pure action against the others' mixed strategies."""
    return [_action_values(payoffs, strategies, p) for p in range(len(strategies))]


# ----------------------------------------------------------------------------- configs
class MirrorConfig(Config):
    """Step size, optional regularisation toward a magnet, and the step-size schedule."""

    eta: PositiveFloat | None = 0.1
    """step size; null: alpha / max|payoff|^2 (OpenSpiel's MMD rule), needs alpha > 0"""
    alpha: NonNegativeFloat = 0.0
    """weight of -alpha KL(x || magnet); > 0 makes the last iterate converge to a QRE"""
    magnet: Strategies | None = None
    """one strategy per player; default uniform"""
    schedule: Literal["constant", "sqrt"] = "constant"
    """eta_t = eta or eta / sqrt(t)"""
    geometry: Literal["entropy", "euclidean"] = "entropy"
    """mirror map: negative entropy (multiplicative weights) or Euclidean (projected gradient)"""
    init: Strategies | None = None
    """initial strategies, one per player; default uniform"""

    def check(self) -> None:
        if self.eta is None and self.alpha <= 0:
            raise ValueError("eta: may be left out (null) only with alpha > 0")
        if self.geometry == "euclidean" and self.alpha > 0:
            raise ValueError("alpha: > 0 (KL regularisation) needs geometry 'entropy'")


class FictitiousPlayConfig(Config):
    """Fictitious play: no parameters beyond the initial strategies."""

    init: Strategies | None = None
    """initial strategies, one per player; default uniform"""


class LPConfig(Config):
    """Exact LP for two-player zero-sum games (SciPy HiGHS)."""

    method: Literal["highs", "highs-ds", "highs-ipm"] = "highs"
    """SciPy's HiGHS method"""


# ----------------------------------------------------------------------------- solvers
class _NormalFormSolver(Solver):
    def __init__(self, game: Game, config):
        super().__init__(game, config)
        self.payoffs = game.payoff_tensor()
        self.num_actions = self.payoffs.shape[1:]
        init = getattr(config, "init", None)
        if init is not None:
            if len(init) != len(self.num_actions):
                raise ValueError(f"init needs one strategy per player ({len(self.num_actions)}), got {len(init)}")
            self.x = [self._check_strategy(np.asarray(s, dtype=np.float64), p, "init") for p, s in enumerate(init)]
        else:
            self.x = [np.full(n, 1.0 / n) for n in self.num_actions]
        self.avg = [np.zeros(n) for n in self.num_actions]
        self.weight = np.zeros(1)  # total averaging weight so far

    def _check_strategy(self, s: np.ndarray, p: int, what: str) -> np.ndarray:
        if s.shape != (self.num_actions[p],) or np.any(s < 0) or abs(s.sum() - 1.0) > 1e-6:
            raise ValueError(f"{what}[{p}] must be a probability vector of length {self.num_actions[p]}")
        return s / s.sum()

    def _accumulate(self, points: list[np.ndarray]) -> None:
        for p, y in enumerate(points):
            self.avg[p] += y
        self.weight[0] += 1.0

    def average_policy(self) -> Policy:
        if self.weight[0] == 0:
            return NormalFormPolicy([x.copy() for x in self.x])
        return NormalFormPolicy([a / self.weight[0] for a in self.avg])

    def current_policy(self) -> Policy:
        return NormalFormPolicy([x.copy() for x in self.x])

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {f"x{p}": x for p, x in enumerate(self.x)}
        out.update({f"avg{p}": a for p, a in enumerate(self.avg)})
        out["weight"] = self.weight
        return out


@register_solver("mwu", MirrorConfig, kind="normal_form", description="Hedge / multiplicative weights (average iterate)")
@register_solver("optimistic-mwu", MirrorConfig, kind="normal_form", requires_zero_sum=True,
                 description="optimistic multiplicative weights (last-iterate convergence)")
@register_solver("extragradient", MirrorConfig, kind="normal_form", requires_zero_sum=True, geometry="euclidean",
                 description="extragradient with Euclidean projection (Korpelevich 1976)")
@register_solver("mirror-prox", MirrorConfig, kind="normal_form", requires_zero_sum=True,
                 description="mirror prox in the entropy geometry (Nemirovski 2004)")
class MirrorSolver(_NormalFormSolver):
    def __init__(self, game: Game, config: MirrorConfig):
        super().__init__(game, config)
        n = len(self.num_actions)
        if config.magnet is not None:
            if len(config.magnet) != n:
                raise ValueError(f"magnet needs one strategy per player ({n}), got {len(config.magnet)}")
            self.magnet = [self._check_strategy(np.asarray(m, dtype=np.float64), p, "magnet")
                           for p, m in enumerate(config.magnet)]
        else:
            self.magnet = [np.full(k, 1.0 / k) for k in self.num_actions]
        self.prev_grad = [np.zeros(k) for k in self.num_actions]  # optimistic: g_{t-1}

    def _eta(self) -> float:
        c = self.config
        eta = c.eta if c.eta is not None else c.alpha / float(np.max(np.abs(self.payoffs))) ** 2
        return eta / np.sqrt(self.iteration) if c.schedule == "sqrt" else eta

    def _move(self, x: list[np.ndarray], g: list[np.ndarray], eta: float) -> list[np.ndarray]:
        c = self.config
        if c.geometry == "euclidean":
            return [euclidean_step(xp, gp, eta) for xp, gp in zip(x, g)]
        return [entropy_step(xp, gp, eta, c.alpha, mp) for xp, gp, mp in zip(x, g, self.magnet)]

    def step(self) -> None:
        self.iteration += 1
        eta = self._eta()
        g = gradients(self.payoffs, self.x)
        if self.name in ("extragradient", "mirror-prox"):
            y = self._move(self.x, g, eta)  # extrapolation (half) step
            self.x = self._move(self.x, gradients(self.payoffs, y), eta)
            self._accumulate(y)
            return
        if self.name == "optimistic-mwu":
            g_opt = [2.0 * gp - pp for gp, pp in zip(g, self.prev_grad)] if self.iteration > 1 else g
            self.prev_grad = g
            self.x = self._move(self.x, g_opt, eta)
        else:  # mwu and mmd (the same step; mmd's alpha adds the magnet)
            self.x = self._move(self.x, g, eta)
        self._accumulate(self.x)

    def _arrays(self) -> dict[str, np.ndarray]:
        out = super()._arrays()
        out.update({f"prev_grad{p}": g for p, g in enumerate(self.prev_grad)})
        return out


@register_solver("fictitious-play", FictitiousPlayConfig, kind="normal_form",
                 description="fictitious play (Brown 1951): best respond to the empirical average")
class FictitiousPlaySolver(_NormalFormSolver):
    def step(self) -> None:
        self.iteration += 1
        avg = self.average_policy().strategies
        best = []
        for p, n in enumerate(self.num_actions):
            values = _action_values(self.payoffs, avg, p)
            best.append(np.eye(n)[int(np.argmax(values))])
        self.x = best
        self._accumulate(best)


@register_solver("lp", LPConfig, kind="normal_form", requires_zero_sum=True,
                 description="exact two-player zero-sum equilibrium by linear programming (SciPy HiGHS)")
class LPSolver(_NormalFormSolver):
    def step(self) -> None:
        self.iteration += 1
        if self.iteration > 1:
            return  # exact after one step
        a = self.payoffs[0]
        x, v = solve_zero_sum(a, self.config.method)
        y, _ = solve_zero_sum(-a.T, self.config.method)
        self.x = [x, y]
        self.avg = [x.copy(), y.copy()]
        self.weight[0] = 1.0
        self.value = v


def solve_zero_sum(a: np.ndarray, method: str = "highs") -> tuple[np.ndarray, float]:
    """Maximin strategy and value of the row player of payoff matrix `a`."""
    from scipy.optimize import linprog

    m, n = a.shape
    # variables: x (m), v; maximise v  s.t.  v - x^T a[:, j] <= 0 for every column j, sum x = 1
    c = np.zeros(m + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-a.T, np.ones((n, 1))])
    b_ub = np.zeros(n)
    a_eq = np.hstack([np.ones((1, m)), np.zeros((1, 1))])
    bounds = [(0, None)] * m + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=bounds, method=method)
    if not res.success:  # pragma: no cover - a bounded, feasible LP always solves
        raise RuntimeError(f"LP failed: {res.message}")
    x = np.maximum(res.x[:m], 0.0)
    return x / x.sum(), float(res.x[-1])
