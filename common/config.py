"""Typed configs and the one checker that games, solvers, learners and scenario kinds use.

A config is a `Config`: a pydantic v2 model in strict mode, so a value is accepted only if it
already has the field's type (an int widens to a float, an integral float such as `1e6` to
an int; a string never turns into a number or a boolean), floats must be finite, unknown keys
are refused, and integers must fit in int64. Bounds live in the field's type
(`PositiveInt`, `Probability`, `count(limit)`, ...), cross-field rules in `check()`, and
the docstring under each field is its help text (`describe`).

Every failure becomes one `ConfigError` that prints as one line naming where (file and line,
or the API call), the field path, the value and what is accepted:

    leduc.yaml:7: solver.config.alhpa: unknown field; did you mean 'alpha'? (fields: ...)
    run.yaml:3: budget.iterations: must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model, model_validator

from equilibria.common.limits import INT64_MAX

FieldPath = tuple[str, ...]


class ConfigError(ValueError):
    """Bad input: where (file, line, field path) and why, as one line."""

    def __init__(self, reason: str, path: FieldPath = (), source: str | None = None, line: int | None = None):
        self.reason, self.path, self.source, self.line = reason, tuple(str(p) for p in path), source, line
        super().__init__(self.format())

    def format(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}"
        field = ".".join(self.path)
        return ": ".join(x for x in (where, field, self.reason) if x)


@dataclasses.dataclass
class Source:
    """Where values came from: a file name (or an API call), and the line of each key path
    (an int) or the command-line option that set it (a string)."""

    name: str
    lines: dict[FieldPath, int | str] = dataclasses.field(default_factory=dict)

    def error(self, reason: str, path: FieldPath = ()) -> ConfigError:
        p = tuple(str(x) for x in path)
        while p and p not in self.lines:
            p = p[:-1]
        where = self.lines.get(p)
        if isinstance(where, str):  # given on the command line
            return ConfigError(reason, path, f"{self.name} ({where})")
        return ConfigError(reason, path, self.name, where)

    def within(self, prefix: FieldPath) -> Source:
        """The same source seen from the field `prefix` (nested configs report full paths)."""
        return _Nested(self, tuple(str(x) for x in prefix))


class _Nested(Source):
    def __init__(self, parent: Source, prefix: FieldPath):
        super().__init__(parent.name, parent.lines)
        self.parent, self.prefix = parent, prefix

    def error(self, reason: str, path: FieldPath = ()) -> ConfigError:
        return self.parent.error(reason, (*self.prefix, *path))


def suggest(word: str, options: Any) -> str:
    """'; did you mean 'x'?' for the closest of `options`, or ''."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


# ----------------------------------------------------------------------------- field types
def _arrays_to_lists(value: Any) -> Any:
    """numpy arrays (and tuples) given through the Python API are checked as lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    if isinstance(value, tuple):
        return [_arrays_to_lists(v) for v in value]
    if isinstance(value, list):
        return [_arrays_to_lists(v) for v in value]
    return value


PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Seed = Annotated[int, Field(ge=0, le=INT64_MAX)]
FloatList = Annotated[list[float], BeforeValidator(_arrays_to_lists)]
Strategies = Annotated[list[list[float]], BeforeValidator(_arrays_to_lists)]  # one mixed strategy per player


def count(limit: int) -> Any:
    """A count of things allocated up front (environments, matches, episodes): 1..limit."""
    return Annotated[int, Field(ge=1, le=limit)]


# ----------------------------------------------------------------------------- the base class
def _base_type(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_int_field(annotation: Any) -> bool:
    a = _base_type(annotation)
    if a is int:
        return True
    if typing.get_origin(a) in (typing.Union, types.UnionType):
        args = [_base_type(x) for x in typing.get_args(a)]
        return int in args and float not in args
    return False


def _too_large_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -INT64_MAX - 1 <= value <= INT64_MAX
    if isinstance(value, (list, tuple)):
        return any(_too_large_int(v) for v in value)
    if isinstance(value, Mapping):
        return any(_too_large_int(v) for v in value.values())
    return False


class Config(BaseModel):
    """Base of every typed config. Subclasses declare fields (with a docstring each) and may
    override `check()` for rules across fields, raising ValueError("field: reason")."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True,
                              protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        # YAML 1.2 reads 1e6 as a float; an int field takes it when it is a whole number.
        if isinstance(data, Mapping):
            out = dict(data)
            for name, info in cls.model_fields.items():
                v = out.get(name)
                if isinstance(v, float) and _is_int_field(info.annotation) and math.isfinite(v) and v.is_integer() \
                        and abs(v) <= 2**53:
                    out[name] = int(v)
            return out
        return data

    @model_validator(mode="after")
    def _checks(self) -> Config:
        for name in type(self).model_fields:
            if _too_large_int(getattr(self, name)):
                raise ValueError(f"{name}: integers must lie within int64 (|x| <= {INT64_MAX}), got "
                                 f"{getattr(self, name)!r}")
        self.check()
        return self

    def check(self) -> None:
        """Rules across fields; raise ValueError('field: reason')."""

    def replace(self, **changes: Any) -> Config:
        """A checked copy with `changes` applied."""
        return type(self).model_validate({**dict(self), **changes})


