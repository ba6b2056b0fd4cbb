"""Sampled Nash-learning from preferences for torch policies, with exact gaps where enumerable.

One loop serves every algorithm: each iteration snapshots pi_t, samples K responses per
context, asks the (noisy) oracle for comparisons (counted as preference queries), and takes
optimizer steps on the algorithm's loss from llm_agents.preference_losses. EGPO and Nash-MP
take two steps per iteration with a parameter + optimizer-state backup in between, as the
EGPO trainer does on language models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, PositiveInt, Probability, Seed, count
from equilibria.games.preference import NoisyOracle, PreferenceGame
from equilibria.llm_agents import preference_losses as L
from equilibria.llm_agents.policies import ResponsePolicy
from equilibria.solvers.preference import (
    duality_gap,
    kl_to_equilibrium,
    regularized_equilibrium,
    regularized_gap,
    win_rate,
)

Algorithm = Literal["sppo", "spo", "dno", "inpo", "online-ipo", "egpo", "nash-mp", "nash-md", "dpo", "ipo"]


class NeuralPreferenceConfig(Config):
    """Sampled training. Defaults: EGPO's neural protocol (beta 0.1, Adam) scaled to CPU runs;
    Nash-MD-PG's mixture 0.125 (EGPO repo); SPPO's eta on the win-rate scale.

    The step matters more than anything else here: with Adam at lr 0.01 and four inner steps,
    even the exact expected Nash-MD gradient overshoots on the tiny LM into near-deterministic
    policies where the softmax policy gradient vanishes, and a sampled run then ends wherever
    single comparisons push it. lr 0.003 with 64 samples is stable for every algorithm there;
    EGPO's own neural runs use lr 1e-3 over many more iterations."""

    algorithm: Algorithm = "egpo"
    """the sample loss (llm_agents.preference_losses)"""
    iterations: count(10_000_000) = 200
    """iterations of sample, compare, update"""
    beta: NonNegativeFloat | None = None
    """KL strength toward the reference; null: the game's beta"""
    eta: PositiveFloat = 1.0
    """SPPO / INPO / Nash-MP step on the win-rate scale"""
    lr: PositiveFloat = 0.003
    """optimizer learning rate"""
    optimizer: Literal["adam", "sgd"] = "adam"
    samples: Annotated[int, Field(ge=2, le=65_536)] = 64
    """K responses per context per iteration (pairs are compared, so at least 2)"""
    inner_steps: count(1000) = 4
    """optimizer steps per (half) iteration on the same samples"""
    mixture_coef: Probability = 0.125
    """Nash-MD-PG geometric mixture weight on the reference (EGPO repo: 0.125)"""
    label_noise: Probability = 0.0
    """flip each sampled comparison with this probability"""
    soft_labels: bool = False
    """use P(y > y') itself instead of a sampled outcome"""
    eval_every: PositiveInt = 10
    """iterations between exact evaluations"""
    seed: Seed = 0
    """seeds the sampling and the oracle"""


