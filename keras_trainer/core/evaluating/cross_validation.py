"""K-fold cross-validation through the shared fit.

`cross_validate` trains one fresh model per fold (each through `fit`, with the
fold's held-out rows as validation data) and reports every fold's metrics and
their mean and standard deviation. `fold_indices` makes the folds: plain,
stratified by class, or grouped (no group on both sides of a split).

Example:

>>> result = cross_validate("config/model_config.json", x, y, folds=5)
>>> result.mean["val_accuracy"], result.std["val_accuracy"]
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_trainer.errors import ConfigError, DataError

# The trainer a config is cross-validated with (a lazy target: core imports no family).
DEFAULT_TRAINER = "keras_trainer.jit.model.trainer:ModelTrainer"


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    return y.reshape(len(y))


def fold_indices(
    n: int,
    folds: int,
    *,
    labels: Any | None = None,
    groups: Any | None = None,
    shuffle: bool = True,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits `n` samples into `folds` `(train_rows, validation_rows)` pairs.

    Args:
        n: Number of samples.
        folds: Number of folds (at least 2).
        labels: Class of each sample (indices or one-hot): every fold then gets
            each class in the same proportion (stratified).
        groups: Group of each sample: a group is never split between training
            and validation; folds get whole groups, largest first, to the
            smallest fold so far.
        shuffle: Shuffle (seeded) before splitting; `False` keeps contiguous
            blocks, as time series need.
        seed: Seed of the shuffle.

    Returns:
        One `(train_rows, validation_rows)` pair of sorted index arrays per fold.

    Raises:
        ConfigError: fewer than 2 folds, or both `labels` and `groups`.
        DataError: more folds than samples (or groups), or lengths that differ.
    """
    if folds < 2:
        raise ConfigError(f"folds: cross-validation needs at least 2 folds, got {folds}")
    if labels is not None and groups is not None:
        raise ConfigError("cross_validate: pass stratify or groups, not both")
    rng = np.random.default_rng(seed)
    assignment = np.empty(n, dtype=np.int64)
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != n:
            raise DataError(f"groups has {len(groups)} entries but there are {n} samples")
        names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
        if len(names) < folds:
            raise DataError(f"groups: {len(names)} distinct groups cannot fill {folds} folds")
        order = rng.permutation(len(names)) if shuffle else np.arange(len(names))
        order = order[np.argsort(-sizes[order], kind="stable")]
        load = np.zeros(folds, dtype=np.int64)
        group_fold = np.empty(len(names), dtype=np.int64)
        for group in order:
            fold = int(np.argmin(load))
            group_fold[group] = fold
            load[fold] += sizes[group]
        assignment = group_fold[inverse]
    elif labels is not None:
        labels = _labels(labels)
        if len(labels) != n:
            raise DataError(f"stratify labels have {len(labels)} entries but there are {n} samples")
        offset = 0
        for label in np.unique(labels):
            rows = np.nonzero(labels == label)[0]
            if shuffle:
                rows = rng.permutation(rows)
            assignment[rows] = (np.arange(len(rows)) + offset) % folds
            offset += len(rows)
    else:
        if n < folds:
            raise DataError(f"{n} samples cannot fill {folds} folds")
        rows = rng.permutation(n) if shuffle else np.arange(n)
        for fold, block in enumerate(np.array_split(rows, folds)):
            assignment[block] = fold
    pairs = []
    for fold in range(folds):
        validation = np.nonzero(assignment == fold)[0]
        if len(validation) == 0:
            raise DataError(f"fold {fold + 1} of {folds} is empty; use fewer folds")
        pairs.append((np.nonzero(assignment != fold)[0], validation))
    return pairs


