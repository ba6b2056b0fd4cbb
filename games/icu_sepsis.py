"""ICU-Sepsis: the tabular sepsis-treatment MDP of the `icu-sepsis` package, exactly evaluable.

The MDP (Choudhary et al., 2024) was estimated from the MIMIC-III sepsis cohort: 716 states (713
patient states from clustering 47 clinical features, then death 713, survival 714 and an
absorbing state 715), 25 treatments (5 IV-fluid levels x 5 vasopressor levels: action
5 * fluid + vasopressor, the package's flattened action), a transition matrix, an initial
distribution, the clinicians' policy and a SOFA score per state. The package ships them as
files (`icu_sepsis/envs/assets/dynamics.npz`, `admissible_actions.txt`); they are read here with
numpy and the package itself is never imported (its `__init__` imports the legacy `gym`). The
47 feature names are not shipped: `features[:, j]` is feature fj.

Semantics, as the package's environment (`ICUSepsisEnv`, default strategy "mean") defines them:

- an episode starts in a state drawn from `d0` and ends on entering death (713) or survival
  (714); the reward is 1 on entering survival and 0 otherwise, so a policy's expected return is
  its survival probability. (713 and 714 lead to 715, which loops: never reached in an episode.)
- an action is *admissible* in a state when clinicians took it there often enough (the file);
  an inadmissible action is not refused: it moves with `tx_mat[s, a]`, which the package fills
  with the mean of the admissible actions' rows. So an inadmissible action is the uniform mixture
  of the admissible ones: `admissible_policy` moves a policy's inadmissible mass onto them
  without changing any value, and the optimum over admissible actions is the optimum overall.
- the clinician policy (`expert_policy`) puts mass on inadmissible actions in every state
  (about 16% on average): its value is computed with the package's semantics (the mean rows).
- no discount (gamma 1): every policy reaches death or survival with probability 1 (the longest
  expected episode any policy can force is about 32 steps), so every value below is finite.

Exact evaluation (pure functions of a `SepsisMDP` and an [S, A] policy; an optional [S, A]
expected immediate reward replaces the survival reward, e.g. a debate-mixed one):
`state_values`, `policy_value`, `action_values`, `value_iteration`, `occupancy`, and
`sample_trajectories` for offline data. The package's README values: random 0.78, clinician
0.78, optimal 0.88 (0.875 exactly).

The Markov game `icu_sepsis` (one group "patient" of one agent) plays the same MDP on the
batched v2 contract: observation the 47 features standardised (mean and standard deviation
over states weighted by the clinician's occupancy), or the state's one-hot, or both; the action
mask is the admissible actions (which the package would not enforce: a masked policy loses
nothing, see above); +1 on survival; truncated after `max_steps` steps. Episodes average 9 to 11
steps but their tail is long: 11% of the clinician's and 16% of the optimal policy's last more
than 20 steps, and a cut at 20 would lose them 0.09 and 0.15 of survival; the default 100 loses
at most 0.0002 (the package's own limit is 500), and `state_values(..., horizon=max_steps)` gives
the truncated game's exact values. The expert `clinician` plays the clinician policy, its
inadmissible mass moved onto the admissible actions (the same values).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import zipfile
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from equilibria.common.config import ConfigError, PositiveInt
from equilibria.games.core import GameInfo, SizeEstimate, State
from equilibria.games.experts import register_expert
from equilibria.games.markov import ArraySimulator, MarkovGame, MarkovState
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Discrete, Group

PACKAGE, VERSION = "icu_sepsis", "2.0.1"
INSTALL = f"pip install 'equilibria[debate]' && pip install --no-deps icu-sepsis=={VERSION}"
NUM_STATES, NUM_ACTIONS, NUM_FEATURES = 716, 25, 47
DEATH, SURVIVAL, ABSORBING = 713, 714, 715  # the package's STATE_DEATH, STATE_SURVIVAL, STATE_S_INF
NUM_PATIENT_STATES = DEATH  # states 0..712 are patient states
_ARRAYS = ("tx_mat", "r_mat", "d_0", "expert_policy", "state_cluster_centers", "sofa_scores")


# ----------------------------------------------------------------------------- the MDP
@dataclasses.dataclass(frozen=True, eq=False)
class SepsisMDP:
    """The ICU-Sepsis MDP (arrays read-only; S = 716 states, A = 25 actions). Hashable by identity."""

    P: np.ndarray  # [S, A, S] transition probabilities (inadmissible actions: the admissible rows' mean)
    R: np.ndarray  # [S, A] expected immediate reward: the probability of entering survival
    d0: np.ndarray  # [S] initial distribution (patient states only)
    clinician: np.ndarray  # [S, A] the clinicians' policy (rows of death, survival and absorbing: zero)
    features: np.ndarray  # [S, 47] each state's cluster centre (f0..f46; zero for the last three)
    sofa: np.ndarray  # [S] mean SOFA score of each state
    admissible: np.ndarray  # [S, A] bool: actions clinicians took often enough there (all in the last three)
    terminal: np.ndarray  # [S] bool: death, survival, absorbing
    # P as a sparse [S * A, S] matrix (row s * A + a), and per nonzero its row index plus the
    # cumulative probability within the row: next states are drawn by one searchsorted (the
    # probabilities exact to about 1e-11, the rounding of row + cumulative probability)
    P_sparse: sp.csr_matrix = dataclasses.field(init=False, repr=False)
    _cdf: np.ndarray = dataclasses.field(init=False, repr=False)

    DEATH: ClassVar[int] = DEATH
    SURVIVAL: ClassVar[int] = SURVIVAL
    ABSORBING: ClassVar[int] = ABSORBING

    def __post_init__(self) -> None:
        S, A = self.num_states, self.num_actions
        csr = sp.csr_matrix(self.P.reshape(S * A, S))
        csr.sort_indices()
        row = np.repeat(np.arange(S * A), np.diff(csr.indptr))
        within = np.cumsum(self.P.reshape(S * A, S), axis=1)[row, csr.indices]
        last = csr.indptr[1:] - 1
        within[last] = 1.0  # exactly 1 at each row's end: a draw never falls past its row
        object.__setattr__(self, "P_sparse", csr)
        object.__setattr__(self, "_cdf", row + within)
        for a in (self.P, self.R, self.d0, self.clinician, self.features, self.sofa, self.admissible, self.terminal,
                  self._cdf, csr.data, csr.indices, csr.indptr):
            a.setflags(write=False)

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]

    def next_states(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of the next state for each (state, action) pair (arrays of the same shape)."""
        rows = np.asarray(states, dtype=np.int64) * self.num_actions + np.asarray(actions, dtype=np.int64)
        u = rng.random(rows.shape)
        j = np.searchsorted(self._cdf, rows + u, side="right")
        return self.P_sparse.indices[np.minimum(j, len(self._cdf) - 1)].astype(np.int64)


