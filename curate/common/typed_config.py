"""Typed configs from YAML mappings (pydantic v2), with errors that name the dotted field.

Shared by the curation config (`curate/config.py`, pydantic models) and the trainer's (`train/config.py`, stdlib
dataclasses): a leaf module with no project imports, so either can use it without an import circle. Scalars are
strict (a string is no number, `true` no integer; an integer is a number), containers are not (a YAML list fills a
tuple), and an unknown field is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

import pydantic
from pydantic_core import SchemaValidator, core_schema


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


def build(cls: type, data: Any) -> Any:
    """A `cls` (a pydantic model or a stdlib dataclass) from a (partial) nested mapping over its defaults.

    Raises:
        ConfigError: not a mapping, an unknown field, a wrong type, or a value the class rejects.
    """
    data = {} if data is None else data
    try:
        if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
            return cls.model_validate(data)
        return _validator(cls).validate_python(data)
    except pydantic.ValidationError as e:
        raise config_error(e, cls) from None


def str_values(value: Any) -> Any:
    """Mappings of strings (storage options, say) take any scalar, as environment variables would."""
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, (dict, list)) else str(v) for k, v in value.items()}
    return value


def none_is_empty(value: Any) -> Any:
    """A section left empty in YAML (`policy:` with every line commented out) reads as null: its defaults."""
    return {} if value is None else value


@functools.cache
def _validator(cls: type) -> SchemaValidator:
    """pydantic's validator of the dataclass `cls`, tightened as the module docstring says (stdlib dataclasses
    take no pydantic config of their own without touching their modules)."""
    return SchemaValidator(_tighten(pydantic.TypeAdapter(cls).core_schema))


_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
          "none": "null", "list": "a list", "tuple": "a list", "dict": "a mapping"}


def _tighten(schema: Any) -> Any:
    """A copy of a pydantic core schema with strict scalars, no extra fields, null sections as empty ones,
    scalars for strings in string mappings and one error per union."""
    if isinstance(schema, list):
        return [_tighten(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    s = {k: v if k in ("default", "metadata", "cls") else _tighten(v) for k, v in schema.items()}
    if kind in ("int", "float", "bool", "str"):
        s["strict"] = True
    elif kind == "dataclass-args":
        s["extra_behavior"] = "forbid"
    elif kind == "dataclass":
        s = core_schema.no_info_before_validator_function(none_is_empty, s)
    elif kind == "dict" and schema.get("values_schema", {}).get("type") == "str":
        s = core_schema.no_info_before_validator_function(str_values, s)
    elif kind == "union":  # one error at the field, not one per arm
        arms = [_NAMES.get(c.get("type"), c.get("type")) for c in schema["choices"] if isinstance(c, dict)]
        s.update(custom_error_type="union_type", custom_error_message=f"must be {' or '.join(arms)}")
    return s


_RULES = {
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be a string", "list_type": "must be a list", "tuple_type": "must be a list",
    "dict_type": "must be a mapping", "model_type": "must be a mapping", "dataclass_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
    "literal_error": "must be {expected}", "missing": "is required",
}


def config_error(e: pydantic.ValidationError, root: type | None = None) -> ConfigError:
    """The one conversion of pydantic's errors: the first, as "config field 'a.b' RULE (got VALUE)" or
    "unknown config field 'a.b' (known: ...)"."""
    err = e.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    name = ".".join(loc) or "root"
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _known_fields(root, loc[:-1])
        return ConfigError(f"unknown config field '{name}'" + (f" (known: {', '.join(known)})" if known else ""))
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error":  # a validator's or a dataclass's __post_init__ own words
        rule = str(ctx.get("error", err["msg"]))
        if isinstance(err["input"], dict):
            return ConfigError(f"config field '{name}': {rule}")
    else:
        bounds = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
        rule = _RULES[err["type"]].format(**bounds) if err["type"] in _RULES else err["msg"]
    return ConfigError(f"config field '{name}' {rule} (got {err['input']!r})")


def _known_fields(cls: Any, path: list[str]) -> list[str]:
    """The field names of the section at `path` under `cls`, if it is a model or a dataclass."""
    for part in [*path, None]:
        if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
            hints = {k: f.annotation for k, f in cls.model_fields.items()}
        elif dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
        else:
            return []
        if part is None:
            return sorted(hints)
        cls = hints.get(part)
    return []
