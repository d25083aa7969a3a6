"""Model builders by name: `model.type` in a config picks one.

The core provides `mlp`, a dense network on flat feature vectors (the JIT strategy
model's network). The tabular family provides `feed_forward`, `lstm` and `cnn_lstm`.
All are entries of `keras_trainer.registry.MODEL_TYPES` (declared there lazily, so
nothing is imported for its side effect); `@register_model_builder` adds more, and
`ModelTrainer` builds any of them from the same config format without knowing the
families. `build_model` runs every builder inside the mixed-precision dtype policy
(`keras_trainer.core.training.precision`), so a builder that passes no `dtype` to
its layers computes in float16 or bfloat16 all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from keras_trainer.config import ModelConfig
from keras_trainer.config.plausibility import check_model_memory
from keras_trainer.config.schema import INITIALIZER_ALIASES
from keras_trainer.core.training import precision
from keras_trainer.errors import ConfigError
from keras_trainer.registry import MODEL_TYPES

ModelBuilder = Callable[[ModelConfig, Sequence[int], str], keras.Model]


def register_model_builder(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Registers `builder(model_config, input_shape, dtype_policy) -> keras.Model` as `name`.

    Example:

    >>> @register_model_builder("tiny")
    ... def build_tiny(config, input_shape, dtype_policy):
    ...     inputs = keras.Input(input_shape)
    ...     return keras.Model(inputs, keras.layers.Dense(config.output_dim)(inputs))
    """

    return MODEL_TYPES.register(name)


def model_types() -> list[str]:
    """Names of all registered model builders."""
    return MODEL_TYPES.names()


def build_model(
    config: ModelConfig, input_shape: Sequence[int], dtype_policy: str | None = None
) -> keras.Model:
    """Builds the model `config.type` names, for inputs of `input_shape` (no batch axis).

    Args:
        config: The `model` section.
        input_shape: The shape of one example.
        dtype_policy: A Keras dtype policy ("float32", "mixed_float16",
            "mixed_bfloat16") or a `training.mixed_precision` mode ("off",
            "float16", "bfloat16"). Defaults to the policy in force
            (`precision.policy_scope`, else Keras' global one). The builder runs
            inside that policy, and outputs in another dtype are cast to float32.

    Example:

    >>> with precision.policy_scope("bfloat16"):
    ...     model = build_model(ModelConfig(output_dim=3), (12,))
    >>> model.get_layer("dense_0").compute_dtype, model.output.dtype
    ('bfloat16', 'float32')

    Raises:
        ConfigError: `model.type` is not registered (the message lists those that are),
            `model.output_dim` is not set, or the model's estimated memory exceeds the
            machine's (`config.plausibility.check_model_memory`).
    """
    builder = MODEL_TYPES.get(config.type, "model.type")
    output_units(config)
    check_model_memory(config, tuple(input_shape))  # a named refusal, not minutes of allocation
    mode = precision.current_policy() if dtype_policy is None else dtype_policy
    with precision.policy_scope(mode) as policy:
        model = builder(config, tuple(input_shape), policy)
    return precision.float32_outputs(model)


def output_units(config: ModelConfig) -> int:
    """`model.output_dim`, which the family's trainer fills when the config leaves it null.

    Raises:
        ConfigError: it is still null.
    """
    if config.output_dim is None:
        raise ConfigError(
            "model.output_dim: not set; give the number of outputs (classes), or build the "
            "model through its family's trainer, which takes it from the strategies or labels"
        )
    return config.output_dim


def kernel_initializer(name: str) -> str:
    """Keras initializer name for a config's `kernel_initializer` (accepts aliases)."""
    return INITIALIZER_ALIASES.get(name, name)


def dense_stack(
    inputs: keras.KerasTensor, config: ModelConfig, dtype_policy: str = "float32", seed: int = 0
) -> keras.KerasTensor:
    """Hidden Dense layers of `config`, each with optional batch norm and dropout.

    Args:
        inputs: The input tensor.
        config: The `model` section.
        dtype_policy: Keras dtype policy of the layers.
        seed: Base seed of the dropout layers (layer `i` gets `seed + i`).
    """
    x = inputs
    for index, units in enumerate(config.hidden_layers):
        # Without batch norm the activation goes inside the Dense layer: one layer
        # call instead of two, which is what the torch backend (eager Python per
        # layer) pays for; with it, the activation must follow the normalization.
        x = keras.layers.Dense(
            units,
            activation=None if config.batch_norm else config.activation,
            kernel_initializer=kernel_initializer(config.kernel_initializer),
            use_bias=not config.batch_norm,
            dtype=dtype_policy,
            name=f"dense_{index}",
        )(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(dtype=dtype_policy, name=f"batch_norm_{index}")(x)
            x = keras.layers.Activation(
                config.activation, dtype=dtype_policy, name=f"activation_{index}"
            )(x)
        if config.dropout > 0:
            # A seeded dropout keeps its generator state in a model variable, which
            # checkpoints save: resumed runs then draw the same masks on every backend.
            x = keras.layers.Dropout(
                config.dropout, seed=seed + index, dtype=dtype_policy, name=f"dropout_{index}"
            )(x)
    return x


def output_head(
    x: keras.KerasTensor, config: ModelConfig, dtype_policy: str = "float32"
) -> keras.KerasTensor:
    """The output Dense layer; its activation computes in float32 under mixed precision."""
    x = keras.layers.Dense(
        output_units(config),
        kernel_initializer=kernel_initializer(config.kernel_initializer),
        dtype=dtype_policy,
        name="logits",
    )(x)
    return keras.layers.Activation(config.output_activation, dtype="float32", name="output")(x)


def build_mlp(
    config: ModelConfig, input_shape: Sequence[int], dtype_policy: str = "float32"
) -> keras.Model:
    """The dense network of the JIT strategy model: hidden layers, then `output_dim` outputs.

    Example:

    >>> model = build_mlp(ModelConfig(input_dim=12, output_dim=5), (12,))
    >>> model.output_shape
    (None, 5)
    """
    if len(input_shape) != 1:
        raise ConfigError(
            f"model.type 'mlp' takes flat feature vectors, got inputs of shape {tuple(input_shape)}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    outputs = output_head(dense_stack(inputs, config, dtype_policy), config, dtype_policy)
    return keras.Model(inputs, outputs, name="mlp")
