"""RLlib adapter: a batched Markov game as an RLlib MultiAgentEnv (new API stack).

RLlib vectorises environments itself, so each MultiAgentEnv wraps one environment of a
private simulator (num_envs = 1) and reports termination and truncation separately.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from equilibria.games.markov import BatchedMarkovGame


@functools.cache
def _env_class() -> type:
    from gymnasium import spaces
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    class GameMultiAgentEnv(MultiAgentEnv):
        def __init__(self, config: dict | None = None):
            super().__init__()
            config = config or {}
            game = config["game"]
            if isinstance(game, str):
                from equilibria import games

                game = games.load(game)
            if not isinstance(game, BatchedMarkovGame):
                raise ValueError(f"to_rllib needs a batched Markov game; {game.info.name} is not one")
            self.sim = game.spawn()
            self.agents = self.possible_agents = [f"agent_{i}" for i in range(game.num_agents)]
            box = spaces.Box(-np.inf, np.inf, shape=(game.obs_dim,), dtype=np.float32)
            self.observation_spaces = {a: box for a in self.agents}
            self.action_spaces = {a: spaces.Discrete(game.num_actions) for a in self.agents}
            self._seed = int(config.get("seed", 0))

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            if seed is None:
                seed = self._seed
                self._seed += 1
            obs = self.sim.reset(1, seed=seed)[0]
            return {a: obs[i] for i, a in enumerate(self.agents)}, {}

        def step(self, action_dict: dict[str, int]):
            actions = np.array([[int(action_dict[a]) for a in self.agents]])
            res = self.sim.step(actions, autoreset=False)
            obs = {a: res.obs[0, i] for i, a in enumerate(self.agents)}
            rewards = {a: float(res.rewards[0, i]) for i, a in enumerate(self.agents)}
            term = {a: bool(res.terminated[0]) for a in self.agents}
            trunc = {a: bool(res.truncated[0]) for a in self.agents}
            term["__all__"], trunc["__all__"] = bool(res.terminated[0]), bool(res.truncated[0])
            return obs, rewards, term, trunc, {}

    return GameMultiAgentEnv


def to_rllib(game: BatchedMarkovGame | str, seed: int = 0) -> Any:
    """An RLlib MultiAgentEnv instance for `game` (an object or a registry string)."""
    return _env_class()({"game": game, "seed": seed})


def rllib_env_class() -> type:
    """The MultiAgentEnv class, for `PPOConfig().environment(env=..., env_config={"game": "..."})`."""
    return _env_class()
