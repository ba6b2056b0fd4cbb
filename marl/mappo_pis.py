"""MAPPO-PIS (Guo et al. 2024): MAPPO with intention sharing and a safety-enhanced module, for CAVs
merging among HDVs (games.merge).

The method is MAPPO (marl.mappo) plus two parts that live on the merge game's state, so they act
the same in the batched twin and in highway-env (games.merge_highway):

- the intention generator module (IGM): each CAV's planned trajectory over the next second under
  its current plan, shared with the CAVs within communication range and observed by the policy
  (`intents: true` builds the game with intents; games.merge_safety.intents). This is the paper's
  description; its released code computes the trajectories only inside the safety module;
- the safety-enhanced module (SEM): CAVs in priority order, conflicts predicted by simulating one
  second ahead, unsafe meta-actions replaced by the action with the most safety room
  (games.merge_safety.safety_module). `safety: shared` predicts the other CAVs with their shared
  (chosen) actions; `assume_idle` assumes they keep lane and speed (no intent sharing); `off`
  disables it. It acts at training and evaluation; the policy is trained on the actions it
  sampled, the module being part of the environment it acts in.

Named variants (thin configurations): `mappo_pis` (intents, shared SEM), `mappo_sem` (SEM without
shared intents), `mappo_merge` (plain MAPPO with the paper's settings). Defaults from the released
code's configs_ppo.ini: 128 hidden units, learning rate 5e-4, gamma 0.99, 100-step rollouts, clip
0.2, max grad norm 5, global reward. MAPPO's entropy bonus 0.01 is applied (the code configures
0.01 but never applies it), and its value normalisation stands in for the code's reward scale 20.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from equilibria.common.config import PositiveFloat, count
from equilibria.games.markov import MarkovGame
from equilibria.games.merge import MergeGame
from equilibria.marl.mappo import MAPPO, MAPPOConfig, check_memory_of
from equilibria.marl.merge_eval import Choose, MergeEvaluation, evaluate_merge
from equilibria.marl.networks import as_tensors
from equilibria.marl.registry import register_learner


class MAPPOPISConfig(MAPPOConfig):
    """MAPPO-PIS on the merge game (games.merge): MAPPO's fields with the paper's values, plus the
    intention-sharing and safety switches."""

    num_envs: count(65_536) = 32
    """parallel environments (the released code runs one)"""
    rollout_length: count(100_000) = 100
    """steps per environment per update (the code: rollout 100 = one episode)"""
    lr: PositiveFloat = 5e-4
    """actor learning rate (the code: 5e-4, RMSprop; Adam here)"""
    critic_lr: PositiveFloat = 5e-4
    """critic learning rate (the code: 5e-4)"""
    max_grad_norm: PositiveFloat = 5.0
    """gradient clipping (the code: 5)"""
    hidden: count(65_536) = 128
    """units per hidden layer (the code: 128)"""
    ppo_epochs: count(1000) = 5
    """passes over each batch"""
    num_minibatches: count(100_000) = 4
    """minibatches per epoch"""
    intents: bool = True
    """observe the shared intents of neighbouring CAVs (the IGM)"""
    safety: Literal["off", "shared", "assume_idle"] = "shared"
    """the safety-enhanced module: predict other CAVs with their shared actions, assume they keep
    lane and speed, or no module"""


def _merge_game(game: MarkovGame, config: MAPPOPISConfig) -> MergeGame:
    if not isinstance(game, MergeGame):
        raise ValueError(f"MAPPO-PIS trains on the merge game (merge or merge_highway); {game.info.name} is not one")
    params = {**game.info.parameters, "intents": config.intents, "safety": config.safety}
    return type(game)(**params)


def _preflight(game: MarkovGame, config: MAPPOPISConfig) -> None:
    check_memory_of(_merge_game(game, config), config)


@register_learner("mappo_pis", MAPPOPISConfig, preflight=_preflight,
                  description="MAPPO-PIS (Guo et al. 2024): MAPPO with shared intents and the safety module (merge)")
@register_learner("mappo_sem", MAPPOPISConfig, preflight=_preflight, intents=False, safety="assume_idle",
                  description="MAPPO with the safety module, no shared intents: other CAVs predicted to keep lane and speed (merge)")
@register_learner("mappo_merge", MAPPOPISConfig, preflight=_preflight, intents=False, safety="off",
                  description="plain MAPPO with MAPPO-PIS's settings, the baseline of the merge experiments")
class MAPPOPIS(MAPPO):
    """MAPPO on the merge game rebuilt with the config's intents and safety module."""

    def __init__(self, game: MarkovGame, config: MAPPOPISConfig, seed: int = 0):
        super().__init__(_merge_game(game, config), config, seed)

    def choose(self, deterministic: bool = True, seed: int = 0) -> Choose:
        """(obs, active) -> meta-actions of the trained actor: greedy, or sampled."""
        gen = torch.Generator().manual_seed(seed)

        def choose(obs: dict[str, np.ndarray], active: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            with torch.no_grad():
                logits = self.actors["cavs"].logits(as_tensors(obs["cavs"]), None)
                if deterministic:
                    return {"cavs": logits.argmax(-1).numpy()}
                probs = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)
                return {"cavs": torch.multinomial(probs, 1, generator=gen).view(logits.shape[:-1]).numpy()}

        return choose

    def on_game(self, game: MarkovGame) -> MergeEvaluation | None:
        """Evaluation on another merge game (highway-env, another density or safety setting): the
        game keeps its own safety module and density, observations follow this policy's intents."""
        if not isinstance(game, MergeGame):
            return None
        return MergeEvaluation(type(game)(**{**game.info.parameters, "intents": self.config.intents}), self.choose())

    def evaluation_metrics(self, episodes: int = 20, seed: int = 10_000, deterministic: bool = True) -> dict[str, Any]:
        """marl.merge_eval's measures on this learner's own game (paired episodes)."""
        return evaluate_merge(self.game, self.choose(deterministic, seed), episodes, seed)

    def extra_evaluation(self, episodes: int = 32, seed: int = 10_000) -> dict[str, float]:
        """Logged by the train kind beside each evaluation: the greedy policy's collision rate
        (episodes with a crash), collisions per step, average speed and merge success."""
        m = self.evaluation_metrics(episodes, seed)
        return {k: float(np.nanmean(m[k])) for k in ("collision", "collisions_per_step", "speed", "merge_success")}