@dataclasses.dataclass
class CrossValidationResult:
    """Metrics of each fold and their mean and standard deviation.

    Attributes:
        folds: One dict per fold: validation loss and metrics (`val_*`), the
            best epoch and the epochs trained, and any extra metrics.
        mean: Mean of each metric over the folds.
        std: Population standard deviation of each metric over the folds.
    """

    folds: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def from_folds(cls, folds: list[dict[str, float]]) -> CrossValidationResult:
        names = [name for name in folds[0] if all(name in fold for fold in folds)]
        values = {name: np.array([fold[name] for fold in folds], dtype="float64") for name in names}
        return cls(
            folds=folds,
            mean={name: float(np.mean(v)) for name, v in values.items()},
            std={name: float(np.std(v)) for name, v in values.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line per metric: mean ± std and the per-fold values."""
        return "\n".join(
            f"{name}: {self.mean[name]:.4f} ± {self.std[name]:.4f} "
            f"(folds: {', '.join(f'{fold[name]:.4f}' for fold in self.folds)})"
            for name in self.mean
        )


def _trainer_factory(config_or_trainer: Any):
    if hasattr(config_or_trainer, "train") and hasattr(config_or_trainer, "config"):
        template = config_or_trainer
        # A trainer that needs more than its config to start again says how (`with_config`).
        make = getattr(template, "with_config", None) or (lambda config: type(template)(config))
        return make, template.config
    module, _, name = DEFAULT_TRAINER.partition(":")
    trainer_class = getattr(importlib.import_module(module), name)
    config = trainer_class(config_or_trainer).config
    return trainer_class, config


def _fold_config(config: Any, fold: int) -> Any:
    training = config.training
    checkpoint, logging = training.checkpoint, training.logging
    if checkpoint.directory:
        checkpoint = dataclasses.replace(
            checkpoint, directory=os.path.join(checkpoint.directory, f"fold-{fold}")
        )
    if logging.directory:
        logging = dataclasses.replace(
            logging, directory=os.path.join(logging.directory, f"fold-{fold}")
        )
    training = dataclasses.replace(training, checkpoint=checkpoint, logging=logging, resume=False)
    return dataclasses.replace(config, training=training)


def cross_validate(
    config_or_trainer: Any,
    x: Any,
    y: Any,
    folds: int = 5,
    *,
    stratify: bool | Sequence | np.ndarray | None = None,
    groups: Any | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    side_data: Any | None = None,
) -> CrossValidationResult:
    """Cross-validates a trainer config on `(x, y)`, one fresh model per fold.

    Each fold builds a new trainer from the config, fits the feature
    normalization on the fold's training rows only (when the trainer has
    `fit_normalizer`), trains through the shared `fit` with the fold's
    held-out rows as validation data, and evaluates on them.

    Args:
        config_or_trainer: A config (path, dict or config object) of the JIT
            strategy trainer, or a trainer (anything with `config`, `train` and
            `evaluate`, such as `ModelTrainer`): its class and config are reused,
            or its `with_config(config)` makes each fold's trainer when it has one.
        x: Features, `(n, features)` (raw: each fold normalizes with its own
            training rows) or `(n, steps, features)`.
        y: Targets: class indices or one-hot rows, or real values.
        folds: Number of folds.
        stratify: `True` keeps class proportions in every fold (the default for
            classifiers), `False` does not, or an array of labels to stratify by.
        groups: Group of each sample; no group is split across train/validation.
        shuffle: Shuffle before splitting (`False`: contiguous folds).
        seed: Seed of the folds; defaults to `training.seed`.
        side_data: Optional, one row per sample that the trainer takes as the
            third element of its `(x, y, side)` data (the JIT trainer's measured
            times, which its cost-aware loss trains on); split with the folds.

    Returns:
        A `CrossValidationResult`. Each fold has `val_loss` and the compiled
        `val_` metrics, `best_epoch` and `epochs`, and every score of the
        trainer's `evaluation_report` (F1, ROC-AUC, ... or R2, ..., and the
        runtime metrics a trainer's report adds) as `val_<score>`.
    """
    make_trainer, config = _trainer_factory(config_or_trainer)
    x = np.asarray(x)
    n = len(x)
    if len(y) != n:
        raise DataError(f"x has {n} samples but y has {len(y)}; they must match")
    if side_data is not None and len(side_data) != n:
        raise DataError(f"x has {n} samples but side_data has {len(side_data)}; they must match")
    probe = make_trainer(config)
    classifier = bool(getattr(probe, "is_classifier", False))
    if stratify is None:
        stratify = classifier and groups is None
    labels = None
    if stratify is True:
        labels = y
    elif stratify is not False:
        labels = stratify
    if seed is None:
        seed = config.training.seed or 0
    results = []
    for fold, (train_rows, val_rows) in enumerate(
        fold_indices(n, folds, labels=labels, groups=groups, shuffle=shuffle, seed=seed)
    ):
        trainer = make_trainer(_fold_config(config, fold))
        x_train, x_val = x[train_rows], x[val_rows]
        y_train, y_val = np.asarray(y)[train_rows], np.asarray(y)[val_rows]
        if hasattr(trainer, "fit_normalizer"):
            trainer.fit_normalizer(x_train)
            x_train, x_val = trainer.normalize(x_train), trainer.normalize(x_val)
        train_data, val_data = (x_train, y_train), (x_val, y_val)
        if side_data is not None:
            side = np.asarray(side_data)
            train_data, val_data = train_data + (side[train_rows],), val_data + (side[val_rows],)
        history = trainer.train(train_data, validation_data=val_data)
        metrics = {f"val_{k}": v for k, v in trainer.evaluate(val_data).items()}
        metrics["best_epoch"] = float(
            history.best_epoch if history.best_epoch is not None else math.nan
        )
        metrics["epochs"] = float(len(history.epochs))
        if hasattr(trainer, "evaluation_report"):
            report = trainer.evaluation_report((x_val, y_val))
            for name, value in report.metrics.items():
                if isinstance(value, (int, float)) and f"val_{name}" not in metrics:
                    metrics[f"val_{name}"] = float(value)
        results.append(metrics)
    return CrossValidationResult.from_folds(results)