def assets_dir() -> Path:
    """The package's asset folder, located without importing the package (its __init__ imports
    the legacy gym); a one-line ConfigError saying how to install it when it is missing."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"icu_sepsis needs the icu-sepsis package: {INSTALL}")
    return Path(list(spec.submodule_search_locations)[0]) / "envs" / "assets"


def _bad(where: Path, what: str) -> ConfigError:
    return ConfigError(f"icu-sepsis assets at {where}: {what} (reinstall: pip install --force-reinstall --no-deps "
                       f"icu-sepsis=={VERSION})")


def _read_admissible(path: Path, S: int, A: int) -> np.ndarray:
    try:
        lines = path.read_text().splitlines()
        counts = [int(x) for x in lines[0].split()]
        if len(counts) != S or len(lines) < S + 1:
            raise ValueError(f"{len(counts)} counts and {len(lines) - 1} lines, expected {S}")
        out = np.zeros((S, A), dtype=bool)
        for s in range(S):
            acts = [int(x) for x in lines[s + 1].split()]
            if len(acts) != counts[s] or not acts or min(acts) < 0 or max(acts) >= A:
                raise ValueError(f"state {s}: {acts} (count {counts[s]})")
            out[s, acts] = True
    except (OSError, UnicodeDecodeError, IndexError, ValueError) as err:
        raise _bad(path.parent, f"{path.name} is unreadable or corrupt ({str(err).splitlines()[0][:120]})") from None
    return out


def _read(root: Path) -> SepsisMDP:
    npz = root / "dynamics.npz"
    for f in (npz, root / "admissible_actions.txt"):
        if not f.is_file():
            raise _bad(root, f"{f.name} is missing")
    try:
        with np.load(npz, allow_pickle=False) as data:
            missing = [k for k in _ARRAYS if k not in data.files]
            if missing:
                raise _bad(root, f"dynamics.npz lacks {missing}")
            arr = {k: np.asarray(data[k], dtype=np.float64) for k in _ARRAYS}
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise _bad(root, f"dynamics.npz is unreadable or corrupt ({str(err).splitlines()[0][:120]})") from None
    S, A, F = NUM_STATES, NUM_ACTIONS, NUM_FEATURES
    shapes = {"tx_mat": (S, A, S), "r_mat": (S, A, S), "d_0": (S,), "expert_policy": (S, A),
              "state_cluster_centers": (S, F), "sofa_scores": (S,)}
    for k, shape in shapes.items():
        if arr[k].shape != shape:
            raise _bad(root, f"dynamics.npz: {k} has shape {arr[k].shape}, expected {shape}")
        if not np.all(np.isfinite(arr[k])):
            raise _bad(root, f"dynamics.npz: {k} has non-finite entries")
    P, r, d0, pi = arr["tx_mat"], arr["r_mat"], arr["d_0"], arr["expert_policy"]
    patient = np.arange(S) < DEATH
    if P.min() < 0 or np.abs(P.sum(-1) - 1).max() > 1e-8:
        raise _bad(root, "tx_mat rows are not probability distributions")
    if d0.min() < 0 or abs(d0.sum() - 1) > 1e-8 or d0[~patient].any():
        raise _bad(root, "d_0 is not a distribution over patient states")
    if pi.min() < 0 or np.abs(pi[patient].sum(-1) - 1).max() > 1e-8:
        raise _bad(root, "expert_policy rows of patient states are not distributions")
    if not (P[DEATH:, :, ABSORBING] == 1).all():
        raise _bad(root, "death, survival and the absorbing state do not lead to the absorbing state")
    support = P > 0
    if not np.array_equal(r[support], np.broadcast_to(np.arange(S) == SURVIVAL, r.shape)[support]):
        raise _bad(root, "r_mat is not 1 exactly on transitions into survival (714)")
    del arr["r_mat"], r  # the reward is the indicator of survival: R = P[:, :, SURVIVAL]
    admissible = _read_admissible(root / "admissible_actions.txt", S, A)
    terminal = ~patient
    clinician = pi.copy()
    clinician[terminal] = 0.0
    return SepsisMDP(P=P, R=P[:, :, SURVIVAL].copy(), d0=d0, clinician=clinician, features=arr["state_cluster_centers"],
                     sofa=arr["sofa_scores"], admissible=admissible, terminal=terminal)


@functools.lru_cache(maxsize=1)
def _load_default() -> SepsisMDP:
    return _read(assets_dir())


def load_sepsis(assets: str | Path | None = None) -> SepsisMDP:
    """The MDP from the installed icu-sepsis package (cached), or from an asset folder holding
    dynamics.npz and admissible_actions.txt. A missing package or a corrupt file raises a
    one-line ConfigError saying what to do."""
    return _load_default() if assets is None else _read(Path(assets))


# ----------------------------------------------------------------------------- exact evaluation
def _policy(mdp: SepsisMDP, pi: np.ndarray) -> np.ndarray:
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(f"a policy must be [S, A] = {(mdp.num_states, mdp.num_actions)}, got {pi.shape}")
    live = ~mdp.terminal
    if not np.all(np.isfinite(pi)) or pi.min() < 0 or np.abs(pi[live].sum(1) - 1).max() > 1e-6:
        raise ValueError("a policy's rows of patient states must be probability distributions")
    return pi


def _reward(mdp: SepsisMDP, reward: np.ndarray | None) -> np.ndarray:
    if reward is None:
        return mdp.R
    reward = np.asarray(reward, dtype=np.float64)
    if reward.shape != (mdp.num_states, mdp.num_actions) or not np.all(np.isfinite(reward)):
        raise ValueError(f"a reward must be a finite [S, A] = {(mdp.num_states, mdp.num_actions)} array")
    return reward


def _check_gamma(gamma: float) -> float:
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma}")
    return float(gamma)


def _chain(mdp: SepsisMDP, pi: np.ndarray) -> sp.csr_matrix:
    """P_pi [S, S] (sparse) with the terminal states' rows zeroed: no value flows out of them."""
    S, A = mdp.num_states, mdp.num_actions
    w = np.where(mdp.terminal[:, None], 0.0, pi)
    W = sp.csr_matrix((w.ravel(), np.arange(S * A), np.arange(0, S * A + 1, A)), shape=(S, S * A))
    return (W @ mdp.P_sparse).tocsr()


