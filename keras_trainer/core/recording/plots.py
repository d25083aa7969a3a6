"""PNG plots of training curves and confusion matrices (matplotlib, `[plots]` extra).

matplotlib is imported only when a plot is drawn, and only its object-oriented
API with the Agg canvas is used: drawing never opens a window and never changes
the pyplot backend of the caller (a notebook keeps its own). Files are written
atomically.

Example:

```python
plot_training_curves(history, "runs/curves.png")  # a dict or a TrainingHistory
plot_confusion_matrix(report, "runs/confusion.png")  # an EvaluationReport
```
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_trainer.core.recording.runs import RunFolder, load_history
from keras_trainer.core.saving.atomic import atomic_path
from keras_trainer.errors import DataError

# History keys that hold the learning rate rather than a metric.
_LR_KEYS = ("learning_rate", "lr")
# A memory panel (`peak_host_rss_mb`, ...) spans at least this share of its mean, so that
# a few MB of noise on a flat curve do not fill the panel and read as a leak.
MEMORY_MIN_SPAN = 0.1


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "plots need matplotlib: pip install 'keras-trainer[plots]'"
        ) from error
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, path: str) -> str:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    return os.path.abspath(os.fspath(path))


def _history_dict(history: Any) -> tuple[dict, list, list]:
    """Splits a history into metric series, a learning-rate series and epoch numbers."""
    if isinstance(history, (str, os.PathLike)):
        history = load_history(history)
    if isinstance(history, Mapping) and isinstance(history.get("history"), Mapping):
        # `TrainingHistory.to_dict()`, our history.json, or `load_history`'s result.
        epochs = [int(e) + 1 for e in history.get("epochs") or []]
        rates = list(history.get("learning_rates") or [])
        series, more_rates, _ = _history_dict(history["history"])
        return series, rates or more_rates, epochs
    learning_rates = list(getattr(history, "learning_rates", None) or [])
    # TrainingHistory numbers epochs from 0 (a resumed run may not start at 0).
    epochs = [int(e) + 1 for e in (getattr(history, "epochs", None) or [])]
    if hasattr(history, "history") and not isinstance(history, Mapping):
        history = history.history
    if not isinstance(history, Mapping):
        raise DataError(
            "history: expected a dict of name -> per-epoch values or a TrainingHistory, "
            f"got {type(history).__name__}"
        )
    series = {}
    for name, values in history.items():
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise DataError(f"history[{name!r}]: expected a list of numbers") from error
        if name in _LR_KEYS:
            learning_rates = learning_rates or array.tolist()
        else:
            series[str(name)] = array
    if not series or all(len(v) == 0 for v in series.values()):
        raise DataError("history: has no per-epoch values to plot")
    return series, learning_rates, epochs


def _x(epochs: list, n: int) -> np.ndarray:
    return np.asarray(epochs) if len(epochs) == n else np.arange(1, n + 1)


def _is_memory(name: str) -> bool:
    return name.endswith("_mb") or "rss" in name or "memory" in name


def _memory_limits(values: np.ndarray) -> tuple[float, float] | None:
    """y limits around `values` spanning at least `MEMORY_MIN_SPAN` of their mean."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    low, high = float(finite.min()), float(finite.max())
    span = max(high - low, MEMORY_MIN_SPAN * abs(float(finite.mean())), 1.0)
    middle = (low + high) / 2
    return middle - span / 2 - 0.05 * span, middle + span / 2 + 0.05 * span


def best_epoch(series: dict[str, np.ndarray], epochs: list) -> int | None:
    """The epoch (numbered from 1) of the lowest `val_loss`, else of the lowest `loss`."""
    for name in ("val_loss", "loss"):
        values = series.get(name)
        if values is not None and len(values) and np.isfinite(values).any():
            return int(_x(epochs, len(values))[int(np.nanargmin(values))])
    return None


def plot_training_curves(history: Any, path: str) -> str:
    """Plots loss and metrics per epoch (train and validation), plus the LR.

    One panel per quantity: `loss` with `val_loss`, then each metric with its
    `val_` counterpart, then the learning rate (log scale) when the history has
    one (`TrainingHistory.learning_rates`, or a `learning_rate`/`lr` key). A
    dashed line marks the best epoch (lowest `val_loss`, else `loss`) in every
    panel; a memory panel spans at least 10 % of its mean (`MEMORY_MIN_SPAN`).

    Args:
        history: A dict name -> per-epoch values (Keras `History.history`), a
            `TrainingHistory` (anything with `.history` and `.learning_rates`) or
            its `to_dict()`, or the path of a `history.json`, a `history.csv` or
            a run folder (`runs/<name>[/version_N]`).
        path: Where to write the PNG (atomically).

    Returns:
        The absolute path written.
    """
    return _save_png(training_figure(history), path)


