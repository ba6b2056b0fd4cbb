"""equilibria.marl: learners for Markov games (MAPPO, IPPO, ...) under one registry.

    from equilibria import games, marl
    learner = marl.make("mappo", games.load("cooperative_navigation"), seed=0, num_envs=32)
"""

from equilibria.marl.registry import Learner, build_config, entry, make, make_with, registered

__all__ = ["Learner", "build_config", "entry", "make", "make_with", "registered"]