C = TypeVar("C", bound=Config)


def build(cls: type[C], data: Any, source: Source | str | None = None, path: FieldPath = ()) -> C:
    """`cls` from plain data (a mapping), or ConfigError naming the field path and the reason.
    `source` says where the data came from (a Source with lines, or a name such as
    "solver 'mmd'"); `path` is where the data sits in it."""
    src = source if isinstance(source, Source) else Source(source or cls.__name__)
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise src.error(f"must be a mapping, got {_show(data)}", path)
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise explain(cls, err, src, path, data) from None


def check_call(fn: Callable[..., Any], params: Mapping[str, Any], source: Source | str,
               path: FieldPath = ()) -> dict[str, Any]:
    """Check keyword arguments against `fn`'s signature (its type hints and Annotated bounds)
    with the same rules as a Config; returns the checked arguments."""
    model = _signature_model(fn)
    return dict(build(model, params, source, path))


@functools.cache
def _signature_model(fn: Callable[..., Any]) -> type[Config]:
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (annotation, default)
    return create_model(f"{fn.__name__}_parameters", __base__=Config, **fields)


# ----------------------------------------------------------------------------- error messages
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number", "string_type": "a string",
    "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping", "none_required": "null", "finite_number": "a finite number",
    "tuple_type": "a list", "mapping_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _num(x: Any) -> str:
    """A bound as the user would type it: 10000000, 0.5, 1e-08."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x) if isinstance(x, int) else f"{x:g}"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _walk(cls: Any, loc: tuple) -> tuple[FieldPath, Any]:
    """The field path of a pydantic error location without union-branch tags, and the
    annotation found there (a Config class where the location names one)."""
    path: list[str] = []
    ann: Any = cls
    i = 0
    while i < len(loc):
        item = loc[i]
        base = _base_type(ann)
        origin = typing.get_origin(base)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(base) if a is not type(None)]
            if len(options) == 1:
                ann = options[0]
                continue
            i += 1  # `item` is the tag of a union branch: pick the branch the rest fits
            nxt = loc[i] if i < len(loc) else None
            ann = next((a for a in options if _fits(a, nxt)), Any)
            continue
        path.append(str(item))
        if isinstance(base, type) and issubclass(base, BaseModel):
            info = base.model_fields.get(str(item))
            ann = _annotation_with_meta(info) if info is not None else Any
        elif origin in (list, tuple, set) or base in (list, tuple):
            args = typing.get_args(base)
            ann = args[0] if args else Any
        elif origin in (dict, Mapping) or base is dict:
            args = typing.get_args(base)
            ann = args[1] if len(args) == 2 else Any
        else:
            ann = Any
        i += 1
    return tuple(path), ann


def _fits(annotation: Any, item: Any) -> bool:
    base = _base_type(annotation)
    if item is None:
        return True
    if isinstance(item, int):
        return typing.get_origin(base) in (list, tuple) or base in (list, tuple)
    if isinstance(base, type) and issubclass(base, BaseModel):
        return str(item) in base.model_fields
    return typing.get_origin(base) is dict or base is dict


def _fields_at(cls: Any, path: FieldPath) -> list[str]:
    _, ann = _walk(cls, tuple(path))
    base = _base_type(ann)
    if isinstance(base, type) and issubclass(base, BaseModel):
        return list(base.model_fields)
    return []


def _reason(cls: Any, error: Mapping[str, Any], path: FieldPath) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return "missing required field"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        options = _fields_at(cls, path[:-1])
        return f"unknown field{suggest(path[-1], options)} (fields: {', '.join(options) or 'none'})"
    if kind in _BOUNDS:
        _, ann = _walk(cls, tuple(path))
        low, high = _bounds(ann)
        if low is not None and high is not None:
            return f"must lie in {'[' if low[0] == '>=' else '('}{_num(low[1])}, {_num(high[1])}" \
                   f"{']' if high[0] == '<=' else ')'}, got {_show(value)}"
        bound = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {_num(bound)}, got {_show(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(value)}"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'\"") for o in str(expected).replace(" or ", ",").split(",") if o.strip()]
        return f"must be {expected}, got {_show(value)}{suggest(str(value), options)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')!r}, got {_show(value)}"
    if kind in ("string_too_long", "too_long"):
        return f"must have at most {ctx.get('max_length')} characters/items, got {len(value) if hasattr(value, '__len__') else _show(value)}"
    if kind in ("string_too_short", "too_short"):
        return f"must have at least {ctx.get('min_length')} characters/items, got {_show(value)}"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {_show(value)}"
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_show(value)}"


def explain(cls: Any, err: ValidationError, source: Source, prefix: FieldPath = (), data: Any = None) -> ConfigError:
    """The first error of a pydantic ValidationError as one ConfigError; the branches of a
    union at one field are merged ("must be a string or a mapping")."""
    # an unknown key is usually a misspelling of the field reported missing: report it first
    errors = sorted(err.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    path, _ = _walk(cls, tuple(first["loc"]))
    if first["type"] == "value_error":  # from check(): "field: reason" names the field
        message = str((first.get("ctx") or {}).get("error", first["msg"]))
        field, sep, reason = message.partition(": ")
        fields = _fields_at(cls, path)
        if sep and field in fields:
            return source.error(reason, (*prefix, *path, field))
        return source.error(message, (*prefix, *path))
    same = [e for e in errors if _walk(cls, tuple(e["loc"]))[0] == path]
    if len(same) > 1 and all(e["type"] in _EXPECTED or e["type"] == "literal_error" for e in same):
        kinds = []
        for e in same:
            text = (e.get("ctx") or {}).get("expected") if e["type"] == "literal_error" else _EXPECTED[e["type"]]
            if text not in kinds:
                kinds.append(text)
        return source.error(f"must be {' or '.join(kinds)}, got {_show(first.get('input'))}", (*prefix, *path))
    return source.error(_reason(cls, first, path), (*prefix, *path))


# ----------------------------------------------------------------------------- help
@dataclasses.dataclass(frozen=True)
class FieldHelp:
    name: str
    type: str
    default: Any
    help: str


def _bounds(annotation: Any) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """(lower, upper) bounds of an Annotated type as (symbol, value) pairs."""
    low = high = None
    while typing.get_origin(annotation) is Annotated:
        annotation, *meta = typing.get_args(annotation)
        for m in meta:
            for cond in getattr(m, "metadata", [m]):
                for attr, sym in (("ge", ">="), ("gt", ">")):
                    if getattr(cond, attr, None) is not None:
                        low = (sym, getattr(cond, attr))
                for attr, sym in (("le", "<="), ("lt", "<")):
                    if getattr(cond, attr, None) is not None:
                        high = (sym, getattr(cond, attr))
    return low, high


def type_name(annotation: Any) -> str:
    """A readable name for a field's type, bounds included ('int >= 1', 'float in [0, 1]')."""
    low, high = _bounds(annotation)
    if low and high:
        bound = f"in {'[' if low[0] == '>=' else '('}{_num(low[1])}, {_num(high[1])}{']' if high[0] == '<=' else ')'}"
    else:
        bound = " ".join(f"{b[0]} {_num(b[1])}" for b in (low, high) if b)
    annotation = _base_type(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        name = " | ".join(repr(a) for a in typing.get_args(annotation))
    elif origin in (typing.Union, types.UnionType):
        name = " | ".join(type_name(a) for a in typing.get_args(annotation))
    elif annotation is type(None):
        name = "null"
    elif origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation))
        name = f"{getattr(origin, '__name__', str(origin))}[{args}]"
    else:
        name = getattr(annotation, "__name__", str(annotation))
    return f"{name} {bound}".strip()


def describe(cls: type[BaseModel]) -> list[FieldHelp]:
    """Each field's name, type (with bounds), default and help text (its docstring)."""
    out = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            default: Any = "(required)"
        elif info.default_factory is not None:
            default = info.default_factory()
        else:
            default = info.default
        if isinstance(default, BaseModel):
            default = default.model_dump()
        out.append(FieldHelp(name, type_name(_annotation_with_meta(info)), default, (info.description or "").strip()))
    return out


def _annotation_with_meta(info: Any) -> Any:
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def to_plain(obj: Any) -> Any:
    """Configs, dataclasses and containers as plain dicts, lists and scalars (for YAML/JSON)."""
    if isinstance(obj, BaseModel):
        return {k: to_plain(v) for k, v in obj}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


__all__ = ["Config", "ConfigError", "FieldHelp", "FieldPath", "Source", "build", "check_call", "count", "describe",
           "explain", "suggest", "to_plain", "type_name", "PositiveInt", "NonNegativeInt", "PositiveFloat",
           "NonNegativeFloat", "Probability", "Seed", "FloatList", "Strategies"]
