"""Keras optimizers from `TrainingConfig`: name, weight decay, clipping, accumulation."""

from __future__ import annotations

import keras

from keras_trainer.config import TrainingConfig
from keras_trainer.core.building.schedules import build_learning_rate

# Keras' AdamW is its Adam with a default weight decay: Keras applies the same decoupled
# decay in any optimizer given one, so an "adamw" and an "adam" of one weight decay take
# the same step.
_SAME_STEP = {"adamw": "adam"}


def optimizer_step(name: str) -> str:
    """The optimizer name whose step `training.optimizer.name` takes, weight decay aside:
    `"adam"` for `"adamw"`, else `name`. Populations train trials of one step together."""
    return _SAME_STEP.get(name, name)


def build_optimizer(config: TrainingConfig, total_steps: int = 1) -> keras.optimizers.Optimizer:
    """Builds the Keras optimizer that `training` describes.

    Gradient clipping (`clipnorm`/`clipvalue`) and gradient accumulation
    (`gradient_accumulation_steps`) are Keras optimizer features, so they behave
    the same on every backend. Loss scaling for float16 is added by
    `Model.compile` when the model's dtype policy is `mixed_float16`.

    Args:
        config: The `training` section.
        total_steps: Optimizer steps in the whole run, for cosine schedules.

    Returns:
        An unbuilt Keras optimizer.

    Example:

    >>> optimizer = build_optimizer(TrainingConfig(learning_rate=0.01))
    """
    options = config.optimizer
    common = {
        "learning_rate": build_learning_rate(config.lr_schedule, config.learning_rate, total_steps),
        "clipnorm": config.gradient_clip_norm,
        "clipvalue": config.gradient_clip_value,
        "epsilon": options.epsilon,
    }
    if config.gradient_accumulation_steps > 1:
        common["gradient_accumulation_steps"] = config.gradient_accumulation_steps
    if options.weight_decay:
        common["weight_decay"] = options.weight_decay
    if options.name == "sgd":
        common.pop("epsilon")
        return keras.optimizers.SGD(momentum=options.momentum, nesterov=options.nesterov, **common)
    if options.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=options.momentum, **common)
    optimizer_class = keras.optimizers.AdamW if options.name == "adamw" else keras.optimizers.Adam
    if options.name == "adamw":
        common.setdefault("weight_decay", 0.0)
    return optimizer_class(beta_1=options.beta_1, beta_2=options.beta_2, **common)
