"""Game registry: `load("random_zero_sum(n=100, seed=3)")`, `registered()`.

Game strings are parsed by a small grammar (never eval'd):

    spec   := NAME [ "(" [ param ("," param)* ] ")" ]
    param  := NAME "=" value
    value  := INT | FLOAT | BOOL | QUOTED_STRING | BARE_WORD | "[" [value ("," value)*] "]"

Every failure raises one ValueError that names the string and what is wrong.
"""

from __future__ import annotations

import difflib
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from games.core import Game

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

    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.factory).parameters)


_REGISTRY: dict[str, GameEntry] = {}


def register(name: str, factory: Callable[..., Game] | None = None, *, description: str = ""):
    """Register a game factory under `name` (usable as a decorator)."""

    def _do(f: Callable[..., Game]) -> Callable[..., Game]:
        if name in _REGISTRY and _REGISTRY[name].factory is not f:
            raise ValueError(f"game {name!r} is registered twice")
        doc = description or (inspect.getdoc(f) or "").split("\n")[0]
        _REGISTRY[name] = GameEntry(name, f, doc)
        return f

    return _do(factory) if factory is not None else _do


def registered() -> list[str]:
    """Names of every registered game, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> GameEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown game {name!r}{_suggest(name, _REGISTRY)}")
    return _REGISTRY[name]


def _suggest(word: str, options: Mapping[str, Any] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                raise ValueError(f"game string {text!r}: unexpected character at position {pos}: {stripped[pos:pos + 10]!r}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"game string {self.text!r}: {what}")

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
        raise ValueError(f"game string {text!r}: empty")
    return _Parser(text.strip()).parse()


def _coerce(spec: str, game: str, key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against the factory's type hint; ints widen to float, nothing else converts."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    options = typing.get_args(annotation) if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) else (annotation,)
    for opt in options:
        if opt is type(None) and value is None:
            return None
        base = typing.get_origin(opt) or opt
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is bool and isinstance(value, bool):
            return value
        if base is str and isinstance(value, str):
            return value
        if base in (list, tuple, typing.Sequence) and isinstance(value, list):
            return value
        if base is object:
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ValueError(f"game string {spec!r}: parameter {key!r} of {game!r} must be {names}, got {value!r}")


def load(spec: str | Mapping[str, Any], **overrides: Any) -> Game:
    """Build a game from a registry string ('leduc_poker', 'kuhn_poker(players=3)') or a mapping
    {'name': ..., **params}. Keyword overrides take precedence over parameters in the string."""
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(f"game mapping {spec!r}: needs a 'name' key")
        name = spec.pop("name")
        params = spec
        text = f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
        if not isinstance(name, str):
            raise ValueError(f"game mapping: 'name' must be a string, got {name!r}")
    else:
        text = spec
        name, params = parse_game_string(spec)
    params = {**params, **overrides}
    if name not in _REGISTRY:
        raise ValueError(f"game string {text!r}: unknown game {name!r}{_suggest(name, _REGISTRY)}")
    e = _REGISTRY[name]
    sig = e.parameters()
    try:
        hints = typing.get_type_hints(e.factory)
    except Exception:  # pragma: no cover - unresolvable hints fall back to no checking
        hints = {}
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
    kwargs = {}
    for key, value in params.items():
        if key not in sig and not accepts_kwargs:
            known = [k for k, p in sig.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
            raise ValueError(
                f"game string {text!r}: unknown parameter {key!r} for {name!r}{_suggest(key, known)}"
                f" (parameters: {', '.join(known) or 'none'})"
            )
        kwargs[key] = _coerce(text, name, key, value, hints.get(key, inspect.Parameter.empty))
    missing = [k for k, p in sig.items() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k not in kwargs]
    if missing:
        raise ValueError(f"game string {text!r}: {name!r} needs parameter(s) {', '.join(missing)}")
    try:
        return e.factory(**kwargs)
    except ValueError as err:
        msg = str(err)
        raise ValueError(msg if text in msg else f"game string {text!r}: {msg}") from None
