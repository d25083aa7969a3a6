"""`TrainingHistory`: what a training run did, epoch by epoch."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.evaluating.metrics import metric_mode
from keras_trainer.core.saving.atomic import write_json_atomic


@dataclasses.dataclass
class TrainingHistory:
    """Per-epoch record of a training run, returned by `fit`.

    Attributes:
        history: Metric name (`loss`, `val_loss`, `accuracy`, ...) to one value per epoch.
        epochs: The epoch numbers (0-based) the values belong to.
        learning_rates: The learning rate at the end of each epoch.
        epoch_times: Wall-clock seconds of each epoch.
        monitor: The metric that decides the best epoch.
        best_epoch: The epoch with the best `monitor` value, or `None`.
        best_value: That value, or `None`.
        stopped_early: Whether early stopping ended the run.
        resumed_from_epoch: The epoch (0-based) a run resumed from a checkpoint
            started at, or `None` when it did not resume.
        resumed_from_step: The batches of that epoch its checkpoint had already
            trained (0 for a checkpoint at an epoch's end), or `None`.
        engine: The training loop that ran the epochs: "keras" or "fused".
    """

    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epochs: list[int] = dataclasses.field(default_factory=list)
    learning_rates: list[float] = dataclasses.field(default_factory=list)
    epoch_times: list[float] = dataclasses.field(default_factory=list)
    monitor: str = "val_loss"
    mode: str = "min"
    best_epoch: Optional[int] = None
    best_value: Optional[float] = None
    stopped_early: bool = False
    resumed_from_epoch: Optional[int] = None
    resumed_from_step: Optional[int] = None
    engine: Optional[str] = None

    @property
    def train_loss(self) -> list[float]:
        return self.history.get("loss", [])

    @property
    def val_loss(self) -> list[float]:
        return self.history.get("val_loss", [])

    def record(
        self, epoch: int, logs: dict[str, Any], learning_rate: float, seconds: float
    ) -> None:
        """Appends one epoch's logs and updates the best epoch."""
        self.epochs.append(epoch)
        for name, value in logs.items():
            if name == "learning_rate":
                continue
            self.history.setdefault(name, []).append(float(value))
        self.learning_rates.append(float(learning_rate))
        self.epoch_times.append(float(seconds))
        value = logs.get(self.monitor)
        if value is None or math.isnan(float(value)):
            return
        better = (
            self.best_value is None
            or (self.mode == "min" and value < self.best_value)
            or (self.mode == "max" and value > self.best_value)
        )
        if better:
            self.best_epoch, self.best_value = epoch, float(value)

    def to_dict(self) -> dict[str, Any]:
        """Returns the history as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingHistory:
        return cls(**data)

    def summary(self) -> str:
        """One line per metric with its last value, and the best epoch."""
        lines = [f"{name}: {values[-1]:.4f}" for name, values in self.history.items() if values]
        if self.best_epoch is not None:
            lines.append(
                f"best {self.monitor}: {self.best_value:.4f} at epoch {self.best_epoch + 1}"
            )
        return "\n".join(lines)


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """Resolves 'auto' with the one direction rule (`keras_trainer.core.evaluating.metrics.metric_mode`)."""
    return metric_mode(monitor, mode)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The optimizer's learning rate now (schedules evaluated at its iterations)."""
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))


class HistoryRecorder(keras.callbacks.Callback):
    """Fills a `TrainingHistory` and writes it as JSON after every epoch.

    Args:
        history: The `TrainingHistory` to fill (may hold epochs of a resumed run).
        json_path: Where to write `history.json` atomically, or `None`.
    """

    def __init__(self, history: TrainingHistory, json_path: Optional[str] = None):
        super().__init__()
        self.training_history = history
        self.json_path = json_path
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = current_learning_rate(self.model.optimizer)
        if logs is not None:
            # The callbacks after this one (CSVLogger, TensorBoard) log it too.
            logs["learning_rate"] = learning_rate
        self.training_history.record(
            epoch, dict(logs or {}), learning_rate, time.perf_counter() - self._started
        )
        if self.json_path:
            write_json_atomic(self.json_path, self.training_history.to_dict())
