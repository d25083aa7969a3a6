"""A model's state as explicit values: `Parameters`, `parameters`, `set_parameters`."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras

from keras_trainer.errors import ModelError

#: The backends the functional API differentiates and compiles on.
BACKENDS = ("jax", "torch", "tensorflow")


class Parameters(NamedTuple):
    """A model's state as explicit values, in the order of the model's variables.

    A pytree on JAX (a tuple of two lists), so it passes through `jax.jit`,
    `jax.tree_util` and optax as is.

    Attributes:
        trainable: One tensor per `model.trainable_variables` (on torch, leaf
            tensors that require gradients, so `torch.optim` can update them).
        non_trainable: One tensor per `model.non_trainable_variables` (batch-norm
            statistics, dropout seeds), updated by each training step.
    """

    trainable: list
    non_trainable: list


def active_backend() -> str:
    """The backend Keras runs on ("jax", "torch", "tensorflow", ...)."""
    return keras.backend.backend()


def require_built(model: keras.Model) -> None:
    """Raises `ModelError` when `model` has no variables yet."""
    if not model.built or not model.variables:
        raise ModelError(
            f"model {model.name!r} is not built, so it has no parameters yet: call it once, "
            "`model.build(input_shape)`, or pass input_shapes= to functional.compile"
        )


def copy_value(value: Any, trainable: bool) -> Any:
    """A copy of a variable's value that changing leaves the variable alone (on torch a
    leaf tensor, requiring gradients when `trainable`)."""
    backend = active_backend()
    if backend == "torch":
        tensor = value.detach().clone()
        return tensor.requires_grad_(True) if trainable and tensor.is_floating_point() else tensor
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.identity(value)
    return value  # JAX arrays are immutable


def parameters(model: keras.Model) -> Parameters:
    """The values of `model`'s variables, copied out of the model.

    Args:
        model: A built Keras model (any: built by `build_model`, a family's
            network, or your own).

    Returns:
        `Parameters(trainable, non_trainable)`; changing them leaves the model
        as it was (write them back with `set_parameters`).

    Raises:
        ModelError: the model is not built.

    Example:

    >>> params = parameters(model)
    >>> [tuple(p.shape) for p in params.trainable][:2]
    [(12, 64), (64,)]
    """
    require_built(model)
    return Parameters(
        [copy_value(v.value, True) for v in model.trainable_variables],
        [copy_value(v.value, False) for v in model.non_trainable_variables],
    )


def set_parameters(model: keras.Model, params: Parameters) -> keras.Model:
    """Writes `params` into `model`'s variables (to save, evaluate or `predict` with them).

    Raises:
        ModelError: `params` does not have one value per variable of `model`.
    """
    for name, variables, values in (
        ("trainable", model.trainable_variables, params.trainable),
        ("non_trainable", model.non_trainable_variables, params.non_trainable),
    ):
        if len(variables) != len(values):
            raise ModelError(
                f"params.{name} has {len(values)} values but model {model.name!r} has "
                f"{len(variables)} {name} variables; take params from this model"
            )
        for variable, value in zip(variables, values):
            variable.assign(_detached(value))
    return model


def _detached(value: Any) -> Any:
    return value.detach() if active_backend() == "torch" and hasattr(value, "detach") else value


def tensors(value: Any) -> Any:
    """`value` as a backend tensor (None stays None)."""
    return None if value is None else keras.ops.convert_to_tensor(value)
