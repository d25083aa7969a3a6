"""Turning a model's raw outputs into labelled predictions, whatever its head.

A classification model with a softmax head gives one probability per class; a
binary model with a sigmoid head gives ONE number, the probability of class 1;
a regression model gives values that are not probabilities at all. `head_kind`
tells them apart from the metadata saved with the model (its `config`'s
`model.output_activation`), else from the network's last layer, and `describe`
writes one record per row: the label and every class probability, or the
regression values. `keras-trainer predict` and `keras-trainer serve` both use
it, so both say the same thing about the same row.

This module needs only NumPy (an `.onnx` model is served without Keras).

Example:

>>> head = head_kind({"config": {"model": {"output_activation": "sigmoid"}}}, 1)
>>> describe(np.array([[0.9]]), head, ["benign", "malignant"])
[{'label': 'malignant', 'probabilities': {'benign': 0.1, 'malignant': 0.9}}]
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_trainer.core.saving.atomic import write_text_atomic
from keras_trainer.errors import DataError

MULTICLASS = "multiclass"
BINARY = "binary"
MULTILABEL = "multilabel"
REGRESSION = "regression"
HEADS = (MULTICLASS, BINARY, MULTILABEL, REGRESSION)
CLASSIFICATION_HEADS = (MULTICLASS, BINARY, MULTILABEL)


def _activation_name(model: Any) -> str | None:
    """The activation of the model's last layer (looking into nested models), if any."""
    layer = model
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    activation = getattr(layer, "activation", None)
    if activation is None:
        return getattr(layer, "name", "") if type(layer).__name__ == "Softmax" else None
    return getattr(activation, "__name__", None)


def head_kind(metadata: dict, output_width: int, model: Any = None) -> str:
    """Which kind of head produced outputs of `output_width` columns.

    Args:
        metadata: The model's saved metadata (`read_metadata`, ONNX metadata).
            An explicit `"head"` entry wins; else `config.model.output_activation`.
        output_width: Columns of the model's output.
        model: The Keras model, to read its last activation when the metadata
            does not say.

    Returns:
        `"multiclass"` (softmax), `"binary"` (one sigmoid unit), `"multilabel"`
        (several sigmoid units) or `"regression"`.
    """
    if metadata.get("head") in HEADS:
        return metadata["head"]
    config = metadata.get("config")
    activation = None
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        activation = config["model"].get("output_activation")
    if activation is None and model is not None:
        activation = _activation_name(model)
    if activation == "softmax":
        return MULTICLASS
    if activation == "sigmoid":
        return BINARY if output_width == 1 else MULTILABEL
    if (
        activation is None
        and output_width > 1
        and len(metadata.get("class_names") or []) == output_width
    ):
        return MULTICLASS
    return REGRESSION


def class_names_for(metadata: dict, head: str, output_width: int) -> list[str]:
    """The class names saved with the model, or `"0"`, `"1"`, ... when it has none."""
    names = list(metadata.get("class_names") or [])
    expected = 2 if head == BINARY else output_width
    if head == REGRESSION:
        return names
    if len(names) != expected:
        names = [str(i) for i in range(expected)]
    return [str(name) for name in names]


def describe(
    outputs: Any,
    head: str,
    class_names: Sequence[str] = (),
    ids: Sequence[Any] | None = None,
    target_names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One record per row of `outputs`: its label and class probabilities, or its values.

    Args:
        outputs: `(rows, width)` model outputs (a `(rows,)` array is one column).
        head: What `head_kind` returned.
        class_names: One name per class (two for a binary head).
        ids: Row ids (row numbers, kernel names) put first in each record as `id`.
        target_names: Names of the regression outputs (default `value`, or
            `value_0`, `value_1`, ...).

    Returns:
        Records such as `{"id": 3, "label": "O2", "probabilities": {...}}` or
        `{"id": 3, "value": 1.25}`.
    """
    array = np.asarray(outputs, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    array = array.reshape(len(array), -1)
    if ids is not None and len(ids) != len(array):
        raise DataError(f"ids: {len(ids)} ids for {len(array)} rows")
    width = array.shape[1]
    records = []
    for row_index, row in enumerate(array):
        record: dict[str, Any] = {} if ids is None else {"id": ids[row_index]}
        if head == MULTICLASS:
            best = int(np.argmax(row))
            record["label"] = class_names[best]
            record["probabilities"] = {name: float(p) for name, p in zip(class_names, row)}
        elif head == BINARY:
            p = float(row[0])
            # The evaluation report's rule (and Keras' binary accuracy): class 1 when p > 0.5.
            record["label"] = class_names[int(p > 0.5)]
            record["probabilities"] = {class_names[0]: 1.0 - p, class_names[1]: p}
        elif head == MULTILABEL:
            record["labels"] = [name for name, p in zip(class_names, row) if p > 0.5]
            record["probabilities"] = {name: float(p) for name, p in zip(class_names, row)}
        else:
            names = list(target_names) or (
                ["value"] if width == 1 else [f"value_{i}" for i in range(width)]
            )
            record.update({name: float(v) for name, v in zip(names, row)})
        records.append(record)
    return records


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"p_{name}": v for name, v in value.items()})
        elif isinstance(value, list):
            flat[key] = ";".join(map(str, value))
        else:
            flat[key] = value
    return flat


def records_to_csv(records: Sequence[dict[str, Any]]) -> str:
    """CSV text of `describe`'s records: one column per field, `p_<class>` per probability."""
    rows = [_flat(record) for record in records]
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_predictions(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> str:
    """Writes records as CSV (`.csv`) or JSON (any other suffix), atomically."""
    path = os.fspath(path)
    text = (
        records_to_csv(records)
        if path.lower().endswith(".csv")
        else json.dumps(list(records), indent=1)
    )
    write_text_atomic(path, text)
    return path


def emit_records(
    records: Sequence[dict[str, Any]], output: str | os.PathLike | None, noun: str = "predictions"
) -> None:
    """The `predict` verbs' ending: records written to `output` (`write_predictions`),
    or printed as CSV on standard output when no output is given."""
    if output:
        write_predictions(records, output)
        print(f"wrote {len(records)} {noun} to {os.fspath(output)}")
    else:
        print(records_to_csv(records), end="")
