"""Functional training: a model's parameters as explicit values, gradients, update steps.

For users who write their own training loop instead of calling `fit`: the
parameters of any built Keras model come out as plain backend tensors
(`parameters`), a loss and its gradients are one call (`value_and_grad`), an
update step takes our (Keras) optimizers, an optax transformation (JAX) or a
`torch.optim` optimizer (`apply_updates`), and `compile` returns a jitted
forward pass. Everything goes through Keras' stateless API
(`model.stateless_call`, `optimizer.stateless_apply`), so a loop written here
computes what `fit` computes: docs/functional.md shows a hand-written loop
that matches `fit` step for step.

Differentiation is the backend's own: `jax.value_and_grad` on JAX,
`torch.autograd.grad` on torch, `tf.GradientTape` on TensorFlow.

Example:

>>> from keras_trainer import functional
>>> params = functional.parameters(model)
>>> step = functional.value_and_grad(model, "categorical_crossentropy")
>>> optimizer = functional.optimizer("sgd", learning_rate=0.01)
>>> state = functional.optimizer_state(optimizer, model)
>>> loss, grads, outputs, params = step(params, x, y)
>>> params, state = functional.apply_updates(optimizer, params, grads, state)
>>> functional.set_parameters(model, params)
"""

from keras_trainer.functional.compiling import compile
from keras_trainer.functional.gradients import LossAndGradients, value_and_grad
from keras_trainer.functional.parameters import BACKENDS, Parameters, parameters, set_parameters
from keras_trainer.functional.updates import (
    LIBRARIES,
    apply_updates,
    optimizer,
    optimizer_state,
)

__all__ = [
    "BACKENDS",
    "LIBRARIES",
    "LossAndGradients",
    "Parameters",
    "apply_updates",
    "compile",
    "optimizer",
    "optimizer_state",
    "parameters",
    "set_parameters",
    "value_and_grad",
]
