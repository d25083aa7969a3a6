"""Update steps: `optimizer`, `optimizer_state` and `apply_updates` for Keras, optax and
`torch.optim` optimizers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import keras

from keras_trainer.errors import BackendNotSupportedError, ConfigError
from keras_trainer.functional.parameters import (
    Parameters,
    active_backend,
    copy_value,
    require_built,
)

#: Where an optimizer of `optimizer` comes from.
LIBRARIES = ("keras", "optax", "torch")


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
    if active_backend() != needed:
        raise BackendNotSupportedError(
            f"library={library!r} updates {needed} arrays, but the Keras backend is "
            f"{active_backend()!r}: set KERAS_BACKEND={needed}, or use library='keras' (every backend)"
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
    require_built(model)
    if kind == "keras":
        if not opt.built:
            opt.build(model.trainable_variables)
        return [copy_value(v.value, False) for v in opt.variables]
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
    if active_backend() != needed:
        raise BackendNotSupportedError(
            f"apply_updates: {kind} optimizers update {needed} arrays but the Keras backend is "
            f"{active_backend()!r}; set KERAS_BACKEND={needed}, or use a Keras optimizer "
            "(functional.optimizer(..., library='keras'), every backend)"
        )
    if kind == "optax":
        import jax

        updates, state = opt.update(grads, state, list(params.trainable))
        trainable = jax.tree_util.tree_map(lambda p, u: p + u, list(params.trainable), updates)
        return Parameters(trainable, params.non_trainable), state
    return _torch_update(opt, params, grads), None


def _keras_update(opt, params: Parameters, grads: list, state: list) -> tuple:
    if active_backend() == "torch":
        import torch

        with torch.no_grad():
            trainable = [p.detach() for p in params.trainable]
            new, state = opt.stateless_apply(list(state), grads, trainable)
        new = [p.detach().clone().requires_grad_(True) for p in new]
        return Parameters(new, params.non_trainable), [s.detach() for s in state]
    if active_backend() == "tensorflow":
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
        Parameters([copy_value(v.value, True) for v in variables], params.non_trainable),
        [copy_value(v.value, False) for v in opt.variables],
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
