"""RLlib's PPO as a learner with the same interface as marl.mappo.MAPPO (train_step, evaluate,
env_steps), so `kind: train` with `backend: rllib` runs the same YAML through RLlib: the same
batch size, epochs and PPO constants, one shared RLModule per agent group (parameter sharing),
RLlib's default independent critics, evaluated by the same deterministic loop as MAPPO."""

from __future__ import annotations

from typing import Any

import numpy as np

from equilibria.common.executor import ray_init
from equilibria.marl.mappo import MAPPOConfig
from equilibria.marl.runtime import evaluate_episodes


def rllib_ppo_config(game_spec: Any, groups: list[str], config: MAPPOConfig, seed: int) -> Any:
    """RLlib PPO (new API stack) with our MAPPO config's batch, epochs and PPO constants; one
    policy per agent group."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from equilibria.games.adapters.rllib import policy_of, rllib_env_class

    c = config
    batch = c.num_envs * c.rollout_length
    return (PPOConfig().environment(env=rllib_env_class(), env_config={"game": game_spec, "seed": seed})
            .multi_agent(policies=set(groups), policy_mapping_fn=lambda aid, *a, **k: policy_of(aid))
            .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
            .training(train_batch_size_per_learner=batch, minibatch_size=max(1, batch // c.num_minibatches),
                      num_epochs=c.ppo_epochs, lr=c.lr, gamma=c.gamma, lambda_=c.gae_lambda,
                      entropy_coeff=c.entropy_coef, clip_param=c.clip, grad_clip=c.max_grad_norm)
            .rl_module(model_config={"fcnet_hiddens": [c.hidden, c.hidden], "fcnet_activation": "tanh"})
            .debugging(seed=seed))


def rllib_evaluate(algo: Any, game: Any, episodes: int, seed: int = 10_000) -> tuple[float, float]:
    """The same deterministic evaluation as MAPPO.evaluate, with RLlib's module choosing actions."""
    import torch

    def choose(obs: dict, mask: dict, active: dict) -> dict[str, np.ndarray]:
        out = {}
        for k, x in obs.items():
            if isinstance(x, dict):  # composite observations are flattened in part order, as the env does
                x = np.concatenate([v.reshape(*v.shape[:2], -1) for v in x.values()], axis=-1)
            e, n = x.shape[:2]
            with torch.no_grad():
                logits = algo.get_module(k).forward_inference({"obs": torch.as_tensor(x.reshape(e * n, -1))})
            logits = logits["action_dist_inputs"].reshape(e, n, -1).masked_fill(~torch.as_tensor(mask[k]), -1e9)
            out[k] = logits.argmax(-1).numpy()
        return out

    return evaluate_episodes(game, choose, episodes, seed)


class RLlibPPO:
    """RLlib PPO behind MAPPO's training interface (no checkpoints: an interrupted RLlib run
    starts over)."""

    def __init__(self, game: Any, game_spec: Any, config: MAPPOConfig, seed: int = 0, address: str | None = None):
        ray_init(address)
        self.game, self.config = game, config
        self.algo = rllib_ppo_config(game_spec, [g.name for g in game.groups], config, seed).build_algo()
        self.env_steps = 0

    def train_step(self) -> dict[str, float]:
        result = self.algo.train()
        self.env_steps = int(result.get("num_env_steps_sampled_lifetime", self.env_steps))
        er = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
        return {"env_steps": self.env_steps, "episode_return": er / self.game.max_agents}

    def evaluate(self, episodes: int = 32) -> tuple[float, float]:
        return rllib_evaluate(self.algo, self.game, episodes)

    def stop(self) -> None:
        self.algo.stop()
