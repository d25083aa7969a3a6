"""`value_and_grad`: a model's loss and its gradients, by the backend's own differentiation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import keras

from keras_trainer.errors import BackendNotSupportedError
from keras_trainer.functional.parameters import (
    BACKENDS,
    Parameters,
    active_backend,
    require_built,
    tensors,
)


class LossAndGradients(NamedTuple):
    """What a `value_and_grad` function returns.

    Attributes:
        loss: The scalar loss (regularization losses included, as in `fit`).
        gradients: One per `Parameters.trainable`, in the same order.
        outputs: The model's outputs for the batch.
        parameters: The `Parameters` after the step: the same trainable values,
            the non-trainable values the forward pass updated.
    """

    loss: Any
    gradients: list
    outputs: Any
    parameters: Parameters


def _loss_function(loss: Any) -> Callable:
    """`fn(y_true, y_pred, sample_weight)` -> the batch's mean loss, as `fit` reduces it."""
    from keras_trainer.core.building.losses import get_loss

    function = get_loss(loss)
    if isinstance(function, keras.losses.Loss):
        return function

    def mean_loss(y_true, y_pred, sample_weight=None):
        values = function(y_true, y_pred)
        if sample_weight is not None:
            values = values * keras.ops.cast(sample_weight, values.dtype)
        return keras.ops.mean(values)

    return mean_loss


def value_and_grad(
    model: keras.Model, loss: Any = "mse", training: bool = True, jit: bool = False
) -> Callable:
    """A function `(params, x, y, sample_weight=None) -> LossAndGradients` for `model`.

    The loss is computed as `fit` computes it: the loss averaged over the batch
    (`sample_weight` applied), plus the model's regularization losses. On JAX
    the function is pure: `jax.jit` it as it is (or pass `jit=True`).

    Args:
        model: A built Keras model.
        loss: A loss name (`keras_trainer.available_losses()`), a
            `keras.losses.Loss` or `fn(y_true, y_pred)`. Defaults to `"mse"`.
        training: Run the forward pass in training mode (dropout on, batch-norm
            statistics updated). Defaults to `True`.
        jit: Compile the function: `jax.jit` on JAX, `tf.function` on
            TensorFlow; torch runs it as it is (autograd is eager). Defaults to
            `False` (each operation runs as it comes, easiest to debug).

    Returns:
        The function; its `LossAndGradients` unpacks as
        `loss, gradients, outputs, params`.

    Raises:
        ModelError: the model is not built.
        BackendNotSupportedError: the Keras backend is not jax, torch or tensorflow.

    Example:

    >>> step = value_and_grad(model, "categorical_crossentropy")
    >>> loss, grads, outputs, params = step(params, x, y)
    """
    require_built(model)
    loss_fn = _loss_function(loss)

    def forward_loss(trainable, non_trainable, x, y, sample_weight):
        outputs, non_trainable, losses = model.stateless_call(
            trainable, non_trainable, x, training=training, return_losses=True
        )
        value = loss_fn(y, outputs, sample_weight)
        if losses:
            value = value + keras.ops.sum(keras.ops.stack(losses))
        return value, (outputs, non_trainable)

    backend = active_backend()
    if backend == "jax":
        import jax

        gradient = jax.value_and_grad(forward_loss, has_aux=True)

        def step(params, x, y, sample_weight=None):
            (value, (outputs, state)), grads = gradient(
                list(params.trainable), list(params.non_trainable), x, y, sample_weight
            )
            return LossAndGradients(value, grads, outputs, Parameters(params.trainable, state))

        if jit:
            step = jax.jit(step)

    elif backend == "torch":
        import torch

        def step(params, x, y, sample_weight=None):
            # Fresh leaves sharing the values' memory: no graph grows across steps.
            leaves = [p.detach().requires_grad_(True) for p in params.trainable]
            x, y = tensors(x), tensors(y)
            value, (outputs, state) = forward_loss(
                leaves, list(params.non_trainable), x, y, tensors(sample_weight)
            )
            grads = torch.autograd.grad(value, leaves, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads)]
            state = [s.detach() for s in state]
            return LossAndGradients(
                value.detach(), grads, outputs.detach(), Parameters(params.trainable, state)
            )

    elif backend == "tensorflow":
        import tensorflow as tf

        def step(params, x, y, sample_weight=None):
            trainable = list(params.trainable)
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                value, (outputs, state) = forward_loss(
                    trainable, list(params.non_trainable), x, y, sample_weight
                )
            grads = tape.gradient(value, trainable)
            grads = [tf.zeros_like(p) if g is None else g for p, g in zip(trainable, grads)]
            return LossAndGradients(value, grads, outputs, Parameters(params.trainable, state))

        if jit:
            step = tf.function(step, reduce_retracing=True)

    else:
        raise _unsupported("value_and_grad")
    return step


def _unsupported(what: str) -> BackendNotSupportedError:
    return BackendNotSupportedError(
        f"functional.{what}: the {active_backend()!r} backend has no gradient API here; set "
        f"KERAS_BACKEND to one of {list(BACKENDS)} before importing keras"
    )
