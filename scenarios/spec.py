"""Typed configs from YAML, with errors that name the file, the line, the field and the reason.

`read_yaml` parses with yaml.safe_load semantics and records the line of every mapping key;
`from_dict` builds a dataclass from a mapping, checking each field's type hint and calling the
class's `validate()` (range checks). Every failure is a ScenarioError that prints as one line:

    leduc.yaml:7: solver.config.alhpa: unknown parameter; did you mean 'alpha'?
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str, ...]


class ScenarioError(ValueError):
    """A bad scenario: where (file, line, field path) and why, as one line."""

    def __init__(self, reason: str, path: Path_ = (), source: str | None = None, line: int | None = None):
        self.reason, self.path, self.source, self.line = reason, tuple(path), source, line
        super().__init__(self.format())

    def format(self) -> str:
        where = self.source or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        field = ".".join(self.path)
        return f"{where}: {field + ': ' if field else ''}{self.reason}"


@dataclasses.dataclass
class Source:
    """Where values came from: the file name, and the line of each key path (or '--set')."""

    name: str
    lines: dict[Path_, int | str] = dataclasses.field(default_factory=dict)

    def error(self, reason: str, path: Path_ = ()) -> ScenarioError:
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        where = self.lines.get(p)
        if isinstance(where, str):  # given on the command line
            return ScenarioError(reason, path, f"{self.name} ({where})")
        return ScenarioError(reason, path, self.name, where)


def read_yaml(text: str, name: str) -> tuple[Any, Source]:
    """Parse YAML safely; return the data and the line of each key path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(f"malformed YAML: {problem}", (), name, line) from None
    source = Source(name)

    def walk(n: Any, path: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*path, str(k.value))
                source.lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                key = (*path, str(i))
                source.lines[key] = v.start_mark.line + 1
                walk(v, key)

    if node is not None:
        source.lines[()] = node.start_mark.line + 1
        walk(node, ())
    return data, source


def suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " or ".join(repr(x) for x in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any, path: Path_, source: Source) -> Any:
    """Check `value` against `hint`; ints widen to floats, nothing else converts."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return coerce(value, option, path, source)
            except ScenarioError as err:
                errors.append(err)
        raise source.error(f"must be {_type_name(hint)}, got {value!r}", path)
    if hint is type(None):
        if value is None:
            return None
        raise source.error(f"must be null, got {value!r}", path)
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        options = [str(x) for x in typing.get_args(hint)]
        raise source.error(f"must be {_type_name(hint)}, got {value!r}{suggest(str(value), options)}", path)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path, source)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, list):
            args = typing.get_args(hint)
            if args:
                return [coerce(v, args[0], (*path, str(i)), source) for i, v in enumerate(value)]
            return list(value)
    elif origin is dict or hint is dict:
        if isinstance(value, Mapping):
            return dict(value)
    else:  # pragma: no cover - a hint this module does not know
        return value
    raise source.error(f"must be {_type_name(hint)}, got {value!r}", path)


def from_dict(cls: type, data: Any, path: Path_, source: Source) -> Any:
    """Build dataclass `cls` from a mapping, field by field, then run cls.validate()."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise source.error(f"must be a mapping, got {data!r}", path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise source.error(f"unknown field{suggest(str(key), list(fields))} (fields: {', '.join(fields)})",
                               (*path, str(key)))
        kwargs[key] = coerce(value, hints[key], (*path, key), source)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise source.error(f"missing required field(s): {', '.join(missing)}", path)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ScenarioError:
            raise
        except ValueError as err:
            field, _, reason = str(err).partition(": ")
            if field in fields and reason:
                raise source.error(reason, (*path, field)) from None
            raise source.error(str(err), path) from None
    return obj


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain dicts and lists (for writing the resolved config)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