def state_values(mdp: SepsisMDP, pi: np.ndarray, reward: np.ndarray | None = None, gamma: float = 1.0,
                 horizon: int | None = None) -> np.ndarray:
    """V [S] of policy pi [S, A]: the expected sum of (reward, default: 1 on entering survival)
    until death or survival, solved exactly on the patient states (0 on the terminal ones);
    with `horizon`, the expected sum over at most that many steps (the truncated game's)."""
    pi, R, gamma = _policy(mdp, pi), _reward(mdp, reward), _check_gamma(gamma)
    live = ~mdp.terminal
    r_pi = np.where(live, (pi * R).sum(1), 0.0)
    P_pi = _chain(mdp, pi)
    if horizon is not None:
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        V = np.zeros(mdp.num_states)
        for _ in range(horizon):
            V = r_pi + gamma * (P_pi @ V)
        return V
    M = np.eye(int(live.sum())) - gamma * P_pi[live][:, live].toarray()
    V = np.zeros(mdp.num_states)
    V[live] = np.linalg.solve(M, r_pi[live])
    return V


def policy_value(mdp: SepsisMDP, pi: np.ndarray, reward: np.ndarray | None = None, gamma: float = 1.0,
                 horizon: int | None = None) -> float:
    """d0 @ V: with the default reward, the policy's survival probability."""
    return float(mdp.d0 @ state_values(mdp, pi, reward, gamma, horizon))


