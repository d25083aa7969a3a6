"""Declaring config options once: `option()` plus a validating dataclass reader.

Every option of every config section is a dataclass field declared with
`option(...)`, which records its default, description and constraints. From that
single declaration the library derives:

* validation of user dicts into dataclasses (`from_dict`), with errors that name the
  key path (`model.hidden_layers[1]`) and the bad value, and suggest the closest
  valid key for a misspelling;
* serialization back to plain dicts (`to_dict`);
* a JSON Schema for editors (`json_schema_for`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import enum
import functools
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from keras_trainer.config.aliases import alias_schema, apply_aliases
from keras_trainer.errors import ConfigError

_MISSING = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    *,
    description: str,
    default_factory: Any = _MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    exclusive_maximum: float | None = None,
    min_items: int | None = None,
) -> Any:
    """Declares one config option: its default, its documentation and its range.

    Args:
        default: The default value. Leave out for a required option.
        description: One sentence for users; it goes into the JSON Schema and docs.
        default_factory: For mutable defaults (lists, nested sections).
        minimum: Smallest allowed number (inclusive); for lists, of each item.
        maximum: Largest allowed number (inclusive); for lists, of each item.
        exclusive_minimum: Values must be greater than this.
        exclusive_maximum: Values must be smaller than this.
        min_items: For lists, the fewest items allowed.

    Returns:
        A `dataclasses.field` carrying the metadata.
    """
    metadata = {
        "description": description,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "exclusive_maximum": exclusive_maximum,
        "min_items": min_items,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (list, tuple):
        (item,) = get_args(annotation)[:1]
        return f"a list of {_type_name(item)}"
    if origin is dict:
        return "an object"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if dataclasses.is_dataclass(annotation):
        return "an object"
    return {
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        str: "a string",
        type(None): "null",
        Any: "any value",
    }.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _check_range(value: float, meta: dict, path: str) -> None:
    bounds = (
        ("minimum", lambda v, b: v >= b, "at least"),
        ("maximum", lambda v, b: v <= b, "at most"),
        ("exclusive_minimum", lambda v, b: v > b, "greater than"),
        ("exclusive_maximum", lambda v, b: v < b, "less than"),
    )
    for key, ok, words in bounds:
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            if key == "exclusive_minimum" and bound == 0 and isinstance(value, int):
                raise ConfigError(f"{path}: must be a positive integer, got {_describe(value)}")
            raise ConfigError(f"{path}: must be {words} {bound}, got {_describe(value)}")


def _convert(annotation: Any, value: Any, path: str, meta: dict) -> Any:
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for candidate in options:
            if candidate is type(None):
                continue
            try:
                return _convert(candidate, value, path, meta)
            except ConfigError as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{path}: must be {_type_name(annotation)}, got {_describe(value)}")
    if origin is Literal:
        choices = get_args(annotation)
        if value in choices and type(value) is type(choices[choices.index(value)]):
            return value
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        raise ConfigError(
            f"{path}: must be one of {', '.join(repr(c) for c in choices)}, "
            f"got {_describe(value)}{hint}"
        )
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: must be {_type_name(annotation)}, got {_describe(value)}")
        min_items = meta.get("min_items")
        if min_items is not None and len(value) < min_items:
            raise ConfigError(
                f"{path}: must have at least {min_items} item(s), got {_describe(value)}"
            )
        (item_type,) = get_args(annotation)[:1]
        return [_convert(item_type, item, f"{path}[{i}]", meta) for i, item in enumerate(value)]
    if origin is dict:
        key_type, value_type = get_args(annotation)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: must be an object, got {_describe(value)}")
        return {
            _convert(key_type, k, f"{path}.{k}", {}): _convert(value_type, v, f"{path}.{k}", meta)
            for k, v in value.items()
        }
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        # An enum option takes a member or its value; `parse` (if the enum has one)
        # may accept more spellings.
        parse = getattr(annotation, "parse", None)
        if parse is not None:
            return parse(value)
        try:
            return annotation(value)
        except ValueError:
            choices = ", ".join(repr(member.value) for member in annotation)
            raise ConfigError(f"{path}: must be one of {choices}, got {_describe(value)}") from None
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation) and isinstance(value, ConfigSection):
            return value  # validated when it was built
        return from_dict(annotation, value, path)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: must be a boolean (true or false), got {_describe(value)}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{path}: must be an integer, got {_describe(value)}")
        _check_range(value, meta, path)
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: must be a number, got {_describe(value)}")
        if value != value:
            raise ConfigError(f"{path}: must be a number, got NaN")
        _check_range(value, meta, path)
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"Unsupported config annotation {annotation!r} at {path}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Evaluating the annotations took 80 % of building a config (a tuning wave builds
    # one per trial); a class's hints do not change.
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Validates `data` against the dataclass `cls` and builds an instance.

    Args:
        cls: A dataclass whose fields were declared with `option()`.
        data: The user's dict (e.g. parsed JSON), or an instance of `cls`.
        path: Key path of `data` inside the whole config, used in messages.

    Returns:
        An instance of `cls` with defaults filled in.

    Raises:
        ConfigError: naming the key path of the first problem found.
    """
    if isinstance(data, cls):
        data = to_dict(data)
    upgrade = getattr(cls, "upgrade", None)
    if upgrade is not None:
        data = upgrade(data)
    data = apply_aliases(cls, data, path)
    where = path or "config"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: must be an object, got {_describe(data)}{_object_form(fields, data)}"
        )
    hints = _hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"{_join(path, key)}: unknown key{hint} (valid keys here: {valid})")
    values = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name in data:
            values[name] = _convert(hints[name], data[name], key_path, dict(field.metadata))
        elif field.default is _MISSING and field.default_factory is _MISSING:
            raise ConfigError(f"{key_path}: required key is missing")
    token = _BUILDING.set(True)  # values are checked already; skip __post_init__'s check
    try:
        instance = cls(**values)
    finally:
        _BUILDING.reset(token)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(path)
    return instance


