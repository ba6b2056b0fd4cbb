"""The debate game of Sukovic & Radanovic (ICLR 2024), "Reward design for justifiable sequential
decision-making": two debaters reveal evidence for two decisions, a judge decides.

Rules (shared by both forms below through the functions of this module):
- Chance draws a case: a state's feature vector x [F] and two decisions, a1 (defended by player
  0: the policy's decision) and a2 (player 1: the baseline's), ints in [0, num_decisions). Both
  debaters see x and both decisions; the judge sees only the evidence.
- The players alternate; who starts is `first` = 0, 1 or "random" (a chance node, 1/2 each: the
  paper's default). A move reveals one feature not revealed yet (action = feature index; a
  revealed feature cannot be revealed again).
- After `num_arguments` reveals in total (6 in the paper, 4 as its option) the judge scores both
  decisions on the same partial evidence, values = x * mask: s1 = judge(values, mask, a1),
  s2 = judge(values, mask, a2). Player 0 gets +1 and player 1 -1 when s1 > s2 + tie_tol, the
  reverse when s2 > s1 + tie_tol, and 0 each on a tie (|s1 - s2| <= tie_tol).

The judge is passed in (`Judge`: batched numpy in and out), so games/ stays below the learners
that train it (the MLP judge of the sepsis pipeline lives in marl/).

Two forms:
- `DebateGame` (games.core.Game): explicit chance over a finite list of cases, sequential, perfect
  information for the debaters, so the compiled tree, CFR and exploitability solve small debates
  exactly. Registered as `debate` with random cases and a random linear judge drawn from a seed.
- `BatchedDebate` (games.markov.MarkovGame, in games/debate_batched.py): E debates at once, cases
  drawn per episode from a `sampler`, for self-play learners (ippo / mappo with one shared
  policy). One group "debaters" of 2 slots: slot 0 defends a1, slot 1 a2. Registered as
  `debate_batched`.

Terminal rewards in the Markov form. The Markov-game contract pays only active agents (inactive
agents' rewards are zero, games.markov) and marl.runtime.agent_ends ends an agent's trajectory,
without bootstrap, at every step it does not act. With "active = whose turn" the waiting debater
could never receive the final verdict, and every move would be cut off from the verdict that
follows it. So both slots are active at every step: the slot whose turn it is may reveal any
unrevealed feature; the waiting slot has exactly one legal action (a pass, encoded as the lowest
unrevealed feature index and ignored by the simulator), whose log-probability is 0, so it adds
nothing to a policy gradient. Both slots receive the verdict (+1 / -1 / 0, summing to 0) at the
step of the last reveal, and each one's trajectory runs through the whole debate. Whose turn it
is is in the observation ("moving") and in StepResult.info["mover"].

Observation parts (both forms; DebateGame.observation flattens them in this order):
"evidence" x * mask [F], "revealed" mask [F], "state" x [F], "mine" one-hot of the slot's own
decision [D], "theirs" one-hot of the other's [D], "turn" reveals so far / num_arguments [1],
"moving" 1 where this slot reveals next [1] (the critic needs it: with a random first player
the progress alone does not say whose turn it is).

Helpers other modules use: `debate_outcome` (the verdict on a batch of partial evidence) and
`play_debates` (B debates at once between two batched choosers, e.g. to compute the debate
reward of the justifiable policy on many (state, decision, baseline decision) triples, or to
score a debater against a confuser); `case_sampler` makes BatchedDebate deal a DebateGame's
finite cases, so learned debaters and CFR play the same game.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from equilibria.common.config import PositiveInt
from equilibria.games.core import CHANCE, TERMINAL, Game, GameInfo, SizeEstimate, State
from equilibria.games.registry import register
from equilibria.games.spaces import Box, Composite

if TYPE_CHECKING:
    from equilibria.games.debate_batched import BatchedDebate

First = int | str  # 0, 1 or "random"
PARTS = ("evidence", "revealed", "state", "mine", "theirs", "turn", "moving")


class Judge(Protocol):
    """Scores a decision on partial evidence: values [B, F] float (zeros where unrevealed), mask
    [B, F] bool (revealed), decisions [B] int -> scores [B] float. Higher is preferred."""

    def __call__(self, values: np.ndarray, mask: np.ndarray, decisions: np.ndarray) -> np.ndarray: ...


# a case sampler for the Markov form: (rng, n) -> (x [n, F], a [n, 2])
Sampler = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
# a batched debater: (observation parts {name: [b, ...]}, legal mask [b, F] bool, side 0 or 1) -> actions [b]
Chooser = Callable[[dict[str, np.ndarray], np.ndarray, int], np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class LinearJudge:
    """score(values, mask, d) = values @ weights[:, d] + bias[d]: a fixed judge for small debates
    (the optimal evidence is known: each feature adds x_f (w[f, a1] - w[f, a2]) to s1 - s2)."""

    weights: np.ndarray  # [F, D]
    bias: np.ndarray  # [D]

    def __call__(self, values: np.ndarray, mask: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights, dtype=np.float64)
        d = np.asarray(decisions, dtype=np.int64)
        return np.einsum("bf,fb->b", np.asarray(values, dtype=np.float64), w[:, d]) + np.asarray(self.bias)[d]


def random_linear_judge(num_features: int, num_decisions: int, rng: np.random.Generator) -> LinearJudge:
    """Weights and biases drawn from N(0, 1) and N(0, 0.1^2)."""
    return LinearJudge(rng.normal(size=(num_features, num_decisions)), 0.1 * rng.normal(size=num_decisions))


def random_cases(num_cases: int, num_features: int, num_decisions: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x [C, F] ~ N(0, 1) and two decisions per case [C, 2], distinct when num_decisions >= 2."""
    x = rng.normal(size=(num_cases, num_features))
    a1 = rng.integers(0, num_decisions, num_cases)
    if num_decisions < 2:
        return x, np.stack([a1, a1], axis=1)
    a2 = (a1 + rng.integers(1, num_decisions, num_cases)) % num_decisions
    return x, np.stack([a1, a2], axis=1).astype(np.int64)


