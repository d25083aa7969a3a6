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


# Config, feature and runtime JSON files are kilobytes; refuse to read a huge one.
MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024


def read_text_file(
    path: Union[str, os.PathLike], what: str = "config", error: type = ConfigError
) -> str:
    """Reads a UTF-8 text file; every failure raises `error` naming the file.

    Args:
        path: The file to read.
        what: What the file is, for messages ("config", "--ir file").
        error: The library error to raise (`ConfigError` for configs, `DataError` for data).

    Raises:
        error: the file is missing, a folder, unreadable, too large or not UTF-8 text.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} path is a directory, not a file: {path}") from None
    except OSError as problem:
        raise error(f"{what} file {path}: cannot read it ({problem.strerror or problem})") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise error(f"{what} file {path}: larger than {MAX_INPUT_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(
            f"{what} file {path}: not UTF-8 text (byte {problem.start} is {data[problem.start]:#04x}); "
            "is it a binary file?"
        ) from None


def read_json_file(
    path: Union[str, os.PathLike], what: str = "config", error: type = ConfigError
) -> Any:
    """Reads a JSON file; malformed JSON raises an error naming file, line and column.

    Args:
        path: The file to read.
        what: What the file is, for messages ("config", "dataset").
        error: The library error to raise (`ConfigError` for configs, `DataError` for data).

    Returns:
        The parsed JSON value.

    Raises:
        error: the file is missing, unreadable, not text, or not valid JSON.
    """
    path = os.fspath(path)
    text = read_text_file(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(
            f"{path}:{problem.lineno}:{problem.colno}: malformed JSON in {what} file: {problem.msg}"
        ) from None
    except RecursionError:
        raise error(f"{path}: {what} file is nested too deeply") from None


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
    schema["title"] = (
        "keras_trainer config" if kind == "trainer" else f"keras_trainer {kind} config"
    )
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
    "read_text_file",
    "to_dict",
]
