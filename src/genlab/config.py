"""Typed, validated, serialisable configs.

Every config is a dataclass deriving from :class:`Config`. Construction validates (``__post_init__``
calls :meth:`Config.validate`), ``to_dict``/``from_dict`` round-trip through JSON or TOML, and
:func:`apply_overrides` turns ``--model.latent_dim=16`` into a checked, typed assignment. Configs
have no side effects: building one never touches the disk or the network.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import json
import math
import re
import textwrap
import tokenize
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass
class Config:
    """Base class for every genlab config. Subclasses override :meth:`validate`."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            setattr(self, field.name, _coerce(value, hints[field.name], f"{type(self).__name__}.{field.name}"))
        self.validate()
        for field in dataclasses.fields(self):  # after validate: a class's own messages come first
            _check_range(field.name, getattr(self, field.name), f"{type(self).__name__}.{field.name}")

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field when a value is out of range."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown field(s) {', '.join(unknown)} for {cls.__name__}; valid: {', '.join(sorted(names))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. a required field is missing
            raise ConfigError(f"{cls.__name__}: {exc}") from None

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def field_help(cls: type[Config]) -> dict[str, str]:
    """One line of help per field of ``cls`` (inherited ones too): ``metadata={"help": ...}`` when the
    field has it, else the comment written on the field's line, else the comment block right above it;
    ``""`` for a field with none. What ``genlab train MODEL --help`` prints beside each field."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(klass) and klass is not object:
            out.update(_source_comments(klass))
    for field in dataclasses.fields(cls):
        text = field.metadata.get("help") if field.metadata else None
        out[field.name] = " ".join(str(text).split()) if text else out.get(field.name, "")
    return {field.name: out[field.name] for field in dataclasses.fields(cls)}


@functools.lru_cache(maxsize=None)
def _source_comments(cls: type) -> dict[str, str]:
    """The comments the class's own source writes beside or above each annotated field."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # defined in a REPL or built at run time: no source to read
        return {}
    comments: dict[int, str] = {}  # line -> comment text
    code_lines: set[int] = set()  # lines holding code
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string.lstrip("#").strip()
            elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                code_lines.update(range(token.start[0], token.end[0] + 1))
        tree = ast.parse(source)
    except (tokenize.TokenError, SyntaxError):
        return {}
    out: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = node.end_lineno or node.lineno
        beside = [comments[line] for line in range(node.lineno, end + 1) if line in comments]
        if beside:
            out[node.target.id] = " ".join(beside)
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and line not in code_lines:  # a comment block directly above
            above.insert(0, comments[line])
            line -= 1
        out[node.target.id] = " ".join(above)
    return out


def check(condition: bool, message: str) -> None:
    """``validate`` helper: raise :class:`ConfigError` with ``message`` unless ``condition``."""
    if not condition:
        raise ConfigError(message)


# Fields that size a network (layer widths, shapes, counts): every entry must be >= 1.
_SIZE_FIELD = re.compile(r"(^|_)(dims?|hidden|channels|shape|filters)$|^num_")


def _check_range(name: str, value: Any, where: str) -> None:
    """Ranges every config shares, so no field escapes them: numbers are finite, sizes are >= 1.
    A class's :meth:`Config.validate` adds the ranges particular to it."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        if _SIZE_FIELD.search(name) and isinstance(v, int) and not isinstance(v, bool) and v < 1:
            what = "entries" if isinstance(value, (tuple, list)) else ""
            raise ConfigError(f"{where} {what} must be >= 1, got {value!r}".replace("  ", " "))


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a plain dict (validated later by the config classes)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from None
    raise ConfigError(f"config file must end in .toml or .json: {path}")


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins. Neither input is modified."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.latent_dim=16"`` -> (["model", "latent_dim"], 16). Values are read as JSON when they
    parse as JSON (numbers, true/false/null, lists), else kept as strings; typing happens later.
    ``none`` stays a string: it is a value of some fields (``--data.binarize=none``) and means ``None``
    only for optional fields, which :func:`_coerce` decides from the field's type."""
    text = text.removeprefix("--")
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    path = [p for p in key.split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    lowered = raw.strip().lower()
    if lowered == "none":
        return path, "none"
    if lowered in ("true", "false"):
        return path, lowered == "true"
    try:
        return path, json.loads(raw)
    except json.JSONDecodeError:
        return path, raw


def apply_overrides(data: dict[str, Any], overrides: list[str], schema: dict[str, type[Config]]) -> dict[str, Any]:
    """Apply dotted overrides to a raw config dict, checking each key against ``schema``.

    ``schema`` maps a top-level section name (``model``, ``train``, ``data``) to its Config class, so
    ``train.lrr=1`` fails with the list of valid ``train`` fields instead of being silently ignored.
    """
    out = json.loads(json.dumps(data))  # deep copy of plain data
    for text in overrides:
        path, value = parse_override(text)
        section = path[0]
        if section not in schema:
            raise ConfigError(f"unknown config section {section!r} in {text!r}; valid: {', '.join(sorted(schema))}")
        cls: Any = schema[section]
        node = out.setdefault(section, {})
        for i, name in enumerate(path[1:]):
            fields = {f.name: f for f in dataclasses.fields(cls)}
            if name not in fields:
                raise ConfigError(
                    f"unknown field {'.'.join(path[: i + 2])!r}; valid {'.'.join(path[: i + 1])} fields: "
                    + ", ".join(sorted(fields))
                )
            if i == len(path) - 2:
                node[name] = value
                break
            hint = _hints(cls)[name]
            if get_origin(hint) is dict:  # free-form mapping: the rest of the path is one key
                node.setdefault(name, {})[".".join(path[i + 2 :])] = value
                break
            cls = hint
            node = node.setdefault(name, {})
        if len(path) == 1:
            raise ConfigError(f"override {text!r} must name a field inside section {section!r}")
    return out


# --------------------------------------------------------------------------- typing helpers

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert JSON-ish ``value`` to the annotated type, or raise a ConfigError naming ``where``."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        literal_none = any(get_origin(a) is Literal and value in get_args(a) for a in args)
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args and not literal_none:
            return None  # --train.max_steps=none
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list; got {value!r}")
        args = get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where} must have {len(args)} entries; got {value!r}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        elem = args[0] if args else Any
        return [_coerce(v, elem, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping; got {value!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, Config):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return hint.from_dict(value)
        raise ConfigError(f"{where} must be a mapping of {hint.__name__} fields; got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        try:
            as_float = float(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer; got {value!r}") from None
        if as_float != int(as_float):
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        return int(as_float)
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number; got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number; got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string; got {value!r}")
        return value
    return value
