"""Typed tables as people have them: reading raw rows, inferring column types, targets.

`read_frame` reads a CSV (every cell as text, blanks and "NA" missing), a
Parquet file, a JSON list of row objects or `builtin:penguins` into a pandas
DataFrame. `infer_column_type` guesses a column's type from its training rows;
`describe_table` is what `keras-trainer inspect` prints, with a `data.columns`
block to paste into a config. `encode_target` turns a target column into
class indices and class names (or numbers for regression).

Example:

>>> frame = read_frame("builtin:penguins")
>>> print(describe_table(frame, target="species"))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from keras_trainer.config.columns import ColumnConfig
from keras_trainer.core.inputs.shard_files import shard_paths
from keras_trainer.errors import ConfigError, DataError
from keras_trainer.tabular.cells import all_numbers, as_text

ID_NAMES = ("id", "index", "key", "uuid")
FRAME_SUFFIXES = (".csv", ".parquet", ".pq", ".json")


def _pandas():
    try:
        import pandas as pd
    except ImportError as error:
        raise DataError(
            f"typed tables need pandas (pip install 'keras-trainer[tables]'): {error}"
        ) from None
    return pd


def read_frame(source: str) -> Any:
    """A table of raw rows as a pandas DataFrame (column names as text).

    Args:
        source: `builtin:penguins`, or a `.csv`, `.parquet`/`.pq` or `.json` file
            (a list of objects, or `{"inputs": [...]}`).

    Raises:
        DataError: missing or unreadable file, no rows.
    """
    pd = _pandas()
    if source.startswith("builtin:"):
        from keras_trainer.tabular.datasets import load_frame

        return load_frame(source[len("builtin:") :])
    lower = source.lower()
    if not os.path.isfile(source):
        raise DataError(f"data file not found: {source}")
    try:
        if lower.endswith(".csv"):
            # Text cells: the preprocessor, not pandas, decides what a column holds.
            frame = pd.read_csv(source, dtype=str, skipinitialspace=True, skip_blank_lines=True)
        elif lower.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(source)
        elif lower.endswith(".json"):
            with open(source, encoding="utf-8") as handle:
                frame = records_frame(json.load(handle), source)
        else:
            raise DataError(f"{source}: typed tables are .csv, .parquet or .json files")
    except DataError:
        raise
    except Exception as error:  # pandas and pyarrow raise their own types
        raise DataError(
            f"{source}: not a readable table ({type(error).__name__}: {error})"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if not len(frame):
        raise DataError(f"{source}: has no data rows")
    return frame


def records_frame(data: Any, where: str = "inputs", columns: Optional[list] = None) -> Any:
    """Rows given as objects (column -> value), or as lists in `columns` order, as a DataFrame.

    Raises:
        DataError: not a non-empty list of objects (or of lists of the right length).
    """
    pd = _pandas()
    if isinstance(data, dict) and "inputs" in data:
        data = data["inputs"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise DataError(f"{where}: expected a non-empty list of rows (objects column -> value)")
    if all(isinstance(row, dict) for row in data):
        return pd.DataFrame.from_records(data)
    if columns and all(isinstance(row, list) and len(row) == len(columns) for row in data):
        return pd.DataFrame.from_records(data, columns=columns)
    raise DataError(
        f"{where}: rows are objects column -> value"
        + (f", or lists of {len(columns)} values in the order {columns}" if columns else "")
    )


def _looks_like_id(name: str) -> bool:
    lower = name.strip().lower()
    return lower in ID_NAMES or lower.endswith(("_id", " id"))


def infer_column_type(values: Any, name: str) -> str:
    """The type of a column from its (training) values.

    All missing or one value: `ignore`; two values: `binary`; all numbers:
    `number` (an integer column named like an id, `id`/`*_id`, with a different
    value on every row: `id`); text with a different value on each of 10 or more
    rows: `id`; other text: `category`.
    """
    present = [t for t in (as_text(v) for v in values) if t is not None]
    distinct = set(present)
    if len(distinct) <= 1:
        return "ignore"
    if len(distinct) == 2:
        return "binary"
    unique_rows = len(distinct) == len(present)
    if not all_numbers(list(distinct)):
        return "id" if unique_rows and len(present) >= 10 else "category"
    return "id" if unique_rows and _looks_like_id(name) else "number"


def column_specs(
    frame: Any, declared: Mapping[str, Any], target: Optional[str]
) -> dict[str, ColumnConfig]:
    """Every column but the target with its `ColumnConfig`: declared, else inferred.

    Raises:
        ConfigError: a declared column the table lacks, or the target declared as a feature.
    """
    unknown = [name for name in declared if name not in frame.columns]
    if unknown:
        raise ConfigError(
            f"data.columns: the table has no column(s) {unknown} (columns: {', '.join(frame.columns)})"
        )
    specs = {}
    for name in frame.columns:
        if name == target:
            continue
        spec = declared.get(name)
        if spec is None:
            spec = ColumnConfig(type=infer_column_type(frame[name], name))
        elif not isinstance(spec, ColumnConfig):
            spec = ColumnConfig.from_dict(spec, f"data.columns.{name}")
        specs[name] = spec
    return specs


def describe_table(frame: Any, target: Optional[str] = None) -> str:
    """A readable table of the columns (name, type, missing share, distinct values,
    range) and the `data.columns` JSON of the inferred types, ready to paste."""
    rows, columns = [], {}
    for name in frame.columns:
        cells = list(frame[name])
        texts = [as_text(c) for c in cells]
        present = [t for t in texts if t is not None]
        kind = "target" if name == target else infer_column_type(cells, name)
        if kind == "number" or (kind == "target" and present and all_numbers(present)):
            numbers = [float(t) for t in present]
            span = f"{min(numbers):.6g} .. {max(numbers):.6g}"
        else:
            counts: dict[str, int] = {}
            for t in present:
                counts[t] = counts.get(t, 0) + 1
            top = sorted(counts, key=lambda v: (-counts[v], v))
            span = ", ".join(top[:4]) + (", ..." if len(top) > 4 else "")
        missing = 1 - len(present) / max(len(cells), 1)
        rows.append((name, kind, f"{missing:.1%}", str(len(set(present))), span))
        if name != target:
            columns[name] = {"type": kind}
    header = ("column", "type", "missing", "distinct", "range / most frequent values")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"{len(frame)} rows, {len(frame.columns)} columns"]
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
        )
    entries = ",\n".join(f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in columns.items())
    lines += ["", "paste into the config (and edit):", '{"data": {"columns": {', entries, "}}}"]
    return "\n".join(lines)


def encode_target(
    values: Any, name: str, class_names: Optional[list[str]] = None
) -> tuple[np.ndarray, Optional[list[str]]]:
    """A target column as numbers, or as class indices with their names.

    Args:
        values: The target cells (no missing ones; see `drop_missing_targets`).
        name: The column, for messages.
        class_names: The classes of a trained model (evaluation); `None` learns them:
            text targets get their sorted distinct values, number targets stay numbers.

    Returns:
        `(targets, class_names)`: float64 values and `None`, or int64 indices and names.

    Raises:
        DataError: a class that the model does not know.
    """
    texts = [as_text(v) for v in values]
    if class_names is None:
        if all_numbers(texts):
            return np.array([float(t) for t in texts]), None
        class_names = sorted(set(texts))
    index = {c: i for i, c in enumerate(class_names)}
    unknown = sorted({t for t in texts if t not in index})
    if unknown:
        raise DataError(
            f"target column {name!r}: class(es) {unknown[:5]} are not among the model's classes {class_names}"
        )
    return np.array([index[t] for t in texts], dtype="int64"), list(class_names)


def drop_missing_targets(frame: Any, target: str, source: str) -> Any:
    """The rows whose target is present (prints how many were dropped).

    Raises:
        DataError: no target column, or no row with a target.
    """
    if target not in frame.columns:
        raise DataError(
            f"{source}: no column {target!r} for the target (columns: {', '.join(frame.columns)})"
        )
    keep = np.array([as_text(v) is not None for v in frame[target]], dtype=bool)
    if not keep.any():
        raise DataError(f"{source}: every row's target {target!r} is missing")
    if not keep.all():
        print(f"{source}: {int((~keep).sum())} rows without a target {target!r} left out")
    return frame[keep].reset_index(drop=True)


TYPED_SHARD_SUFFIXES = (".csv", ".parquet")


def typed_shard_paths(source: Any) -> list[str]:
    """The shard files of `source`, which must be CSV or Parquet files.

    Raises:
        DataError: no shards. ConfigError: `.npy` shards (numbers only, never typed).
    """
    paths = shard_paths(source)
    if not paths[0].endswith(TYPED_SHARD_SUFFIXES):
        raise ConfigError(
            f"{source}: typed columns (data.columns, text or blank cells) are read from .csv "
            "or .parquet shards; .npy shards hold numbers only (drop data.columns for them)"
        )
    return paths
