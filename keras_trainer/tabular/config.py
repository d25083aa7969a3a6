"""`TabularModelConfig` and `ArchitectureType`: the tabular factory's model description.

The seed describes a network with a `ModelConfig(architecture_type=..., input_size=...,
hidden_sizes=...)`. This module keeps that API (it is exported as
`keras_trainer.tabular.ModelConfig` too) and translates it into the core
`keras_trainer.config.ModelConfig`, so a factory-made model and a model built from a
JSON config by `ModelTrainer` (`model.type` "feed_forward", "lstm", "cnn_lstm") are
the same network.

Example:

>>> config = TabularModelConfig(
...     architecture_type=ArchitectureType.LSTM, input_size=4, sequence_length=20,
...     hidden_sizes=[16], lstm_hidden_size=32, task="regression")
>>> config.to_model_config().type
'lstm'
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, Optional

from keras_trainer.config import ModelConfig as CoreModelConfig
from keras_trainer.config.schema import Initializer
from keras_trainer.errors import ConfigError


class ArchitectureType(str, enum.Enum):
    """Network families of the tabular factory.

    `HYBRID` and `CNN_LSTM` are the same network (Conv1D layers, then LSTM layers,
    then dense layers); older code names it both ways.
    """

    FEED_FORWARD = "feed_forward"
    LSTM = "lstm"
    CNN_LSTM = "cnn_lstm"
    HYBRID = "cnn_lstm"  # an alias of CNN_LSTM (same value)

    @classmethod
    def parse(cls, value: Any) -> "ArchitectureType":
        """Accepts an `ArchitectureType` or its name/value in any case ("hybrid", "LSTM")."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            aliases = {"feed_forward": cls.FEED_FORWARD, "feedforward": cls.FEED_FORWARD, "mlp": cls.FEED_FORWARD,
                       "lstm": cls.LSTM, "cnn_lstm": cls.CNN_LSTM, "hybrid": cls.CNN_LSTM}
            if key in aliases:
                return aliases[key]
        raise ConfigError(
            f"architecture_type: unknown architecture {value!r} "
            "(valid: FEED_FORWARD, LSTM, HYBRID/CNN_LSTM)"
        )


ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
# Initializer names the factory accepts; aliases ("xavier", "he") are the core's
# `INITIALIZER_ALIASES`, resolved when the network is built.
WEIGHT_INITS = typing.get_args(Initializer)
TASKS = ("regression", "classification")