def gaussian_sampler(num_features: int, num_decisions: int) -> Sampler:
    """A sampler of fresh random cases (random_cases) for BatchedDebate."""

    def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        return random_cases(n, num_features, num_decisions, rng)

    return sample


def case_sampler(cases_x: np.ndarray, cases_a: np.ndarray, probs: np.ndarray) -> Sampler:
    """A sampler for BatchedDebate that draws case c of a finite list with probability probs[c]:
    with a DebateGame's cases_x [C, F], cases_a [C, 2] and probs [C], the batched form plays
    exactly the debates the extensive form's chance node deals (learned debaters and CFR on the
    same game)."""
    x = np.array(cases_x, dtype=np.float64)
    a = np.array(cases_a, dtype=np.int64)
    p = np.array(probs, dtype=np.float64)
    if x.ndim != 2 or len(x) < 1 or a.shape != (len(x), 2) or p.shape != (len(x),):
        raise ValueError(f"case_sampler needs cases_x [C, F], cases_a [C, 2] and probs [C], got {x.shape}, "
                         f"{a.shape} and {p.shape}")
    if np.any(p < 0) or not np.all(np.isfinite(p)) or p.sum() <= 0:
        raise ValueError("case_sampler: probs must be finite, non-negative and not all zero")
    p = p / p.sum()

    def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.choice(len(p), size=n, p=p)
        return x[idx], a[idx]

    return sample


