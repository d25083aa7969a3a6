"""Evaluating trained models: `ModelEvaluator`, `EvaluationReport`.

Side-by-side comparisons of several models live in `keras_trainer.core.evaluating.comparison`.

`ModelEvaluator` runs a model (or takes predictions you already have) and scores
them: accuracy, precision/recall/F1 (macro and weighted), ROC-AUC (binary and
one-vs-rest) and a confusion matrix for classification; MSE, MAE, RMSE and R2
(overall and per output) for regression. The numbers are computed in NumPy by
`keras_trainer.core.evaluating.scoring`, which documents how they match scikit-learn.

Example:

>>> evaluator = ModelEvaluator(task="classification", class_names=["no", "yes"])
>>> report = evaluator.evaluate_predictions([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8],
...                                                         [0.6, 0.4], [0.7, 0.3]])
>>> report.metrics["accuracy"], report.metrics["roc_auc"]
(0.75, 1.0)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from keras_trainer.core.evaluating import scoring

# Re-exported for convenience; matplotlib itself is imported only when plotting.
from keras_trainer.core.recording.plots import plot_confusion_matrix, plot_training_curves  # noqa: F401
from keras_trainer.core.saving.atomic import write_text_atomic
from keras_trainer.errors import ConfigError, DataError, ModelError

TASKS = ("classification", "regression")


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"task: unknown {task!r}; choose 'classification' or 'regression'")
    return task


def _as_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (list, tuple)):
        array = np.asarray(value)
    else:
        # Backend tensors (tf, jax, torch) without importing their frameworks here.
        import keras

        array = np.asarray(keras.ops.convert_to_numpy(value))
    if array.dtype == object:
        raise DataError(f"{what}: expected a numeric array, got ragged or non-numeric values")
    if array.ndim == 0:
        raise DataError(f"{what}: expected an array of samples, got a scalar")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DataError(f"{what}: expected numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise DataError(f"{what}: contains {bad} NaN or infinite value(s) (shape {array.shape})")
    return array


def _same_length(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if len(y_true) != len(y_pred):
        raise DataError(
            f"y_true has {len(y_true)} samples (shape {y_true.shape}) but predictions have "
            f"{len(y_pred)} (shape {y_pred.shape})"
        )
    if len(y_true) == 0:
        raise DataError("y_true is empty: nothing to evaluate")


def _is_integral(array: np.ndarray) -> bool:
    return not np.issubdtype(array.dtype, np.floating) or bool(np.all(array == np.round(array)))


def _class_indices(y_true: np.ndarray) -> np.ndarray:
    """One-hot (n, k) or indices (n,) / (n, 1) -> int indices (n,)."""
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        # One-hot (or label-smoothed) rows; anything else is not a class target.
        if y_true.min() < 0 or y_true.max() > 1:
            raise DataError(
                f"y_true: a 2-D target (shape {y_true.shape}) must hold one-hot rows with values "
                f"in [0, 1], got range [{y_true.min()}, {y_true.max()}]; regression targets need "
                "task='regression'"
            )
        return np.argmax(y_true, axis=1)
    if y_true.ndim == 2:
        y_true = y_true[:, 0]
    if y_true.ndim != 1:
        raise DataError(
            f"y_true: expected class indices (n,) or one-hot (n, classes), got shape {y_true.shape}"
        )
    if not _is_integral(y_true) or (y_true.size and y_true.min() < 0):
        raise DataError("y_true: class indices must be non-negative integers")
    return y_true.astype(np.int64)


@dataclasses.dataclass
class EvaluationReport:
    """The scores of one model on one data set.

    Attributes:
        task: `"classification"` or `"regression"`.
        metrics: Score name -> value (`None` where undefined, see `notes`).
        n_samples: Number of evaluated samples.
        class_names: Class display names (classification).
        confusion_matrix: Rows true class, columns predicted (classification).
        per_class: Class name -> precision, recall, f1, support (classification).
        per_output: One dict of mse, mae, rmse, r2 per output column (regression).
        notes: Why a score is missing or how it was restricted.
    """

    task: str
    metrics: dict
    n_samples: int
    class_names: Optional[list] = None
    confusion_matrix: Optional[list] = None
    per_class: Optional[dict] = None
    per_output: Optional[list] = None
    notes: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """Returns the report as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> EvaluationReport:
        """Rebuilds a report from `to_dict()` output (e.g. a loaded JSON report)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise DataError(f"EvaluationReport: unknown keys {sorted(unknown)}")
        return cls(**dict(data))

    def to_json(self, indent: int = 2) -> str:
        """Returns the report as JSON text (undefined scores are `null`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def save_json(self, path: str) -> str:
        """Writes the JSON report atomically (temporary file, then rename).

        Args:
            path: Destination file.

        Returns:
            The absolute path written.
        """
        write_text_atomic(path, self.to_json() + "\n")
        return os.path.abspath(os.fspath(path))

    def to_text(self) -> str:
        """Returns a readable plain-text report with aligned tables."""
        lines = [f"{self.task.capitalize()} report ({self.n_samples} samples)", ""]
        width = max(len(k) for k in self.metrics) if self.metrics else 0
        for name, value in self.metrics.items():
            lines.append(f"  {name:<{width}}  {_fmt(value)}")
        if self.per_class:
            names = list(self.per_class)
            col = max(8, max(len(n) for n in names))
            lines += ["", f"  {'class':<{col}}  precision     recall         f1    support"]
            for name, row in self.per_class.items():
                lines.append(
                    f"  {name:<{col}}  {row['precision']:9.4f}  {row['recall']:9.4f}  "
                    f"{row['f1']:9.4f}  {row['support']:9d}"
                )
        if self.confusion_matrix is not None:
            names = self.class_names or [str(i) for i in range(len(self.confusion_matrix))]
            widest = max(len(str(v)) for row in self.confusion_matrix for v in row)
            cell = max(6, widest, max(len(n) for n in names))
            lines += ["", "  confusion matrix (rows: true, columns: predicted)"]
            lines.append("  " + " " * cell + "  " + "  ".join(f"{n:>{cell}}" for n in names))
            for name, row in zip(names, self.confusion_matrix):
                lines.append(f"  {name:>{cell}}  " + "  ".join(f"{v:>{cell}d}" for v in row))
        if self.per_output and len(self.per_output) > 1:
            lines += ["", "  output          mse         mae        rmse          r2"]
            for i, row in enumerate(self.per_output):
                lines.append(
                    f"  {i:<6}  "
                    + "  ".join(f"{row[k]:10.4f}" for k in ("mse", "mae", "rmse", "r2"))
                )
        if self.notes:
            lines += [""] + [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class ModelEvaluator:
    """Scores a model's predictions for classification or regression.

    Args:
        model: A Keras model for `evaluate`; `None` if you only call
            `evaluate_predictions`.
        task: `"classification"` (default) or `"regression"`.
        class_names: Display names of the classes, index order
            (classification); also fixes the number of classes.

    Example:

    >>> evaluator = ModelEvaluator(task="regression")
    >>> evaluator.evaluate_predictions([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]).metrics["mae"]
    0.3333333333333333
    """

    def __init__(
        self,
        model: Any = None,
        task: str = "classification",
        class_names: Optional[Sequence[str]] = None,
    ):
        self.model = model
        self.task = _check_task(task)
        if class_names is not None:
            if task != "classification":
                raise ConfigError("class_names: only a classification task has classes")
            class_names = [str(n) for n in class_names]
            if len(class_names) < 2 or len(set(class_names)) != len(class_names):
                raise ConfigError(f"class_names: need at least 2 distinct names, got {class_names}")
        self.class_names = class_names

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Runs the model on `x` and returns its outputs as a NumPy array."""
        if self.model is None:
            raise ModelError(
                "ModelEvaluator has no model: pass model=... or use evaluate_predictions"
            )
        return _as_array(
            self.model.predict(x, batch_size=batch_size, verbose=0), "model predictions"
        )

    def evaluate(
        self,
        x: Any,
        y_true: Any = None,
        batch_size: int = 256,
        *,
        task_type: Optional[str] = None,
    ) -> EvaluationReport:
        """Runs the model on `x` and scores its outputs against `y_true`.

        Args:
            x: Model inputs (an array, or what the model's `predict` accepts), or
                a stream of `(inputs, targets)` batches (a `ShardDataset`, any
                `PyDataset` or iterable) with `y_true=None`: only the predictions
                and targets are kept, so the inputs may exceed memory.
            y_true: Targets: class indices or one-hot rows (classification), or
                values `(n,)` / `(n, outputs)` (regression).
            batch_size: Prediction batch size.
            task_type: `"classification"` or `"regression"` for this call only
                (the training-framework document's `evaluate(loader, task_type=...)`);
                `None` keeps the evaluator's `task`.

        Returns:
            An `EvaluationReport`.
        """
        if task_type is not None and _check_task(task_type) != self.task:
            names = self.class_names if task_type == "classification" else None
            evaluator = ModelEvaluator(self.model, task=task_type, class_names=names)
            return evaluator.evaluate(x, y_true, batch_size)
        if y_true is None:
            predictions, targets = [], []
            batches = (x[i] for i in range(len(x))) if hasattr(x, "__getitem__") else x
            for inputs, batch_targets in batches:
                predictions.append(self.predict(inputs, batch_size=batch_size))
                targets.append(_as_array(batch_targets, "y_true"))
            if not targets:
                raise DataError("evaluate: the stream yielded no batches")
            return self.evaluate_predictions(
                np.concatenate(targets), np.concatenate(predictions), prediction_type="scores"
            )
        y_true = _as_array(y_true, "y_true")
        n_x = sample_count(x)
        if n_x is not None and n_x != len(y_true):
            raise DataError(f"x has {n_x} samples but y_true has {len(y_true)}")
        predictions = self.predict(x, batch_size=batch_size)
        return self.evaluate_predictions(y_true, predictions, prediction_type="scores")

    def evaluate_predictions(
        self, y_true: Any, y_pred: Any, prediction_type: str = "auto"
    ) -> EvaluationReport:
        """Scores predictions you already have.

        For classification, `y_pred` is one of: class scores or probabilities
        `(n, classes)` (ROC-AUC included; label = argmax); positive-class
        probabilities `(n,)` or `(n, 1)` of a binary problem (label = p > 0.5;
        ROC-AUC included); or integer class labels `(n,)` (no ROC-AUC).

        Args:
            y_true: Targets (see `evaluate`).
            y_pred: Predictions, as above.
            prediction_type: How to read a single column of classification
                predictions: `"scores"` (probabilities), `"labels"` (class
                indices), or `"auto"` (default): labels if every value is a
                whole number, else probabilities. Model outputs are `"scores"`,
                so a saturated sigmoid that outputs exact 0.0/1.0 keeps its ROC-AUC.

        Returns:
            An `EvaluationReport`.
        """
        if prediction_type not in ("auto", "scores", "labels"):
            raise ConfigError(
                f"prediction_type: unknown {prediction_type!r}; choose 'auto', 'scores' or 'labels'"
            )
        y_true = _as_array(y_true, "y_true")
        y_pred = _as_array(y_pred, "y_pred")
        _same_length(y_true, y_pred)
        if self.task == "regression":
            return self._regression(y_true, y_pred)
        return self._classification(y_true, y_pred, prediction_type)

    def _classification(
        self, y_true: np.ndarray, y_pred: np.ndarray, prediction_type: str
    ) -> EvaluationReport:
        truth = _class_indices(y_true)
        declared = len(self.class_names) if self.class_names else None
        scores = None
        if y_pred.ndim == 2 and y_pred.shape[1] > 1:
            if prediction_type == "labels":
                raise DataError(
                    f"y_pred: labels must have shape (n,) or (n, 1), got {y_pred.shape}"
                )
            scores = y_pred.astype(np.float64)
            labels = np.argmax(scores, axis=1)
            if declared is not None and declared != scores.shape[1]:
                raise DataError(
                    f"y_pred has {scores.shape[1]} class columns but {declared} class_names were given"
                )
            n_classes = scores.shape[1]
        else:
            flat = y_pred[:, 0] if y_pred.ndim == 2 else y_pred
            if flat.ndim != 1:
                raise DataError(
                    f"y_pred: expected (n,), (n, 1) or (n, classes), got shape {y_pred.shape}"
                )
            if prediction_type == "auto":
                as_labels = _is_integral(flat)
            else:
                as_labels = prediction_type == "labels"
            if as_labels:
                if not _is_integral(flat):
                    raise DataError("y_pred: class labels must be whole numbers")
                labels = flat.astype(np.int64)
                if labels.size and labels.min() < 0:
                    raise DataError("y_pred: class labels must be non-negative integers")
                n_classes = declared or max(2, int(max(truth.max(), labels.max())) + 1)
            else:
                if flat.min() < 0 or flat.max() > 1:
                    raise DataError(
                        "y_pred: a single column of non-integer values is read as positive-class "
                        f"probabilities and must lie in [0, 1]; got range [{flat.min()}, {flat.max()}]"
                    )
                if declared not in (None, 2):
                    raise DataError(
                        f"y_pred: one probability column means a binary problem, but "
                        f"{declared} class_names were given"
                    )
                scores = flat.astype(np.float64)
                labels = (flat > 0.5).astype(np.int64)
                n_classes = 2
        for what, values in (("y_true", truth), ("y_pred", labels)):
            if values.max() >= n_classes:
                raise DataError(
                    f"{what}: class index {int(values.max())} out of range for {n_classes} classes"
                )
        result = scoring.classification_scores(truth, labels, n_classes, scores)
        names = scoring.class_labels(n_classes, self.class_names)
        per = result["per_class"]
        per_class = {
            name: {
                "precision": float(per["precision"][i]),
                "recall": float(per["recall"][i]),
                "f1": float(per["f1"][i]),
                "support": int(per["support"][i]),
            }
            for i, name in enumerate(names)
        }
        return EvaluationReport(
            task="classification",
            metrics=result["metrics"],
            n_samples=int(len(truth)),
            class_names=names,
            confusion_matrix=result["confusion_matrix"].tolist(),
            per_class=per_class,
            notes=result["notes"],
        )

    def _regression(self, y_true: np.ndarray, y_pred: np.ndarray) -> EvaluationReport:
        def as_2d(array, what):
            if array.ndim == 1:
                return array[:, None]
            if array.ndim != 2:
                raise DataError(f"{what}: expected shape (n,) or (n, outputs), got {array.shape}")
            return array

        truth, pred = as_2d(y_true, "y_true"), as_2d(y_pred, "y_pred")
        if truth.shape != pred.shape:
            raise DataError(
                f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
                "regression needs one prediction per target value"
            )
        overall, per_output = scoring.regression_scores(truth, pred)
        notes = []
        if len(truth) < 2:
            notes.append("r2 is not well-defined with fewer than 2 samples")
        return EvaluationReport(
            task="regression",
            metrics=overall,
            n_samples=int(len(truth)),
            per_output=per_output,
            notes=notes,
        )


def sample_count(x: Any) -> Optional[int]:
    """Sample count of array-like model input, or None for inputs we cannot size."""
    if isinstance(x, Mapping):
        x = next(iter(x.values()), None)
    elif isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        x = x[0]
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    if isinstance(x, (list, tuple)):
        return len(x)
    return None
