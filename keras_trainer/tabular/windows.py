"""Windowing a time series into `(samples, steps, features)` inputs, without look-ahead.

A window starting at row `s` holds rows `s .. s + window - 1` (all feature
columns); its target is the target column at row `t = s + window - 1 + horizon`,
`horizon` rows after the last input row. Windows start every `stride` rows.

`train_val_windows` splits by time so that no row is used by both sides: the
series is cut at `split = floor(len * (1 - val_fraction))`; a training window
is kept only if its TARGET row is before `split` (so its inputs are too), and a
validation window only if its FIRST INPUT row is at or after `split + gap`.
Hence the model never trains on a value from the validation period, and
validation inputs never hold a training target. The price is the boundary:
the first `window + horizon - 1` validation rows are inputs only, and the
`gap` rows right after the cut are dropped (raise `gap` when the features
themselves look back, e.g. rolling means over `k` rows need `gap >= k - 1`).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from keras_trainer.errors import DataError


def _as_series(series: Any) -> tuple[np.ndarray, list[str]]:
    columns: list[str] = []
    if hasattr(series, "columns") and hasattr(series, "to_numpy"):  # a pandas DataFrame
        columns = [str(column) for column in series.columns]
        series = series.to_numpy()
    try:
        array = np.asarray(series, dtype="float32")
    except (TypeError, ValueError) as error:
        raise DataError(f"series: must be numeric, got {type(series).__name__} ({error})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"series: must have shape (time,) or (time, features), got {array.shape}")
    if not np.all(np.isfinite(array)):
        row = int(np.argwhere(~np.isfinite(array))[0][0])
        raise DataError(f"series: row {row} contains NaN or infinite values")
    return array, columns


def _target_values(array, columns, target_column, targets) -> np.ndarray:
    if targets is not None:
        values = np.asarray(targets, dtype="float32")
        if len(values) != len(array):
            raise DataError(
                f"targets has {len(values)} rows but the series has {len(array)}; they must match"
            )
        return values
    if isinstance(target_column, str):
        if target_column not in columns:
            raise DataError(
                f"target_column {target_column!r} is not a column (columns: {', '.join(columns)})"
            )
        target_column = columns.index(target_column)
    if not -array.shape[1] <= target_column < array.shape[1]:
        raise DataError(
            f"target_column {target_column} is out of range for a series with {array.shape[1]} columns"
        )
    return array[:, target_column]


def _check_sizes(length: int, window: int, horizon: int, stride: int) -> None:
    for name, value, low in (("window", window, 1), ("horizon", horizon, 1), ("stride", stride, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"{name}: must be an integer >= {low}, got {value!r}")
    if window + horizon > length:
        raise DataError(
            f"window={window} plus horizon={horizon} needs at least {window + horizon} rows, "
            f"but the series has {length}"
        )


def window_starts(length: int, window: int, horizon: int = 1, stride: int = 1) -> np.ndarray:
    """First input row of every window that has a target inside a series of `length` rows."""
    _check_sizes(length, window, horizon, stride)
    return np.arange(0, length - window - horizon + 1, stride)


def make_windows(
    series: Any,
    window: int,
    horizon: int = 1,
    stride: int = 1,
    target_column: Union[int, str] = -1,
    targets: Optional[Any] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a series into input windows and the target `horizon` rows after each.

    Args:
        series: Array `(time,)` or `(time, features)`, or a pandas DataFrame.
        window: Input rows per window (time steps).
        horizon: How many rows after the last input row the target lies (>= 1).
        stride: Rows between the starts of consecutive windows.
        target_column: Column (index or DataFrame name) predicted. Ignored
            when `targets` is given.
        targets: Optional per-row target array, same length as `series`
            (e.g. next-period returns computed separately).

    Returns:
        `(X, y)`: float32 `(n, window, features)` and `(n,)`.

    Raises:
        DataError: the window and horizon do not fit in the series, bad sizes,
            NaN values, or a target column that does not exist.

    Example:

    >>> X, y = make_windows(np.arange(10.0), window=3, horizon=1)
    >>> X[0, :, 0], y[0]
    (array([0., 1., 2.], dtype=float32), 3.0)
    """
    array, columns = _as_series(series)
    values = _target_values(array, columns, target_column, targets)
    starts = window_starts(len(array), window, horizon, stride)
    index = starts[:, None] + np.arange(window)[None, :]
    return array[index], values[starts + window - 1 + horizon].astype("float32")


def train_val_windows(
    series: Any,
    window: int,
    horizon: int = 1,
    stride: int = 1,
    val_fraction: float = 0.2,
    gap: int = 0,
    target_column: Union[int, str] = -1,
    targets: Optional[Any] = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Windows split by time with no row shared by training and validation.

    See the module docstring for the exact rule. Arguments are those of
    `make_windows`, plus:

    Args:
        val_fraction: Share of the rows (the most recent ones) given to validation.
        gap: Extra rows dropped after the cut before validation inputs begin.

    Returns:
        `((X_train, y_train), (X_val, y_val))`.

    Raises:
        DataError: a side would get no window (the message gives the row counts).

    Example:

    >>> (X_tr, y_tr), (X_va, y_va) = train_val_windows(prices, window=20, val_fraction=0.25)
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction: must be between 0 and 1 (exclusive), got {val_fraction}")
    if not isinstance(gap, (int, np.integer)) or gap < 0:
        raise DataError(f"gap: must be an integer >= 0, got {gap!r}")
    array, columns = _as_series(series)
    values = _target_values(array, columns, target_column, targets)
    length = len(array)
    split = int(np.floor(length * (1.0 - val_fraction)))
    _check_sizes(length, window, horizon, stride)
    if split < window + horizon or length - split - gap < window + horizon:
        raise DataError(
            f"val_fraction={val_fraction} cuts the {length} rows at row {split}: training gets {split} "
            f"rows and validation {length - split - gap} (after gap={gap}), but each side needs at least "
            f"window + horizon = {window + horizon} rows"
        )
    x_train, y_train = make_windows(array[:split], window, horizon, stride, targets=values[:split])
    x_val, y_val = make_windows(
        array[split + gap :], window, horizon, stride, targets=values[split + gap :]
    )
    return (x_train, y_train), (x_val, y_val)
