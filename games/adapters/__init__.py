"""Adapters between equilibria games and OpenSpiel, PettingZoo and RLlib.

Each adapter imports its third-party library lazily, so `import games` stays light.
"""