def action_values(mdp: SepsisMDP, V: np.ndarray, reward: np.ndarray | None = None, gamma: float = 1.0) -> np.ndarray:
    """Q [S, A] = reward + gamma P V for every action (inadmissible ones with the package's mean
    rows), zero in the terminal states."""
    R, gamma = _reward(mdp, reward), _check_gamma(gamma)
    Q = R + gamma * (mdp.P_sparse @ np.asarray(V, dtype=np.float64)).reshape(mdp.num_states, mdp.num_actions)
    return np.where(mdp.terminal[:, None], 0.0, Q)


def _greedy(mdp: SepsisMDP, Q: np.ndarray, keep: np.ndarray | None = None, eps: float = 1e-12) -> np.ndarray:
    """Argmax over admissible actions (lowest index among ties); where `keep` (the current
    actions) is within eps of the best, keep it, so policy iteration stops."""
    Qm = np.where(mdp.admissible, Q, -np.inf)
    best = Qm.argmax(1)
    if keep is not None:
        stay = Qm[np.arange(len(keep)), keep] >= Qm.max(1) - eps
        best = np.where(stay, keep, best)
    return best


def value_iteration(mdp: SepsisMDP, reward: np.ndarray | None = None, gamma: float = 1.0,
                    tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optimal (V [S], Q [S, A], greedy policy [S, A] one-hot) over admissible actions (the
    optimum over all actions too, an inadmissible one being a mixture of admissible ones).
    Value iteration until the largest change is below tol, then policy iteration from its greedy
    policy until no admissible action improves by more than 1e-12: V is that policy's exact
    value. Greedy ties go to the lowest action index; the terminal states' rows are one-hot on 0."""
    R, gamma = _reward(mdp, reward), _check_gamma(gamma)
    S, A = mdp.num_states, mdp.num_actions
    V = np.zeros(S)
    for _ in range(1_000_000):
        Q = action_values(mdp, V, R, gamma)
        new = np.where(mdp.terminal, 0.0, np.where(mdp.admissible, Q, -np.inf).max(1))
        done = np.abs(new - V).max() < tol
        V = new
        if done:
            break
    act = _greedy(mdp, action_values(mdp, V, R, gamma))
    for _ in range(1000):
        pi = np.eye(A)[act]
        V = state_values(mdp, pi, R, gamma)
        Q = action_values(mdp, V, R, gamma)
        new = _greedy(mdp, Q, keep=act)
        if np.array_equal(new, act):
            break
        act = new
    act = np.where(mdp.terminal, 0, act)
    return V, Q, np.eye(A)[act]


def occupancy(mdp: SepsisMDP, pi: np.ndarray, horizon: int | None = None) -> np.ndarray:
    """Expected visits [S] of each patient state per episode started from d0 (the steps taken
    there; zero for the terminal states), so `occupancy(...).sum()` is the expected episode
    length. With `horizon`, over the first `horizon` steps only."""
    pi = _policy(mdp, pi)
    live = ~mdp.terminal
    P_pi = _chain(mdp, pi)
    if horizon is not None:
        x, out = mdp.d0.copy(), np.zeros(mdp.num_states)
        for _ in range(horizon):
            out += x
            x = np.where(live, P_pi.T @ x, 0.0)
        return np.where(live, out, 0.0)
    M = np.eye(int(live.sum())) - P_pi[live][:, live].toarray()
    out = np.zeros(mdp.num_states)
    out[live] = np.linalg.solve(M.T, mdp.d0[live])
    return out


# ----------------------------------------------------------------------------- policies and data
def admissible_policy(mdp: SepsisMDP, pi: np.ndarray) -> np.ndarray:
    """pi with each state's inadmissible mass spread uniformly over its admissible actions: the
    same values under the package's semantics (an inadmissible action moves as that mixture),
    and legal under the game's action mask. Terminal rows are left as they are."""
    pi = _policy(mdp, pi)
    adm = mdp.admissible
    out = np.where(adm, pi, 0.0) + (np.where(adm, 0.0, pi).sum(1, keepdims=True) * adm / adm.sum(1, keepdims=True))
    return np.where(mdp.terminal[:, None], pi, out)


def uniform_policy(mdp: SepsisMDP, admissible: bool = False) -> np.ndarray:
    """Uniform over all 25 actions (the package's random policy), or over the admissible ones
    (the same values: the two coincide under the package's semantics)."""
    if admissible:
        return mdp.admissible / mdp.admissible.sum(1, keepdims=True)
    return np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One index per row of probs [N, K] (inverse CDF)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(1), probs.shape[1] - 1)


