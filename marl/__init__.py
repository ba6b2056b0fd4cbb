"""equilibria.marl: neural policies for Markov games (MAPPO, IPPO, ...)."""
