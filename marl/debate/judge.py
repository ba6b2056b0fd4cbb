"""The debate judge of Sukovic & Radanovic (ICLR 2024), readable top to bottom.

The judge J(values, mask, decision) scores one decision (one of A treatments) given partially
revealed evidence: its input is concat(values * mask [F], mask [F], one-hot(decision) [A]), an MLP
of two [Linear(256), PReLU, BatchNorm1d] blocks and a linear scalar head (the reference code
aleksa-sukovic/iclr2024-reward-design-for-justifiable-rl, argo/models/judge.py: per-channel PReLU
before the batch norm).

Training is Bradley-Terry on synthetic preferences (argo/datasets/sepsis.py get_judge_dataset):
a state s is drawn (weights `state_weights`, e.g. the clinician's state occupancy), the clinician's
decision a_pref ~ pi_c(. | s) is preferred over an alternative a_alt ("random": uniform over the
other actions, the paper's default; "offset": a neighbouring dose bin of the 5 x 5 grid
a = iv * 5 + vaso; "exhaustive": every other action), and the loss is the cross-entropy of
softmax([J(a_pref), J(a_alt)]) against the preferred index, i.e. -log sigmoid(J(a_pref) - J(a_alt)).
For each preference a random subset of `num_arguments` features (6) is revealed, the rest zeroed,
the same mask for both decisions; the full-information judge reveals all (`num_arguments=None`).
Batches are drawn with replacement, each preference weighted by the inverse frequency of its
preferred action (the paper's WeightedRandomSampler); Adam, lr 5e-4, batch 64, 100 epochs.

Features are standardised with the mean and standard deviation over the training states weighted
by `state_weights` (the paper fits a StandardScaler on its training split); the judge stores them,
so callers pass raw feature values. The trained judge is callable as the debate game's judge:
`judge(values [B, F], mask [B, F] bool, decisions [B]) -> scores [B]`.

Differences from the reference code: the states (not patients) are split into training and
held-out sets; the preferred and the alternative decision go through the network as one batch
(the code calls it twice, so each half had its own batch-norm statistics); the loss is written
with the preferred decision first, which for this symmetric loss is the same as the code's
shuffled order; "offset" draws one of the up to 4 grid neighbours (`offset_diagonal=True`: the
code's up to 8, diagonals included).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from equilibria.common.config import Config, PositiveFloat, count
from equilibria.common.limits import check_memory

Alternative = Literal["random", "offset", "exhaustive"]
JudgeFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (values, mask, decisions) -> scores
CHUNK = 65_536  # rows per forward pass when scoring
FORMAT = "equilibria.debate.judge"


class JudgeConfig(Config):
    """Defaults from the paper (Sukovic & Radanovic 2024, App. C; argo/scripts/judge.py as run)."""

    num_arguments: count(100_000) | None = 6
    """features revealed per training preference, the rest zeroed (the code's --num-arguments 6);
    None: all of them (the full-information judge, the code's judge.aligned.pt)"""
    hidden: count(65_536) = 256
    """units of each of the two hidden layers"""
    lr: PositiveFloat = 5e-4
    """Adam learning rate"""
    batch_size: count(1 << 20) = 64
    """preferences per gradient step"""
    epochs: count(1_000_000) = 100
    """passes over the preference dataset (each of `preferences` draws)"""
    preferences: count(100_000_000) = 100_000
    """training preferences (rows); the paper has one per clinician transition of its training split"""
    alternative: Alternative = "random"
    """how the dispreferred decision is chosen: random (uniform over the other actions, the paper's
    default), offset (a neighbouring dose bin) or exhaustive (every other action)"""
    offset_diagonal: bool = False
    """offset: also the diagonal neighbours (up to 8, as the code), not only the up to 4 along one axis"""
    weighted_sampling: bool = True
    """draw each epoch's preferences with replacement, weighted by the inverse frequency of the
    preferred action (the paper's WeightedRandomSampler); False: a shuffled pass"""
    held_out_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """fraction of the states held out from training (a seeded permutation)"""
    eval_preferences: count(100_000_000) = 10_000
    """preferences drawn on the held-out states (and on the training states) for the accuracies"""


# ----------------------------------------------------------------------------- the network
class JudgeNet(nn.Module):
    """J(values, mask, decision) -> scalar score; `values` already standardised and masked."""

    def __init__(self, num_features: int, num_actions: int, hidden: int = 256):
        super().__init__()
        self.num_features, self.num_actions, self.hidden = num_features, num_actions, hidden
        self.l1 = nn.Linear(2 * num_features + num_actions, hidden)
        self.prelu1 = nn.PReLU(hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.prelu2 = nn.PReLU(hidden)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, values: torch.Tensor, mask: torch.Tensor, decisions: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(decisions, self.num_actions).to(values.dtype)
        h = torch.cat((values, mask.to(values.dtype), onehot), dim=1)
        h = self.bn1(self.prelu1(self.l1(h)))
        h = self.bn2(self.prelu2(self.l2(h)))
        return self.head(h).squeeze(1)


# ----------------------------------------------------------------------------- inputs
def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_inputs(features: Any, clinician: Any, state_weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies: features [S, F], the clinician's rows normalised [S, A], weights summing to 1."""
    x = np.asarray(features, dtype=np.float64)
    pi = np.asarray(clinician, dtype=np.float64)
    w = np.asarray(state_weights, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"features must be [S, F] with S >= 2 states, got shape {x.shape}")
    s = x.shape[0]
    if pi.ndim != 2 or pi.shape[0] != s or pi.shape[1] < 2:
        raise ValueError(f"clinician must be [S={s}, A] with A >= 2 actions, got shape {pi.shape}")
    if w.shape != (s,):
        raise ValueError(f"state_weights must be [S={s}], got shape {w.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold non-finite values")
    if not np.isfinite(pi).all() or (pi < 0).any() or (pi.sum(1) <= 0).any():
        raise ValueError("clinician rows must be finite, non-negative and not all zero")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("state_weights must be finite, non-negative and not all zero")
    return x, pi / pi.sum(1, keepdims=True), w / w.sum()


def _restrict(weights: np.ndarray, states: np.ndarray, what: str) -> np.ndarray:
    out = np.zeros_like(weights)
    out[states] = weights[states]
    if out.sum() <= 0:
        raise ValueError(f"the {what} states all have weight 0: no preferences can be drawn on them")
    return out / out.sum()


def weighted_standardisation(features: Any, state_weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature over states weighted by `state_weights`
    (a constant feature gets std 1)."""
    x = np.asarray(features, dtype=np.float64)
    w = np.asarray(state_weights, dtype=np.float64)
    w = w / w.sum()
    mean = w @ x
    std = np.sqrt(w @ (x - mean) ** 2)
    std[std < 1e-8] = 1.0
    return mean, std


def grid_neighbours(num_actions: int, diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The dose-grid neighbours of every action a = iv * n + vaso (n * n = num_actions):
    a table [A, 8] (padded with -1) and the count per action."""
    n = math.isqrt(num_actions)
    if n * n != num_actions:
        raise ValueError(f"alternative 'offset' needs a square dose grid; {num_actions} actions is not n * n")
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if diagonal:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    table = np.full((num_actions, 8), -1, dtype=np.int64)
    counts = np.zeros(num_actions, dtype=np.int64)
    for a in range(num_actions):
        iv, vaso = divmod(a, n)
        for d_iv, d_vaso in steps:
            i, v = iv + d_iv, vaso + d_vaso
            if 0 <= i < n and 0 <= v < n:
                table[a, counts[a]] = i * n + v
                counts[a] += 1
    return table, counts


def preference_dataset(features: Any, clinician: Any, state_weights: Any, size: int,
                       alternative: Alternative = "random", seed: int | np.random.Generator = 0, *,
                       diagonal: bool = False) -> dict[str, np.ndarray]:
    """`size` synthetic preferences "a_pref over a_alt": state ~ state_weights, a_pref ~ clinician[state],
    a_alt by `alternative` (exhaustive: each draw gives its A - 1 rows, cut to `size` rows).
    Returns state [N] int64, x [N, F] float64 (raw features of the state), a_pref and a_alt [N] int64."""
    x, pi, w = _check_inputs(features, clinician, state_weights)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    num_actions = pi.shape[1]
    check_memory("the judge's preference dataset", 8.0 * size * (x.shape[1] + 4))
    rng = _rng(seed)
    draws = -(-size // (num_actions - 1)) if alternative == "exhaustive" else size
    state = rng.choice(len(w), size=draws, p=w)
    cum = np.cumsum(pi, axis=1)
    a_pref = np.minimum((cum[state] < rng.random(draws)[:, None] * cum[state, -1:]).sum(1), num_actions - 1)
    if alternative == "random":
        a_alt = (a_pref + rng.integers(1, num_actions, size=draws)) % num_actions
    elif alternative == "offset":
        table, counts = grid_neighbours(num_actions, diagonal)
        pick = np.floor(rng.random(draws) * counts[a_pref]).astype(np.int64)
        a_alt = table[a_pref, pick]
    elif alternative == "exhaustive":
        others = np.arange(num_actions)[None, :].repeat(draws, 0)
        keep = others != a_pref[:, None]
        a_alt = others[keep][:size]
        state, a_pref = state.repeat(num_actions - 1)[:size], a_pref.repeat(num_actions - 1)[:size]
    else:
        raise ValueError(f"alternative must be random, offset or exhaustive, got {alternative!r}")
    return {"state": state.astype(np.int64), "x": x[state], "a_pref": a_pref.astype(np.int64),
            "a_alt": a_alt.astype(np.int64)}


def random_masks(n: int, num_features: int, num_arguments: int | None, rng: np.random.Generator) -> np.ndarray:
    """[n, F] bool: `num_arguments` features revealed per row, uniformly without replacement
    (None or >= F: all revealed)."""
    if num_arguments is None or num_arguments >= num_features:
        return np.ones((n, num_features), dtype=bool)
    pick = np.argpartition(rng.random((n, num_features)), num_arguments - 1, axis=1)[:, :num_arguments]
    mask = np.zeros((n, num_features), dtype=bool)
    np.put_along_axis(mask, pick, True, axis=1)
    return mask


def inverse_frequency_weights(a_pref: np.ndarray, num_actions: int) -> np.ndarray:
    """Sampling probability of each preference, proportional to 1 / (count of its preferred action):
    every preferred action present gets the same total probability."""
    counts = np.bincount(a_pref, minlength=num_actions).astype(np.float64)
    w = 1.0 / counts[a_pref]
    return w / w.sum()


def epoch_order(a_pref: np.ndarray, num_actions: int, weighted: bool, rng: np.random.Generator) -> np.ndarray:
    """The rows of one epoch: len(a_pref) draws with replacement by inverse-frequency weight
    (weighted), else a permutation."""
    n = len(a_pref)
    if not weighted:
        return rng.permutation(n)
    return rng.choice(n, size=n, p=inverse_frequency_weights(a_pref, num_actions))


# ----------------------------------------------------------------------------- the trained judge
@dataclasses.dataclass(eq=False)
class TrainedJudge:
    """A trained judge, callable as the debate game's judge protocol; holds the state split, the
    training curve and the accuracies."""

    net: JudgeNet
    mean: np.ndarray
    """feature means used for standardisation [F]"""
    std: np.ndarray
    """feature standard deviations [F]"""
    config: JudgeConfig
    seed: int
    train_states: np.ndarray
    held_out_states: np.ndarray
    losses: list[float]
    """mean training loss per epoch"""
    train_accuracy: float
    """preference accuracy on fresh preferences and masks drawn on the training states"""
    held_out_accuracy: float
    """the same on the held-out states"""
    train_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.net.eval()
        self._mean = torch.as_tensor(self.mean, dtype=torch.float32)
        self._std = torch.as_tensor(self.std, dtype=torch.float32)

    @property
    def num_features(self) -> int:
        return self.net.num_features

    @property
    def num_actions(self) -> int:
        return self.net.num_actions

    @property
    def num_arguments(self) -> int | None:
        return self.config.num_arguments

    def __call__(self, values: Any, mask: Any, decisions: Any) -> np.ndarray:
        """Scores [B] float32 of `decisions` [B] given raw feature `values` [B, F] of which only
        those where `mask` [B, F] is True are revealed (the rest are ignored)."""
        values = np.asarray(values, dtype=np.float32)
        mask = np.asarray(mask)
        decisions = np.asarray(decisions)
        if values.ndim != 2 or values.shape[1] != self.num_features:
            raise ValueError(f"values must be [B, {self.num_features}], got shape {values.shape}")
        if mask.shape != values.shape or mask.dtype != bool:
            raise ValueError(f"mask must be a bool array of shape {values.shape}, got {mask.dtype} {mask.shape}")
        if decisions.shape != values.shape[:1] or not np.issubdtype(decisions.dtype, np.integer):
            raise ValueError(f"decisions must be [{values.shape[0]}] integers, got {decisions.dtype} {decisions.shape}")
        if decisions.size and (decisions.min() < 0 or decisions.max() >= self.num_actions):
            raise ValueError(f"decisions must lie in 0..{self.num_actions - 1}")
        out = np.empty(len(values), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(values), CHUNK):
                sl = slice(start, start + CHUNK)
                m = torch.from_numpy(np.ascontiguousarray(mask[sl]))
                v = (torch.from_numpy(np.ascontiguousarray(values[sl])) - self._mean) / self._std
                v = torch.where(m, v, torch.zeros(()))
                d = torch.from_numpy(decisions[sl].astype(np.int64))
                out[sl] = self.net(v, m, d).numpy()
        return out


def preference_accuracy(judge: JudgeFn, values: np.ndarray, mask: np.ndarray, a_pref: np.ndarray,
                        a_alt: np.ndarray) -> float:
    """Fraction of preferences where judge(a_pref) > judge(a_alt) on the same evidence (ties count
    as wrong)."""
    return float(np.mean(judge(values, mask, a_pref) > judge(values, mask, a_alt)))


def held_out_accuracy(judge: JudgeFn, features: Any, clinician: Any, state_weights: Any, states: Any = None, *,
                      num_arguments: int | None | Literal["judge"] = "judge", alternative: Alternative = "random",
                      size: int = 10_000, seed: int | np.random.Generator = 0, diagonal: bool = False) -> float:
    """Preference accuracy of `judge` (any callable of the protocol) on `size` fresh preferences drawn
    on `states` (default: the TrainedJudge's held-out states), with evidence masks of
    `num_arguments` random features ("judge": the judge's own training setting; None: all)."""
    x, pi, w = _check_inputs(features, clinician, state_weights)
    if states is None:
        if not isinstance(judge, TrainedJudge):
            raise ValueError("pass `states` for a judge that is not a TrainedJudge")
        states = judge.held_out_states
    if num_arguments == "judge":
        if not isinstance(judge, TrainedJudge):
            raise ValueError("pass `num_arguments` for a judge that is not a TrainedJudge")
        num_arguments = judge.num_arguments
    rng = _rng(seed)
    data = preference_dataset(x, pi, _restrict(w, np.asarray(states, dtype=np.int64), "evaluated"), size,
                              alternative, rng, diagonal=diagonal)
    mask = random_masks(len(data["x"]), x.shape[1], num_arguments, rng)
    return preference_accuracy(judge, data["x"], mask, data["a_pref"], data["a_alt"])


def split_states(num_states: int, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) state indices, sorted, by a seeded permutation."""
    perm = np.random.default_rng([seed, 0]).permutation(num_states)
    n_held = min(max(1, round(held_out_fraction * num_states)), num_states - 1)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def train_judge(features: Any, clinician: Any, state_weights: Any, config: JudgeConfig | None = None, seed: int = 0,
                progress: Callable[[float, str], None] | None = None) -> TrainedJudge:
    """Train a judge on synthetic clinician preferences drawn on a training split of the states;
    `progress(epochs_done, text)` after each epoch. Deterministic in `seed` (the global torch RNG is
    left as it was)."""
    config = config or JudgeConfig()
    x, pi, w = _check_inputs(features, clinician, state_weights)
    num_states, num_features = x.shape
    num_actions = pi.shape[1]
    k = config.num_arguments
    if k is not None and k > num_features:
        raise ValueError(f"num_arguments {k} exceeds the {num_features} features")
    started = time.perf_counter()
    train_states, held_states = split_states(num_states, config.held_out_fraction, seed)
    w_train = _restrict(w, train_states, "training")
    _restrict(w, held_states, "held-out")  # fail before training, not after
    mean, std = weighted_standardisation(x, w_train)

    data = preference_dataset(x, pi, w_train, config.preferences, config.alternative, np.random.default_rng([seed, 1]),
                              diagonal=config.offset_diagonal)
    n = len(data["x"])
    xs = torch.as_tensor((data["x"] - mean) / std, dtype=torch.float32)
    a_pref, a_alt = torch.from_numpy(data["a_pref"]), torch.from_numpy(data["a_alt"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = JudgeNet(num_features, num_actions, config.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    rng = np.random.default_rng([seed, 2])
    losses: list[float] = []
    for epoch in range(config.epochs):
        net.train()
        order = torch.from_numpy(epoch_order(data["a_pref"], num_actions, config.weighted_sampling, rng))
        masks = torch.from_numpy(random_masks(n, num_features, k, rng)).float()
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            m = masks[start:start + config.batch_size]
            v = xs[idx] * m
            b = len(idx)
            scores = net(torch.cat((v, v)), torch.cat((m, m)), torch.cat((a_pref[idx], a_alt[idx])))
            # cross-entropy of softmax([J(a_pref), J(a_alt)]) against index 0
            loss = F.softplus(scores[b:] - scores[:b]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b
        losses.append(total / n)
        if progress is not None:
            progress(epoch + 1, f"loss {losses[-1]:.4f}")
    net.eval()
    judge = TrainedJudge(net, mean, std, config, seed, train_states, held_states, losses, float("nan"),
                         float("nan"))
    evaluate = dict(num_arguments=k, alternative=config.alternative, size=config.eval_preferences,
                    diagonal=config.offset_diagonal)
    judge.train_accuracy = held_out_accuracy(judge, x, pi, w, train_states, seed=np.random.default_rng([seed, 3]),
                                             **evaluate)
    judge.held_out_accuracy = held_out_accuracy(judge, x, pi, w, held_states, seed=np.random.default_rng([seed, 4]),
                                                **evaluate)
    judge.train_seconds = time.perf_counter() - started
    return judge


# ----------------------------------------------------------------------------- checkpoints
def save_judge(judge: TrainedJudge, path: str | os.PathLike) -> None:
    """Tensors and plain numbers only (load_judge reads it with torch.load(weights_only=True));
    written to a temporary file and renamed, so a crash leaves no half-written checkpoint."""
    net = judge.net
    state = {"format": FORMAT, "version": 1, "net": net.state_dict(),
             "num_features": net.num_features, "num_actions": net.num_actions, "hidden": net.hidden,
             "mean": torch.as_tensor(judge.mean, dtype=torch.float64),
             "std": torch.as_tensor(judge.std, dtype=torch.float64),
             "config": judge.config.model_dump(), "seed": int(judge.seed),
             "train_states": torch.as_tensor(judge.train_states, dtype=torch.int64),
             "held_out_states": torch.as_tensor(judge.held_out_states, dtype=torch.int64),
             "losses": [float(v) for v in judge.losses], "train_accuracy": float(judge.train_accuracy),
             "held_out_accuracy": float(judge.held_out_accuracy), "train_seconds": float(judge.train_seconds)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_judge(path: str | os.PathLike) -> TrainedJudge:
    """A judge saved by save_judge; a missing, corrupt or foreign file raises a one-line
    ValueError naming the file (nothing but tensors and plain containers is ever unpickled)."""
    import pickle
    import zipfile

    path = Path(path)

    def fail(reason: str) -> ValueError:
        return ValueError(f"{path}: {reason}")

    if not path.is_file():
        raise fail("no such judge checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise fail("holds objects other than tensors and plain containers; not a judge checkpoint") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise fail(f"is not a readable judge checkpoint ({text[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise fail("is not a judge checkpoint (saved by equilibria.marl.debate.judge.save_judge)")
    try:
        net = JudgeNet(int(state["num_features"]), int(state["num_actions"]), int(state["hidden"]))
        net.load_state_dict(state["net"])
        return TrainedJudge(net, state["mean"].numpy().copy(), state["std"].numpy().copy(),
                            JudgeConfig.model_validate(state["config"]), int(state["seed"]),
                            state["train_states"].numpy().copy(), state["held_out_states"].numpy().copy(),
                            [float(v) for v in state["losses"]], float(state["train_accuracy"]),
                            float(state["held_out_accuracy"]), float(state.get("train_seconds", 0.0)))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise fail(f"is a damaged judge checkpoint ({text[:160]})") from None


__all__ = ["JudgeConfig", "JudgeFn", "JudgeNet", "TrainedJudge", "epoch_order", "grid_neighbours",
           "held_out_accuracy", "inverse_frequency_weights", "load_judge", "preference_accuracy",
           "preference_dataset", "random_masks", "save_judge", "split_states", "train_judge",
           "weighted_standardisation"]
