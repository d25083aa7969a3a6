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

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional

import keras

from keras_trainer.errors import BackendNotSupportedError, ConfigError, ModelError

BACKENDS = ("jax", "torch", "tensorflow")
LIBRARIES = ("keras", "optax", "torch")


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


def _backend() -> str:
    return keras.backend.backend()


def _require_built(model: keras.Model) -> None:
    if not model.built or not model.variables:
        raise ModelError(
            f"model {model.name!r} is not built, so it has no parameters yet: call it once, "
            "`model.build(input_shape)`, or pass input_shapes= to functional.compile"
        )


def _copy(value: Any, trainable: bool) -> Any:
    backend = _backend()
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
    _require_built(model)
    return Parameters(
        [_copy(v.value, True) for v in model.trainable_variables],
        [_copy(v.value, False) for v in model.non_trainable_variables],
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
    return value.detach() if _backend() == "torch" and hasattr(value, "detach") else value


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
    _require_built(model)
    loss_fn = _loss_function(loss)

    def forward_loss(trainable, non_trainable, x, y, sample_weight):
        outputs, non_trainable, losses = model.stateless_call(
            trainable, non_trainable, x, training=training, return_losses=True
        )
        value = loss_fn(y, outputs, sample_weight)
        if losses:
            value = value + keras.ops.sum(keras.ops.stack(losses))
        return value, (outputs, non_trainable)

    backend = _backend()
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
            x, y = _tensors(x), _tensors(y)
            value, (outputs, state) = forward_loss(
                leaves, list(params.non_trainable), x, y, _tensors(sample_weight)
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


def _tensors(value: Any) -> Any:
    return None if value is None else keras.ops.convert_to_tensor(value)


def _unsupported(what: str) -> BackendNotSupportedError:
    return BackendNotSupportedError(
        f"functional.{what}: the {_backend()!r} backend has no gradient API here; set "
        f"KERAS_BACKEND to one of {list(BACKENDS)} before importing keras"
    )


def optimizer(
    name: str = "sgd",
    learning_rate: float = 0.01,
    library: str = "keras",
    params: Optional[Parameters] = None,
    **options: Any,
) -> Any:
    """An optimizer for `apply_updates`, from one of three libraries.

    Args:
        name: `"sgd"`, `"adam"`, `"adamw"` or `"rmsprop"`. Defaults to `"sgd"`.
        learning_rate: Defaults to 0.01.
        library: `"keras"` (our optimizers, `training.optimizer` options in
            `options`, every backend), `"optax"` (JAX; needs the optax package)
            or `"torch"` (`torch.optim`, torch backend). Defaults to `"keras"`.
        params: The `Parameters` a torch optimizer updates (required for
            `library="torch"`: it updates `params.trainable` in place).
        **options: More options: for keras, the `training.optimizer` section's
            (`momentum`, `weight_decay`, ...); otherwise the library's own.

    Returns:
        A Keras optimizer, an optax `GradientTransformation` or a `torch.optim.Optimizer`.

    Raises:
        ConfigError: an unknown name or library, optax not installed, or
            `library="torch"` without `params`.
        BackendNotSupportedError: optax outside JAX, torch.optim outside torch.

    Example:

    >>> sgd = optimizer("sgd", learning_rate=0.1)
    >>> adam = optimizer("adam", 1e-3, library="torch", params=params)  # torch backend
    """
    if library not in LIBRARIES:
        raise ConfigError(f"library: must be one of {list(LIBRARIES)}, got {library!r}")
    names = ("sgd", "adam", "adamw", "rmsprop")
    if name not in names:
        raise ConfigError(f"name: must be one of {list(names)}, got {name!r}")
    if library == "keras":
        from keras_trainer.config import TrainingConfig
        from keras_trainer.core.building.optimizers import build_optimizer

        config = TrainingConfig.from_dict(
            {"learning_rate": learning_rate, "optimizer": {"name": name, **options}}, "training"
        )
        return build_optimizer(config)
    needed = {"optax": "jax", "torch": "torch"}[library]
    if _backend() != needed:
        raise BackendNotSupportedError(
            f"library={library!r} updates {needed} arrays, but the Keras backend is "
            f"{_backend()!r}: set KERAS_BACKEND={needed}, or use library='keras' (every backend)"
        )
    if library == "optax":
        try:
            import optax
        except ImportError:
            raise ConfigError(
                "library='optax' needs the optax package (pip install optax); "
                "library='keras' gives the same optimizers without it"
            ) from None
        return getattr(optax, name)(learning_rate, **options)
    if params is None:
        raise ConfigError(
            "library='torch' needs params=functional.parameters(model): torch.optim "
            "updates those tensors in place"
        )
    import torch

    torch_class = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}[name]
    return getattr(torch.optim, torch_class)(params.trainable, lr=learning_rate, **options)


def _kind(opt: Any) -> str:
    if isinstance(opt, keras.optimizers.Optimizer):
        return "keras"
    if type(opt).__module__.startswith("torch.optim"):
        return "torch"
    if callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None)):
        return "optax"  # any optax GradientTransformation (init/update pair)
    raise ConfigError(
        f"optimizer: expected a Keras optimizer, an optax GradientTransformation or a "
        f"torch.optim.Optimizer, got {type(opt).__name__}"
    )


