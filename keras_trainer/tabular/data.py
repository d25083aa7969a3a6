"""Tables for the tabular family: loading, targets for a model's head, and splits.

`load_data(source)` reads a bundled table (`builtin:breast_cancer`,
`builtin:wine`, `builtin:diabetes`), a numeric CSV with a header row, a Parquet
file (pandas with pyarrow), a NumPy `.npy` matrix (last column the target) or
an `.npz` archive with arrays `x` and `y`. `head_targets` checks the targets
against the model's head (class labels for softmax or sigmoid, values for a
linear head) before any training; `split_rows` (the core's, see
`keras_trainer.core.inputs.splits`) shuffles rows into training, validation and
test parts with a seed, stratified by class when given labels, or keeps the
order of a time series.

Example:

>>> x, y, names = load_data("builtin:breast_cancer")
>>> train, val, test = split_rows(len(x), validation=0.2, test=0.2, seed=42)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_trainer.core.inputs.splits import split_rows
from keras_trainer.errors import ConfigError, DataError

__all__ = ["head_targets", "is_table", "load_data", "split_rows"]

BUILTIN = "builtin:"
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".npy", ".npz")
CLASSIFICATION_ACTIVATIONS = ("softmax", "sigmoid")


def is_table(source: str | None) -> bool:
    """Whether `source` names a table this module reads (by prefix or suffix)."""
    return bool(source) and (source.startswith(BUILTIN) or source.lower().endswith(TABLE_SUFFIXES))


def load_data(source: str, target: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`(X float32, y, feature_names)` of a bundled table or a file.

    Args:
        source: `builtin:<name>`, or a `.csv`, `.parquet`, `.npy` or `.npz` file.
        target: Target column of a CSV or Parquet file (default: its last column).

    Raises:
        DataError: unknown name, missing or malformed file, non-numeric values,
            `target` given for a table whose target is fixed.
    """
    from keras_trainer.tabular.datasets import load_csv, load_table

    if source.startswith(BUILTIN):
        if target is not None:
            raise DataError(
                f"--target applies to CSV and Parquet files; {source} has a fixed target"
            )
        return load_table(source[len(BUILTIN) :])
    lower = source.lower()
    if lower.endswith(".csv"):
        return load_csv(source, target)
    if not os.path.isfile(source):
        raise DataError(f"data file not found: {source}")
    if lower.endswith((".parquet", ".pq")):
        return _load_parquet(source, target)
    if lower.endswith((".npy", ".npz")):
        if target is not None:
            raise DataError(
                f"--target applies to CSV and Parquet files; in {source} the target is y / the last column"
            )
        return _load_numpy(source)
    raise DataError(f"{source}: tables are builtin:<name>, .csv, .parquet, .npy or .npz files")


def _load_parquet(path: str, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        import pandas as pd

        frame = pd.read_parquet(path)
    except ImportError as error:
        raise DataError(f"{path}: reading Parquet needs pandas and pyarrow ({error})") from None
    except Exception as error:  # pyarrow raises its own types for corrupt files
        raise DataError(
            f"{path}: not a readable Parquet file ({type(error).__name__}: {error})"
        ) from None
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise DataError(f"{path}: needs at least one feature column and a target column")
    target = columns[-1] if target is None else target
    if target not in columns:
        raise DataError(
            f"{path}: no column {target!r} for the target (columns: {', '.join(columns)})"
        )
    features = [c for c in columns if c != target]
    for column in columns:
        if frame[column].dtype.kind not in "biuf":
            raise DataError(
                f"{path}: column {column!r} holds {frame[column].dtype} values, not numbers"
            )
    values = frame[features].to_numpy(dtype="float64")
    if not np.all(np.isfinite(values)):
        row, column = np.argwhere(~np.isfinite(values))[0]
        raise DataError(f"{path}: row {row}, column {features[column]!r} is NaN or infinite")
    return values.astype("float32"), frame[target].to_numpy(dtype="float64"), features


def _load_numpy(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        loaded = np.load(path, allow_pickle=False)  # never unpickle a data file
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable NumPy file ({error})") from None
    if isinstance(loaded, np.ndarray):
        if loaded.ndim != 2 or loaded.shape[1] < 2:
            raise DataError(
                f"{path}: a .npy table is (rows, features + 1) with the target last, got shape {loaded.shape}"
            )
        x, y = loaded[:, :-1], loaded[:, -1]
    else:
        with loaded:
            names = {name.lower(): name for name in loaded.files}
            if "x" not in names or "y" not in names:
                raise DataError(
                    f"{path}: a .npz table holds arrays 'x' and 'y', found {loaded.files}"
                )
            x, y = loaded[names["x"]], loaded[names["y"]]
    if x.dtype.kind not in "biuf" or np.asarray(y).dtype.kind not in "biuf":
        raise DataError(f"{path}: x and y must be numeric, got {x.dtype} and {np.asarray(y).dtype}")
    if len(x) != len(y):
        raise DataError(f"{path}: x has {len(x)} rows but y has {len(y)}")
    x = np.asarray(x, dtype="float32")
    if not np.all(np.isfinite(x)):
        raise DataError(
            f"{path}: x holds NaN or infinite values (first in row {int(np.argwhere(~np.isfinite(x))[0][0])})"
        )
    width = x.shape[-1] if x.ndim > 1 else 1
    return (
        x,
        np.asarray(y, dtype="float64").reshape(len(y)),
        [f"x{i}" for i in range(width)],
    )


def head_targets(y: np.ndarray, model_config: Any, source: str) -> tuple[np.ndarray, bool]:
    """The targets as the model's head needs them, and whether the task is classification.

    A null `model_config.output_dim` is set here from the targets: the number of
    classes for a softmax head, 1 for a sigmoid head, the target columns for regression.

    Raises:
        DataError: class heads on targets that are not labels 0, 1, 2, ...
        ConfigError: the head's size does not fit the labels.
    """
    activation = model_config.output_activation
    if activation not in CLASSIFICATION_ACTIVATIONS:
        targets = np.asarray(y, dtype="float32")
        if model_config.output_dim is None:
            model_config.output_dim = 1 if targets.ndim == 1 else int(targets.shape[1])
        return targets, False
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise DataError(
            f"{source}: model.output_activation={activation!r} needs class labels 0, 1, 2, ... as targets; "
            "use output_activation 'linear' for a regression target"
        )
    labels = y.astype("int64")
    classes = int(labels.max()) + 1
    if model_config.output_dim is None:
        model_config.output_dim = 1 if activation == "sigmoid" else classes
    if activation == "sigmoid" and (model_config.output_dim != 1 or classes > 2):
        raise ConfigError(
            f"model.output_activation: a sigmoid head needs output_dim 1 and 0/1 labels; got output_dim="
            f"{model_config.output_dim} and labels from {labels.min()} to {labels.max()} in {source} (use softmax "
            "with output_dim = number of classes, or 'linear' for a regression target)"
        )
    if activation == "softmax" and model_config.output_dim != classes:
        raise ConfigError(
            f"model.output_dim: is {model_config.output_dim} but {source} has {classes} classes"
        )
    return labels, True
