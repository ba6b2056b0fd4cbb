"""YAML in and out, safely: YAML 1.2 (ruamel.yaml, safe mode), limits before building objects.

Why ruamel.yaml rather than PyYAML: YAML 1.2 reads `1e3` as a number and `yes` / `no` / `on`
as strings (YAML 1.1 reads the first as a string and the others as booleans), and its
composer gives every node a line, so duplicate keys are named with both lines.

Reading a file: only a regular file is read (not a FIFO or a device such as /dev/zero), and
only if it is at most `limits.MAX_CONFIG_BYTES`. Parsing: one pass over the event stream,
which does not recurse, refuses nesting deeper than `limits.MAX_YAML_DEPTH` and documents
whose alias-expanded size exceeds `limits.MAX_YAML_NODES` (the "billion laughs"), before
any object is built.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent
from ruamel.yaml.nodes import MappingNode, SequenceNode

from equilibria.common.config import ConfigError, FieldPath, Source
from equilibria.common.limits import MAX_CONFIG_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, format_bytes


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.version = (1, 2)
    return y


def read_text_file(path: str | os.PathLike, limit: int = MAX_CONFIG_BYTES, what: str = "file") -> str:
    """The text of a regular file of at most `limit` bytes; ConfigError otherwise (nothing
    more than `limit` bytes is ever read)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"no such {what}: {p}") from None
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{p} is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{p} is not a regular file (a pipe, socket or device); give a {what} path")
    if st.st_size > limit:
        raise ConfigError(f"{p} is {format_bytes(st.st_size)}; a {what} may be at most {format_bytes(limit)}")
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror or err}") from None
    if len(data) > limit:  # grew while we looked
        raise ConfigError(f"{p} is larger than {format_bytes(limit)}, the limit for a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p} is not UTF-8 text (byte {err.start})") from None


def _line(err: YAMLError) -> int | None:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _check_shape(text: str, name: str) -> None:
    """Depth and alias-expanded size from the event stream, before composing anything."""
    depth, total = 0, 0
    anchors: dict[str, int] = {}
    starts: list[tuple[str | None, int]] = []
    for event in _yaml().parse(io.StringIO(text)):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, AliasEvent):
            total += anchors.get(event.anchor, 1)
        elif isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"nesting deeper than {MAX_YAML_DEPTH} levels", (), name, line)
            starts.append((event.anchor, total))
            total += 1
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
            anchor, start = starts.pop()
            if anchor is not None:
                anchors[anchor] = total - start
        elif isinstance(event, NodeEvent):  # a scalar
            total += 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
        if total > MAX_YAML_NODES:
            raise ConfigError(f"more than {MAX_YAML_NODES:,} values once aliases are expanded (an alias bomb?)",
                              (), name, line)


def load_yaml(text: str, name: str) -> tuple[Any, Source]:
    """Parse one YAML 1.2 document safely; return the data and the line of each key path.
    Every failure is a ConfigError naming `name` and the line."""
    try:
        _check_shape(text, name)
        node = _yaml().compose(text)
    except MarkedYAMLError as err:
        problem = (err.problem or str(err).splitlines()[0]).strip()
        raise ConfigError(f"malformed YAML: {problem}", (), name, _line(err)) from None
    except YAMLError as err:
        raise ConfigError(f"malformed YAML: {str(err).splitlines()[0]}", (), name, _line(err)) from None
    source = Source(name)
    if node is None:
        return None, source
    source.lines[()] = node.start_mark.line + 1

    def walk(n: Any, path: FieldPath) -> None:
        if isinstance(n, MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                key = str(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} (lines {seen[key]} and {line})", path, name, line)
                seen[key] = line
                source.lines[(*path, key)] = line
                walk(v, (*path, key))
        elif isinstance(n, SequenceNode):
            for i, v in enumerate(n.value):
                source.lines[(*path, str(i))] = v.start_mark.line + 1
                walk(v, (*path, str(i)))

    walk(node, ())
    try:
        data = _yaml().load(text)
    except YAMLError as err:
        raise ConfigError(f"malformed YAML: {str(err).splitlines()[0]}", (), name, _line(err)) from None
    return data, source


def load_yaml_file(path: str | os.PathLike, what: str = "scenario file") -> tuple[Any, Source]:
    return load_yaml(read_text_file(path, what=what), str(path))


def parse_value(text: str) -> Any:
    """A command-line value (`--set key=VALUE`) read as a YAML 1.2 scalar or flow collection:
    `1e3` is 1000.0, `true` a boolean, `[1, 2]` a list; anything unparsable stays text."""
    if not text.strip():
        return ""
    try:
        _check_shape(text, "--set")
        return _yaml().load(text)
    except (YAMLError, ConfigError):
        return text


def dump_yaml(data: Any) -> str:
    """Plain data as YAML 1.2 (block style, keys in the given order)."""
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()
