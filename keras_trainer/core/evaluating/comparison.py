"""Several trained models scored side by side: `compare_models`, `ModelComparison`.

Each model is scored by `ModelEvaluator` on the same data and timed over it, so
one table shows scores, parameter counts and inference speed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from keras_trainer.core.evaluating.evaluation import (
    ModelEvaluator,
    _as_array,
    _check_task,
    sample_count,
)
from keras_trainer.core.evaluating.metrics import higher_is_better
from keras_trainer.errors import ConfigError, DataError

# Columns `ModelComparison.to_text` shows by default (the full set is wide).
_HEADLINE = (
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "roc_auc",
    "roc_auc_ovr_macro",
    "mse",
    "mae",
    "rmse",
    "r2",
    "n_params",
    "inference_ms_per_sample",
)


@dataclasses.dataclass
class ComparisonRow:
    """One model's line in a `ModelComparison`."""

    name: str
    metrics: dict
    n_params: int
    inference_seconds: float
    inference_ms_per_sample: float

    def values(self) -> dict:
        """All comparable numbers of this row: scores, size and speed."""
        return {
            **self.metrics,
            "n_params": self.n_params,
            "inference_seconds": self.inference_seconds,
            "inference_ms_per_sample": self.inference_ms_per_sample,
        }


@dataclasses.dataclass
class ModelComparison:
    """Scores, parameter counts and inference times of several models.

    Attributes:
        task: The evaluation task.
        rows: One `ComparisonRow` per model, in the order given.
        reports: Model name -> its full `EvaluationReport`.
    """

    task: str
    rows: list
    reports: dict

    def columns(self) -> list[str]:
        """Names usable with `best`: every score present, then size and speed."""
        names: list[str] = []
        for row in self.rows:
            for key in row.values():
                if key not in names:
                    names.append(key)
        return names

    def best(self, metric: str) -> str:
        """Returns the name of the best model by `metric`.

        Lower is better for mse, mae, rmse, n_params and inference times; higher
        for every other score. Models whose score is undefined are skipped.

        Args:
            metric: A column name (see `columns()`).

        Returns:
            The model name.
        """
        if metric not in self.columns():
            raise ConfigError(
                f"metric: unknown {metric!r}; choose one of {', '.join(self.columns())}"
            )
        scored = [(row.values().get(metric), row.name) for row in self.rows]
        scored = [(v, n) for v, n in scored if v is not None and not math.isnan(v)]
        if not scored:
            raise DataError(f"metric {metric!r} is undefined for every model")
        pick = max if higher_is_better(metric) else min
        # min and max return the first of equal items: ties go to the first model listed.
        return pick(scored, key=lambda item: item[0])[1]

    def to_dict(self) -> dict:
        """Returns the table as a JSON-ready dict."""
        return {
            "task": self.task,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "reports": {name: report.to_dict() for name, report in self.reports.items()},
        }

    def to_text(self, columns: Optional[Sequence[str]] = None) -> str:
        """Returns the table as aligned plain text, one line per model.

        Args:
            columns: Which columns to show (see `columns()`); `None` shows the
                headline scores, the parameter count and ms per sample.

        Returns:
            The table text.
        """
        available = self.columns()
        if columns is None:
            columns = [c for c in available if c in _HEADLINE]
        unknown = [c for c in columns if c not in available]
        if unknown:
            raise ConfigError(f"columns: unknown {unknown}; choose from {', '.join(available)}")
        name_width = max(5, max(len(row.name) for row in self.rows))
        widths = [max(10, len(c)) for c in columns]
        header = f"{'model':<{name_width}}  " + "  ".join(
            f"{c:>{w}}" for c, w in zip(columns, widths)
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            values = row.values()
            cells = []
            for column, width in zip(columns, widths):
                value = values.get(column)
                if value is None:
                    text = "n/a"
                elif column == "n_params":
                    text = str(int(value))
                else:
                    text = f"{value:.4f}"
                cells.append(f"{text:>{width}}")
            lines.append(f"{row.name:<{name_width}}  " + "  ".join(cells))
        return "\n".join(lines)


def compare_models(
    models: Mapping[str, Any],
    x: Any,
    y: Any,
    task: str = "classification",
    class_names: Optional[Sequence[str]] = None,
    batch_size: int = 256,
) -> ModelComparison:
    """Evaluates several trained models on the same data, side by side.

    Each model is run once untimed on the first batch (so tracing and
    compilation do not count), then timed over all of `x`.

    Args:
        models: Display name -> trained Keras model.
        x: Inputs shared by every model.
        y: Targets (see `ModelEvaluator.evaluate`).
        task: `"classification"` or `"regression"`.
        class_names: Class display names (classification).
        batch_size: Prediction batch size.

    Returns:
        A `ModelComparison`.

    Example:

    ```python
    table = compare_models({"small": small, "large": large}, x_test, y_test)
    print(table.to_text())
    table.best("f1_macro")  # -> "large" (the name of the best model)
    ```
    """
    _check_task(task)
    if not models:
        raise ConfigError("models: pass at least one model to compare")
    y = _as_array(y, "y")
    n_x = sample_count(x)
    if n_x is not None and n_x != len(y):
        raise DataError(f"x has {n_x} samples but y has {len(y)}")
    rows, reports = [], {}
    for name, model in models.items():
        evaluator = ModelEvaluator(model, task=task, class_names=class_names)
        warm_up = _first_rows(x, min(batch_size, len(y)))
        evaluator.predict(warm_up, batch_size=batch_size)
        start = time.perf_counter()
        predictions = evaluator.predict(x, batch_size=batch_size)
        seconds = time.perf_counter() - start
        report = evaluator.evaluate_predictions(y, predictions, prediction_type="scores")
        reports[name] = report
        rows.append(
            ComparisonRow(
                name=str(name),
                metrics=dict(report.metrics),
                n_params=int(model.count_params()),
                inference_seconds=float(seconds),
                inference_ms_per_sample=float(seconds * 1000.0 / len(y)),
            )
        )
    return ModelComparison(task=task, rows=rows, reports=reports)


def _first_rows(x: Any, n: int) -> Any:
    if isinstance(x, Mapping):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        return type(x)(v[:n] for v in x)
    return x[:n]
