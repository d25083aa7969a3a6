"""Builders of the tabular and sequence networks, the `model.type`s of the tabular family.

`keras_trainer.registry.MODEL_TYPES` declares them (imported on first use):

* `feed_forward`: dense layers (a `(steps, features)` window is flattened first);
* `lstm`: stacked (optionally bidirectional) LSTM layers, then dense layers;
* `cnn_lstm`: causal Conv1D layers, then LSTM layers, then dense layers.

Each takes the core `ModelConfig` (`model` section of a JSON config), so
`ModelTrainer({"model": {"type": "lstm", ...}})` builds the same network as
`ModelFactory().create_model(TabularModelConfig(architecture_type=LSTM, ...))`.
The dense part and the output head are the core's `dense_stack` and `output_head`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_trainer.config import ModelConfig
from keras_trainer.core.building.models import dense_stack, kernel_initializer, output_head
from keras_trainer.errors import ConfigError


def _sequence_input(
    config: ModelConfig, input_shape: Sequence[int], kind: str
) -> keras.KerasTensor:
    input_shape = tuple(input_shape)
    if len(input_shape) != 2:
        raise ConfigError(
            f"model.type {kind!r} takes windows of shape (steps, features), got inputs of shape "
            f"{input_shape}; window a series with keras_trainer.tabular.make_windows"
        )
    steps, width = input_shape
    if config.sequence_length is not None and steps is not None and steps != config.sequence_length:
        raise ConfigError(
            f"model.sequence_length is {config.sequence_length} but the windows have {steps} steps"
        )
    if config.input_dim is not None and width != config.input_dim:
        raise ConfigError(
            f"model.input_dim is {config.input_dim} but the windows have {width} features"
        )
    return keras.Input(
        shape=(steps if steps is not None else config.sequence_length, width), name="features"
    )


def lstm_stack(
    x: keras.KerasTensor, config: ModelConfig, dtype_policy: str = "float32", seed: int = 0
):
    """`config.lstm_num_layers` LSTM layers; the last one returns only its final state."""
    for index in range(config.lstm_num_layers):
        last = index == config.lstm_num_layers - 1
        layer = keras.layers.LSTM(
            config.lstm_hidden_size,
            return_sequences=not last,
            kernel_initializer=kernel_initializer(config.kernel_initializer),
            dtype=dtype_policy,
            name=f"lstm_{index}",
        )
        if config.lstm_bidirectional:
            layer = keras.layers.Bidirectional(
                layer, dtype=dtype_policy, name=f"bidirectional_{index}"
            )
        x = layer(x)
    if config.dropout > 0:
        x = keras.layers.Dropout(
            config.dropout, seed=seed, dtype=dtype_policy, name="lstm_dropout"
        )(x)
    return x


def conv_stack(x: keras.KerasTensor, config: ModelConfig, dtype_policy: str = "float32"):
    """Causal Conv1D layers (each step sees only itself and the past), keeping the length."""
    for index, (channels, kernel) in enumerate(zip(config.cnn_channels, config.cnn_kernel_sizes)):
        x = keras.layers.Conv1D(
            channels,
            kernel,
            padding="causal",
            use_bias=not config.batch_norm,
            kernel_initializer=kernel_initializer(config.kernel_initializer),
            dtype=dtype_policy,
            name=f"conv_{index}",
        )(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(
                dtype=dtype_policy, name=f"conv_batch_norm_{index}"
            )(x)
        x = keras.layers.Activation(
            config.activation, dtype=dtype_policy, name=f"conv_activation_{index}"
        )(x)
    return x


def build_feed_forward(
    config: ModelConfig, input_shape: Sequence[int], dtype_policy: str = "float32"
) -> keras.Model:
    """Dense layers with optional batch norm and dropout, then the output head.

    A `(steps, features)` input is flattened first, so the same data feeds all
    three families in an architecture comparison.

    Example:

    >>> build_feed_forward(ModelConfig(type="feed_forward", output_dim=1), (30,)).output_shape
    (None, 1)
    """
    input_shape = tuple(input_shape)
    if len(input_shape) not in (1, 2):
        raise ConfigError(
            f"model.type 'feed_forward' takes (features,) or (steps, features) inputs, got {input_shape}"
        )
    inputs = keras.Input(shape=input_shape, name="features")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) == 2 else inputs
    outputs = output_head(dense_stack(x, config, dtype_policy), config, dtype_policy)
    return keras.Model(inputs, outputs, name="feed_forward")


def build_lstm(
    config: ModelConfig, input_shape: Sequence[int], dtype_policy: str = "float32"
) -> keras.Model:
    """Stacked LSTM layers over `(steps, features)` windows, then dense layers and the head.

    Example:

    >>> build_lstm(ModelConfig(type="lstm", output_dim=1, output_activation="linear"), (20, 4)).output_shape
    (None, 1)
    """
    inputs = _sequence_input(config, input_shape, "lstm")
    x = lstm_stack(inputs, config, dtype_policy, seed=len(config.hidden_layers))
    outputs = output_head(dense_stack(x, config, dtype_policy), config, dtype_policy)
    return keras.Model(inputs, outputs, name="lstm")


def build_cnn_lstm(
    config: ModelConfig, input_shape: Sequence[int], dtype_policy: str = "float32"
) -> keras.Model:
    """The hybrid net: causal Conv1D feature extractors, LSTM layers, dense layers, head.

    Example:

    >>> build_cnn_lstm(ModelConfig(type="cnn_lstm", output_dim=3), (20, 4)).output_shape
    (None, 3)
    """
    inputs = _sequence_input(config, input_shape, "cnn_lstm")
    x = conv_stack(inputs, config, dtype_policy)
    x = lstm_stack(x, config, dtype_policy, seed=len(config.hidden_layers))
    outputs = output_head(dense_stack(x, config, dtype_policy), config, dtype_policy)
    return keras.Model(inputs, outputs, name="cnn_lstm")
