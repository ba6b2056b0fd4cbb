"""RLlib adapter: a Markov game as an RLlib MultiAgentEnv (new API stack).

RLlib vectorises environments itself, so each MultiAgentEnv wraps one environment of a private
simulator (num_envs = 1) and reports termination and truncation separately. Agents are named
`{group}_{slot}` (MarkovGame.agent_names); only active agents receive observations (RLlib's
convention for agents that come and go), an agent that leaves is marked terminated, and
`policy_of(agent)` maps an agent to its group so each group can train its own shared policy. Observations are flattened vectors
(composite parts concatenated); the action mask is not passed on (RLlib's default modules have
no masking), so games that forbid actions need a custom RLModule.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from equilibria.games.markov import MarkovGame, flatten_obs
from equilibria.games.spaces import Composite, index_obs


def policy_of(agent: str) -> str:
    """The group (and policy) of an agent named `{group}_{slot}`."""
    return agent.rsplit("_", 1)[0]


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
            if not isinstance(game, MarkovGame):
                raise ValueError(f"to_rllib needs a Markov game; {game.info.name} is not one")
            self.game = game
            self.sim = game.simulator(1, int(config.get("seed", 0)))
            self.seats = game.seats()
            self.agents = self.possible_agents = game.agent_names()
            self.names = dict(zip(self.seats, self.possible_agents))
            self.observation_spaces, self.action_spaces = {}, {}
            for g, i in self.seats:
                group = game.group(g)
                obs = group.observation
                size = sum(b.size for b in obs.parts.values()) if isinstance(obs, Composite) else obs.size
                self.observation_spaces[self.names[g, i]] = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
                self.action_spaces[self.names[g, i]] = spaces.Discrete(group.num_actions)
            self._seed = int(config.get("seed", 0))

        def _obs(self, obs: dict, active: dict) -> dict[str, np.ndarray]:
            return {self.names[g, i]: flatten_obs(index_obs(obs[g], (0, i))) for g, i in self.seats if active[g][0, i]}

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            if seed is None:
                seed = self._seed
                self._seed += 1
            obs = self.sim.reset(seed=seed)
            self.agents = list(self._obs(obs, self.sim.active()))
            return self._obs(obs, self.sim.active()), {}

        def step(self, action_dict: dict[str, int]):
            acting = self.sim.active()
            actions = {g.name: np.zeros((1, g.size), dtype=np.int64) for g in self.game.groups}
            for g, i in self.seats:
                if acting[g][0, i]:
                    actions[g][0, i] = int(action_dict[self.names[g, i]])
            res = self.sim.step(actions, autoreset=False)
            done = bool(res.done[0])
            obs = self._obs(res.obs, res.active)
            rewards = {self.names[g, i]: float(res.rewards[g][0, i]) for g, i in self.seats if acting[g][0, i]}
            term: dict[str, bool] = {}
            trunc: dict[str, bool] = {}
            for g, i in self.seats:
                a = self.names[g, i]
                if acting[g][0, i]:
                    left = not res.active[g][0, i]
                    term[a] = bool(res.terminated[0]) or left
                    trunc[a] = bool(res.truncated[0]) and not left
                    if (done or left) and a not in obs:
                        obs[a] = np.zeros(self.observation_spaces[a].shape, dtype=np.float32)
            term["__all__"], trunc["__all__"] = bool(res.terminated[0]), bool(res.truncated[0])
            self.agents = [] if done else list(self._obs(res.obs, res.active))
            return obs, rewards, term, trunc, {}

    return GameMultiAgentEnv


def to_rllib(game: MarkovGame | str, seed: int = 0) -> Any:
    """An RLlib MultiAgentEnv instance for `game` (an object or a registry string)."""
    return _env_class()({"game": game, "seed": seed})


def rllib_env_class() -> type:
    """The MultiAgentEnv class, for `PPOConfig().environment(env=..., env_config={"game": "..."})`."""
    return _env_class()
