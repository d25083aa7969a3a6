"""Search objectives: trading ratios (`sharpe`, `sortino`) and Keras metrics.

Trading ratios (defined here, computed on the validation data after each epoch):

* position[t] = sign(prediction[t]) for a regression model predicting a
  return; sign(p[t] - 0.5) for a classifier with one sigmoid output (p = P(up));
  sign(p[t, 1] - 0.5) for a two-class softmax. Positions are -1, 0 or +1.
* strategy return r[t] = position[t] * actual_return[t], where actual_return is
  the realized return of the period the prediction is for (for regression, by
  default the target itself; otherwise pass `val_returns`).
* sharpe  = mean(r) / std(r) * sqrt(A)
* sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(A)
  with A the periods per year (`annualization_factor`, 252 trading days by
  default), population standard deviation, and no risk-free rate. When the
  denominator is 0 (no variation / no losing period) the ratio is 0.0: the data
  gives no risk-adjusted evidence either way.

Runtime objectives (the JIT strategy model's, `keras_trainer.jit.model.choices`):
`regret` = total measured time of the strategies the model picks (its most likely
class) / total time of each sample's fastest strategy, and `geomean_regret`, the
geometric mean of the per-sample ratios; both 1.0 at best, minimized. They need the
measured times of every validation sample under every strategy (`val_times`).

Any other name is a Keras metric ("accuracy", "mae", "auc", ...), looked up
with `keras.metrics.get` and read from the logs as `val_<name>`; "loss" is the
validation loss.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config.tuning import RUNTIME_METRICS, TRADING_METRICS
from keras_trainer.core.evaluating.metrics import higher_is_better
from keras_trainer.errors import ConfigError, TuningError

BUILTIN_METRICS = ("sharpe", "sortino", "regret", "geomean_regret", "accuracy", "loss")
_SHORT_ERRORS = ("mae", "mse", "mape", "msle", "rmse")


def keras_metric_names() -> list[str]:
    """Metric names `keras.metrics.get` accepts (functions, snake_case classes, short aliases)."""
    candidates = set(_SHORT_ERRORS)
    for name in dir(keras.metrics):
        if name.startswith("_") or name in ("get", "serialize", "deserialize", "Metric"):
            continue
        candidates.add(
            name if name.islower() else re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()
        )
    valid = []
    for name in sorted(candidates):
        try:
            keras.metrics.get(name)
        except (ValueError, TypeError):
            continue
        valid.append(name)
    return valid


@dataclasses.dataclass(frozen=True)
class Objective:
    """A resolved search objective.

    Attributes:
        metric: The user's name without "val_" ("sharpe", "accuracy", "mae").
        name: The key in the validation logs ("val_sharpe", "val_accuracy").
        direction: "max" or "min".
        kind: "trading", "runtime", "loss" or "keras".
    """

    metric: str
    name: str
    direction: str
    kind: str

    @property
    def maximize(self) -> bool:
        return self.direction == "max"

    def better(self, values: list[float]) -> float:
        finite = [v for v in values if v == v]
        if not finite:
            return float("nan")
        return max(finite) if self.maximize else min(finite)


def resolve_objective(
    metric: str, maximize: Optional[bool] = None, path: str = "tuning.metric"
) -> Objective:
    """Turns a metric name into an `Objective`.

    Raises:
        ConfigError: unknown name; the message lists the valid ones.
    """
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{path}: must be a metric name, got {metric!r}")
    base = metric[4:] if metric.startswith("val_") else metric
    if base in TRADING_METRICS:
        kind = "trading"
    elif base in RUNTIME_METRICS:
        kind = "runtime"
    elif base == "loss":
        kind = "loss"
    else:
        try:
            keras.metrics.get(base)
        except (ValueError, TypeError):
            valid = list(BUILTIN_METRICS) + [
                n for n in keras_metric_names() if n not in BUILTIN_METRICS
            ]
            close = difflib.get_close_matches(base, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{path}: unknown metric {metric!r}{hint}. Valid: {', '.join(BUILTIN_METRICS)}, or a Keras "
                f"metric name: {', '.join(n for n in valid if n not in BUILTIN_METRICS)}"
            ) from None
        kind = "keras"
    if maximize is None:
        maximize = kind == "trading" or higher_is_better(base)
    return Objective(
        metric=base, name=f"val_{base}", direction="max" if maximize else "min", kind=kind
    )


def positions(predictions: Any, classification: bool = False) -> np.ndarray:
    """Trading positions (-1, 0, +1) from model outputs (see the module docstring).

    Raises:
        TuningError: outputs with more than two classes have no position rule.
    """
    predictions = np.asarray(predictions, dtype="float64")
    if predictions.ndim == 2 and predictions.shape[1] == 2:
        return np.sign(predictions[:, 1] - 0.5)
    if predictions.ndim == 2 and predictions.shape[1] > 2:
        raise TuningError(
            f"sharpe/sortino need one output (a return or P(up)) or two classes, got predictions of shape "
            f"{predictions.shape}"
        )
    flat = predictions.reshape(-1)
    return np.sign(flat - 0.5) if classification else np.sign(flat)


def _strategy_returns(predictions, returns, classification: bool) -> np.ndarray:
    position = positions(predictions, classification)
    returns = np.asarray(returns, dtype="float64").reshape(-1)
    if len(returns) != len(position):
        raise TuningError(
            f"{len(position)} predictions but {len(returns)} returns; they must match"
        )
    return position * returns


def sharpe_ratio(
    predictions: Any,
    returns: Any,
    classification: bool = False,
    annualization_factor: float = 252.0,
) -> float:
    """Annualized Sharpe ratio of trading the sign of `predictions` on `returns`.

    Example:

    >>> sharpe_ratio([0.1, -0.2, 0.3], [0.01, -0.02, 0.005])
    """
    strategy = _strategy_returns(predictions, returns, classification)
    std = strategy.std()
    return 0.0 if std == 0 else float(strategy.mean() / std * np.sqrt(annualization_factor))


def sortino_ratio(
    predictions: Any,
    returns: Any,
    classification: bool = False,
    annualization_factor: float = 252.0,
) -> float:
    """Annualized Sortino ratio (downside deviation in the denominator); see the module docstring."""
    strategy = _strategy_returns(predictions, returns, classification)
    downside = np.sqrt(np.mean(np.minimum(strategy, 0.0) ** 2))
    return (
        0.0 if downside == 0 else float(strategy.mean() / downside * np.sqrt(annualization_factor))
    )


class TradingMetricCallback(keras.callbacks.Callback):
    """Adds `val_sharpe` or `val_sortino` to the epoch logs (before later callbacks read them).

    Args:
        metric: "sharpe" or "sortino".
        x_val: Validation inputs.
        returns: Realized return of each validation sample.
        classification: Whether the model outputs P(up) rather than a return.
        annualization_factor: Periods per year.
        batch_size: Prediction batch size.
    """

    def __init__(
        self,
        metric: str,
        x_val,
        returns,
        classification: bool,
        annualization_factor: float = 252.0,
        batch_size: int = 256,
    ):
        super().__init__()
        self.metric = metric
        self.x_val = x_val
        self.returns = np.asarray(returns, dtype="float64").reshape(-1)
        self.classification = classification
        self.annualization_factor = annualization_factor
        self.batch_size = batch_size
        self._function = sharpe_ratio if metric == "sharpe" else sortino_ratio
        self.values: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        predictions = self.model.predict(self.x_val, batch_size=self.batch_size, verbose=0)
        value = self._function(
            predictions, self.returns, self.classification, self.annualization_factor
        )
        self.values.append(value)
        logs[f"val_{self.metric}"] = value


class RegretCallback(keras.callbacks.Callback):
    """Adds `val_regret` (or `val_geomean_regret`) to the epoch logs: the runtime of the
    strategies the model picks on the validation samples against their fastest.

    Args:
        metric: "regret" or "geomean_regret".
        x_val: Validation inputs.
        times: `(n, k)` measured times of each validation sample under each of
            the model's k strategies (columns in class order).
        batch_size: Prediction batch size.
    """

    def __init__(self, metric: str, x_val, times, batch_size: int = 256):
        super().__init__()
        self.metric = metric
        self.x_val = x_val
        self.times = np.asarray(times, dtype="float64")
        self.batch_size = batch_size
        self.values: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        from keras_trainer.jit.model.choices import runtime_report

        predictions = self.model.predict(self.x_val, batch_size=self.batch_size, verbose=0)
        chosen = np.argmax(np.asarray(predictions), axis=-1)
        names = [str(k) for k in range(self.times.shape[1])]
        value = float(runtime_report(chosen, self.times, names)[self.metric])
        self.values.append(value)
        logs[f"val_{self.metric}"] = value