def optimizer_state(opt: Any, model: keras.Model) -> Any:
    """The optimizer's starting state for `model`'s parameters.

    Returns:
        For a Keras optimizer, the list of its variables' values (it is built on
        `model.trainable_variables`); for optax, `opt.init(trainable)`; for
        `torch.optim`, `None` (the optimizer keeps its own state).
    """
    kind = _kind(opt)
    _require_built(model)
    if kind == "keras":
        if not opt.built:
            opt.build(model.trainable_variables)
        return [_copy(v.value, False) for v in opt.variables]
    if kind == "optax":
        return opt.init([v.value for v in model.trainable_variables])
    return None


def apply_updates(opt: Any, params: Parameters, grads: Sequence[Any], state: Any = None) -> tuple:
    """One update step: `(params, state)` after applying `grads`.

    A Keras optimizer runs through `optimizer.stateless_apply` (clipping, weight
    decay and schedules as in `fit`; on TensorFlow, where Keras has no
    `stateless_apply`, the step runs on the variables the optimizer was built on,
    which end holding the new values); an optax transformation
    through its `update` and an added update (JAX); a `torch.optim` optimizer
    steps on `params.trainable` in place (torch).

    Args:
        opt: A Keras optimizer, an optax `GradientTransformation` or a
            `torch.optim.Optimizer` (see `optimizer`).
        params: The `Parameters` the gradients are for.
        grads: One gradient per `params.trainable` (from `value_and_grad`).
        state: The optimizer state (`optimizer_state`, then what the last
            `apply_updates` returned); unused by `torch.optim`.

    Returns:
        `(params, state)`: new `Parameters` (non-trainable values unchanged)
        and the new optimizer state.

    Raises:
        ConfigError: an unknown optimizer kind, a missing state, or a
            `torch.optim` optimizer over other tensors than `params.trainable`.
        BackendNotSupportedError: optax outside JAX, `torch.optim` outside torch.

    Example:

    >>> params, state = apply_updates(sgd, params, grads, state)
    """
    kind = _kind(opt)
    grads = list(grads)
    if kind != "torch" and state is None:
        raise ConfigError(
            "apply_updates: state is None; start it with functional.optimizer_state(optimizer, model)"
        )
    if kind == "keras":
        return _keras_update(opt, params, grads, state)
    needed = "jax" if kind == "optax" else "torch"
    if _backend() != needed:
        raise BackendNotSupportedError(
            f"apply_updates: {kind} optimizers update {needed} arrays but the Keras backend is "
            f"{_backend()!r}; set KERAS_BACKEND={needed}, or use a Keras optimizer "
            "(functional.optimizer(..., library='keras'), every backend)"
        )
    if kind == "optax":
        import jax

        updates, state = opt.update(grads, state, list(params.trainable))
        trainable = jax.tree_util.tree_map(lambda p, u: p + u, list(params.trainable), updates)
        return Parameters(trainable, params.non_trainable), state
    return _torch_update(opt, params, grads), None


def _keras_update(opt, params: Parameters, grads: list, state: list) -> tuple:
    if _backend() == "torch":
        import torch

        with torch.no_grad():
            trainable = [p.detach() for p in params.trainable]
            new, state = opt.stateless_apply(list(state), grads, trainable)
        new = [p.detach().clone().requires_grad_(True) for p in new]
        return Parameters(new, params.non_trainable), [s.detach() for s in state]
    if _backend() == "tensorflow":
        return _tensorflow_keras_update(opt, params, grads, state)
    new, state = opt.stateless_apply(list(state), grads, list(params.trainable))
    return Parameters(list(new), params.non_trainable), list(state)


def _tensorflow_keras_update(opt, params: Parameters, grads: list, state: list) -> tuple:
    """Keras has no `stateless_apply` on TensorFlow (tf.distribute): the step runs on the
    variables the optimizer was built on, loaded with `params` and `state` first."""
    variables = opt._trainable_variables
    if len(variables) != len(params.trainable):
        raise ConfigError(
            f"apply_updates: the optimizer was built on {len(variables)} variables but params has "
            f"{len(params.trainable)}; start its state with optimizer_state(optimizer, model)"
        )
    for variable, value in zip(variables, params.trainable):
        variable.assign(value)
    for variable, value in zip(opt.variables, state):
        variable.assign(value)
    opt.apply(grads, variables)
    return (
        Parameters([_copy(v.value, True) for v in variables], params.non_trainable),
        [_copy(v.value, False) for v in opt.variables],
    )


def _torch_update(opt, params: Parameters, grads: list) -> Parameters:
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    if any(id(p) not in held for p in params.trainable):
        raise ConfigError(
            "apply_updates: the torch.optim optimizer does not hold params.trainable; build it "
            "over them: functional.optimizer(name, lr, library='torch', params=params)"
        )
    for tensor, grad in zip(params.trainable, grads):
        tensor.grad = grad.detach()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return params


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
    active = _backend()
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
    _require_built(model)

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
        return compiled(params, _tensors(x) if backend != "jax" else x)

    call.backend = backend
    return call


__all__ = [
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
