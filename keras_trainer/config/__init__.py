"""Loading, validating and describing keras_trainer configs.

Example:

>>> from keras_trainer.config import load_config
>>> config = load_config("config/model_config.json")
>>> config.training.batch_size
32
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Union

from keras_trainer.config.fields import from_dict, json_schema_for, option, to_dict
from keras_trainer.config.schema import (
    CheckpointConfig,
    DataConfig,
    DistributionConfig,
    LoggingConfig,
    LRScheduleConfig,
    ModelConfig,
    OptimizerConfig,
    TrainerConfig,
    TrainingConfig,
)
from keras_trainer.config.tuning import HyperparameterSpace, TuningConfig
from keras_trainer.errors import ConfigError

ConfigSource = Union[str, os.PathLike, dict, TrainerConfig]


def read_json_file(path: Union[str, os.PathLike], what: str = "config") -> Any:
    """Reads a JSON file; malformed JSON raises an error naming file, line and column.

    Args:
        path: The file to read.
        what: What the file is, for messages ("config", "dataset").

    Returns:
        The parsed JSON value.

    Raises:
        ConfigError: the file is missing or is not valid JSON.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} path is a directory, not a file: {path}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}:{error.lineno}:{error.colno}: malformed JSON in {what} file: {error.msg}"
        ) from None


def load_section(cls: type, source: Any, what: str = "config") -> Any:
    """Loads and validates a config dataclass from a JSON file path, a dict or an instance.

    Args:
        cls: The config dataclass (`TrainerConfig`, `AssistantConfig`, ...).
        source: Path to a JSON file, a dict with the same content, an instance
            of `cls`, or `None` for the defaults.
        what: What the file is, for messages.

    Returns:
        The validated instance, defaults filled in.

    Raises:
        ConfigError: naming the file, or the key path and bad value.
    """
    if source is None:
        return cls()
    if isinstance(source, cls):
        return source
    if dataclasses.is_dataclass(source) and not isinstance(source, type):
        source = to_dict(source)  # another section class, e.g. a TrainerConfig for a JITConfig
    if isinstance(source, (str, os.PathLike)):
        data = read_json_file(source, what)
        try:
            return from_dict(cls, data, "")
        except ConfigError as error:
            raise ConfigError(f"{os.fspath(source)}: {error}") from None
    if isinstance(source, dict):
        return from_dict(cls, source, "")
    raise ConfigError(
        f"{what} must be a path to a JSON file, a dict or a {cls.__name__}, "
        f"got {type(source).__name__}"
    )


def load_config(source: ConfigSource) -> TrainerConfig:
    """Loads and validates a whole config from a JSON file path, a dict or a `TrainerConfig`.

    Example:

    >>> load_config("config/model_config.json").model.hidden_layers
    [64, 32]
    """
    return load_section(TrainerConfig, source)


def json_schema(kind: str = "trainer") -> dict:
    """Returns the JSON Schema of a whole config file, for editors and validators.

    Args:
        kind: A name in `keras_trainer.registry.CONFIG_FILES`: "trainer" (the shared
            sections), "jit", "assistant", ...
    """
    from keras_trainer.registry import CONFIG_FILES

    schema = json_schema_for(CONFIG_FILES.get(kind, "config kind"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "keras_trainer config" if kind == "trainer" else f"keras_trainer {kind} config"
    return schema


__all__ = [
    "CheckpointConfig",
    "ConfigSource",
    "DataConfig",
    "LRScheduleConfig",
    "DistributionConfig",
    "LoggingConfig",
    "ModelConfig",
    "OptimizerConfig",
    "TrainerConfig",
    "TrainingConfig",
    "TuningConfig",
    "HyperparameterSpace",
    "from_dict",
    "json_schema",
    "json_schema_for",
    "load_config",
    "load_section",
    "option",
    "read_json_file",
    "to_dict",
]
