"""A request's `inputs` (decoded JSON) as the arrays a model takes, checked as in training.

`request_arrays` is the one place where served inputs are read: numbers only (a
string such as `"1.5"`, a boolean or `null` is refused, not converted), the same
finite-range rule training applies (`input_checks.MAX_FEATURE_MAGNITUDE`), and at
most `max_rows` rows. A model whose metadata declares typed columns can widen
`json_array` here for them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from keras_trainer.errors import DataError, LimitError
from keras_trainer.export.input_checks import MAX_FEATURE_MAGNITUDE, InputSpec

_NUMBER_TYPES = {int, float}
# Bytes of a value quoted in an error: enough to recognise it, never the whole input.
_QUOTE_CHARS = 40


def short(value: Any) -> str:
    """`repr(value)` cut to a short prefix, for error messages."""
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def short_list(names: list) -> str:
    """A list of names as `['a', 'b']`, each cut short, at most five of them."""
    shown = [short(name) for name in names[:5]]
    return "[" + ", ".join(shown + (["..."] if len(names) > 5 else [])) + "]"


def _first_bad_leaf(value: Any, where: str) -> tuple[str, Any]:
    """The path and value of the first leaf of nested lists that is not a number."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if type(item) is list:
            stack.extend((item[i], f"{path}[{i}]") for i in reversed(range(len(item))))
        elif type(item) not in _NUMBER_TYPES or abs(item) > MAX_FEATURE_MAGNITUDE:
            return path, item
    return where, value


def json_array(value: Any, spec: InputSpec, where: str) -> np.ndarray:
    """Nested JSON lists of numbers as an array of `spec`'s dtype, or a `DataError`.

    Raises:
        DataError: a leaf is not a number (naming its path), the lists are ragged,
            a value is NaN, infinite or beyond the training range, or an integer
            input (token ids) gets fractions.
    """
    if type(value) is not list:
        raise DataError(
            f"{where}: expected a list of numbers (one row) or a list of rows, got {short(value)}"
        )
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise DataError(f"{where}: rows of different lengths or nesting") from None
    leaves: Any = [value]
    if array.dtype.kind in "iuf":
        for _ in range(array.ndim):
            leaves = itertools.chain.from_iterable(leaves)
    if array.dtype.kind not in "iuf" or not set(map(type, leaves)) <= _NUMBER_TYPES:
        path, leaf = _first_bad_leaf(value, where)
        if type(leaf) is list:
            raise DataError(f"{where}: rows of different lengths or nesting")
        if type(leaf) is int:
            raise DataError(f"{path}: {short(leaf)} is beyond +-{MAX_FEATURE_MAGNITUDE:.0e}")
        raise DataError(f"{path}: expected a number, got {short(leaf)}")
    if spec.dtype.kind in "iu" and array.dtype.kind == "f":
        raise DataError(f"{where}: input {spec.name!r} takes integers (token ids), got fractions")
    if (
        array.dtype.kind == "f"
        and array.size
        and not np.all(np.abs(array) <= MAX_FEATURE_MAGNITUDE)
    ):
        position = tuple(int(i) for i in np.argwhere(~(np.abs(array) <= MAX_FEATURE_MAGNITUDE))[0])
        raise DataError(
            f"{where}{''.join(f'[{i}]' for i in position)}: {float(array[position]):.3g} is beyond "
            f"+-{MAX_FEATURE_MAGNITUDE:.0e}, the range training accepts"
        )
    return array.astype(spec.dtype, copy=False)


def _count_rows(value: Any, spec: InputSpec, where: str, max_rows: int) -> None:
    # Before any conversion: a request with a million rows is refused at once.
    if type(value) is list and len(value) > max_rows and _nested(value, len(spec.shape) - 1):
        too_many_rows(len(value), where, max_rows)


def too_many_rows(rows: int, where: str, max_rows: int) -> None:
    raise LimitError(
        f"{where}: {rows} rows; this server takes at most {max_rows} per request "
        "(serving option max_rows, --max-rows)"
    )


def _nested(value: Any, depth: int) -> bool:
    """Whether `value` holds lists `depth` levels down (a batch, not one row)."""
    for _ in range(depth):
        if type(value) is not list or not value:
            return False
        value = value[0]
    return type(value) is list


def named_rows(rows: list, spec: InputSpec, feature_names: list, where: str) -> np.ndarray:
    """Rows given as objects feature name -> number, in the model's feature order."""
    if not feature_names:
        raise DataError(f"{where}: this model has no feature names; send rows as lists of numbers")
    table = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{where}[{index}]: expected an object feature name -> value")
        missing = [name for name in feature_names if name not in row]
        extra = sorted(set(row) - set(feature_names))
        if missing or extra:
            raise DataError(
                f"{where}[{index}]: missing feature(s) {missing}, "
                f"unknown feature(s) {short_list(extra)}"
            )
        table.append([row[name] for name in feature_names])
    return json_array(table, spec, where)


def request_arrays(
    inputs: Any, specs: list[InputSpec], feature_names: list, max_rows: int
) -> tuple[list[np.ndarray], bool]:
    """A request's `inputs` as one array per model input, and whether it was one row.

    Args:
        inputs: The decoded JSON: one row, a list of rows, an object feature name ->
            value or a list of them, or (several inputs) an object input name -> rows.
        specs: The model's inputs.
        feature_names: The model's feature names (for rows given by name).
        max_rows: Most rows a request may send.

    Raises:
        DataError: naming the request path and what is wrong.
        LimitError: more than `max_rows` rows.
    """
    if len(specs) > 1:
        names = [s.name for s in specs]
        if not isinstance(inputs, dict) or set(inputs) != set(names):
            raise DataError(
                f"request.inputs: the model has {len(specs)} inputs {names}; "
                "send an object input name -> array with exactly these keys"
            )
        for spec in specs:
            _count_rows(inputs[spec.name], spec, f"request.inputs.{spec.name}", max_rows)
        arrays = [json_array(inputs[s.name], s, f"request.inputs.{s.name}") for s in specs]
        single = arrays[0].ndim == len(specs[0].shape) - 1
    else:
        spec = specs[0]
        where = "request.inputs"
        if isinstance(inputs, dict):
            return [named_rows([inputs], spec, feature_names, where)], True
        if type(inputs) is list and inputs and isinstance(inputs[0], dict):
            if len(inputs) > max_rows:
                too_many_rows(len(inputs), where, max_rows)
            return [named_rows(inputs, spec, feature_names, where)], False
        _count_rows(inputs, spec, where, max_rows)
        arrays = [json_array(inputs, spec, where)]
        single = arrays[0].ndim == len(spec.shape) - 1
    if single:
        arrays = [array[None] for array in arrays]
    rows = {len(array) for array in arrays}
    if len(rows) > 1:
        raise DataError(f"request.inputs: the inputs have different numbers of rows {sorted(rows)}")
    return arrays, single
