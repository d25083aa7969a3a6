"""Feature standardization that travels inside the saved model.

Statistics are computed on training data only, over every axis but the last (so
`(samples, features)` tables and `(samples, steps, features)` windows alike), and
stored in a `keras.layers.Normalization` layer named `NORMALIZATION_LAYER` in front
of the network: the saved model then takes raw features. Every family uses these
functions (the JIT `ModelTrainer`, the tabular `FeatureScaler`).

Example:

>>> mean, variance = feature_statistics(x_train)
>>> model = with_normalization(network, normalization_layer(mean, variance))
"""

from __future__ import annotations

from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.inputs.data import as_feature_matrix

NORMALIZATION_LAYER = "feature_normalization"


def feature_statistics(x: Any, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
    """Per-feature `(mean, variance)` (float32) of `x` over all axes but the last.

    Constant features get variance 1, so they map to 0 instead of blowing up.

    Raises:
        DataError: `x` is empty, not numeric, or holds NaN/inf.
    """
    array = as_feature_matrix(x, name=name, allow_empty=False)
    flat = array.reshape(-1, array.shape[-1]).astype("float64")
    variance = flat.var(axis=0)
    variance[variance <= 1e-12] = 1.0
    return flat.mean(axis=0).astype("float32"), variance.astype("float32")


def normalization_layer(mean: Any, variance: Any) -> keras.layers.Normalization:
    """A `Normalization` layer (last axis) holding `mean` and `variance`."""
    return keras.layers.Normalization(
        mean=np.asarray(mean, dtype="float32").reshape(-1),
        variance=np.asarray(variance, dtype="float32").reshape(-1),
        name=NORMALIZATION_LAYER,
    )


def with_normalization(
    network: keras.Model,
    normalizer: keras.layers.Normalization,
    name: str,
    input_name: str = "features",
) -> keras.Model:
    """`raw features -> normalizer -> network`: the model that is saved and served."""
    inputs = keras.Input(shape=tuple(network.input_shape[1:]), name=input_name)
    return keras.Model(inputs, network(normalizer(inputs)), name=name)


def find_normalization(model: keras.Model) -> Optional[keras.layers.Normalization]:
    """The model's `NORMALIZATION_LAYER`, or `None` if it has none."""
    try:
        return model.get_layer(NORMALIZATION_LAYER)
    except ValueError:
        return None


__all__ = [
    "NORMALIZATION_LAYER",
    "feature_statistics",
    "find_normalization",
    "normalization_layer",
    "with_normalization",
]
