"""Plausibility before work: a model's memory estimated from its config, absurd values named.

`validate` accepts any value the schema's types and ranges allow; some of those
(`hidden_layers: [10**12]`, `batch_size: 10**18`) would only fail after minutes of
allocation, or never finish (`epochs: 10**12`). `check_model_memory` refuses a model
whose estimated training memory (weights, gradients, Adam's two moments, and the
activations of one batch) exceeds the machine's memory, or
`$KERAS_TRAINER_MAX_MODEL_BYTES`, before anything is built; `plausibility_warnings`
lists values that are allowed but almost surely a mistake.

Example:

>>> from keras_trainer.config import ModelConfig
>>> estimate_model_bytes(ModelConfig(input_dim=12, hidden_layers=[64, 32], output_dim=5), (12,))
75088
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from keras_trainer.errors import ConfigError

MAX_MODEL_BYTES_ENV = "KERAS_TRAINER_MAX_MODEL_BYTES"
# Weights, their gradients and Adam's two moments: four float32 copies of each parameter.
_COPIES_PER_PARAMETER = 4
_FLOAT_BYTES = 4
_DEFAULT_SEQUENCE_LENGTH = 16  # a stand-in where the config leaves it to the data


def _dense_stack(widths: list[int]) -> tuple[int, int]:
    """Parameters and activations (per row) of dense layers of these widths."""
    parameters = sum(a * b + b for a, b in zip(widths, widths[1:]))
    return parameters, sum(widths[1:])


def parameter_and_activation_counts(config: Any, input_shape: Sequence[int]) -> tuple[int, int]:
    """Estimated parameters and activations per batch row of the network `config` builds.

    Covers the dense stack (`mlp`, `feed_forward`), `lstm` and `cnn_lstm`; other
    registered types count as their dense head only.
    """
    shape = [int(d) for d in input_shape if d is not None] or [1]
    hidden = [int(w) for w in config.hidden_layers]
    output = int(config.output_dim or 1)
    if config.type not in ("lstm", "cnn_lstm"):
        width = 1
        for d in shape:
            width *= d
        return _dense_stack([width, *hidden, output])
    steps = shape[0] if len(shape) > 1 else int(config.sequence_length or _DEFAULT_SEQUENCE_LENGTH)
    features = shape[-1]
    parameters = activations = 0
    if config.type == "cnn_lstm":
        for channels, kernel in zip(config.cnn_channels, config.cnn_kernel_sizes):
            parameters += kernel * features * channels + channels
            activations += steps * channels
            features = channels
    directions = 2 if config.lstm_bidirectional else 1
    size = int(config.lstm_hidden_size)
    for _ in range(int(config.lstm_num_layers)):
        parameters += directions * 4 * (size * (features + size) + size)
        activations += steps * directions * size * 5  # four gates and the state
        features = directions * size
    head_parameters, head_activations = _dense_stack([features, *hidden, output])
    return parameters + head_parameters, activations + head_activations


def machine_memory_bytes() -> int | None:
    """The machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit_bytes() -> int | None:
    """`$KERAS_TRAINER_MAX_MODEL_BYTES` when set, else the machine's memory.

    Raises:
        ConfigError: the variable is not a positive integer.
    """
    text = os.environ.get(MAX_MODEL_BYTES_ENV)
    if text is None:
        return machine_memory_bytes()
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"${MAX_MODEL_BYTES_ENV}: expected a number of bytes, got {text!r}")
    return int(text)


def estimate_model_bytes(config: Any, input_shape: Sequence[int], batch_size: int = 32) -> int:
    """Estimated bytes to train the model: parameters x 4 copies, plus one batch's activations
    (kept for the backward pass: x 2)."""
    parameters, activations = parameter_and_activation_counts(config, input_shape)
    return _FLOAT_BYTES * (_COPIES_PER_PARAMETER * parameters + 2 * int(batch_size) * activations)


def check_model_memory(
    config: Any, input_shape: Sequence[int], batch_size: int = 32, path: str = "model"
) -> None:
    """Refuses, before building, a model whose estimated memory exceeds the limit.

    Raises:
        ConfigError: naming the estimate, the limit and the sizes that drive it.
    """
    limit = memory_limit_bytes()
    if limit is None:
        return
    needed = estimate_model_bytes(config, input_shape, batch_size)
    if needed > limit:
        parameters, _ = parameter_and_activation_counts(config, input_shape)
        raise ConfigError(
            f"{path}: training this model needs about {needed / 1e9:.3g} GB "
            f"({parameters:.3g} parameters, batch_size {batch_size}), more than the "
            f"{limit / 1e9:.3g} GB limit (the machine's memory, or ${MAX_MODEL_BYTES_ENV}); "
            f"check hidden_layers {_short(config.hidden_layers)}, output_dim {config.output_dim} "
            "and training.batch_size"
        )


def _short(values: list) -> str:
    text = repr(values)
    return text if len(text) <= 40 else text[:37] + "...]"


def plausibility_warnings(config: Any) -> list[str]:
    """Values a config allows but that are almost surely mistakes, as sentences.

    Raises:
        ConfigError: the model's estimated memory exceeds the limit (`check_model_memory`).
    """
    warnings = []
    model = getattr(config, "model", None)
    training = getattr(config, "training", None)
    batch_size = int(getattr(training, "batch_size", 32) or 32)
    if model is not None and hasattr(model, "hidden_layers"):
        if len(model.hidden_layers) > 1000:
            warnings.append(
                f"model.hidden_layers: {len(model.hidden_layers)} layers; deep plain stacks "
                "this long do not train (vanishing gradients) and compile slowly"
            )
        shape = (model.input_dim or 1,) if model.type not in ("lstm", "cnn_lstm") else ()
        check_model_memory(model, shape, batch_size)
    if training is not None:
        epochs = getattr(training, "epochs", 0)
        if epochs > 1_000_000:
            warnings.append(f"training.epochs: {epochs} would not finish; early stopping aside")
        rate = getattr(training, "learning_rate", 0.001)
        if isinstance(rate, (int, float)) and rate > 10:
            warnings.append(
                f"training.learning_rate: {rate:g} makes training diverge; usual values are 1e-4 to 1e-1"
            )
        if batch_size > 10_000_000:
            warnings.append(
                f"training.batch_size: {batch_size} is more rows than one step can hold"
            )
    return warnings