class PreferenceTrainer:
    def __init__(self, policy: ResponsePolicy, game: PreferenceGame, config: NeuralPreferenceConfig,
                 reference: ResponsePolicy | None = None):
        self.policy, self.game, self.config = policy, game, config
        self.ref = reference if reference is not None else copy.deepcopy(policy)
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.beta = game.beta if config.beta is None else config.beta
        self.oracle = NoisyOracle(game.P, config.label_noise, seed=config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.opt = self._optimizer()
        self.iteration = 0
        with torch.no_grad():
            self.ref_table = self.ref.table().detach()
        ref_probs = self.ref_table.exp().double().numpy()
        if not np.allclose(ref_probs, game.reference, atol=1e-5):
            raise ValueError("the game's reference policy must equal the reference model's distribution; "
                             "build the game with reference=exp(ref.table())")
        self.star = regularized_equilibrium(game.P, game.reference, self.beta) if self.beta > 0 else None

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.config.lr)
        return torch.optim.Adam(params, lr=self.config.lr)

    # -- oracle -------------------------------------------------------------------
    def _outcome(self, x: torch.Tensor, y: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
        xs, a, b = x.numpy(), y.numpy(), y2.numpy()
        if self.config.soft_labels:
            self.oracle.queries += a.size
            return torch.as_tensor(self.game.P[xs, a, b], dtype=torch.float32)
        return torch.as_tensor(self.oracle.compare(xs, a, b), dtype=torch.float32)

    def _win_rates(self, x: torch.Tensor, ys: torch.Tensor, opp: torch.Tensor) -> torch.Tensor:
        """Estimated P(y_i > pi) for each sample against opponent samples: [B, K]."""
        b, k = ys.shape
        m = opp.shape[1]
        xx = x[:, None, None].expand(b, k, m).reshape(-1)
        o = self._outcome(xx, ys[:, :, None].expand(b, k, m).reshape(-1), opp[:, None, :].expand(b, k, m).reshape(-1))
        return o.view(b, k, m).mean(-1)

    # -- one iteration ----------------------------------------------------------------
    def _steps(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        loss = torch.zeros(())
        for _ in range(self.config.inner_steps):
            self.opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            self.opt.step()
        return float(loss.detach())

    def _lp(self, policy: ResponsePolicy, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return policy.log_probs(x.reshape(-1), y.reshape(-1)).view(y.shape)

    def step(self) -> float:
        c, beta, eta = self.config, self.beta, self.config.eta
        self.iteration += 1
        n_ctx, k = self.game.num_contexts, c.samples
        x = torch.arange(n_ctx)
        xk = x[:, None].expand(n_ctx, k)
        snapshot = copy.deepcopy(self.policy)  # pi_t
        algo = c.algorithm
        if algo in ("sppo", "spo", "dno"):
            ys = snapshot.sample(x, k, self.gen) if algo != "spo" else self.policy.sample(x, k, self.gen)
            win = self._win_rates(x, ys, ys)  # includes y_i vs itself: 1/2, as SPPO's estimator does
            with torch.no_grad():
                lp_t = self._lp(snapshot, xk, ys)
            if algo == "sppo":
                return self._steps(lambda: L.sppo_loss(self._lp(self.policy, xk, ys), lp_t, win, eta))
            if algo == "spo":
                return self._steps(lambda: L.spo_loss(self._lp(self.policy, xk, ys), win))
            i, j = torch.triu_indices(k, k, offset=1)
            return self._steps(lambda: L.dno_loss(*self._pair(self._lp(self.policy, xk, ys), i, j),
                                                  *self._pair(lp_t, i, j), *self._pair(win, i, j), beta))
        if algo in ("inpo", "dpo", "ipo", "online-ipo"):
            src = self.policy if algo == "online-ipo" else snapshot
            ys = src.sample(x, k, self.gen)
            y1, y2 = ys[:, 0::2], ys[:, 1::2]
            x2 = xk[:, : y1.shape[1]]
            o = self._outcome(x2.reshape(-1), y1.reshape(-1), y2.reshape(-1)).view(y1.shape)
            with torch.no_grad():
                lr1, lr2 = self._lp(self.ref, x2, y1), self._lp(self.ref, x2, y2)
                lt1, lt2 = self._lp(snapshot, x2, y1), self._lp(snapshot, x2, y2)
            if algo == "online-ipo":
                return self._steps(lambda: L.online_ipo_loss(self._lp(self.policy, x2, y1), self._lp(self.policy, x2, y2),
                                                             lr1, lr2, o, beta))
            # order each pair by a sampled outcome: w = winner, l = loser (soft labels are sampled here,
            # so the ordering losses keep their expectation P(y > y'))
            if c.soft_labels:
                o = torch.bernoulli(o, generator=self.gen)
            win_first = o > 0.5
            w, lo = torch.where(win_first, y1, y2), torch.where(win_first, y2, y1)
            lrw, lrl = torch.where(win_first, lr1, lr2), torch.where(win_first, lr2, lr1)
            ltw, ltl = torch.where(win_first, lt1, lt2), torch.where(win_first, lt2, lt1)
            if algo == "inpo":
                return self._steps(lambda: L.inpo_loss(self._lp(self.policy, x2, w), self._lp(self.policy, x2, lo),
                                                       ltw, ltl, lrw, lrl, eta, beta))
            loss = L.dpo_loss if algo == "dpo" else L.ipo_loss
            return self._steps(lambda: loss(self._lp(self.policy, x2, w), self._lp(self.policy, x2, lo), lrw, lrl, beta))
        if algo == "nash-md":
            ys = self.policy.sample(x, k, self.gen)
            opp = self.policy.sample(x, k, self.gen, mixture_logits=self.ref_table, mixture_coef=c.mixture_coef)
            o = self._outcome(xk.reshape(-1), ys.reshape(-1), opp.reshape(-1)).view(ys.shape)
            with torch.no_grad():
                lref = self._lp(self.ref, xk, ys)
            return self._steps(lambda: L.nash_md_pg_loss(self._lp(self.policy, xk, ys), lref, o, beta))
        if algo == "egpo":
            return self._extragradient(x, xk, k)
        if algo == "nash-mp":
            return self._mirror_prox(x, xk, k, snapshot)
        raise ValueError(f"unknown algorithm {algo!r}")  # pragma: no cover - Literal-checked

    @staticmethod
    def _pair(t: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return t[:, i], t[:, j]

    def _egpo_batch(self, x: torch.Tensor, xk: torch.Tensor, k: int, opponent: ResponsePolicy) -> Callable[[], torch.Tensor]:
        uniform = torch.full((len(x), self.game.num_responses), 1.0 / self.game.num_responses)
        y = torch.multinomial(uniform, k, replacement=True, generator=self.gen)
        y2 = torch.multinomial(uniform, k, replacement=True, generator=self.gen)
        y3 = opponent.sample(x, k, self.gen)
        o1 = self._outcome(xk.reshape(-1), y.reshape(-1), y3.reshape(-1)).view(y.shape)
        o2 = self._outcome(xk.reshape(-1), y2.reshape(-1), y3.reshape(-1)).view(y.shape)
        with torch.no_grad():
            lr1, lr2 = self._lp(self.ref, xk, y), self._lp(self.ref, xk, y2)
        return lambda: L.egpo_loss(self._lp(self.policy, xk, y), self._lp(self.policy, xk, y2), lr1, lr2, o1, o2,
                                   self.beta)

    def _extragradient(self, x: torch.Tensor, xk: torch.Tensor, k: int) -> float:
        backup = (copy.deepcopy(self.policy.state_dict()), copy.deepcopy(self.opt.state_dict()))
        self._steps(self._egpo_batch(x, xk, k, self.policy))  # half step: theta_{t+1/2}
        half = copy.deepcopy(self.policy)
        self.policy.load_state_dict(backup[0])  # full step from theta_t, opponent theta_{t+1/2}
        self.opt.load_state_dict(backup[1])
        return self._steps(self._egpo_batch(x, xk, k, half))

    def _mirror_prox(self, x: torch.Tensor, xk: torch.Tensor, k: int, center: ResponsePolicy) -> float:
        eta, beta = self.config.eta, self.beta

        def batch(opponent: ResponsePolicy) -> Callable[[], torch.Tensor]:
            ys = center.sample(x, k, self.gen)
            opp = opponent.sample(x, k, self.gen)
            win = self._win_rates(x, ys, opp)
            i, j = torch.triu_indices(k, k, offset=1)
            with torch.no_grad():
                lk, lr = self._lp(center, xk, ys), self._lp(self.ref, xk, ys)
            return lambda: L.nash_mp_loss(*self._pair(self._lp(self.policy, xk, ys), i, j), *self._pair(lk, i, j),
                                          *self._pair(lr, i, j), *self._pair(win, i, j), eta, beta)

        backup = (copy.deepcopy(self.policy.state_dict()), copy.deepcopy(self.opt.state_dict()))
        self._steps(batch(center))  # prox step toward pi_{k+1/2}
        half = copy.deepcopy(self.policy)
        self.policy.load_state_dict(backup[0])
        self.opt.load_state_dict(backup[1])
        return self._steps(batch(half))  # prox step from pi_k with the opponent pi_{k+1/2}

    # -- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def probs(self) -> np.ndarray:
        return self.policy.table().exp().double().numpy()

    def metrics(self) -> dict[str, float]:
        g, pi = self.game, self.probs()
        pi = pi / pi.sum(-1, keepdims=True)
        out = {"dg0": duality_gap(g.P, pi, g.context_weights),
               "dg_beta": regularized_gap(g.P, pi, g.reference, self.beta, g.context_weights),
               "win_rate_vs_ref": win_rate(g.P, pi, g.reference, g.context_weights),
               "queries": float(self.oracle.queries)}
        if self.star is not None:
            out["kl_to_equilibrium"] = kl_to_equilibrium(pi, self.star, g.context_weights)
        return out

    def train(self, callback: Callable[[int, dict], None] | None = None) -> list[dict]:
        history = [{"iteration": 0, **self.metrics()}]
        for _ in range(self.config.iterations):
            loss = self.step()
            if self.iteration % self.config.eval_every == 0 or self.iteration == self.config.iterations:
                row = {"iteration": self.iteration, "loss": loss, **self.metrics()}
                history.append(row)
                if callback is not None:
                    callback(self.iteration, row)
        return history


def game_for_policy(game: PreferenceGame, reference: ResponsePolicy) -> PreferenceGame:
    """The same preference game with pi_ref replaced by the reference model's distribution."""
    with torch.no_grad():
        ref = reference.table().exp().double().numpy()
    ref = ref / ref.sum(-1, keepdims=True)
    return PreferenceGame(game.P, ref, game.beta, game.context_weights, name=game.info.name,
                          parameters=dict(game.info.parameters))
