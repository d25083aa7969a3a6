"""Feature rows to predict on, read from a CSV (columns by name), JSON or NumPy file.

Every family's `predict` reads its raw rows here, so `--data rows.csv` means the
same for a JIT strategy model as for a tabular one: a header row naming the
model's features (any order, extra columns ignored), a JSON list of rows
(lists of numbers, or objects keyed by feature name, optionally under
`"inputs"`), or an `.npy` array / `.npz` file with an array `x`.

Example:

>>> x, ids = read_rows("rows.csv", ["a", "b"], id_column="name")
"""

from __future__ import annotations

import json
import os

import numpy as np

from keras_trainer.errors import DataError

#: The endings of a file `read_rows` reads.
ROW_SUFFIXES = (".csv", ".json", ".npy", ".npz")


def is_rows_file(path: str) -> bool:
    """Whether `path` holds feature rows (`read_rows`) rather than a dataset of samples.

    `.csv`, `.npy` and `.npz` files are rows; a `.json` file is rows when it is a
    list of lists or numbers, a list of objects without `ir` (a dataset's samples
    carry their IR), or an object with `"inputs"`. An unreadable file is not rows,
    so the dataset reader names what is wrong with it.
    """
    lower = path.lower()
    if lower.endswith((".csv", ".npy", ".npz")):
        return True
    if not lower.endswith(".json") or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    if isinstance(data, dict):
        return "inputs" in data and "samples" not in data
    return (
        isinstance(data, list)
        and bool(data)
        and not (isinstance(data[0], dict) and "ir" in data[0])
    )


def read_rows(path: str, feature_names: list[str], id_column: str | None = None):
    """Feature rows and row ids from a CSV (columns by name), JSON or NumPy file.

    Returns:
        `(x float32, ids)`: ids are the `id_column` values, else row numbers.

    Raises:
        DataError: missing columns (named), non-numeric cells, an unreadable file.
    """
    lower = path.lower()
    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    if lower.endswith(".csv"):
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
        if len(rows) < 2:
            raise DataError(f"{path}: needs a header row and at least one data row")
        header = [name.strip() for name in rows[0]]
        names = feature_names or [h for h in header if h != id_column]
        missing = [name for name in names if name not in header]
        if missing:
            raise DataError(
                f"{path}: missing feature column(s) {missing} (the model reads {names})"
            )
        if id_column and id_column not in header:
            raise DataError(f"{path}: no id column {id_column!r} (columns: {', '.join(header)})")
        x = csv_numbers(path, rows, [header.index(name) for name in names], "float32")
        if id_column:
            position = header.index(id_column)
            return x, [row[position] for row in rows[1:]]
        return x, list(range(len(rows) - 1))
    if lower.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except ValueError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
        if isinstance(data, dict) and "inputs" in data:
            data = data["inputs"]
        if not isinstance(data, list) or not data:
            raise DataError(
                f"{path}: expected a non-empty list of rows (lists of numbers or objects)"
            )
        if isinstance(data[0], dict):
            missing = sorted({n for row in data for n in feature_names if n not in row})
            if not feature_names or missing:
                raise DataError(
                    f"{path}: rows given by name need the model's feature names; missing {missing}"
                )
            ids = [row.get(id_column, i) if id_column else i for i, row in enumerate(data)]
            data = [[row[n] for n in feature_names] for row in data]
        else:
            ids = list(range(len(data)))
        try:
            return np.asarray(data, dtype="float32"), ids
        except (TypeError, ValueError) as error:
            raise DataError(f"{path}: rows are not all numbers of one width ({error})") from None
    if lower.endswith((".npy", ".npz")):
        try:
            loaded = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not a readable NumPy file ({error})") from None
        if not isinstance(loaded, np.ndarray):
            with loaded:
                key = next((k for k in loaded.files if k.lower() == "x"), None)
                if key is None:
                    raise DataError(
                        f"{path}: an .npz input holds an array 'x', found {loaded.files}"
                    )
                loaded = loaded[key]
        return np.asarray(loaded, dtype="float32"), list(range(len(loaded)))
    raise DataError(f"{path}: inputs are .csv, .json, .npy or .npz files")


def csv_numbers(path: str, rows: list, positions: list, dtype: str) -> np.ndarray:
    """The cells at `positions` of a CSV's data rows (`rows[1:]`; `rows[0]` is the
    header) as a `(rows, positions)` array of `dtype`.

    Raises:
        DataError: a row whose cell count differs from the header's, or a cell that is
            not a number (naming the line and the column).
    """
    header = rows[0]
    values = np.empty((len(rows) - 1, len(positions)), dtype=dtype)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}:{number}: has {len(row)} cells but the header has {len(header)}"
            )
        for column, position in enumerate(positions):
            try:
                values[number - 2, column] = float(row[position])
            except ValueError:
                raise DataError(
                    f"{path}:{number}: column {header[position].strip()!r} holds "
                    f"{row[position]!r}, not a number"
                ) from None
    return values