def training_figure(history: Any):
    """The figure `plot_training_curves` saves (a matplotlib `Figure`, not yet written)."""
    series, learning_rates, epochs = _history_dict(history)
    best = best_epoch(series, epochs)
    groups: dict[str, list[str]] = {}
    for name in series:
        base = name[4:] if name.startswith("val_") else name
        groups.setdefault(base, []).append(name)
    # Loss first: it is the curve everyone looks for.
    order = sorted(groups, key=lambda base: (base != "loss", list(groups).index(base)))
    panels = len(order) + (1 if learning_rates else 0)
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    figure = _figure(4.5 * columns, 3.2 * rows)
    from matplotlib.ticker import MaxNLocator  # importable once _figure succeeded

    axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    for axis, base in zip(axes, order):
        for name in sorted(groups[base], key=lambda n: n.startswith("val_")):
            values = series[name]
            label = "validation" if name.startswith("val_") else "train"
            axis.plot(_x(epochs, len(values)), values, marker="o", markersize=3, label=label)
        if _is_memory(base):
            limits = _memory_limits(np.concatenate([series[name] for name in groups[base]]))
            if limits is not None:
                axis.set_ylim(*limits)
        if best is not None:
            axis.axvline(
                best, color="gray", linestyle="--", linewidth=1, label=f"best epoch {best}"
            )
        axis.set_title(base)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    if learning_rates:
        axis = axes[len(order)]
        axis.plot(_x(epochs, len(learning_rates)), learning_rates, color="tab:green")
        if min(learning_rates) > 0:
            axis.set_yscale("log")
        axis.set_title("learning rate")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    for axis in axes[panels:]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def plot_confusion_matrix(report: Any, path: str, normalize: bool = False) -> str:
    """Draws a classification report's confusion matrix as an annotated heatmap.

    Args:
        report: An `EvaluationReport` (or its `to_dict()`) of a classification task.
        path: Where to write the PNG (atomically).
        normalize: Color and annotate by row share (recall per class) instead of counts.

    Returns:
        The absolute path written.
    """
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    matrix = data.get("confusion_matrix")
    if matrix is None:
        raise DataError(
            f"report: has no confusion matrix (task {data.get('task')!r}); "
            "only classification reports do"
        )
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise DataError(f"report: confusion matrix must be square, got shape {counts.shape}")
    names = data.get("class_names") or [str(i) for i in range(len(counts))]
    shown = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(4.0, 0.6 * len(names) + 2.5)
    figure = _figure(size + 1.0, size)
    axis = figure.subplots()
    image = axis.imshow(shown, cmap="Blues", vmin=0.0)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    crowded = len(names) > 4  # slant long tick labels so they do not overlap
    axis.set_xticks(
        ticks, labels=names, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    axis.set_yticks(ticks, labels=names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("confusion matrix" + (" (row-normalized)" if normalize else ""))
    threshold = shown.max() / 2.0 if shown.size else 0.0
    for i in range(shown.shape[0]):
        for j in range(shown.shape[1]):
            text = f"{shown[i, j]:.2f}" if normalize else str(int(counts[i, j]))
            color = "white" if shown[i, j] > threshold else "black"
            axis.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    figure.tight_layout()
    return _save_png(figure, path)


def plot_run(run: RunFolder, history: Any = None, report: Any = None) -> list[str]:
    """Draws a run folder's training curves and (for classification) its confusion matrix.

    Args:
        run: The run folder; the PNGs are written into it.
        history: A history as `plot_training_curves` takes it; default the
            run's `history.json`/`history.csv`.
        report: An `EvaluationReport` or its dict; default the run's
            `evaluation.json` if there is one.

    Returns:
        The PNG paths written (none when matplotlib is not installed).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    written = []
    if history is None and (
        run.exists(RunFolder.HISTORY_JSON) or run.exists(RunFolder.HISTORY_CSV)
    ):
        history = load_history(run.path)
    if history is not None:
        written.append(plot_training_curves(history, run.file(RunFolder.CURVES)))
    if report is None and run.exists(RunFolder.REPORT_JSON):
        with open(run.file(RunFolder.REPORT_JSON), encoding="utf-8") as handle:
            report = json.load(handle)
    data = report.to_dict() if hasattr(report, "to_dict") else report
    if data and data.get("confusion_matrix") is not None:
        written.append(plot_confusion_matrix(data, run.file(RunFolder.CONFUSION)))
    return written
