"""Losses by name."""

from __future__ import annotations

import keras

from keras_trainer.config import TrainingConfig


def get_loss(name_or_loss, config: TrainingConfig | None = None):
    """Returns the Keras loss for a name, or the given loss object unchanged."""
    if not isinstance(name_or_loss, str):
        return name_or_loss
    if name_or_loss == "categorical_crossentropy" and config is not None:
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    return keras.losses.get(name_or_loss)
