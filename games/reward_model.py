"""A Markov game whose rewards come from a reward model instead of the game.

`RewardModelGame(game, reward)` plays `game` exactly (observations, actions, who is active,
termination) and pays each agent `reward(step)` instead: a reward recovered by inverse RL
(MAMQL's r_i = Q_i(o, a_i) - gamma V_i(o')), a learned judge's verdict, or a mix with the
game's own reward. Any learner trains on it unchanged; the game's own rewards stay in
`StepResult.info["game_rewards"]`, so evaluation can still report them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from equilibria.games.markov import Batch, MarkovGame, Simulator, StepResult


@dataclasses.dataclass
class Transition:
    """What a reward model sees of one step of E environments (everything keyed by group)."""

    obs: Batch  # before the step
    actions: dict[str, np.ndarray]  # [E, n]
    next_obs: Batch  # after it (the final observations where an episode ended)
    terminated: np.ndarray  # [E]
    active: dict[str, np.ndarray]  # [E, n]: who acted
    game_rewards: dict[str, np.ndarray]  # [E, n]: what the game paid


RewardModel = Callable[[Transition], dict[str, np.ndarray]]  # -> {group: [E, n]}


class RewardModelGame(MarkovGame):
    def __init__(self, game: MarkovGame, reward: RewardModel, name: str = "reward model"):
        self.game, self.reward = game, reward
        self.groups, self.state_shape, self.max_steps = game.groups, game.state_shape, game.max_steps
        self.masks_actions = game.masks_actions
        self.size_estimate = getattr(game, "size_estimate", None)
        self.info = dataclasses.replace(game.info, name=f"{game.info.name}[{name}]", min_utility=-np.inf,
                                        max_utility=np.inf, utility="general", utility_sum=None)

    def simulator(self, num_envs: int = 1, seed: int | None = None) -> RewardModelSimulator:
        return RewardModelSimulator(self, num_envs, seed)


class RewardModelSimulator(Simulator):
    def __init__(self, game: RewardModelGame, num_envs: int, seed: int | None):
        self.game, self.num_envs = game, num_envs
        self.inner = game.game.simulator(num_envs, seed)
        self.rng, self.supports_state = self.inner.rng, self.inner.supports_state

    def reset(self, seed: int | None = None) -> Batch:
        out = self.inner.reset(seed)
        self.rng = self.inner.rng
        return out

    def observe(self) -> Batch:
        return self.inner.observe()

    def active(self) -> dict[str, np.ndarray]:
        return self.inner.active()

    def action_mask(self) -> dict[str, np.ndarray]:
        return self.inner.action_mask()

    def global_state(self) -> np.ndarray:
        return self.inner.global_state()

    def step(self, actions: dict[str, np.ndarray], autoreset: bool = True) -> StepResult:
        obs, active = self.inner.observe(), self.inner.active()
        res = self.inner.step(actions, autoreset)
        nxt = res.obs if res.final_obs is None else res.final_obs  # final_obs: res.obs before the resets
        t = Transition(obs, {k: np.asarray(v) for k, v in actions.items()}, nxt, res.terminated, active, res.rewards)
        paid = self.game.reward(t)
        res.info["game_rewards"] = res.rewards
        res.rewards = {k: np.where(active[k], np.asarray(paid[k], dtype=np.float64), 0.0) for k in res.rewards}
        return res

    def get_state(self) -> dict[str, Any]:
        return self.inner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.inner.set_state(state)


__all__ = ["RewardModel", "RewardModelGame", "Transition"]