# ----------------------------------------------------------------------------- shared rules
@dataclasses.dataclass(frozen=True, eq=False)
class DebateRules:
    """Everything the rules need besides the case: the judge and the game's sizes."""

    judge: Judge
    num_features: int
    num_decisions: int
    num_arguments: int = 6
    first: First = "random"
    tie_tol: float = 1e-9

    def __post_init__(self) -> None:
        if self.num_features < 1 or self.num_decisions < 1:
            raise ValueError(f"debate needs num_features >= 1 and num_decisions >= 1, got {self.num_features} "
                             f"and {self.num_decisions}")
        if not 1 <= self.num_arguments <= self.num_features:
            raise ValueError(f"debate: num_arguments must lie in [1, num_features={self.num_features}], "
                             f"got {self.num_arguments}")
        if isinstance(self.first, bool) or self.first not in (0, 1, "random"):
            raise ValueError(f"debate: first must be 0, 1 or 'random', got {self.first!r}")
        if not self.tie_tol >= 0:
            raise ValueError(f"debate: tie_tol must be >= 0, got {self.tie_tol}")
        if not callable(self.judge):
            raise ValueError("debate: the judge must be a callable (values, mask, decisions) -> scores")

    def draw_first(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """[n] who reveals first in each of n debates."""
        if self.first == "random":
            return rng.integers(0, 2, n).astype(np.int64)
        return np.full(n, int(self.first), dtype=np.int64)

    def observation_space(self) -> Composite:
        f, d = self.num_features, self.num_decisions
        sizes = {"evidence": f, "revealed": f, "state": f, "mine": d, "theirs": d, "turn": 1, "moving": 1}
        return Composite({k: Box((sizes[k],)) for k in PARTS})


def judge_scores(judge: Judge, x: np.ndarray, mask: np.ndarray, a1: np.ndarray,
                 a2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s1 [B], s2 [B]): the judge's scores of both decisions on the same evidence, in one call
    of 2B rows (one forward pass of a neural judge)."""
    mask = np.asarray(mask, dtype=bool)
    values = np.where(mask, np.asarray(x, dtype=np.float64), 0.0)
    b = len(values)
    decisions = np.concatenate([np.asarray(a1, dtype=np.int64).reshape(b), np.asarray(a2, dtype=np.int64).reshape(b)])
    scores = np.asarray(judge(np.concatenate([values, values]), np.concatenate([mask, mask]), decisions),
                        dtype=np.float64).reshape(-1)
    if scores.shape != (2 * b,):
        raise ValueError(f"the judge returned {scores.shape[0]} scores for {2 * b} rows")
    return scores[:b], scores[b:]


def verdict(s1: np.ndarray, s2: np.ndarray, tie_tol: float = 1e-9) -> np.ndarray:
    """Player 0's payoff [B]: +1 where s1 wins, -1 where s2 wins, 0 on a tie (|s1 - s2| <= tie_tol)."""
    diff = np.asarray(s1, dtype=np.float64) - np.asarray(s2, dtype=np.float64)
    return np.where(np.abs(diff) <= tie_tol, 0.0, np.sign(diff))


def debate_outcome(judge: Judge, x: np.ndarray, mask: np.ndarray, a1: np.ndarray, a2: np.ndarray,
                   tie_tol: float = 1e-9) -> np.ndarray:
    """Player 0's payoff [B] (+1 / -1 / 0) when the judge sees x [B, F] where mask [B, F] and
    compares decisions a1 [B] and a2 [B]."""
    return verdict(*judge_scores(judge, x, mask, a1, a2), tie_tol)


def to_move(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """[B] which side reveals next, after `count` reveals, in debates started by `first`."""
    return (np.asarray(first, dtype=np.int64) + np.asarray(count, dtype=np.int64)) % 2


def observation_parts(rules: DebateRules, x: np.ndarray, mask: np.ndarray, a: np.ndarray, side: np.ndarray | int,
                      count: np.ndarray, moving: np.ndarray) -> dict[str, np.ndarray]:
    """The observation of `side` (0: defends a[:, 0], 1: a[:, 1]) in B debates, as float32 parts
    [B, ...] (see the module docstring). `count` [B] reveals so far, `moving` [B] whether `side`
    reveals next."""
    b = len(x)
    side = np.broadcast_to(np.asarray(side, dtype=np.int64), (b,))
    mask = np.asarray(mask, dtype=bool)
    rows = np.arange(b)
    a = np.asarray(a, dtype=np.int64)
    eye = np.eye(rules.num_decisions, dtype=np.float32)
    return {
        "evidence": np.where(mask, x, 0.0).astype(np.float32),
        "revealed": mask.astype(np.float32),
        "state": np.asarray(x, dtype=np.float32),
        "mine": eye[a[rows, side]],
        "theirs": eye[a[rows, 1 - side]],
        "turn": (np.asarray(count, dtype=np.float32) / rules.num_arguments).reshape(b, 1),
        "moving": np.asarray(moving, dtype=np.float32).reshape(b, 1),
    }


def reveal(mask: np.ndarray, features: np.ndarray) -> np.ndarray:
    """A copy of mask [B, F] with one more feature revealed per row; ValueError when a feature is
    out of range or already revealed."""
    features = np.asarray(features, dtype=np.int64).reshape(-1)
    b, f = mask.shape
    if features.shape != (b,):
        raise ValueError(f"expected {b} feature indices, got {features.shape[0]}")
    if np.any((features < 0) | (features >= f)):
        raise ValueError(f"feature indices must lie in [0, {f}), got {features[(features < 0) | (features >= f)][:5]}")
    rows = np.arange(b)
    if np.any(mask[rows, features]):
        i = int(np.flatnonzero(mask[rows, features])[0])
        raise ValueError(f"feature {features[i]} is already revealed (debate {i})")
    out = mask.copy()
    out[rows, features] = True
    return out


def rules_of(game_or_rules: DebateGame | BatchedDebate | DebateRules) -> DebateRules:
    rules = getattr(game_or_rules, "rules", game_or_rules)
    if not isinstance(rules, DebateRules):
        raise ValueError(f"expected a DebateGame, a BatchedDebate or DebateRules, got {type(game_or_rules).__name__}")
    return rules


def play_debates(game_or_rules: DebateGame | BatchedDebate | DebateRules, choose0: Chooser, choose1: Chooser,
                 x: np.ndarray, a: np.ndarray, first: First | np.ndarray | None = None,
                 rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """B debates at once on cases x [B, F] and decisions a [B, 2]: `choose0` defends a[:, 0],
    `choose1` a[:, 1]. A chooser is called as choose(obs_parts, legal_mask, side) on the rows
    where its side reveals next (observation parts as BatchedDebate gives them, legal_mask
    [b, F] the unrevealed features) and returns one feature per row. `first`: 0, 1, "random"
    or [B] starters (default: the rules'); `rng` draws random starters.

    Returns {"mask" [B, F] bool, "payoff" [B] player 0's payoff, "order" [B, num_arguments]
    the features in the order revealed, "first" [B], "scores" [B, 2] the judge's s1, s2}."""
    rules = rules_of(game_or_rules)
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.int64)
    b = len(x)
    if x.shape != (b, rules.num_features) or a.shape != (b, 2):
        raise ValueError(f"expected x [B, {rules.num_features}] and a [B, 2], got {x.shape} and {a.shape}")
    if np.any((a < 0) | (a >= rules.num_decisions)):
        raise ValueError(f"decisions must lie in [0, {rules.num_decisions})")
    first = rules.first if first is None else first
    if isinstance(first, str) or np.ndim(first) == 0:
        starters = dataclasses.replace(rules, first=first).draw_first(rng if rng is not None else np.random.default_rng(), b)
    else:
        starters = np.asarray(first, dtype=np.int64)
        if starters.shape != (b,) or np.any((starters != 0) & (starters != 1)):
            raise ValueError(f"first must be 0, 1, 'random' or [B] zeros and ones, got shape {starters.shape}")
    mask = np.zeros((b, rules.num_features), dtype=bool)
    order = np.zeros((b, rules.num_arguments), dtype=np.int64)
    for t in range(rules.num_arguments):
        side = to_move(starters, t)
        chosen = np.zeros(b, dtype=np.int64)
        for s, choose in ((0, choose0), (1, choose1)):
            rows = np.flatnonzero(side == s)
            if not len(rows):
                continue
            obs = observation_parts(rules, x[rows], mask[rows], a[rows], s, np.full(len(rows), t), np.ones(len(rows)))
            acts = np.asarray(choose(obs, ~mask[rows], s)).reshape(-1)
            if acts.shape != (len(rows),):
                raise ValueError(f"the chooser of side {s} returned {acts.shape[0]} actions for {len(rows)} debates")
            chosen[rows] = acts
        mask = reveal(mask, chosen)
        order[:, t] = chosen
    s1, s2 = judge_scores(rules.judge, x, mask, a[:, 0], a[:, 1])
    return {"mask": mask, "payoff": verdict(s1, s2, rules.tie_tol), "order": order, "first": starters,
            "scores": np.stack([s1, s2], axis=1)}


def random_chooser(rng: np.random.Generator) -> Chooser:
    """A debater that reveals a uniformly random unrevealed feature."""

    def choose(obs: dict[str, np.ndarray], legal: np.ndarray, side: int) -> np.ndarray:
        return np.argmax(rng.random(legal.shape) * legal, axis=1)

    return choose


# ----------------------------------------------------------------------------- the extensive-form game
def debate_size(num_features: int, num_arguments: int, num_cases: int, first: First = "random") -> SizeEstimate:
    """Histories of DebateGame's tree: the root, then per case (and starter) every ordered
    sequence of up to num_arguments distinct reveals."""
    sequences = sum(math.perm(num_features, k) for k in range(min(num_arguments, num_features) + 1))
    per_case = 1 + 2 * sequences if first == "random" else sequences
    return SizeEstimate(bytes=num_cases * num_features * 8.0 * 2, histories=float(1 + num_cases * per_case))


class DebateGame(Game):
    """The debate over a finite list of cases (see the module docstring): chance draws case c
    with probability probs[c] (then the first player when first == "random"), and the debaters
    reveal features in turns. Perfect information: both debaters' information-state key is the
    case, the starter and the reveals so far."""

    def __init__(self, cases_x: np.ndarray, cases_a: np.ndarray, probs: np.ndarray, judge: Judge,
                 num_arguments: int = 6, first: First = "random", num_decisions: int | None = None,
                 tie_tol: float = 1e-9, parameters: Mapping[str, Any] | None = None):
        x = np.array(cases_x, dtype=np.float64)
        a = np.array(cases_a, dtype=np.int64)
        p = np.array(probs, dtype=np.float64)
        if x.ndim != 2 or len(x) < 1:
            raise ValueError(f"debate: cases_x must be [C, F] with C >= 1, got shape {x.shape}")
        c, f = x.shape
        if a.shape != (c, 2) or p.shape != (c,):
            raise ValueError(f"debate: cases_a must be [{c}, 2] and probs [{c}], got {a.shape} and {p.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("debate: cases_x must be finite")
        if np.any(p < 0) or not np.all(np.isfinite(p)) or abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"debate: probs must be non-negative and sum to 1, got sum {p.sum()}")
        num_decisions = int(a.max()) + 1 if num_decisions is None else int(num_decisions)
        if a.min() < 0 or a.max() >= num_decisions:
            raise ValueError(f"debate: decisions must lie in [0, num_decisions={num_decisions})")
        self.rules = DebateRules(judge, f, num_decisions, int(num_arguments), first, float(tie_tol))
        self.cases_x, self.cases_a, self.probs = x, a, p / p.sum()
        self._outcomes: dict[tuple[int, int], tuple[float, float, float]] = {}  # (case, mask bits) -> (u, s1, s2)
        self.size_estimate = debate_size(f, self.rules.num_arguments, int((p > 0).sum()), first)
        self.info = GameInfo(
            name="debate", num_players=2, dynamics="sequential", chance=True, information="perfect",
            utility="zero_sum", min_utility=-1.0, max_utility=1.0, max_game_length=self.rules.num_arguments,
            num_distinct_actions=f, reward_model="terminal",
            parameters=dict(parameters) if parameters is not None else {
                "num_features": f, "num_decisions": num_decisions, "num_cases": c,
                "num_arguments": self.rules.num_arguments, "first": first},
        )

    @property
    def num_features(self) -> int:
        return self.rules.num_features

    def new_initial_state(self) -> DebateState:
        return DebateState(self)

    def action_name(self, action: int) -> str:
        return f"reveal feature {action}"

    def outcome(self, case: int, revealed: tuple[int, ...] | list[int]) -> tuple[float, float, float]:
        """(player 0's payoff, s1, s2) of case `case` with features `revealed`, cached."""
        bits = sum(1 << int(i) for i in revealed)
        out = self._outcomes.get((case, bits))
        if out is None:
            mask = np.zeros((1, self.num_features), dtype=bool)
            mask[0, list(revealed)] = True
            s1, s2 = judge_scores(self.rules.judge, self.cases_x[case][None], mask, self.cases_a[case, :1],
                                  self.cases_a[case, 1:])
            out = (float(verdict(s1, s2, self.rules.tie_tol)[0]), float(s1[0]), float(s2[0]))
            self._outcomes[(case, bits)] = out
        return out


class DebateState(State):
    __slots__ = ("game", "case", "starter", "reveals")

    def __init__(self, game: DebateGame):
        self.game = game
        self.case: int | None = None
        self.starter: int | None = None if game.rules.first == "random" else int(game.rules.first)
        self.reveals: list[int] = []

    def current_player(self) -> int:
        if self.case is None or self.starter is None:
            return CHANCE
        if len(self.reveals) >= self.game.rules.num_arguments:
            return TERMINAL
        return (self.starter + len(self.reveals)) % 2

    def is_terminal(self) -> bool:
        return self.case is not None and len(self.reveals) >= self.game.rules.num_arguments

    def chance_outcomes(self) -> list[tuple[int, float]]:
        if self.case is None:
            return [(c, float(p)) for c, p in enumerate(self.game.probs) if p > 0]
        if self.starter is None:
            return [(0, 0.5), (1, 0.5)]
        raise ValueError("chance_outcomes() called on a state that is not a chance node")

    def legal_actions(self, player: int | None = None) -> list[int]:
        cur = self.current_player()
        if cur == CHANCE:
            return [o for o, _ in self.chance_outcomes()] if player is None else []
        if cur == TERMINAL or (player is not None and player != cur):
            return []
        return [i for i in range(self.game.num_features) if i not in self.reveals]

    def apply_action(self, action: int) -> None:
        cur = self.current_player()
        if cur == CHANCE:
            if action not in [o for o, _ in self.chance_outcomes()]:
                raise ValueError(f"illegal chance outcome {action}")
            if self.case is None:
                self.case = int(action)
            else:
                self.starter = int(action)
        elif cur == TERMINAL:
            raise ValueError("apply_action on a terminal state")
        else:
            if not isinstance(action, (int, np.integer)) or not 0 <= action < self.game.num_features:
                raise ValueError(f"illegal reveal {action!r}: features are 0..{self.game.num_features - 1}")
            if action in self.reveals:
                raise ValueError(f"illegal reveal {action}: feature {action} is already revealed")
            self.reveals.append(int(action))

    def returns(self) -> np.ndarray:
        if not self.is_terminal():
            return np.zeros(2)
        u = self.game.outcome(self.case, self.reveals)[0]
        return np.array([u, -u])

    def judge_scores(self) -> tuple[float, float]:
        """(s1, s2) at a terminal state."""
        if not self.is_terminal():
            raise ValueError("judge_scores() needs a terminal state")
        return self.game.outcome(self.case, self.reveals)[1:]

    def information_state_key(self, player: int) -> str:
        if self.case is None:
            return ""
        start = "?" if self.starter is None else str(self.starter)
        return f"c{self.case} s{start}|" + " ".join(map(str, self.reveals))

    def mask(self) -> np.ndarray:
        m = np.zeros(self.game.num_features, dtype=bool)
        m[self.reveals] = True
        return m

    def observation(self, player: int) -> np.ndarray:
        g = self.game
        if self.case is None:
            size = sum(b.size for b in g.rules.observation_space().parts.values())
            return np.zeros(size, dtype=np.float32)
        moving = self.current_player() == player
        parts = observation_parts(g.rules, g.cases_x[self.case][None], self.mask()[None], g.cases_a[self.case][None],
                                  player, np.array([len(self.reveals)]), np.array([moving]))
        return np.concatenate([parts[k][0] for k in PARTS])

    def clone(self) -> DebateState:
        new = DebateState.__new__(DebateState)
        new.game, new.case, new.starter, new.reveals = self.game, self.case, self.starter, list(self.reveals)
        return new

    def history(self) -> list[int]:
        if self.case is None:
            return []
        head = [self.case] if self.game.rules.first != "random" or self.starter is None else [self.case, self.starter]
        return head + list(self.reveals)

    def action_to_string(self, player: int, action: int) -> str:
        if player == CHANCE:
            return f"case {action}" if self.case is None else f"player {action} starts"
        return f"reveal feature {action}"


# ----------------------------------------------------------------------------- registry
FirstParam = Literal[0, 1, "random"]


def check_sizes(num_features: int, num_decisions: int, num_arguments: int) -> None:
    if num_arguments > num_features:
        raise ValueError(f"num_arguments ({num_arguments}) must not exceed num_features ({num_features})")


@register("debate", size=lambda num_features=5, num_decisions=3, num_cases=6, num_arguments=2, first="random",
          seed=0: debate_size(num_features, num_arguments, num_cases, first))
def debate(num_features: PositiveInt = 5, num_decisions: PositiveInt = 3, num_cases: PositiveInt = 6,
           num_arguments: PositiveInt = 2, first: FirstParam = "random", seed: int = 0) -> DebateGame:
    """Debate (Sukovic & Radanovic 2024) over random cases: two debaters reveal features in turns, a linear judge decides.

    Cases and the judge are drawn from `seed`; the paper's debates have 6 arguments (4 as an
    option) over 44 features, which only learned debaters can play; the sepsis pipeline builds
    DebateGame directly with its own cases and judge."""
    check_sizes(num_features, num_decisions, num_arguments)
    rng = np.random.default_rng(seed)
    judge = random_linear_judge(num_features, num_decisions, rng)
    x, a = random_cases(num_cases, num_features, num_decisions, rng)
    params = {"num_features": num_features, "num_decisions": num_decisions, "num_cases": num_cases,
              "num_arguments": num_arguments, "first": first, "seed": seed}
    return DebateGame(x, a, np.full(num_cases, 1.0 / num_cases), judge, num_arguments, first, num_decisions,
                      parameters=params)


__all__ = [
    "Chooser", "DebateGame", "DebateRules", "DebateState", "Judge", "LinearJudge",
    "Sampler", "case_sampler", "debate_outcome", "debate_size", "gaussian_sampler", "judge_scores",
    "observation_parts", "play_debates", "random_chooser", "random_cases", "random_linear_judge", "reveal", "to_move",
    "verdict",
]
