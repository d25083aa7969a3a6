"""Losses by name: the built-in set, a weighted multi-task loss, and a registry.

`get_loss` turns the config's `training.loss` string (or a loss object) into a
Keras loss, taking `label_smoothing`, `focal_gamma`, `huber_delta` and
`loss_weights` from the `TrainingConfig`. Users add their own losses with
`@register_loss("name")`; registration also makes them Keras-serializable under
the `keras_trainer` package, so a model compiled with them is saved and loaded
(with `safe_mode=True`) without `custom_objects`.

Example:

>>> from keras_trainer.config.schema import TrainingConfig
>>> loss = get_loss("focal", TrainingConfig(focal_gamma=1.5))
>>> loss.gamma
1.5
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
from keras import ops

from keras_trainer.errors import ConfigError, DataError

_PACKAGE = "keras_trainer"

# Bases of `WeightedMultiTaskLoss`: element-wise losses, one value per output column.
_ELEMENTWISE_BASES = ("mse", "mae", "l1", "huber")


def _elementwise(base: str, y_true, y_pred, delta: float):
    error = ops.subtract(y_pred, y_true)
    if base == "mse":
        return ops.square(error)
    if base in ("mae", "l1"):
        return ops.abs(error)
    # Huber: quadratic inside [-delta, delta], linear outside (same as keras.losses.Huber).
    abs_error = ops.abs(error)
    quadratic = ops.minimum(abs_error, delta)
    linear = ops.subtract(abs_error, quadratic)
    return ops.add(ops.multiply(0.5, ops.square(quadratic)), ops.multiply(delta, linear))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedMultiTaskLoss(keras.losses.Loss):
    """A weighted sum of per-output losses for multi-output regression.

    For predictions of shape `(batch, n_outputs)` the loss of a sample is
    `sum_j weights[j] * base(y_true[:, j], y_pred[:, j])`; the batch reduction
    (mean by default) then gives `sum_j weights[j] * mean_b base(...)`, i.e. the
    weighted sum of the per-output mean losses.

    Args:
        base: Element-wise loss of each output: `"mse"` (default), `"mae"`/`"l1"`
            or `"huber"`.
        weights: One non-negative weight per output column.
        delta: Huber delta (only used when `base="huber"`). Defaults to 1.0.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"weighted_multitask"`.
        dtype: Loss dtype, or `None` for the Keras default.

    Example:

    >>> loss = WeightedMultiTaskLoss(base="mse", weights=[1.0, 0.5])
    >>> float(loss([[0.0, 0.0]], [[1.0, 2.0]]))
    3.0
    """

    def __init__(
        self,
        base: str = "mse",
        weights: Sequence[float] = (1.0,),
        delta: float = 1.0,
        reduction: str = "sum_over_batch_size",
        name: str = "weighted_multitask",
        dtype: Optional[str] = None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if base not in _ELEMENTWISE_BASES:
            raise ConfigError(
                f"WeightedMultiTaskLoss base: unknown {base!r}; "
                f"choose one of {', '.join(_ELEMENTWISE_BASES)}"
            )
        weights = [float(w) for w in weights]
        if not weights or any(w < 0 for w in weights):
            raise ConfigError(
                f"WeightedMultiTaskLoss weights: need one non-negative weight per output, got {weights}"
            )
        if delta <= 0:
            raise ConfigError(f"WeightedMultiTaskLoss delta: must be > 0, got {delta}")
        self.base = base
        self.weights = weights
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        n_outputs = y_pred.shape[-1]
        # Shapes are static here on every backend's tracing path; catching a
        # mismatch now beats a broadcasting error deep inside the train step.
        if n_outputs is not None and n_outputs != len(self.weights):
            raise DataError(
                f"WeightedMultiTaskLoss: predictions have {n_outputs} output columns "
                f"(shape {tuple(y_pred.shape)}) but {len(self.weights)} weights were given"
            )
        per_element = _elementwise(self.base, y_true, y_pred, self.delta)
        weights = ops.convert_to_tensor(self.weights, dtype=y_pred.dtype)
        return ops.sum(ops.multiply(per_element, weights), axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"base": self.base, "weights": list(self.weights), "delta": self.delta})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(keras.losses.CategoricalFocalCrossentropy):
    """Categorical focal loss, `-sum_c y_c * alpha * (1 - p_c)**gamma * log(p_c)`.

    Keras's `CategoricalFocalCrossentropy` with `alpha=1.0` by default: the
    config has no class-balance knob, and with `alpha=1` the focal loss at
    `gamma=0` is exactly categorical cross-entropy (Keras's default 0.25 only
    rescales the loss, i.e. the effective learning rate).

    Args:
        alpha: Constant weight of every class term. Defaults to 1.0.
        gamma: Focusing parameter; larger values down-weight easy samples.
            Defaults to 2.0.
        from_logits: Whether `y_pred` holds logits. Defaults to False.
        label_smoothing: Smoothing of one-hot targets towards uniform, in [0, 1).
        name: Loss name. Defaults to `"focal"`.
        **kwargs: Passed to `CategoricalFocalCrossentropy` (reduction, axis, dtype).

    Example:

    >>> loss = FocalLoss(gamma=0.0)
    >>> round(float(loss([[0.0, 1.0]], [[0.5, 0.5]])), 4)
    0.6931
    """

    def __init__(
        self,
        alpha: float = 1.0,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        name: str = "focal",
        **kwargs,
    ):
        super().__init__(
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            name=name,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExpectedSlowdownLoss(keras.losses.Loss):
    """Cost-aware loss for choosing among alternatives with measured costs.

    `y_true` holds, per sample, each alternative's speed relative to the best
    one, `s_k = t_min / t_k` in (0, 1] (1 for the fastest); `y_pred` holds
    probabilities `p_k`. The loss of a sample is the expected slowdown of
    picking an alternative at random from `p`,

        sum_k p_k * t_k / t_min = sum_k p_k / s_k,

    which is 1 when all probability sits on the fastest alternative, plus
    `cross_entropy_weight` times the cross-entropy against the label: the
    first (cheapest) alternative whose time is within `tie_tolerance` of the
    fastest, `s_k >= 1 / (1 + tie_tolerance)`.

    Args:
        cross_entropy_weight: weight of the cross-entropy term (0 = pure
            expected slowdown).
        tie_tolerance: relative margin of the label's tie rule.
        from_logits: whether `y_pred` holds logits.
        name: loss name. Defaults to `"expected_slowdown"`.
        **kwargs: passed to `keras.losses.Loss` (reduction, dtype).

    Example:

    >>> loss = ExpectedSlowdownLoss()
    >>> float(loss([[1.0, 0.5]], [[0.75, 0.25]]))  # 0.75 * 1 + 0.25 * 2
    1.25
    """

    def __init__(
        self,
        cross_entropy_weight: float = 0.0,
        tie_tolerance: float = 0.03,
        from_logits: bool = False,
        name: str = "expected_slowdown",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if cross_entropy_weight < 0:
            raise ConfigError(
                f"ExpectedSlowdownLoss cross_entropy_weight: must be >= 0, got {cross_entropy_weight}"
            )
        if tie_tolerance < 0:
            raise ConfigError(
                f"ExpectedSlowdownLoss tie_tolerance: must be >= 0, got {tie_tolerance}"
            )
        self.cross_entropy_weight = float(cross_entropy_weight)
        self.tie_tolerance = float(tie_tolerance)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        speed = ops.cast(y_true, y_pred.dtype)
        probabilities = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        # Speeds are > 0 for measured alternatives; the floor keeps a bad row finite.
        slowdown = ops.divide(1.0, ops.maximum(speed, 1e-6))
        loss = ops.sum(ops.multiply(probabilities, slowdown), axis=-1)
        if self.cross_entropy_weight:
            tied = ops.cast(
                ops.greater_equal(speed, 1.0 / (1.0 + self.tie_tolerance) - 1e-6), "int32"
            )
            label = ops.one_hot(
                ops.argmax(tied, axis=-1), ops.shape(y_pred)[-1], dtype=y_pred.dtype
            )
            cross_entropy = keras.losses.categorical_crossentropy(
                label, y_pred, from_logits=self.from_logits
            )
            loss = ops.add(loss, ops.multiply(self.cross_entropy_weight, cross_entropy))
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "cross_entropy_weight": self.cross_entropy_weight,
                "tie_tolerance": self.tie_tolerance,
                "from_logits": self.from_logits,
            }
        )
        return config


# Built-in losses: name -> factory(training_config, from_logits) -> Keras loss.
def _cce(config, from_logits):
    return keras.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=config.label_smoothing
    )


def _sparse_cce(config, from_logits):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _bce(config, from_logits):
    return keras.losses.BinaryCrossentropy(
        from_logits=from_logits, label_smoothing=config.label_smoothing
    )


def _focal(config, from_logits):
    return FocalLoss(
        gamma=config.focal_gamma,
        from_logits=from_logits,
        label_smoothing=config.label_smoothing,
    )


def _mse(config, from_logits):
    return keras.losses.MeanSquaredError()


def _mae(config, from_logits):
    return keras.losses.MeanAbsoluteError()


def _huber(config, from_logits):
    return keras.losses.Huber(delta=config.huber_delta)


def _expected_slowdown(config, from_logits):
    return ExpectedSlowdownLoss(
        cross_entropy_weight=config.cross_entropy_weight, from_logits=from_logits
    )


def _weighted(base: str):
    def factory(config, from_logits):
        if not config.loss_weights:
            raise ConfigError(
                f"training.loss_weights: loss 'weighted_{base}' needs one weight per "
                "output column, e.g. [1.0, 0.5]"
            )
        return WeightedMultiTaskLoss(
            base=base, weights=config.loss_weights, delta=config.huber_delta
        )

    return factory


_BUILTIN: dict[str, Callable[[Any, bool], Any]] = {
    "categorical_crossentropy": _cce,
    "sparse_categorical_crossentropy": _sparse_cce,
    "binary_crossentropy": _bce,
    "focal": _focal,
    "mse": _mse,
    "mae": _mae,
    "l1": _mae,
    "huber": _huber,
    "expected_slowdown": _expected_slowdown,
    "weighted_mse": _weighted("mse"),
    "weighted_mae": _weighted("mae"),
    "weighted_huber": _weighted("huber"),
}
# Losses that read `label_smoothing`; setting it for any other built-in is a mistake.
_SMOOTHING = ("categorical_crossentropy", "binary_crossentropy", "focal")

_CUSTOM: dict[str, Any] = {}


def register_loss(name: str) -> Callable[[Any], Any]:
    """Registers a custom loss under `name` for configs and for saving.

    The decorated object is either a function `fn(y_true, y_pred) -> per-sample
    loss` or a `keras.losses.Loss` subclass that can be built with no arguments
    and has a `get_config`. It is also registered with
    `keras.saving.register_keras_serializable(package="keras_trainer", name=name)`,
    so models compiled with it survive `.keras` save and `safe_mode` load.
    Registering the same name again replaces the earlier loss (re-running a
    notebook cell); the built-in names are reserved.

    Args:
        name: The name used in `training.loss`.

    Returns:
        A decorator that registers and returns its argument unchanged.

    Example:

    >>> @register_loss("double_mse")
    ... def double_mse(y_true, y_pred):
    ...     return 2.0 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)
    >>> get_loss("double_mse") is double_mse
    True
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register_loss: the name must be a non-empty string, got {name!r}")
    if name.lower() in _BUILTIN:  # built-in names match case-insensitively
        raise ConfigError(f"register_loss: {name!r} is a built-in loss name; choose another name")

    def decorator(obj):
        taken = keras.saving.get_registered_object(f"{_PACKAGE}>{name}")
        if taken is not None and name not in _CUSTOM:
            # e.g. "FocalLoss": replacing a library class would break loading its models.
            raise ConfigError(
                f"register_loss: {name!r} is already a registered keras_trainer object "
                f"({getattr(taken, '__name__', taken)}); choose another name"
            )
        if inspect.isclass(obj):
            if not issubclass(obj, keras.losses.Loss):
                raise ConfigError(
                    f"register_loss({name!r}): a class must subclass keras.losses.Loss, "
                    f"got {obj.__name__}"
                )
        elif not callable(obj):
            raise ConfigError(
                f"register_loss({name!r}): expected a function or a keras.losses.Loss "
                f"subclass, got {type(obj).__name__}"
            )
        elif getattr(obj, "__name__", "") == "<lambda>":
            # Keras saves lambdas as bytecode, which safe_mode loading refuses.
            raise ConfigError(
                f"register_loss({name!r}): a lambda cannot be saved safely; define it with def"
            )
        keras.saving.register_keras_serializable(package=_PACKAGE, name=name)(obj)
        _CUSTOM[name] = obj
        return obj

    return decorator


def available_losses() -> list[str]:
    """Returns every loss name `get_loss` accepts: built-ins, then registered ones."""
    return list(_BUILTIN) + sorted(_CUSTOM)


def get_loss(
    name_or_obj: Any,
    training_config: Any = None,
    *,
    from_logits: bool = False,
):
    """Returns the Keras loss for a config name, or passes a loss object through.

    Args:
        name_or_obj: A loss name (see `available_losses()`), a `keras.losses.Loss`
            instance or a callable `fn(y_true, y_pred)`; objects are returned as is.
        training_config: A `TrainingConfig` (or its dict form) for
            `label_smoothing`, `focal_gamma`, `huber_delta` and `loss_weights`;
            `None` uses the defaults.
        from_logits: Whether the model outputs logits rather than probabilities
            (cross-entropy and focal losses only).

    Returns:
        A `keras.losses.Loss` instance, or the registered custom function.

    Raises:
        ConfigError: for an unknown name (listing the valid names and the
            closest one), for `label_smoothing` with a loss that ignores it, or for
            a weighted loss without `loss_weights`.

    Example:

    >>> get_loss("huber").__class__.__name__
    'Huber'
    """
    from keras_trainer.config.schema import TrainingConfig

    if training_config is None:
        training_config = TrainingConfig()
    elif isinstance(training_config, dict):
        training_config = TrainingConfig.from_dict(training_config, "training")
    if not isinstance(name_or_obj, str):
        if isinstance(name_or_obj, keras.losses.Loss) or callable(name_or_obj):
            return name_or_obj
        raise ConfigError(
            f"training.loss: expected a loss name or a loss object, got "
            f"{type(name_or_obj).__name__}"
        )
    name = name_or_obj.strip()
    # Built-in names are case-insensitive ("MSE"); registered names are exact.
    if name.lower() in _BUILTIN:
        name = name.lower()
    if name in _BUILTIN:
        if training_config.label_smoothing and name not in _SMOOTHING:
            raise ConfigError(
                f"training.label_smoothing: {training_config.label_smoothing} has no effect on "
                f"loss {name!r}; it applies to {', '.join(_SMOOTHING)} (one-hot targets)"
            )
        if training_config.loss_weights and not name.startswith("weighted_"):
            raise ConfigError(
                f"training.loss_weights: per-output weights have no effect on loss {name!r}; "
                f"use a weighted loss ({', '.join(n for n in _BUILTIN if n.startswith('weighted_'))})"
            )
        return _BUILTIN[name](training_config, from_logits)
    if name in _CUSTOM:
        obj = _CUSTOM[name]
        return obj() if inspect.isclass(obj) else obj
    valid = available_losses()
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"training.loss: unknown loss {name_or_obj!r}.{hint} Valid names: {', '.join(valid)}"
    )