_BUILDING = contextvars.ContextVar("keras_trainer_config_building", default=False)


def check_fields(instance: Any, path: str = "") -> None:
    """Validates a config dataclass built in Python exactly as `from_dict` validates JSON.

    Converts each field in place (e.g. an int given for a float option becomes a float)
    and runs the section's `validate`.

    Raises:
        ConfigError: naming the key path of the first problem found.
    """
    hints = _hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        converted = _convert(
            hints[field.name], value, _join(path, field.name), dict(field.metadata)
        )
        if converted is not value:
            object.__setattr__(instance, field.name, converted)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _object_form(fields: dict[str, Any], value: Any) -> str:
    """How to write `value` as the section it stands for: `{"name": "adam"}` for an
    optimizer given as `"adam"`, else the section's keys."""
    key = next((k for k in ("name", "type") if k in fields), None)
    if key and isinstance(value, str):
        return f' (write {{"{key}": {json.dumps(value)}}})'
    return f" (an object with keys {', '.join(sorted(fields))})"


def to_dict(instance: Any) -> dict:
    """Returns the plain-JSON dict form of a config dataclass (all keys)."""
    return dataclasses.asdict(instance)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _schema_for_type(annotation: Any, meta: dict) -> dict:
    origin = get_origin(annotation)
    schema: dict[str, Any]
    if annotation is Any:
        schema = {}
    elif origin in (Union, types.UnionType):
        schema = {"anyOf": [_schema_for_type(a, meta) for a in get_args(annotation)]}
    elif origin is Literal:
        schema = {"enum": list(get_args(annotation))}
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        schema = {"enum": sorted({member.value for member in annotation})}
    elif origin in (list, tuple):
        (item,) = get_args(annotation)[:1]
        schema = {"type": "array", "items": _schema_for_type(item, meta)}
        if meta.get("min_items") is not None:
            schema["minItems"] = meta["min_items"]
    elif origin is dict:
        _, value_type = get_args(annotation)
        schema = {"type": "object", "additionalProperties": _schema_for_type(value_type, meta)}
    elif dataclasses.is_dataclass(annotation):
        schema = json_schema_for(annotation)
    elif annotation is type(None):
        schema = {"type": "null"}
    else:
        schema = {
            bool: {"type": "boolean"},
            int: {"type": "integer"},
            float: {"type": "number"},
            str: {"type": "string"},
        }[annotation]
        if annotation in (int, float):
            for key, json_key in (
                ("minimum", "minimum"),
                ("maximum", "maximum"),
                ("exclusive_minimum", "exclusiveMinimum"),
                ("exclusive_maximum", "exclusiveMaximum"),
            ):
                if meta.get(key) is not None:
                    schema[json_key] = meta[key]
    return schema


def json_schema_for(cls: type) -> dict:
    """Builds the JSON Schema (draft 2020-12) of a config dataclass."""
    hints = _hints(cls)
    properties = {}
    required = []
    for field in dataclasses.fields(cls):
        meta = dict(field.metadata)
        prop = _schema_for_type(hints[field.name], meta)
        prop["description"] = meta.get("description", "")
        if field.default is not _MISSING:
            prop["default"] = field.default
        elif field.default_factory is not _MISSING:
            prop["default"] = _plain(field.default_factory())
        else:
            required.append(field.name)
        properties[field.name] = prop
    _add_aliases(cls, properties)
    schema = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().split("\n\n")[0],
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _add_aliases(cls: type, properties: dict) -> None:
    """Adds each alias of `cls` (see `config.aliases`) to its JSON Schema properties."""
    for alias in getattr(cls, "aliases", ()):
        if alias.shorthand:
            properties[alias.name]["description"] += " " + alias.note()
            continue
        target: dict = {"properties": properties}
        for key in alias.target.split("."):
            target = target.get("properties", {}).get(key, {})
        properties[alias.name] = alias_schema(alias, target)


class ConfigSection:
    """Mixin giving a config dataclass `from_dict`, `to_dict`, `json_schema` and `replace`.

    `section_path` is the key path of the section inside a whole config file, used
    in error messages when `from_dict` is called without a path.
    """

    section_path = ""

    @classmethod
    def upgrade(cls, data: Any) -> Any:
        """Rewrites older JSON forms of this section into the current one (default: as is)."""
        return data

    def __post_init__(self) -> None:
        # A section built in Python gets the same checks as one read from JSON.
        if not _BUILDING.get():
            check_fields(self, type(self).section_path)

    @classmethod
    def from_dict(cls, data: dict, path: Any = None):
        """Validates a plain dict into this section; see `fields.from_dict`."""
        return from_dict(cls, data, cls.section_path if path is None else path)

    def to_dict(self) -> dict:
        """Returns the section as a plain, JSON-ready dict with every key."""
        return to_dict(self)

    @classmethod
    def json_schema(cls) -> dict:
        """Returns the JSON Schema of this section."""
        return json_schema_for(cls)

    def replace(self, **changes):
        """Returns a copy with `changes` applied and validated again."""
        data = self.to_dict()
        data.update(changes)
        return type(self).from_dict(data)
