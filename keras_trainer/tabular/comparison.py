"""Training several architectures on the same data and tabulating the results.

Every model trains through the core's shared `fit` with a `TrainingConfig`
(seeded, early stopping off so each gets the same epochs), then is measured
on the validation data: the task metric, the parameter count, the training
wall time and the single-sample inference latency (median of compiled
`predict_on_batch` calls after a warm-up).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.evaluating.metrics import higher_is_better
from keras_trainer.core.evaluating.tables import ResultTable
from keras_trainer.core.inputs.data import check_pair
from keras_trainer.core.training.fit import fit
from keras_trainer.errors import DataError
from keras_trainer.tabular.config import TabularModelConfig
from keras_trainer.tabular.factory import ModelFactory, default_loss, default_metrics


@dataclasses.dataclass
class ArchitectureResult:
    """How one architecture did.

    Attributes:
        name: The config's display name.
        architecture: `ArchitectureType` value.
        metric: Name of the validation metric ("val_accuracy" or "val_mae").
        value: Its value after the last epoch.
        val_loss: Validation loss after the last epoch.
        parameters: Trainable + non-trainable parameter count.
        training_time_s: Wall seconds of `fit`.
        latency_ms: Median milliseconds to predict one sample.
        history: Metric name -> per-epoch values.
        model: The trained model.
    """

    name: str
    architecture: str
    metric: str
    value: float
    val_loss: float
    parameters: int
    training_time_s: float
    latency_ms: float
    history: dict
    model: Any = dataclasses.field(repr=False, default=None)

    def row(self) -> dict:
        return {
            "name": self.name,
            "architecture": self.architecture,
            self.metric: round(self.value, 4),
            "val_loss": round(self.val_loss, 4),
            "parameters": self.parameters,
            "training_time_s": round(self.training_time_s, 3),
            "latency_ms": round(self.latency_ms, 3),
        }


class ArchitectureComparison(ResultTable):
    """Results of `compare_architectures`, one row per architecture, in input order."""

    @property
    def results(self) -> list[ArchitectureResult]:
        return self.records

    def best(self) -> ArchitectureResult:
        """Highest accuracy, or lowest error for regression metrics."""
        higher = higher_is_better(self.records[0].metric)
        return (max if higher else min)(self.records, key=lambda r: r.value)


def measure_latency(model, sample: np.ndarray, repeats: int = 20) -> float:
    """Median milliseconds of `model.predict_on_batch(sample)` after one warm-up call."""
    model.predict_on_batch(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(sample)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def test_architecture(
    config: TabularModelConfig,
    train_data: tuple,
    val_data: tuple,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 42,
    training: Optional[TrainingConfig] = None,
) -> ArchitectureResult:
    """Trains one architecture and measures it.

    Args:
        config: The architecture; `input_size` (and `sequence_length`) are taken
            from the data when `None`.
        train_data: `(X, y)` training arrays (standardize them first).
        val_data: `(X_val, y_val)`.
        epochs, batch_size, learning_rate: Training settings.
        seed: Seeds initialization and shuffling.
        training: A full `TrainingConfig` overriding the three settings above.

    Returns:
        An `ArchitectureResult`.

    Raises:
        DataError: mismatched or malformed arrays; ConfigError: bad config.

    Example:

    >>> result = test_architecture(config, (x_tr, y_tr), (x_va, y_va), epochs=5)
    >>> result.row()
    """
    x, y = check_pair(train_data, "train_data")
    x_val, y_val = check_pair(val_data, "val_data")
    if config.input_size is None:
        config = config.replace(input_size=int(x.shape[-1]))
    if x.ndim == 3 and config.sequence_length is None:
        config = config.replace(sequence_length=int(x.shape[1]))
    training = training or TrainingConfig.from_dict(
        {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "early_stopping_patience": 0,
            "seed": seed,
            "verbose": 0,
            "metrics": default_metrics(config),
        },
        "training",
    )
    model = ModelFactory(seed=seed).create_model(config)
    start = time.perf_counter()
    history = fit(
        model, x, y, config=training, validation_data=(x_val, y_val), loss=default_loss(config, y)
    )
    seconds = time.perf_counter() - start
    metric = "val_" + default_metrics(config)[0]
    return ArchitectureResult(
        name=config.display_name,
        architecture=config.architecture_type.value,
        metric=metric,
        value=float(history.history[metric][-1]),
        val_loss=float(history.history["val_loss"][-1]),
        parameters=int(model.count_params()),
        training_time_s=seconds,
        latency_ms=measure_latency(model, x_val[:1]),
        history=dict(history.history),
        model=model,
    )


# pytest would collect `test_architecture` as a test from modules importing it.
test_architecture.__test__ = False


def compare_architectures(
    configs: Union[Iterable[TabularModelConfig], Mapping[str, TabularModelConfig]],
    train_data: tuple,
    val_data: tuple,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 42,
    training: Optional[TrainingConfig] = None,
) -> ArchitectureComparison:
    """Runs `test_architecture` on each config with the same data and settings.

    Args:
        configs: A list of configs, or a dict name -> config (names label rows).
        Other arguments: as `test_architecture`.

    Returns:
        An `ArchitectureComparison` (`.rows()`, `.to_markdown()`, `.to_pandas()`, `.best()`).

    Example:

    >>> table = compare_architectures([ff, lstm, hybrid], (x_tr, y_tr), (x_va, y_va), epochs=5)
    >>> print(table.to_markdown())
    """
    if isinstance(configs, Mapping):
        configs = [config.replace(name=name) for name, config in configs.items()]
    configs = list(configs)
    if not configs:
        raise DataError("compare_architectures: got no configs to compare")
    tasks = {config.task for config in configs}
    if len(tasks) > 1:
        raise DataError(
            f"compare_architectures: configs mix tasks {sorted(tasks)}; compare one task at a time"
        )
    return ArchitectureComparison(
        [
            test_architecture(
                config, train_data, val_data, epochs, batch_size, learning_rate, seed, training
            )
            for config in configs
        ]
    )
