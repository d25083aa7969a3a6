"""Mixed precision: one dtype-policy path for every model builder, loss scaling for float16.

`training.mixed_precision` ("off", "float16", "bfloat16") becomes a Keras dtype
policy ("float32", "mixed_float16", "mixed_bfloat16"). Every family builds its
network inside `policy_scope(mode)`: Keras layers created there without a `dtype`
take the policy (variables float32, computations in float16 or bfloat16), and the
scope is left as it was found afterwards, so building one model never changes
another. `build_model` does this for every registered builder and `float32_outputs`
makes the model's outputs float32, so that softmax and the loss are numerically safe.
`fit` then wraps the optimizer in Keras' `LossScaleOptimizer` for float16 (bfloat16
has float32's range and needs no loss scale).

Example:

>>> with policy_scope("bfloat16"):
...     layer = keras.layers.Dense(4)
>>> layer.compute_dtype
'bfloat16'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from keras_trainer.errors import ConfigError

_POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(mode: str) -> str:
    """The Keras dtype policy for `training.mixed_precision` = `mode` (a policy name
    such as "mixed_float16" is returned as it is)."""
    if mode in _POLICIES.values():
        return mode
    try:
        return _POLICIES[mode]
    except KeyError:
        raise ConfigError(
            f"training.mixed_precision: must be one of {', '.join(map(repr, _POLICIES))}, got {mode!r}"
        ) from None


@contextlib.contextmanager
def policy_scope(mode: str) -> Iterator[str]:
    """Layers created inside compute as `training.mixed_precision` = `mode` says.

    Sets Keras' global dtype policy (`keras.config.set_dtype_policy`) for the
    duration of the block and restores the one before; yields the policy's name.
    """
    policy = policy_name(mode)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def current_policy() -> str:
    """The name of the dtype policy layers get now (`policy_scope`'s, else Keras' global)."""
    return keras.config.dtype_policy().name


def float32_outputs(model: keras.Model) -> keras.Model:
    """`model`, with a float32 cast after any output that computes in another dtype.

    A builder's last layer may follow the mixed policy; the loss (and a softmax)
    must see float32. Functional models only; others are returned as they are.
    """
    outputs = getattr(model, "outputs", None)
    if (
        not outputs
        or not getattr(model, "inputs", None)
        or all(keras.backend.standardize_dtype(o.dtype) == "float32" for o in outputs)
    ):
        return model
    cast = [
        o
        if keras.backend.standardize_dtype(o.dtype) == "float32"
        else keras.layers.Activation("linear", dtype="float32", name=f"float32_output_{i}")(o)
        for i, o in enumerate(outputs)
    ]
    return keras.Model(model.inputs, cast if len(cast) > 1 else cast[0], name=model.name)


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
            f"{', '.join(sorted(dtypes))}; build it with dtype policy {policy_name(mode)!r}: "
            f"inside `keras_trainer.core.training.precision.policy_scope({mode!r})`, or with "
            f"`ModelFactory(mixed_precision={mode!r})` (the family trainers and the CLI do "
            "this from the training config)"
        )


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, mode: str) -> keras.optimizers.Optimizer:
    """Adds dynamic loss scaling for float16, which underflows without it."""
    if mode == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
