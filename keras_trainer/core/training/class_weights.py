"""Class weights: per-sample loss weights from `training.class_weights`.

"balanced" weighs class `c` by `n / (k * count_c)` (scikit-learn's
`compute_class_weight("balanced")`: `n` samples, `k` classes present); "sqrt" by
the square root of that, rescaled so the weights average 1 over the samples as
"balanced" ones do; a mapping `{class: weight}` gives them directly (a class by its
index, or by name where the trainer knows the class names; a class left out
weighs 1). `fit` turns them into the sample weights of the training rows (the
validation loss stays unweighted, as with Keras' `class_weight`).

Example:

>>> class_weight_table(np.array([0, 0, 0, 1]), "balanced")
{0: 0.6666666666666666, 1: 2.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.errors import ConfigError

ClassWeights = Union[str, Mapping[Any, float], None]
_PATH = "training.class_weights"


def class_labels(y: Any, path: str = _PATH) -> np.ndarray:
    """Integer class labels of targets: one-hot rows (argmax), or class ids `(n,)` / `(n, 1)`.

    Raises:
        ConfigError: the targets are not classes (e.g. real-valued regression targets).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    flat = y.reshape(-1)
    if flat.size and (
        not np.issubdtype(flat.dtype, np.number)
        or not np.all(np.equal(np.mod(flat, 1), 0))
        or flat.min() < 0
    ):
        raise ConfigError(
            f"{path}: class weights need class labels (class ids or one-hot rows), but the "
            "targets are real values; leave it null for regression"
        )
    return flat.astype("int64")


def class_weight_table(
    labels: np.ndarray,
    scheme: ClassWeights,
    class_names: Optional[Sequence[str]] = None,
    path: str = _PATH,
) -> dict[int, float]:
    """`{class index: weight}` for the classes of `labels` under `scheme`.

    Args:
        labels: Integer class labels.
        scheme: "balanced", "sqrt", or a mapping `{class: weight}` (index, its
            string, or a name in `class_names`).
        class_names: Names of the classes by index, for a mapping by name.
        path: The config key, for messages.

    Raises:
        ConfigError: an unknown scheme, or a mapping naming an unknown class.
    """
    present, counts = np.unique(np.asarray(labels, dtype="int64"), return_counts=True)
    if isinstance(scheme, Mapping):
        return {_class_index(key, class_names, path): float(w) for key, w in scheme.items()}
    if scheme not in ("balanced", "sqrt"):
        raise ConfigError(
            f"{path}: must be 'balanced', 'sqrt' or a mapping {{class: weight}}, got {scheme!r}"
        )
    balanced = counts.sum() / (len(present) * counts)
    if scheme == "sqrt":
        balanced = np.sqrt(balanced)
        balanced = balanced * counts.sum() / (balanced * counts).sum()  # mean 1 per sample
    return {int(c): float(w) for c, w in zip(present, balanced)}


def _class_index(key: Any, class_names: Optional[Sequence[str]], path: str) -> int:
    if class_names is not None and str(key) in [str(n) for n in class_names]:
        return [str(n) for n in class_names].index(str(key))
    try:
        index = int(key)
    except (TypeError, ValueError):
        known = f" (classes: {', '.join(map(str, class_names))})" if class_names else ""
        raise ConfigError(
            f"{path}: {key!r} is not a class index{' or name' if class_names else ''}{known}"
        ) from None
    if index < 0 or (class_names is not None and index >= len(class_names)):
        raise ConfigError(f"{path}: class {key!r} is out of range")
    return index


def class_sample_weights(
    y: Any,
    scheme: ClassWeights,
    class_names: Optional[Sequence[str]] = None,
    path: str = _PATH,
) -> Optional[np.ndarray]:
    """Per-sample float32 weights of targets `y` under `scheme` (None when `scheme` is
    None or "none")."""
    if scheme is None or scheme == "none":
        return None
    labels = class_labels(y, path)
    table = class_weight_table(labels, scheme, class_names, path)
    lookup = np.ones(max([*table, int(labels.max(initial=0))]) + 1, dtype="float64")
    for index, weight in table.items():
        lookup[index] = weight
    return lookup[labels].astype("float32")