def sample_trajectories(mdp: SepsisMDP, pi: np.ndarray, episodes: int, seed: int | None = None,
                        max_steps: int | None = None) -> dict[str, np.ndarray]:
    """`episodes` episodes of policy pi from d0, with the package's semantics (an inadmissible
    action moves as the admissible actions' mean), as flat transition arrays ordered by episode
    then step: episode, step, states, actions, rewards (1.0 on entering survival), next_states,
    dones (entered death or survival), truncated (cut at max_steps; None: never)."""
    pi = _policy(mdp, pi)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    rng = np.random.default_rng(seed)
    ep = np.arange(episodes)
    s = _draw(rng, np.broadcast_to(mdp.d0, (episodes, mdp.num_states)))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("episode", "step", "states", "actions", "rewards",
                                                         "next_states", "dones", "truncated")}
    t = 0
    while len(ep):
        a = _draw(rng, pi[s])
        s2 = mdp.next_states(s, a, rng)
        done = mdp.terminal[s2]
        cut = ~done & (max_steps is not None and t + 1 >= max_steps)
        for k, v in (("episode", ep), ("step", np.full(len(ep), t)), ("states", s), ("actions", a),
                     ("rewards", (s2 == SURVIVAL).astype(np.float64)), ("next_states", s2), ("dones", done),
                     ("truncated", cut)):
            cols[k].append(v)
        keep = ~(done | cut)
        ep, s, t = ep[keep], s2[keep], t + 1
    out = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((out["step"], out["episode"]))
    return {k: v[order] for k, v in out.items()}


@functools.lru_cache(maxsize=4)
def feature_standardization(mdp: SepsisMDP) -> tuple[np.ndarray, np.ndarray]:
    """The features' mean and standard deviation [47] over the patient states weighted by the
    clinician's occupancy (a constant feature's deviation is 1)."""
    w = occupancy(mdp, mdp.clinician)
    w = w / w.sum()
    mean = w @ mdp.features
    std = np.sqrt(w @ (mdp.features - mean) ** 2)
    return mean, np.where(std > 1e-12, std, 1.0)


def standardized_features(mdp: SepsisMDP) -> np.ndarray:
    """[S, 47] float32: (features - mean) / std with `feature_standardization`'s mean and std."""
    mean, std = feature_standardization(mdp)
    out = ((mdp.features - mean) / std).astype(np.float32)
    out.setflags(write=False)
    return out


# ----------------------------------------------------------------------------- the Markov game
ObservationKind = Literal["features", "onehot", "both"]


