"""Feature standardization that travels with the model.

`FeatureScaler` computes per-feature mean and variance on TRAINING data only
(over every axis but the last, so it serves `(samples, features)` tables and
`(samples, steps, features)` windows alike) with the core's
`keras_trainer.core.inputs.normalization`; `serving_model` puts them into its
`Normalization` layer in front of a network, so the saved model takes raw features; `save_tabular_model` saves it through the
core's `persistence.save_model` with the statistics also in the metadata.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.inputs.data import as_feature_matrix
from keras_trainer.core.inputs.normalization import (
    NORMALIZATION_LAYER,
    feature_statistics,
    normalization_layer,
    with_normalization,
)
from keras_trainer.core.saving import persistence
from keras_trainer.errors import CheckpointError, DataError

TASK = "tabular"


class FeatureScaler:
    """Per-feature standardization statistics, fitted on training data.

    Args:
        mean: Per-feature means (last axis), or `None` until `fit`.
        variance: Per-feature variances; constant features get 1 so they map to 0.

    Example:

    >>> scaler = FeatureScaler().fit(x_train)
    >>> x_train_std = scaler.transform(x_train)
    """

    def __init__(self, mean: Optional[Any] = None, variance: Optional[Any] = None):
        self.mean = None if mean is None else np.asarray(mean, dtype="float32").reshape(-1)
        self.variance = (
            None if variance is None else np.asarray(variance, dtype="float32").reshape(-1)
        )

    def fit(self, x: Any) -> FeatureScaler:
        """Computes the statistics of `x` over all axes but the last; returns `self`."""
        self.mean, self.variance = feature_statistics(x, "x")
        return self

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def _check(self, array: np.ndarray, name: str) -> None:
        if not self.fitted:
            raise DataError("FeatureScaler: call fit() on training data first")
        if array.shape[-1] != self.mean.shape[0]:
            raise DataError(
                f"{name}: has {array.shape[-1]} features per sample but the scaler was fitted on "
                f"{self.mean.shape[0]} (shape {array.shape})"
            )

    def transform(self, x: Any, name: str = "x") -> np.ndarray:
        """Standardized float32 copy of `x`."""
        array = as_feature_matrix(x, name=name, allow_empty=False)
        self._check(array, name)
        return ((array - self.mean) / np.sqrt(self.variance)).astype("float32")

    def layer(self) -> keras.layers.Normalization:
        """A `Normalization` layer holding these statistics (applied over the last axis)."""
        if not self.fitted:
            raise DataError("FeatureScaler: call fit() on training data first")
        return normalization_layer(self.mean, self.variance)

    def get_config(self) -> dict:
        """JSON-ready statistics (the `normalization` metadata entry)."""
        return {"mean": self.mean.tolist(), "variance": self.variance.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> FeatureScaler:
        return cls(config["mean"], config["variance"])


def serving_model(
    network: keras.Model, scaler: FeatureScaler, name: str = "tabular_model"
) -> keras.Model:
    """`raw features -> Normalization(scaler) -> network`: a model that takes raw inputs.

    Args:
        network: A model trained on `scaler.transform(...)`-ed inputs.
        scaler: The fitted statistics.
        name: Name of the returned model.
    """
    return with_normalization(network, scaler.layer(), name, input_name="raw_features")


def save_tabular_model(
    model: keras.Model,
    path: str | os.PathLike,
    scaler: Optional[FeatureScaler] = None,
    metadata: Optional[dict] = None,
) -> str:
    """Saves a tabular/sequence model with its normalization stats, atomically.

    Args:
        model: A network trained on standardized inputs (wrapped with `scaler`
            here), or already a serving model (then pass `scaler=None`; its
            `feature_normalization` layer's statistics are read back).
        path: `.keras` or `.h5` file.
        scaler: The statistics the network's inputs were standardized with.
        metadata: Extra JSON-ready entries (architecture, hyperparameters, ...).

    Returns:
        The path written.
    """
    if scaler is not None:
        model = serving_model(model, scaler)
        stats = scaler.get_config()
    else:
        try:
            layer = model.get_layer(NORMALIZATION_LAYER)
            stats = {
                "mean": np.asarray(layer.mean).reshape(-1).tolist(),
                "variance": np.asarray(layer.variance).reshape(-1).tolist(),
            }
        except ValueError:
            stats = None
    full = {"task": TASK, "normalization": stats, "input_shape": list(model.input_shape[1:])}
    full.update(metadata or {})
    return persistence.save_model(model, path, full)


def load_tabular_model(path: str | os.PathLike) -> tuple[keras.Model, dict]:
    """Loads a file written by `save_tabular_model` (any backend).

    Returns:
        `(model, metadata)`: the model takes raw features.

    Raises:
        CheckpointError: missing/corrupt file, or not a tabular model.
    """
    model, metadata = persistence.load_model(path)
    if metadata.get("task") != TASK:
        raise CheckpointError(
            f"{os.fspath(path)}: not a tabular model saved by save_tabular_model (task={metadata.get('task')!r})"
        )
    return model, metadata
