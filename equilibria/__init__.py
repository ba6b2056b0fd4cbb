"""equilibria: multi-agent and game-theoretic learning on one game abstraction.

    from equilibria import games, solvers
    game = games.load("leduc_poker")
    solvers.make("cfr+", game).run(100)

The subpackages live in the repository's root folders (games/, solvers/, marl/, llm_agents/,
scenarios/, common/) and are installed under this package (pyproject's package-dir mapping).
"""

import os as _os

__version__ = "0.1.0"

# In a checkout (tests, `python -m equilibria.scenarios.cli` from the repository), the
# subpackages are the folders beside this one; an installed wheel holds them inside it.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "pyproject.toml")) and _os.path.isdir(_os.path.join(_root, "games")):
    __path__.append(_root)
