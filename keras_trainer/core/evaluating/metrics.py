"""Whether a metric is better higher or lower: the one rule every part of keras_trainer uses.

Early stopping and checkpoints (`monitor` with mode "auto"), the tuner's objective,
and the comparison tables all ask `metric_mode`. Pure Python: no Keras import.

Example:

>>> metric_mode("val_accuracy")
'max'
>>> metric_mode("val_loss")
'min'
"""

from __future__ import annotations

from keras_trainer.errors import ConfigError

# Words (between underscores) of metric names where higher is better; everything
# else (loss, errors such as mse/mae/rmse, sizes, latencies) is better lower, as in
# Keras' own "auto" mode.
HIGHER_IS_BETTER = frozenset(
    (
        "acc",
        "accuracy",
        "auc",
        "precision",
        "recall",
        "f1",
        "r2",
        "similarity",
        "specificity",
        "sensitivity",
        "iou",
        "sharpe",
        "sortino",
        "match",
        "speedup",
        "score",
        "correlation",
        "true",
    )
)


def higher_is_better(metric: str) -> bool:
    """Whether larger values of `metric` ("val_accuracy", "mae", "sharpe") are better."""
    return any(word in HIGHER_IS_BETTER for word in metric.removeprefix("val_").split("_"))


def metric_mode(metric: str, mode: str = "auto") -> str:
    """Returns "max" or "min" for `metric`; an explicit `mode` "min"/"max" wins.

    Raises:
        ConfigError: `mode` is not "auto", "min" or "max".
    """
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"mode: must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if higher_is_better(metric) else "min"


__all__ = ["HIGHER_IS_BETTER", "higher_is_better", "metric_mode"]
