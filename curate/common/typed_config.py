"""Typed dataclass configs from YAML mappings, with errors that name the dotted field.

Shared by the curation config (`curate/config.py`) and the trainer's (`train/config.py`): a leaf module with no
project imports, so either can use it without an import circle.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


def require(ok: bool, name: str, rule: str, value: Any) -> None:
    """Raises ConfigError "config field 'NAME' RULE (got VALUE)" unless `ok`."""
    if not ok:
        raise ConfigError(f"config field '{name}' {rule} (got {value!r})")


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """A `cls` dataclass from a (partial) nested mapping over its defaults.

    Raises:
        ConfigError: not a mapping, an unknown field, a wrong type, or a value the dataclass rejects.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"config field '{prefix or 'root'}' must be a mapping (got {type(data).__name__})")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown config field '{where}{unknown[0]}' (known: {', '.join(sorted(known))})")
    kwargs = {key: coerce(hints[key], value, f"{prefix}.{key}" if prefix else key) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:  # a dataclass's own __post_init__ check
        raise ConfigError(str(e)) from None


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def coerce(hint: Any, value: Any, name: str) -> Any:
    """`value` checked against the type hint `hint`: ints pass as floats, lists as tuples, unions try each arm."""
    if dataclasses.is_dataclass(hint):
        return build(hint, value, name)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return coerce(arm, value, name)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field '{name}' must be a list (got {value!r})")
        inner = args[0] if args else Any
        items = [coerce(inner, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config field '{name}' must be a mapping (got {value!r})")
        # Mappings of strings (storage options, say) take any scalar, as environment variables would.
        return {str(k): str(v) for k, v in value.items()} if args == (str, str) else dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _NAMES and (not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))):
        raise ConfigError(f"config field '{name}' must be {_NAMES[hint]} (got {value!r})")
    return value
