"""`compile`: a model's forward pass on explicit parameters, compiled for its backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import keras

from keras_trainer.errors import BackendNotSupportedError, ConfigError
from keras_trainer.functional.parameters import (
    BACKENDS,
    active_backend,
    parameters,
    require_built,
    tensors,
)


def compile(
    model: keras.Model,
    backend: Optional[str] = None,
    input_shapes: Any = None,
    jit: bool = True,
) -> Callable:
    """A forward pass `(params, x) -> outputs` of `model`, compiled for `backend`.

    `jax.jit` on JAX, `tf.function` on TensorFlow, `torch.compile` on torch
    (or the plain function with `jit=False`: `torch.compile` needs a C++
    compiler and takes long the first time). The model runs in inference mode
    on the values in `params`, never on its own variables.

    Args:
        model: A Keras model (built here from `input_shapes` if it is not yet).
        backend: `"jax"`, `"torch"` or `"tensorflow"`; must be the backend Keras
            runs on (Keras picks it once, from KERAS_BACKEND, at import).
            Defaults to that backend.
        input_shapes: Shape of one input batch, e.g. `(32, 12)`. When given, the
            model is built for it and the forward pass compiled for it now,
            so the first call does not wait. Defaults to `None` (compiled on
            the first call).
        jit: Compile (`True`) or return the plain stateless call. Defaults to `True`.

    Returns:
        The forward function; it also has `.backend`.

    Raises:
        BackendNotSupportedError: `backend` is not the backend Keras runs on.
        ModelError: the model is not built and no `input_shapes` were given.

    Example:

    >>> forward = compile(model, backend="jax", input_shapes=(32, 12))
    >>> outputs = forward(parameters(model), x)
    """
    active = active_backend()
    backend = backend or active
    if backend not in BACKENDS:
        raise ConfigError(f"backend: must be one of {list(BACKENDS)}, got {backend!r}")
    if backend != active:
        raise BackendNotSupportedError(
            f"functional.compile(backend={backend!r}): Keras runs on {active!r} in this process "
            f"and picks its backend once, at import; set KERAS_BACKEND={backend} before "
            f"importing keras (or pass backend={active!r})"
        )
    if input_shapes is not None and not model.built:
        model.build(tuple(input_shapes))
    require_built(model)

    def forward(params, x):
        outputs, _ = model.stateless_call(
            list(params.trainable), list(params.non_trainable), x, training=False
        )
        return outputs

    compiled = forward
    if jit and backend == "jax":
        import jax

        compiled = jax.jit(forward)
    elif jit and backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(forward, reduce_retracing=True)
    elif jit and backend == "torch":
        import torch

        compiled = torch.compile(forward)
    if input_shapes is not None:
        dtype = model.inputs[0].dtype if getattr(model, "inputs", None) else "float32"
        compiled(parameters(model), keras.ops.zeros(tuple(input_shapes), dtype=dtype))

    def call(params, x):
        return compiled(params, tensors(x) if backend != "jax" else x)

    call.backend = backend
    return call
