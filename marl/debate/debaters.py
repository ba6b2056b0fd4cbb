"""Debaters for the debate game (games.debate), trained by self-play PPO with action masks as in
Sukovic & Radanovic (ICLR 2024; the reference code's argo/scripts/argumentator.py, MaskedPPO),
readable top to bottom.

One actor plays both sides. It is IPPO (marl.mappo with local critics) on `BatchedDebate`, whose one
group "debaters" has two slots that share the actor (the slot's one-hot id appended, as every
shared group actor in marl/); the waiting slot's single "pass" action has log-probability 0, so
only the mover's choices carry gradient. Two opponents:

- `opponent="current"`: both slots learn at once, each against the current self (IPPO self-play;
  every debate trains both sides).
- `opponent="frozen"` (the paper's "debate-selfplay"): the learner plays one side per debate, drawn
  at random, against a frozen copy of itself that plays the other; every `generation_updates`
  updates the copy is refreshed with the learner's weights (the paper: 500 generations of 150
  epochs). Built as a Markov game around BatchedDebate (`VersusFixed`) in which only the learner's
  slot is active, so the same IPPO trainer runs unchanged.

`train_confuser` trains a fresh actor for the other seat against a FIXED debater (`VersusFixed`
with the debater as the opponent, never refreshed): the paper's refutation-robustness test.
`robustness` compares the debater's win rate against the confuser with that against its own
self-play partner on the same cases and starters.

`as_game_policy` turns the actor into a games.core Policy on the extensive-form `DebateGame` (for
each decision state it builds the observation BatchedDebate gives the mover, with
games.debate.observation_parts), so solvers.exploitability measures the PPO debaters on the very
game CFR solves; `batched_of(debate_game)` is the BatchedDebate that deals exactly its cases.

Defaults are the paper's where they map onto IPPO: lr 5e-4 (actor and critic), gamma 0.9, GAE
lambda 0.7, clip 0.1, entropy 0.01, value weight 0.5 on the squared error, two hidden layers of
512 (tanh here, as every marl/ network), 256 debates per update. PPO epochs, minibatches and the
gradient clip are not in the notes on the reference code and are this module's choices.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from equilibria.common.config import Config, NonNegativeFloat, PositiveFloat, Probability, count
from equilibria.games.core import CHANCE, TERMINAL, State
from equilibria.games.debate import (
    PARTS,
    Chooser,
    DebateGame,
    DebateRules,
    case_sampler,
    observation_parts,
    play_debates,
    rules_of,
)
from equilibria.games.debate_batched import BatchedDebate
from equilibria.games.markov import MarkovGame, Simulator, StepResult
from equilibria.games.spaces import Box, Composite, Discrete, Group
from equilibria.marl.networks import GroupActor, as_tensors

FORMAT = "equilibria.debate.debaters"
GROUP = "debaters"
Progress = Callable[[int, dict[str, float]], None]  # (updates done, that update's statistics)


class DebatersConfig(Config):
    """Self-play PPO of the debaters; defaults from the paper (argo/scripts/argumentator.py) where
    they map onto IPPO, the rest this module's choices."""

    updates: count(10_000_000) = 1000
    """PPO updates (each: one rollout of num_envs debates, then ppo_epochs passes over it)"""
    opponent: Literal["current", "frozen"] = "frozen"
    """current: both slots learn against the current self (IPPO self-play); frozen: the learner
    plays a random side of each debate against a frozen copy of itself, refreshed every
    generation_updates updates (the paper's debate-selfplay)"""
    generation_updates: count(10_000_000) = 10
    """opponent frozen: updates per generation, after which the frozen copy takes the learner's
    weights (the paper: 150 epochs per generation, 500 generations)"""
    frozen_deterministic: bool = False
    """opponent frozen: the copy plays its most probable reveal instead of sampling one"""
    num_envs: count(65_536) = 256
    """debates run in parallel (the paper collects 256 episodes per collect)"""
    rollout_length: count(100_000) | None = None
    """steps per environment per update; None: num_arguments, one whole debate per environment"""
    lr: PositiveFloat = 5e-4
    """Adam learning rate of the actor and of the critic (the paper: 5e-4)"""
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.9
    """discount (the paper: 0.9)"""
    gae_lambda: Probability = 0.7
    """GAE lambda (the paper: 0.7)"""
    clip: PositiveFloat = 0.1
    """PPO ratio clip (the paper: 0.1)"""
    entropy_coef: NonNegativeFloat = 0.01
    """entropy bonus (the paper: 1e-2)"""
    vf_coef: NonNegativeFloat = 0.5
    """weight of the squared value error (the paper: 0.5; passed to IPPO as value_coef 2 * vf_coef,
    its Huber loss being half the squared error at these magnitudes)"""
    hidden: count(65_536) = 512
    """units of each of the two hidden layers of the actor and of the critic (the paper: 2 x 512)"""
    ppo_epochs: count(1000) = 4
    """passes over each rollout"""
    num_minibatches: count(100_000) = 4
    """minibatches per pass"""
    max_grad_norm: PositiveFloat = 10.0
    """gradient clipping (actor and critic separately)"""

    def ippo(self, num_arguments: int) -> dict[str, Any]:
        """The IPPO (marl.mappo) config these fields give on debates of `num_arguments` reveals."""
        return {"num_envs": self.num_envs, "rollout_length": self.rollout_length or num_arguments,
                "lr": self.lr, "critic_lr": self.lr, "gamma": self.gamma, "gae_lambda": self.gae_lambda,
                "clip": self.clip, "ppo_epochs": self.ppo_epochs, "num_minibatches": self.num_minibatches,
                "entropy_coef": self.entropy_coef, "value_coef": 2.0 * self.vf_coef, "huber_delta": 10.0,
                "max_grad_norm": self.max_grad_norm, "hidden": self.hidden, "share_parameters": True,
                "critic": "local", "value_norm": False}