@dataclasses.dataclass
class TabularModelConfig:
    """A feed-forward, LSTM or CNN+LSTM network with a regression or classification head.

    Args:
        architecture_type: `ArchitectureType` (or its name). Default `FEED_FORWARD`.
        input_size: Features per sample (per time step for sequence models). Required.
        hidden_sizes: Units of the dense layers after the (optional) recurrent part.
            Default `[64, 32]`.
        output_size: Outputs: 1 for regression or binary classification, the number
            of classes for multi-class classification. Default 1.
        dropout_rate: Dropout after each dense layer and after the recurrent stack.
            Default 0.2.
        use_batch_norm: Batch normalization after each dense/conv layer. Default True.
        activation: "relu", "tanh", "sigmoid" or "gelu". Default "relu".
        weight_init: "xavier"/"glorot", "orthogonal" or "he". Default "xavier".
        lstm_hidden_size: LSTM units (LSTM and hybrid). Default 64.
        lstm_num_layers: Stacked LSTM layers. Default 2.
        lstm_bidirectional: Bidirectional LSTM layers. Default False.
        cnn_channels: Filters of each Conv1D layer (hybrid). Default `[32, 64]`.
        cnn_kernel_sizes: Kernel size of each Conv1D layer. Default `[3, 3]`.
        sequence_length: Time steps per window for sequence models; `None` accepts
            any length. A feed-forward net given a length flattens the window.
        task: "regression" (linear output) or "classification" (sigmoid output for
            `output_size=1`, softmax otherwise). Default "regression".
        name: Model name (also the row name in architecture comparisons).
    """

    architecture_type: ArchitectureType = ArchitectureType.FEED_FORWARD
    input_size: Optional[int] = None
    hidden_sizes: list[int] = dataclasses.field(default_factory=lambda: [64, 32])
    output_size: int = 1
    dropout_rate: float = 0.2
    use_batch_norm: bool = True
    activation: str = "relu"
    weight_init: str = "xavier"
    lstm_hidden_size: int = 64
    lstm_num_layers: int = 2
    lstm_bidirectional: bool = False
    cnn_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64])
    cnn_kernel_sizes: list[int] = dataclasses.field(default_factory=lambda: [3, 3])
    sequence_length: Optional[int] = None
    task: str = "regression"
    name: Optional[str] = None

    def __post_init__(self):
        self.architecture_type = ArchitectureType.parse(self.architecture_type)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation: must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.weight_init not in WEIGHT_INITS:
            raise ConfigError(
                f"weight_init: must be one of {', '.join(WEIGHT_INITS)}, got {self.weight_init!r}"
            )
        if self.task not in TASKS:
            raise ConfigError(f"task: must be 'regression' or 'classification', got {self.task!r}")
        if self.input_size is not None and (not isinstance(self.input_size, int) or self.input_size <= 0):
            raise ConfigError(f"input_size: must be a positive integer, got {self.input_size!r}")
        # The core schema checks the rest (ranges, list lengths) with key paths.
        self.to_model_config()

    @property
    def output_activation(self) -> str:
        """"linear" for regression; "sigmoid" for one-output, "softmax" for multi-class classification."""
        if self.task == "regression":
            return "linear"
        return "sigmoid" if self.output_size == 1 else "softmax"

    @property
    def is_sequence(self) -> bool:
        """Whether the network takes `(steps, features)` windows."""
        return self.architecture_type != ArchitectureType.FEED_FORWARD or self.sequence_length is not None

    @property
    def input_shape(self) -> tuple:
        """Input shape without the batch axis: `(input_size,)` or `(sequence_length, input_size)`."""
        if self.input_size is None:
            raise ConfigError("input_size: required to build a model, got None")
        if self.is_sequence:
            return (self.sequence_length, self.input_size)
        return (self.input_size,)

    @property
    def display_name(self) -> str:
        return self.name or self.architecture_type.value

    def to_model_config(self) -> CoreModelConfig:
        """The equivalent `model` section of a JSON config (validated).

        Raises:
            ConfigError: naming the core key (e.g. `model.hidden_layers[0]`) of a bad value.
        """
        return CoreModelConfig.from_dict(
            {
                "type": self.architecture_type.value,
                "input_dim": self.input_size,
                "hidden_layers": list(self.hidden_sizes),
                "output_dim": self.output_size,
                "activation": self.activation,
                "output_activation": self.output_activation,
                "dropout": float(self.dropout_rate),
                "batch_norm": bool(self.use_batch_norm),
                "kernel_initializer": self.weight_init,
                "lstm_hidden_size": self.lstm_hidden_size,
                "lstm_num_layers": self.lstm_num_layers,
                "lstm_bidirectional": bool(self.lstm_bidirectional),
                "cnn_channels": list(self.cnn_channels),
                "cnn_kernel_sizes": list(self.cnn_kernel_sizes),
                "sequence_length": self.sequence_length,
            },
            "model",
        )

    def replace(self, **changes) -> "TabularModelConfig":
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dict (for model metadata)."""
        data = dataclasses.asdict(self)
        data["architecture_type"] = self.architecture_type.name if self.architecture_type != ArchitectureType.CNN_LSTM else "CNN_LSTM"
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TabularModelConfig":
        """Inverse of `to_dict`; unknown keys raise `ConfigError` listing the valid ones."""
        valid = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown key (valid keys: {', '.join(sorted(valid))})")
        return cls(**data)


# The older name (see keras_trainer.compat). `keras_trainer.config.ModelConfig` is the JSON `model` section.
ModelConfig = TabularModelConfig
