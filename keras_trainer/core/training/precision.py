"""Mixed precision: dtype policies for model builders and loss scaling for float16.

Models are built with a per-layer dtype policy (`policy_name(mode)`) rather than
the global Keras policy, so building one model never changes another; the final
activation always computes in float32 for a numerically safe softmax and loss.
"""

from __future__ import annotations

import keras

from keras_trainer.errors import ConfigError

_POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(mode: str) -> str:
    """The Keras dtype policy for `training.mixed_precision` = `mode`."""
    try:
        return _POLICIES[mode]
    except KeyError:
        raise ConfigError(
            f"training.mixed_precision: must be one of {', '.join(map(repr, _POLICIES))}, got {mode!r}"
        ) from None


def model_compute_dtypes(model: keras.Model) -> set[str]:
    """Compute dtypes used by the layers of `model` that hold weights."""
    return {
        layer.dtype_policy.compute_dtype
        for layer in model._flatten_layers(include_self=False)
        if layer.weights and not isinstance(layer, keras.Model)
    }


def check_model_policy(model: keras.Model, mode: str) -> None:
    """Raises `ConfigError` if `model` was not built for `mixed_precision` = `mode`."""
    wanted = keras.DTypePolicy(policy_name(mode)).compute_dtype
    dtypes = model_compute_dtypes(model)
    if dtypes and wanted not in dtypes:
        raise ConfigError(
            f"training.mixed_precision is {mode!r} but the model computes in "
            f"{', '.join(sorted(dtypes))}; build it with dtype policy {policy_name(mode)!r} "
            "(the model builders do this when given the same training config)"
        )


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, mode: str) -> keras.optimizers.Optimizer:
    """Adds dynamic loss scaling for float16, which underflows without it."""
    if mode == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
