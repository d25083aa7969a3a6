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
from typing import Any, Literal, Optional

from keras_trainer.config import ModelConfig as CoreModelConfig
from keras_trainer.config.fields import ConfigSection, option
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
    def parse(cls, value: Any) -> ArchitectureType:
        """Accepts an `ArchitectureType` or its name/value in any case ("hybrid", "LSTM")."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            aliases = {
                "feed_forward": cls.FEED_FORWARD,
                "feedforward": cls.FEED_FORWARD,
                "mlp": cls.FEED_FORWARD,
                "lstm": cls.LSTM,
                "cnn_lstm": cls.CNN_LSTM,
                "hybrid": cls.CNN_LSTM,
            }
            if key in aliases:
                return aliases[key]
        raise ConfigError(
            f"architecture_type: unknown architecture {value!r} "
            "(valid: FEED_FORWARD, LSTM, HYBRID/CNN_LSTM)"
        )


@dataclasses.dataclass
class TabularModelConfig(ConfigSection):
    """A feed-forward, LSTM or CNN+LSTM network with a regression or classification head.

    Declared and validated like every other config section: built in Python or
    read with `from_dict`, a bad value raises `ConfigError` naming its key.
    `sequence_length=None` accepts windows of any length; a feed-forward net given
    a length flattens the window. Classification uses a sigmoid output for
    `output_size=1` and softmax otherwise.
    """

    architecture_type: ArchitectureType = option(
        ArchitectureType.FEED_FORWARD,
        description="feed_forward, lstm or cnn_lstm (names in any case and 'hybrid' accepted).",
    )
    input_size: Optional[int] = option(
        None, exclusive_minimum=0, description="Features per sample (per time step for sequences)."
    )
    hidden_sizes: list[int] = option(
        default_factory=lambda: [64, 32],
        description="Units of the dense layers after the (optional) recurrent part.",
    )
    output_size: int = option(
        1,
        exclusive_minimum=0,
        description="1 for regression or binary classification, else classes.",
    )
    dropout_rate: float = option(
        0.2,
        minimum=0.0,
        exclusive_maximum=1.0,
        description="Dropout after dense and recurrent layers.",
    )
    use_batch_norm: bool = option(True, description="Batch normalization after dense/conv layers.")
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = option(
        "relu", description="Activation of the hidden layers."
    )
    weight_init: Initializer = option(
        "xavier", description="Kernel initializer (xavier/glorot, orthogonal, he, ...)."
    )
    lstm_hidden_size: int = option(64, exclusive_minimum=0, description="LSTM units.")
    lstm_num_layers: int = option(2, exclusive_minimum=0, description="Stacked LSTM layers.")
    lstm_bidirectional: bool = option(False, description="Bidirectional LSTM layers.")
    cnn_channels: list[int] = option(
        default_factory=lambda: [32, 64], description="Filters of each Conv1D layer (cnn_lstm)."
    )
    cnn_kernel_sizes: list[int] = option(
        default_factory=lambda: [3, 3], description="Kernel size of each Conv1D layer."
    )
    sequence_length: Optional[int] = option(
        None, exclusive_minimum=0, description="Time steps per window of sequence models."
    )
    task: Literal["regression", "classification"] = option(
        "regression", description="regression (linear output) or classification."
    )
    name: Optional[str] = option(
        None, description="Model name (also the row name in architecture comparisons)."
    )

    def validate(self, path: str) -> None:
        # The core schema checks the rest (ranges, list lengths) with key paths.
        self.to_model_config()

    @property
    def output_activation(self) -> str:
        """ "linear" for regression; "sigmoid" for one-output, "softmax" for multi-class classification."""
        if self.task == "regression":
            return "linear"
        return "sigmoid" if self.output_size == 1 else "softmax"

    @property
    def is_sequence(self) -> bool:
        """Whether the network takes `(steps, features)` windows."""
        return (
            self.architecture_type != ArchitectureType.FEED_FORWARD
            or self.sequence_length is not None
        )

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

    def to_dict(self) -> dict:
        """JSON-ready dict (for model metadata); the architecture goes by its name."""
        data = super().to_dict()
        data["architecture_type"] = (
            self.architecture_type.name
            if self.architecture_type != ArchitectureType.CNN_LSTM
            else "CNN_LSTM"
        )
        return data


# The older name (see keras_trainer.compat). `keras_trainer.config.ModelConfig` is the JSON `model` section.
ModelConfig = TabularModelConfig
