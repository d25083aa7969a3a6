"""`TableModel`: a saved typed-table model that reads raw rows (strings, blanks, unseen values).

The file's metadata holds the `TablePreprocessor` state (JSON, no pickle), so
loading it is all `predict`, `evaluate`, `serve` and this class need, on any
backend. An exported ONNX network reads what `encode` returns (see
`docs/tables.md`).

Example:

>>> model = TableModel.load("runs/penguins/version_0/model.keras")
>>> model.predict([{"island": "Biscoe", "bill_length_mm": 48.1, "sex": None, ...}])
[{'label': 'Gentoo', 'probabilities': {...}}]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from keras_trainer.errors import CheckpointError, ColumnTypeError
from keras_trainer.tabular.preprocessing import TablePreprocessor, TransformReport, data_row


class TableModel:
    """A network with the preprocessing of its typed table.

    Args:
        model: The Keras network (reads encoded features).
        metadata: The saved metadata, with a `preprocessing` entry.

    Raises:
        CheckpointError: the metadata has no preprocessing (not a typed-table model).
    """

    def __init__(self, model: Any, metadata: dict):
        if not metadata.get("preprocessing"):
            raise CheckpointError(
                "this model reads numeric features only (its metadata has no 'preprocessing'); "
                "it was not trained on a typed table"
            )
        self.model = model
        self.metadata = metadata
        self.preprocessor = TablePreprocessor.from_config(metadata["preprocessing"])
        self.class_names: Optional[list[str]] = metadata.get("class_names")
        self.target: Optional[str] = metadata.get("target")
        self.last_report = TransformReport()

    @classmethod
    def load(cls, path: str | os.PathLike) -> TableModel:
        """Loads a `.keras`/`.h5` file saved by `keras-trainer train` on a typed table."""
        from keras_trainer.tabular.normalization import load_tabular_model

        return cls(*load_tabular_model(path))

    def frame(self, rows: Any) -> Any:
        """`rows` (a DataFrame, a file path, row objects, or lists in `input_columns` order) as a DataFrame."""
        from keras_trainer.tabular.tables import read_frame, records_frame

        if hasattr(rows, "columns"):
            return rows
        if isinstance(rows, (str, os.PathLike)):
            return read_frame(os.fspath(rows))
        return records_frame(rows, "rows", self.preprocessor.input_columns)

    def encode(
        self, rows: Any, where: Callable[[int], str] = data_row
    ) -> tuple[np.ndarray, TransformReport]:
        """The network's input for raw rows, and what the preprocessor met (unseen values).

        `where(i)` names row `i`'s place in error messages (`data row N` by default).
        """
        x, self.last_report = self.preprocessor.transform(self.frame(rows), where=where)
        return x, self.last_report

    def predict(
        self, rows: Any, ids: Optional[list] = None, where: Callable[[int], str] = data_row
    ) -> list[dict[str, Any]]:
        """One record per row: `label` and `probabilities` by class name, or the target's value.

        Rows are named by `ids`, else by the table's id column, else not at all.
        `last_report` then counts unseen category values and filled cells; `where(i)`
        names row `i`'s place in error messages.
        """
        from keras_trainer.core.evaluating.predictions import class_names_for, describe, head_kind

        frame = self.frame(rows)
        x, _ = self.encode(frame, where)
        outputs = np.asarray(self.model.predict(x, verbose=0))
        width = int(np.prod(outputs.shape[1:]))
        head = head_kind(self.metadata, width, self.model)
        names = class_names_for(self.metadata, head, width)
        ids = ids if ids is not None else self.preprocessor.row_ids(frame)
        targets = [self.target] if self.target and width == 1 else ()
        return describe(outputs, head, names, ids, target_names=targets)

    def evaluate(self, rows: Any):
        """An `EvaluationReport` on rows that hold the target column (class names or values);
        unseen category values and filled cells are listed in its `notes`."""
        from keras_trainer.core.evaluating.evaluation import ModelEvaluator
        from keras_trainer.tabular.tables import drop_missing_targets, encode_target

        frame = drop_missing_targets(self.frame(rows), self.target, "rows")
        classification = self.class_names is not None
        y, names = encode_target(frame[self.target], self.target, self.class_names)
        if not classification and names is not None:
            raise ColumnTypeError(
                f"target column {self.target!r} holds text ({', '.join(names[:3])}, ...); "
                "the model predicts its numbers"
            )
        y = y if classification else y.astype("float32")
        x, report = self.encode(frame)
        evaluator = ModelEvaluator(
            self.model,
            task="classification" if classification else "regression",
            class_names=self.class_names,
        )
        result = evaluator.evaluate(x, y)
        result.notes += [line for line in report.to_text().splitlines() if line]
        return result


def encode_request(metadata: dict, inputs: Any) -> tuple[np.ndarray, bool, TransformReport]:
    """A serving request's raw rows encoded for a typed-table network, whether it was one
    row, and what the preprocessor met (`report.unseen`: category values unseen in training).

    `inputs` is one row (an object column -> value, or a list of raw values in the
    model's column order) or a list of them; `null` or `""` cells are missing.

    Raises:
        DataError: malformed rows or a missing column. ColumnTypeError: a value of another type.
    """
    from keras_trainer.tabular.tables import records_frame

    preprocessor = TablePreprocessor.from_config(metadata["preprocessing"])
    single = isinstance(inputs, dict) or (
        isinstance(inputs, list) and bool(inputs) and not isinstance(inputs[0], (dict, list))
    )
    rows = [inputs] if single else inputs
    x, report = preprocessor.transform(
        records_frame(rows, "request.inputs", preprocessor.input_columns)
    )
    return x, single, report