class ICUSepsis(MarkovGame):
    """The ICU-Sepsis MDP as a one-agent Markov game (see the module docstring)."""

    masks_actions = True

    def __init__(self, observation: str = "features", max_steps: int = 100):
        if observation not in ("features", "onehot", "both"):
            raise ValueError(f"icu_sepsis: observation must be 'features', 'onehot' or 'both', got {observation!r}")
        if max_steps < 1:
            raise ValueError(f"icu_sepsis: max_steps must be >= 1, got {max_steps}")
        self.mdp = load_sepsis()
        self.observation, self.max_steps = observation, max_steps
        S = self.mdp.num_states
        feats = standardized_features(self.mdp)
        onehot = np.eye(S, dtype=np.float32)
        table = {"features": feats, "onehot": onehot, "both": np.concatenate([feats, onehot], axis=1)}[observation]
        table.setflags(write=False)
        self.obs_table = table  # [S, D]: the observation of each state
        self.groups = (Group("patient", 1, Box((table.shape[1],)), Discrete(self.mdp.num_actions)),)
        self.state_shape = (table.shape[1],)
        self.size_estimate = SizeEstimate(bytes=2.5e8, bytes_per_env=4 * table.shape[1] + 64)
        self.info = GameInfo(
            name="icu_sepsis", num_players=1, dynamics="simultaneous", chance=True, information="perfect",
            utility="general", min_utility=0.0, max_utility=1.0, max_game_length=max_steps,
            num_distinct_actions=self.mdp.num_actions, utility_sum=None, sampled_chance=True, reward_model="step",
            parameters={"observation": observation, "max_steps": max_steps},
        )

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> SepsisSimulator:
        return SepsisSimulator(self, num_envs, seed)


class SepsisSimulator(ArraySimulator):
    """E patients; `self.s` [E] holds each one's MDP state."""

    state_keys = ("s",)
    game: ICUSepsis

    def _allocate(self) -> None:
        self.s = np.zeros(self.num_envs, dtype=np.int64)

    def _reset_envs(self, idx: np.ndarray) -> None:
        mdp = self.game.mdp
        self.s[idx] = _draw(self.rng, np.broadcast_to(mdp.d0, (len(idx), mdp.num_states)))

    def _step(self, actions: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        mdp = self.game.mdp
        self.s = mdp.next_states(self.s, actions["patient"][:, 0], self.rng)
        reward = (self.s == SURVIVAL).astype(np.float64)[:, None]
        return {"patient": reward}, (self.s == DEATH) | (self.s == SURVIVAL) | (self.s == ABSORBING)

    def _observe(self) -> dict[str, np.ndarray]:
        return {"patient": self.game.obs_table[self.s][:, None, :]}

    def action_mask(self) -> dict[str, np.ndarray]:
        return {"patient": self.game.mdp.admissible[self.s][:, None, :].copy()}

    def global_state(self) -> np.ndarray:
        return self.game.obs_table[self.s].copy()


@register("icu_sepsis", requires=(PACKAGE, "debate"))
def icu_sepsis(observation: ObservationKind = "features", max_steps: PositiveInt = 100) -> ICUSepsis:
    """ICU-Sepsis (the icu-sepsis package): treat a septic patient with 25 fluid/vasopressor doses;
    +1 on survival (tabular MDP from MIMIC-III, exactly evaluable)."""
    return ICUSepsis(observation, max_steps)


# ----------------------------------------------------------------------------- the clinician expert
class ClinicianPolicy:
    """The clinicians' policy as a Policy of the game (its inadmissible mass moved onto the
    admissible actions: the same values, legal under the mask). Reads the simulator's state."""

    def __init__(self) -> None:
        mdp = load_sepsis()
        self.table = admissible_policy(mdp, mdp.clinician)

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        if not isinstance(state, MarkovState) or not isinstance(state.sim, SepsisSimulator):
            raise ValueError("the clinician policy acts in icu_sepsis")
        legal = state.legal_actions(0 if player is None else player)
        if not legal:
            return {}
        row = self.table[int(state.sim.s[0])]
        return {a: float(row[a]) for a in legal if row[a] > 0} or {a: 1.0 / len(legal) for a in legal}


register_expert("clinician", "icu_sepsis", ClinicianPolicy,
                "the clinicians' treatment policy estimated from MIMIC-III (inadmissible doses moved onto admissible ones)")


__all__ = ["ABSORBING", "DEATH", "SURVIVAL", "INSTALL", "ClinicianPolicy", "ICUSepsis", "SepsisMDP", "SepsisSimulator",
           "action_values", "admissible_policy", "assets_dir", "load_sepsis", "occupancy", "policy_value",
           "sample_trajectories", "feature_standardization", "standardized_features", "state_values", "uniform_policy", "value_iteration"]