# ----------------------------------------------------------------------------- the trained actor
def debater_group(num_features: int, num_decisions: int, slots: int = 2) -> Group:
    """The "debaters" group of BatchedDebate (its observation parts and Discrete(F) reveals)."""
    f, d = num_features, num_decisions
    sizes = {"evidence": f, "revealed": f, "state": f, "mine": d, "theirs": d, "turn": 1, "moving": 1}
    return Group(GROUP, slots, Composite({k: Box((sizes[k],)) for k in PARTS}), Discrete(f))


class Debaters:
    """A debate actor (marl.networks.GroupActor of the two-slot "debaters" group: slot s defends
    decision a[:, s]) and the sides it was trained to play. `chooser(side)` plays it in
    games.debate.play_debates; `save` / `load` keep tensors and plain numbers only."""

    def __init__(self, actor: GroupActor, num_features: int, num_decisions: int, num_arguments: int,
                 sides: tuple[int, ...] = (0, 1), config: DebatersConfig | None = None,
                 stats: dict[str, float] | None = None, history: list[dict[str, float]] | None = None):
        if actor.n != 2 or actor.group.num_actions != num_features:
            raise ValueError(f"a debate actor has 2 slots and {num_features} actions, got {actor.n} and "
                             f"{actor.group.num_actions}")
        if not sides or any(s not in (0, 1) for s in sides):
            raise ValueError(f"sides must be a non-empty subset of (0, 1), got {sides}")
        self.actor = actor.eval()
        self.num_features, self.num_decisions, self.num_arguments = num_features, num_decisions, num_arguments
        self.sides = tuple(sorted(set(int(s) for s in sides)))
        self.config = config
        self.stats = dict(stats or {})
        self.history = list(history or [])

    @classmethod
    def initial(cls, game: BatchedDebate | DebateGame | DebateRules, hidden: int = 64, seed: int = 0) -> Debaters:
        """An untrained (randomly initialised) actor for `game`'s sizes: a weak debater."""
        r = rules_of(game)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            actor = GroupActor(debater_group(r.num_features, r.num_decisions), hidden, share=True)
        return cls(actor, r.num_features, r.num_decisions, r.num_arguments)

    @property
    def hidden(self) -> int:
        return int(self.actor.heads[0][0].out_features)

    def check_fits(self, game: BatchedDebate | DebateGame | DebateRules) -> DebateRules:
        """The game's rules; ValueError when its sizes are not the ones this actor was trained on."""
        r = rules_of(game)
        mine = (self.num_features, self.num_decisions, self.num_arguments)
        theirs = (r.num_features, r.num_decisions, r.num_arguments)
        if mine != theirs:
            raise ValueError(f"these debaters play (features, decisions, arguments) = {mine}; the game has {theirs}")
        return r

    def _slot(self, side: int) -> int:
        if side not in (0, 1):
            raise ValueError(f"side must be 0 or 1, got {side!r}")
        if side not in self.sides:
            raise ValueError(f"this actor was trained for side(s) {list(self.sides)} only, not side {side}")
        return side

    def probabilities(self, obs: dict[str, np.ndarray], legal: np.ndarray, side: int) -> np.ndarray:
        """[b, F] the actor's reveal probabilities for `side` (0 outside `legal` [b, F])."""
        slot = self._slot(side)
        legal = np.asarray(legal, dtype=bool)
        with torch.no_grad():
            logits = self.actor.slot_logits(as_tensors(obs), slot, torch.as_tensor(legal))
            p = torch.softmax(logits.double(), -1).numpy()
        return np.where(legal, p, 0.0)

    def chooser(self, side: int, deterministic: bool = True, seed: int | np.random.Generator = 0) -> Chooser:
        """A batched debater for games.debate.play_debates playing `side`: the most probable legal
        reveal when `deterministic`, else one drawn from the actor's probabilities (rng `seed`)."""
        self._slot(side)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        def choose(obs: dict[str, np.ndarray], legal: np.ndarray, called_side: int) -> np.ndarray:
            if called_side != side:
                raise ValueError(f"this chooser plays side {side}, called for side {called_side}")
            p = self.probabilities(obs, legal, side)
            if deterministic:
                return np.where(legal, p, -1.0).argmax(1)
            return sample_rows(p, legal, rng)

        return choose

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": 1, "actor": self.actor.state_dict(), "hidden": self.hidden,
                "num_features": self.num_features, "num_decisions": self.num_decisions,
                "num_arguments": self.num_arguments, "sides": list(self.sides),
                "config": None if self.config is None else self.config.model_dump(),
                "stats": {k: float(v) for k, v in self.stats.items()},
                "history": [{k: float(v) for k, v in h.items()} for h in self.history]}

    def save(self, path: str | os.PathLike) -> None:
        """Tensors and plain numbers only (`load` reads it with torch.load(weights_only=True));
        written to a temporary file and renamed, so a crash leaves no half-written checkpoint."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, game: BatchedDebate | DebateGame | DebateRules | None = None) -> Debaters:
        """Debaters saved by `save`; a missing, corrupt or foreign file raises a one-line ValueError
        naming the file (nothing but tensors and plain containers is ever unpickled), and so do
        debaters whose sizes do not fit `game` when one is given."""
        import pickle
        import zipfile

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such debaters checkpoint")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError:
            raise ValueError(f"{path}: holds objects other than tensors and plain containers; not a debaters "
                             "checkpoint") from None
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{path}: is not a readable debaters checkpoint ({text[:160]})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path}: is not a debaters checkpoint (saved by Debaters.save)")
        try:
            f, d = int(state["num_features"]), int(state["num_decisions"])
            actor = GroupActor(debater_group(f, d), int(state["hidden"]), share=True)
            actor.load_state_dict(state["actor"])
            config = None if state["config"] is None else DebatersConfig.model_validate(state["config"])
            out = cls(actor, f, d, int(state["num_arguments"]), tuple(int(s) for s in state["sides"]), config,
                      dict(state["stats"]), list(state["history"]))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{path}: is a damaged debaters checkpoint ({text[:160]})") from None
        if game is not None:
            try:
                out.check_fits(game)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        return out


def sample_rows(p: np.ndarray, legal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of probabilities p [b, A] (inverse CDF), always a legal one."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    out = np.minimum((cdf <= u).sum(1), p.shape[1] - 1)
    bad = ~legal[np.arange(len(p)), out]  # rounding at the top end: the last legal action
    if bad.any():
        out[bad] = legal.shape[1] - 1 - np.argmax(legal[bad, ::-1], axis=1)
    return out


# ----------------------------------------------------------------------------- one seat held fixed
class VersusFixed(MarkovGame):
    """BatchedDebate with one seat of every debate played by a fixed actor: the learner's seat is
    `learner_side` (0, 1, or "random": drawn per debate), and only that slot is active, so a
    learner of the two-slot group trains that slot alone (the other slot's actions are replaced by
    the fixed actor's). The fixed actor samples its reveals, or takes the most probable when
    `deterministic`. `opponent` is held by reference: loading new weights into it (the frozen
    copy's refresh) changes the game from the next step on."""

    masks_actions = True

    def __init__(self, game: BatchedDebate, opponent: GroupActor, learner_side: int | str = "random",
                 deterministic: bool = False):
        if not isinstance(game, BatchedDebate):
            raise ValueError(f"VersusFixed wraps a BatchedDebate, got {type(game).__name__}")
        if learner_side not in (0, 1, "random") or isinstance(learner_side, bool):
            raise ValueError(f"learner_side must be 0, 1 or 'random', got {learner_side!r}")
        self.game, self.opponent = game, opponent
        self.learner_side, self.deterministic = learner_side, deterministic
        self.rules = game.rules
        self.groups, self.state_shape, self.max_steps = game.groups, game.state_shape, game.max_steps
        self.size_estimate = game.size_estimate
        self.info = dataclasses.replace(game.info, name=f"{game.info.name}[side {learner_side} vs fixed]")

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> VersusSimulator:
        return VersusSimulator(self, num_envs, seed)


class VersusSimulator(Simulator):
    def __init__(self, game: VersusFixed, num_envs: int, seed: int | None):
        self.game, self.num_envs = game, num_envs
        self.inner = game.game.simulator(num_envs, seed)
        self._reseed(seed)

    def _reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng([0 if seed is None else seed, 7])
        self.side = self._draw(self.num_envs)

    def _draw(self, n: int) -> np.ndarray:
        if self.game.learner_side == "random":
            return self.rng.integers(0, 2, n).astype(np.int64)
        return np.full(n, int(self.game.learner_side), dtype=np.int64)

    def _mine(self) -> np.ndarray:
        out = np.zeros((self.num_envs, 2), dtype=bool)
        out[np.arange(self.num_envs), self.side] = True
        return out

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        obs = self.inner.reset(seed)
        if seed is not None:
            self._reseed(seed)
        else:
            self.side = self._draw(self.num_envs)
        return obs

    def observe(self) -> dict[str, Any]:
        return self.inner.observe()

    def active(self) -> dict[str, np.ndarray]:
        return {GROUP: self._mine()}

    def action_mask(self) -> dict[str, np.ndarray]:
        return self.inner.action_mask()

    def global_state(self) -> np.ndarray:
        return self.inner.global_state()

    def _opponent_actions(self) -> np.ndarray:
        obs, mask = self.inner.observe()[GROUP], self.inner.action_mask()[GROUP]
        rows, other = np.arange(self.num_envs), 1 - self.side
        with torch.no_grad():
            logits = self.game.opponent.logits(as_tensors(obs), torch.as_tensor(mask))[rows, other]
        legal = mask[rows, other]
        if self.game.deterministic:
            return np.where(legal, logits.numpy(), -np.inf).argmax(1)
        p = np.where(legal, torch.softmax(logits.double(), -1).numpy(), 0.0)
        return sample_rows(p, legal, self.rng)

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        rows = np.arange(self.num_envs)
        joint = np.array(actions[GROUP], dtype=np.int64).reshape(self.num_envs, 2)
        joint[rows, 1 - self.side] = self._opponent_actions()
        acting = self._mine()
        res = self.inner.step({GROUP: joint}, autoreset)
        rewards = {GROUP: np.where(acting, res.rewards[GROUP], 0.0)}
        final_active = None if res.final_obs is None else {GROUP: acting}  # the learner stays to the end
        if autoreset and res.done.any():
            idx = np.flatnonzero(res.done)
            self.side[idx] = self._draw(len(idx))
        return StepResult(res.obs, rewards, self.active(), res.terminated, res.truncated, res.final_obs,
                          final_active, res.final_state, res.info)

    def get_state(self) -> dict[str, Any]:
        return {"inner": self.inner.get_state(), "side": self.side.copy(),
                "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.inner.set_state(state["inner"])
        self.side = np.array(state["side"], dtype=np.int64)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


# ----------------------------------------------------------------------------- training
def _run_ppo(env: MarkovGame, config: DebatersConfig, seed: int, progress: Progress | None,
             each_update: Callable[[Any, int], None] | None = None) -> tuple[Any, list[dict[str, float]], float]:
    """IPPO on `env` for config.updates updates; `each_update(ppo, updates done)` before the first
    (0) and after every update. The global torch RNG is left as it was."""
    from equilibria.marl.registry import make

    history: list[dict[str, float]] = []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        ppo = make("ippo", env, seed=seed, **config.ippo(env.rules.num_arguments))
        if each_update is not None:
            each_update(ppo, 0)
        for u in range(config.updates):
            stats = ppo.train_step()
            row = {k: float(v) for k, v in stats.items() if k != "steps_per_second"}
            row["update"] = float(u + 1)
            history.append(row)
            if each_update is not None:
                each_update(ppo, u + 1)
            if progress is not None:
                progress(u + 1, row)
    return ppo, history, time.perf_counter() - started


def train_debaters(game: BatchedDebate, config: DebatersConfig | None = None, seed: int = 0,
                   progress: Progress | None = None) -> Debaters:
    """Self-play PPO with action masks (see the module docstring): one actor for both sides,
    against the current self or a frozen copy refreshed every generation. `progress(updates done,
    statistics)` after each update; deterministic in `seed`, the global torch RNG untouched.
    `stats`: train_seconds, updates, env_steps, generations."""
    config = config or DebatersConfig()
    if not isinstance(game, BatchedDebate):
        raise ValueError(f"train_debaters trains on a BatchedDebate, got {type(game).__name__}")
    r = game.rules
    if config.opponent == "current":
        ppo, history, seconds = _run_ppo(game, config, seed, progress)
        generations = 0
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            frozen = GroupActor(debater_group(r.num_features, r.num_decisions), config.hidden, share=True)
        env = VersusFixed(game, frozen, "random", config.frozen_deterministic)
        refreshed = [0]

        def refresh(ppo: Any, done: int) -> None:
            # generation 0 plays the learner's initial weights, each later one its latest
            if done % config.generation_updates == 0 and done < config.updates:
                frozen.load_state_dict(ppo.actors[GROUP].state_dict())
                refreshed[0] += 1

        ppo, history, seconds = _run_ppo(env, config, seed, progress, refresh)
        generations = refreshed[0]
    actor = copy.deepcopy(ppo.actors[GROUP])
    stats = {"train_seconds": seconds, "updates": float(config.updates), "env_steps": float(ppo.env_steps),
             "generations": float(generations)}
    return Debaters(actor, r.num_features, r.num_decisions, r.num_arguments, (0, 1), config, stats, history)


def train_confuser(game: BatchedDebate, debaters: Debaters, side: int, config: DebatersConfig | None = None,
                   seed: int = 0, progress: Progress | None = None, deterministic: bool = True) -> Debaters:
    """A confuser: a fresh actor trained by PPO for seat 1 - side against the FIXED `debaters`
    playing `side` (their most probable reveals when `deterministic`, as `robustness` plays them;
    else sampled). The config's opponent fields do not apply. The returned Debaters play side
    1 - side only."""
    config = config or DebatersConfig()
    if not isinstance(game, BatchedDebate):
        raise ValueError(f"train_confuser trains on a BatchedDebate, got {type(game).__name__}")
    debaters.check_fits(game)
    debaters._slot(side)
    r = game.rules
    env = VersusFixed(game, copy.deepcopy(debaters.actor), 1 - side, deterministic)
    ppo, history, seconds = _run_ppo(env, config, seed, progress)
    stats = {"train_seconds": seconds, "updates": float(config.updates), "env_steps": float(ppo.env_steps),
             "against_side": float(side)}
    return Debaters(copy.deepcopy(ppo.actors[GROUP]), r.num_features, r.num_decisions, r.num_arguments,
                    (1 - side,), config, stats, history)


# ----------------------------------------------------------------------------- evaluation
def _sides(payoff: np.ndarray, side: int) -> np.ndarray:
    """The payoff of `side` (player 0's payoff negated for side 1)."""
    return payoff if side == 0 else -payoff


def head_to_head(game: BatchedDebate | DebateGame | DebateRules, debater: Chooser, opponent: Chooser, side: int,
                 x: np.ndarray, a: np.ndarray, first: Any = None, seed: int = 0) -> dict[str, float]:
    """`debater` plays `side`, `opponent` the other, on cases x [B, F], a [B, 2]: the debater's
    mean payoff and its win, tie and loss rates."""
    choose = (debater, opponent) if side == 0 else (opponent, debater)
    out = play_debates(game, choose[0], choose[1], x, a, first, np.random.default_rng(seed))
    u = _sides(out["payoff"], side)
    return {"payoff": float(u.mean()), "win_rate": float((u > 0).mean()), "tie_rate": float((u == 0).mean()),
            "loss_rate": float((u < 0).mean())}


def sample_cases(game: BatchedDebate, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n cases (x [n, F], a [n, 2]) from the game's sampler."""
    x, a = game.sampler(np.random.default_rng(seed), n)
    return np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.int64)


def robustness(game: BatchedDebate | DebateGame | DebateRules, debaters: Debaters, confuser: Debaters,
               x: np.ndarray, a: np.ndarray, side: int = 0, first: Any = None, seed: int = 0) -> dict[str, float]:
    """The debater's (deterministic, playing `side`) win rate and mean payoff against the confuser
    (deterministic, the other side) and against its own self-play partner (the same actor on the
    other side), on the same cases x [B, F], a [B, 2] and the same starters; its loss rates are
    the confuser's and the partner's win rates; `drop` is how much the debater's win rate falls
    against the confuser."""
    r = debaters.check_fits(game)
    confuser.check_fits(game)
    b = len(x)
    first = r.first if first is None else first
    if isinstance(first, str) or np.ndim(first) == 0:
        first = dataclasses.replace(r, first=first).draw_first(np.random.default_rng([seed, 3]), b)
    me = debaters.chooser(side)
    vs_self = head_to_head(r, me, debaters.chooser(1 - side), side, x, a, first, seed)
    vs_conf = head_to_head(r, me, confuser.chooser(1 - side), side, x, a, first, seed)
    return {"win_rate_vs_self": vs_self["win_rate"], "win_rate_vs_confuser": vs_conf["win_rate"],
            "loss_rate_vs_self": vs_self["loss_rate"], "loss_rate_vs_confuser": vs_conf["loss_rate"],
            "payoff_vs_self": vs_self["payoff"], "payoff_vs_confuser": vs_conf["payoff"],
            "drop": vs_self["win_rate"] - vs_conf["win_rate"]}


# ----------------------------------------------------------------------------- the extensive form
def batched_of(game: DebateGame) -> BatchedDebate:
    """The BatchedDebate that deals exactly `game`'s cases with its probabilities (case_sampler),
    with the same judge, sizes, starters and tie tolerance."""
    r = game.rules
    return BatchedDebate(case_sampler(game.cases_x, game.cases_a, game.probs), r.judge, r.num_features,
                         r.num_decisions, r.num_arguments, r.first, r.tie_tol)


class DebaterPolicy:
    """Debaters as a games.core Policy on a DebateGame: at a decision state the mover's
    observation is built as BatchedDebate builds it (observation_parts), and the actor's
    probabilities over the legal reveals are returned (the most probable one with probability 1
    when `deterministic`)."""

    def __init__(self, debaters: Debaters, game: DebateGame, deterministic: bool = False):
        self.debaters, self.game, self.deterministic = debaters, game, deterministic
        self.rules = debaters.check_fits(game)

    def action_probabilities(self, state: State, player: int | None = None) -> dict[int, float]:
        cur = state.current_player()
        player = cur if player is None else player
        if cur in (CHANCE, TERMINAL) or player != cur:
            return {}
        g = self.game
        mask = state.mask()
        parts = observation_parts(self.rules, g.cases_x[state.case][None], mask[None], g.cases_a[state.case][None],
                                  player, np.array([len(state.reveals)]), np.array([True]))
        p = self.debaters.probabilities(parts, ~mask[None], player)[0]
        legal = np.flatnonzero(~mask)
        if self.deterministic:
            best = int(legal[np.argmax(p[legal])])
            return {int(i): float(i == best) for i in legal}
        z = p[legal].sum()
        return {int(i): float(p[i] / z) for i in legal}


def as_game_policy(debaters: Debaters, debate_game: DebateGame, deterministic: bool = False) -> DebaterPolicy:
    """The debaters as a Policy on the extensive-form game (see DebaterPolicy), for
    solvers.exploitability and solvers.policy_value."""
    return DebaterPolicy(debaters, debate_game, deterministic)


def exploitability(debaters: Debaters, debate_game: DebateGame, deterministic: bool = False) -> float:
    """solvers.exploitability of `as_game_policy(debaters, debate_game, deterministic)`."""
    from equilibria.solvers.exploitability import exploitability as exact

    return exact(debate_game, as_game_policy(debaters, debate_game, deterministic))


__all__ = ["Debaters", "DebaterPolicy", "DebatersConfig", "VersusFixed", "as_game_policy", "batched_of",
           "debater_group", "exploitability", "head_to_head", "robustness", "sample_cases", "train_confuser",
           "train_debaters"]
