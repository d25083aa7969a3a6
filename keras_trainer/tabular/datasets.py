"""Real data shipped inside installed packages (no network).

* Tables: scikit-learn's bundled `load_breast_cancer`, `load_wine`, `load_diabetes`.
* A time series: Matplotlib's sample data `goog.npz`, 1047 daily bars of Google
  stock (2004-08-19 to 2008-10-14: open, high, low, close, volume, adjusted close).
"""

from __future__ import annotations

import importlib
from typing import Optional

import numpy as np

from keras_trainer.core.inputs.rows import csv_numbers
from keras_trainer.errors import DataError

TABLES = ("breast_cancer", "wine", "diabetes")
# Typed tables (strings, blanks): name -> target column.
FRAMES = {"penguins": "species", "cars": "Origin"}


def load_table(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A bundled scikit-learn dataset: `(X float32, y, feature_names)`.

    `y` is int64 class labels for breast_cancer and wine, float32 for diabetes.

    Raises:
        DataError: unknown name (the message lists the valid ones).
    """
    if name not in TABLES:
        raise DataError(f"unknown builtin dataset {name!r} (valid: {', '.join(TABLES)})")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    y = bunch.target.astype("float32" if name == "diabetes" else "int64")
    return bunch.data.astype("float32"), y, [str(n) for n in bunch.feature_names]


def table_class_names(name: str) -> Optional[list[str]]:
    """The class names of a bundled classification table (`None` for regression)."""
    if name not in TABLES or name == "diabetes":
        return None
    from sklearn import datasets

    return [str(n) for n in getattr(datasets, f"load_{name}")().target_names]


def load_frame(name: str):
    """A bundled typed table as a pandas DataFrame (its target column: `FRAMES[name]`).

    `penguins`: the Palmer penguins (344 rows; species as the target; island and
    sex as text, sex and four measurements with missing cells), from the
    `palmerpenguins` package. `cars`: 406 cars of 1970-1982 (Origin USA/Europe/Japan
    as the target; the make-and-model Name as text with 311 values; six measurements,
    two with missing cells; the model year), from the `vega_datasets` package.

    Raises:
        DataError: unknown name, or the package is not installed.
    """
    if name not in FRAMES:
        raise DataError(
            f"unknown builtin dataset {name!r} (valid: {', '.join((*TABLES, *FRAMES))})"
        )
    package = {"penguins": "palmerpenguins", "cars": "vega_datasets"}[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise DataError(
            f"builtin:{name} needs the {package} package (pip install 'keras-trainer[tables]')"
        ) from None
    if name == "cars":
        frame = module.local_data.cars()
        frame["Year"] = frame["Year"].dt.year  # a model year, not a timestamp
    else:
        frame = module.load_penguins()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def load_stock_prices() -> dict[str, np.ndarray]:
    """Google daily prices from Matplotlib's bundled `goog.npz`.

    Returns:
        Dict of equal-length arrays: `date` (datetime64[D]), `open`, `high`,
        `low`, `close`, `adj_close` (float64) and `volume` (int64), oldest first.
    """
    from matplotlib import cbook

    data = cbook.get_sample_data("goog.npz")
    prices = data["price_data"] if hasattr(data, "files") else np.load(data)["price_data"]
    return {name: np.asarray(prices[name]) for name in prices.dtype.names}


def stock_features(prices: Optional[dict] = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Daily features and next-day returns of a price series.

    Row `t` holds what is known at the close of day `t`: the log return of day
    `t`, the log high-low range, the log close-open move and the log volume
    change. `next_returns[t]` is the log return of day `t + 1` (the last row
    has none and is dropped), so a model predicting it from rows `<= t` does
    not look ahead.

    Args:
        prices: Output of `load_stock_prices()` (loaded if `None`).

    Returns:
        `(features (n, 4) float32, next_returns (n,) float32, names)`.
    """
    prices = prices or load_stock_prices()
    close = np.asarray(prices["adj_close"], dtype="float64")
    if len(close) < 3:
        raise DataError(f"prices: need at least 3 rows, got {len(close)}")
    log_close = np.log(close)
    returns = np.diff(log_close)  # returns[i] is the return of day i + 1
    high, low = np.asarray(prices["high"], "float64"), np.asarray(prices["low"], "float64")
    open_, raw_close = np.asarray(prices["open"], "float64"), np.asarray(prices["close"], "float64")
    volume = np.log(np.asarray(prices["volume"], "float64") + 1.0)
    features = np.stack(
        [
            returns[:-1],  # day t = 1 .. n-2
            np.log(high / low)[1:-1],
            np.log(raw_close / open_)[1:-1],
            np.diff(volume)[:-1],
        ],
        axis=1,
    )
    next_returns = returns[1:]
    names = ["log_return", "log_range", "log_close_open", "log_volume_change"]
    return features.astype("float32"), next_returns.astype("float32"), names


def load_csv(path: str, target: Optional[str] = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A numeric CSV table with a header row: `(X float32, y float64, feature_names)`.

    Args:
        path: The file.
        target: Name of the target column; `None` takes the last column.

    Returns:
        The feature columns (all but the target, in file order), the target
        column, and the feature names.

    Raises:
        DataError: missing file, no header or rows, unknown target column, a row
            of the wrong width or a non-numeric cell (naming file, line and column).
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read it as a CSV table: {error}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise DataError(
            f"{path}: needs a header row and at least one data row, got {len(rows)} non-empty rows"
        )
    header = [name.strip() for name in rows[0]]
    if target is None:
        target_index = len(header) - 1
    elif target in header:
        target_index = header.index(target)
    else:
        raise DataError(
            f"{path}: no column {target!r} for the target (columns: {', '.join(header)})"
        )
    if len(header) < 2:
        raise DataError(
            f"{path}: needs at least one feature column besides the target {header[target_index]!r}"
        )
    values = csv_numbers(path, rows, list(range(len(header))), "float64")
    if not np.all(np.isfinite(values)):
        line, column = np.argwhere(~np.isfinite(values))[0]
        raise DataError(f"{path}:{line + 2}: column {header[column]!r} is NaN or infinite")
    features = [i for i in range(len(header)) if i != target_index]
    return (
        values[:, features].astype("float32"),
        values[:, target_index],
        [header[i] for i in features],
    )
