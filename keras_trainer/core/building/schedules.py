"""Learning-rate schedules from `LRScheduleConfig`, built from Keras' own schedules."""

from __future__ import annotations

import keras

from keras_trainer.config import LRScheduleConfig
from keras_trainer.errors import ConfigError


def build_learning_rate(
    schedule: LRScheduleConfig, learning_rate: float, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Returns the optimizer's learning rate: a float or a Keras schedule.

    Step-based schedules count optimizer steps (`optimizer.iterations`), which are
    saved with the optimizer, so a resumed run continues the schedule exactly.

    Args:
        schedule: The `training.lr_schedule` section.
        learning_rate: The initial (or, for warm-up, the peak) learning rate.
        total_steps: Optimizer steps in the whole run (epochs x steps per epoch),
            the default length of the cosine schedules.

    Returns:
        A float for 'none' and 'reduce_on_plateau' (the latter is a callback, see
        `build_schedule_callbacks`), else a `LearningRateSchedule`.
    """
    name = schedule.name
    if name in ("none", "reduce_on_plateau"):
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            learning_rate,
            decay_steps=schedule.decay_steps or max(total_steps, 1),
            alpha=schedule.alpha,
        )
    if name == "warmup_cosine":
        decay_steps = schedule.decay_steps or max(total_steps - schedule.warmup_steps, 1)
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=decay_steps,
            alpha=schedule.alpha,
            warmup_target=learning_rate,
            warmup_steps=schedule.warmup_steps,
        )
    if name in ("step", "exponential"):
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate,
            decay_steps=schedule.decay_steps or max(total_steps // 10, 1),
            decay_rate=schedule.decay_rate,
            staircase=name == "step",
        )
    raise ConfigError(f"training.lr_schedule.name: unknown schedule {name!r}")


def build_schedule_callbacks(
    schedule: LRScheduleConfig, monitor: str
) -> list[keras.callbacks.Callback]:
    """Returns the callbacks an epoch-driven schedule needs (reduce_on_plateau)."""
    if schedule.name != "reduce_on_plateau":
        return []
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            factor=schedule.factor,
            patience=schedule.patience,
            min_lr=schedule.min_lr,
            verbose=0,
        )
    ]
