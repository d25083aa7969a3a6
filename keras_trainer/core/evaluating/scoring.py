"""Classification and regression scores in plain NumPy.

These are the numbers behind `ModelEvaluator`. They follow scikit-learn's
definitions (the tests compare every value with scikit-learn's), but the core
does not depend on scikit-learn. Where scikit-learn has a choice, we take:

* precision, recall and F1 of a class with no predicted (or no true) samples are
  0, like `zero_division=0`; the macro average includes every class in `labels`;
  the weighted average weights each class by its number of true samples;
* ROC-AUC is the Mann-Whitney statistic with average ranks for ties, which equals
  the trapezoidal area under the ROC curve that scikit-learn computes; scores need
  not be probabilities (any ranking score works);
* one-vs-rest ROC-AUC skips classes that are absent from `y_true` (their AUC is
  undefined; scikit-learn raises instead) and averages over the rest;
* R2 of an output with constant `y_true` is 1.0 for a perfect prediction and 0.0
  otherwise (scikit-learn's `force_finite=True`); multi-output RMSE is the mean of
  the per-output RMSEs (scikit-learn's `root_mean_squared_error`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows are true, columns predicted.

    Args:
        y_true: Integer class indices, shape `(n,)`.
        y_pred: Integer class indices, shape `(n,)`.
        n_classes: Number of classes (rows and columns).

    Returns:
        An int64 array of shape `(n_classes, n_classes)`.
    """
    flat = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def precision_recall_f1(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Args:
        matrix: A confusion matrix from `confusion_matrix`.

    Returns:
        A dict of arrays of length `n_classes`: `precision`, `recall`, `f1`, `support`.
    """
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    # zero_division=0: a class never predicted (or never true) scores 0.
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0
    )
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def average(values: np.ndarray, support: np.ndarray, kind: str) -> float:
    """Macro (`kind="macro"`) or support-weighted (`"weighted"`) mean of per-class values."""
    if kind == "macro":
        return float(np.mean(values))
    total = support.sum()
    return float(np.sum(values * support) / total) if total > 0 else 0.0


def roc_auc_binary(y_true: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """Area under the ROC curve of a binary problem, or `None` when undefined.

    Args:
        y_true: Booleans (or 0/1), True for the positive class, shape `(n,)`.
        scores: Higher means more likely positive, shape `(n,)`.

    Returns:
        The AUC in [0, 1], or `None` if `y_true` holds only one class.
    """
    positive = np.asarray(y_true).astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # Average 1-based ranks; tied scores share the mean of their ranks, which
    # gives a tied positive/negative pair half credit, as the ROC trapezoid does.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]
    u_statistic = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def roc_auc_ovr(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[Optional[float], Optional[float], list[int]]:
    """One-vs-rest ROC-AUC of a multi-class problem, macro and prevalence-weighted.

    Args:
        y_true: Integer class indices, shape `(n,)`.
        scores: One score column per class, shape `(n, n_classes)`.

    Returns:
        `(macro, weighted, skipped)`: the averages over classes present in
        `y_true` (`None` if no class has a defined AUC) and the indices of the
        classes skipped because their AUC is undefined.
    """
    aucs, weights, skipped = [], [], []
    for c in range(scores.shape[1]):
        auc = roc_auc_binary(y_true == c, scores[:, c])
        if auc is None:
            skipped.append(c)
            continue
        aucs.append(auc)
        weights.append(np.sum(y_true == c))
    if not aucs:
        return None, None, skipped
    aucs_arr, weights_arr = np.asarray(aucs), np.asarray(weights, dtype=np.float64)
    return (
        float(aucs_arr.mean()),
        float(np.sum(aucs_arr * weights_arr) / weights_arr.sum()),
        skipped,
    )


def regression_scores(
    y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """MSE, MAE, RMSE and R2, averaged over outputs and per output.

    Args:
        y_true: Targets, shape `(n, m)`.
        y_pred: Predictions, shape `(n, m)`.

    Returns:
        `(overall, per_output)`: `overall` holds the uniform average over the `m`
        outputs of each score; `per_output` one dict per output column.
    """
    y_true = y_true.astype(np.float64)
    error = y_pred.astype(np.float64) - y_true
    mse = np.mean(error**2, axis=0)
    mae = np.mean(np.abs(error), axis=0)
    rmse = np.sqrt(mse)
    residual = np.sum(error**2, axis=0)
    total = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    # force_finite: constant targets give 1.0 when predicted exactly, else 0.0.
    r2 = np.where(
        total > 0,
        1.0 - np.divide(residual, total, out=np.zeros_like(residual), where=total > 0),
        np.where(residual > 0, 0.0, 1.0),
    )
    per_output = [
        {"mse": float(a), "mae": float(b), "rmse": float(c), "r2": float(d)}
        for a, b, c, d in zip(mse, mae, rmse, r2)
    ]
    overall = {
        "mse": float(mse.mean()),
        "mae": float(mae.mean()),
        "rmse": float(rmse.mean()),
        "r2": float(r2.mean()),
    }
    return overall, per_output


def classification_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    scores: Optional[np.ndarray] = None,
) -> dict:
    """Every classification score of `ModelEvaluator` in one dict.

    Args:
        y_true: Integer class indices, shape `(n,)`.
        y_pred: Integer predicted class indices, shape `(n,)`.
        n_classes: Number of classes.
        scores: Optional class scores: shape `(n,)` (positive class of a binary
            problem) or `(n, n_classes)`; enables ROC-AUC.

    Returns:
        A dict with `metrics` (name -> float or None), `per_class` (arrays),
        `confusion_matrix` and `notes` (why a score is missing).
    """
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    per_class = precision_recall_f1(matrix)
    support = per_class["support"]
    metrics: dict[str, Optional[float]] = {"accuracy": float(np.mean(y_true == y_pred))}
    for kind in ("macro", "weighted"):
        for name in ("precision", "recall", "f1"):
            metrics[f"{name}_{kind}"] = average(per_class[name], support, kind)
    notes: list[str] = []
    if scores is not None:
        if n_classes == 2:
            positive = scores if scores.ndim == 1 else scores[:, 1]
            metrics["roc_auc"] = roc_auc_binary(y_true == 1, positive)
            if metrics["roc_auc"] is None:
                notes.append("roc_auc is undefined: y_true holds only one class")
        else:
            macro, weighted, skipped = roc_auc_ovr(y_true, scores)
            metrics["roc_auc_ovr_macro"] = macro
            metrics["roc_auc_ovr_weighted"] = weighted
            if skipped:
                notes.append(
                    "one-vs-rest roc_auc skips classes absent from y_true: "
                    + ", ".join(str(c) for c in skipped)
                )
    return {
        "metrics": metrics,
        "per_class": per_class,
        "confusion_matrix": matrix,
        "notes": notes,
    }


def class_labels(n_classes: int, class_names: Optional[Sequence[str]]) -> list[str]:
    """The display names of classes: `class_names`, or "0", "1", ... ."""
    return list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
