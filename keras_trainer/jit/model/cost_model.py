"""A cost model for the adaptive JIT: per-function speed-ups and compile costs.

The cost-benefit controller (`keras_trainer.jit.tiering.policies`) needs, per function and
strategy, how much faster a call runs than at O0 and how much longer compiling
takes than at O0. Constants averaged over training code are a poor guess for a
given function (a vectorizable loop gains 10x at O3, pointer chasing nothing);
`CostModel` predicts both from the same features as the strategy classifier
(static IR features and the O0 probe's runtime metrics): a multi-output
regression of, for every strategy but the first, the log speed-up over it and the
log compile-cost ratio to it, trained by `ModelTrainer` with
`config/jit_cost_model.json` (linear outputs, Huber loss).

Example:

>>> model = train_cost_model(C_KERNELS_PATH, "config/jit_cost_model.json")
>>> speedup, ratio = model.predict_samples(read_dataset(C_KERNELS_PATH)["samples"][:2])
>>> model.save("models/jit_cost_model.keras")
>>> CostModel.load("models/jit_cost_model.keras").strategies
['O0', 'O1', 'O2', 'O3', 'O3-scalar']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.errors import CheckpointError, ConfigError
from keras_trainer.jit.model.trainer import ModelTrainer

#: The shipped cost-model config (the strategy classifier's layers, 8 linear outputs).
COST_MODEL_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "config",
    "jit_cost_model.json",
)
METADATA_KEY = "cost_model"


def output_names(strategies: Sequence[str]) -> list[str]:
    """Names of the model's outputs: log speed-ups, then log compile ratios."""
    rest = list(strategies[1:])
    return [f"log_speedup:{s}" for s in rest] + [f"log_compile_ratio:{s}" for s in rest]


def cost_targets(workload) -> np.ndarray:
    """`(n, 2 (k - 1))` targets: log(t_first / t_j) and log(c_j / c_first) for j >= 1."""
    speedup = np.log(workload.call_s[:, :1] / workload.call_s[:, 1:])
    ratio = np.log(workload.compile_s[:, 1:] / workload.compile_s[:, :1])
    return np.concatenate([speedup, ratio], axis=1).astype("float32")


def cost_features(samples: Sequence[dict], config: Any = COST_MODEL_CONFIG) -> np.ndarray:
    """Raw feature rows of dataset records under `config`'s feature set, e.g. to
    extract them once for several models (`train_cost_model(..., features=)`)."""
    return ModelTrainer(config).extract_features(
        [s["ir"] for s in samples], [s["runtime"] for s in samples]
    )


class CostModel:
    """Per-function speed-ups and compile-cost ratios predicted by a trained network.

    Args:
        trainer: the `ModelTrainer` holding the network and its normalization.
        strategies: the strategy names; the first is the reference (O0).
    """

    def __init__(self, trainer: ModelTrainer, strategies: Sequence[str]):
        self.trainer, self.strategies = trainer, list(strategies)

    def features(self, samples: Sequence[dict]) -> np.ndarray:
        """Raw feature rows of dataset records (IR + the O0 probe's runtime metrics)."""
        return self.trainer.extract_features(
            [s["ir"] for s in samples], [s["runtime"] for s in samples]
        )

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(speedup, ratio)`, each `(n, k)`, from raw features; column 0 is 1."""
        out = np.asarray(self.trainer.predict(features), dtype=np.float64)
        half = len(self.strategies) - 1
        ones = np.ones((len(out), 1))
        speedup = np.concatenate([ones, np.exp(out[:, :half])], axis=1)
        ratio = np.concatenate([ones, np.exp(out[:, half:])], axis=1)
        return speedup, ratio

    def predict_samples(self, samples: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
        return self.predict(self.features(samples))

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Saves the serving model (raw features in) with its strategies, atomically."""
        return self.trainer.save_model(path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> CostModel:
        """Loads a cost model saved by `save` (any backend, safe mode).

        Raises:
            CheckpointError: missing or unreadable file, or not a cost model.
        """
        trainer = _CostModelTrainer({})
        trainer.load_model(path)
        from keras_trainer.core.saving.persistence import read_metadata

        info = read_metadata(path).get(METADATA_KEY)
        if not isinstance(info, dict) or not isinstance(info.get("strategies"), list):
            raise CheckpointError(
                f"{os.fspath(path)}: not a JIT cost model (no '{METADATA_KEY}' metadata); "
                "train one with keras_trainer.jit.model.cost_model.train_cost_model"
            )
        trainer.strategies = info["strategies"]
        return cls(trainer, info["strategies"])


class _CostModelTrainer(ModelTrainer):
    """`ModelTrainer` whose saved metadata says it is a cost model, and of which strategies."""

    strategies: list = []

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), METADATA_KEY: {"strategies": list(self.strategies)}}


def train_cost_model(
    data: Any,
    config: Any = COST_MODEL_CONFIG,
    features: Optional[np.ndarray] = None,
) -> CostModel:
    """Trains a cost model on measured functions.

    Args:
        data: a dataset path, a dataset dict, or a `Workload` (its functions'
            measured per-call and compile times are the targets).
        config: the config (path, dict or `JITConfig`); `model.output_dim` must
            be 2 x (strategies - 1).
        features: the functions' raw feature rows, when already extracted.

    Raises:
        ConfigError: the config's output size does not match the strategies.
        DataError: a record without times for every strategy.
    """
    from keras_trainer.jit.tiering.workload import Workload

    workload = data if isinstance(data, Workload) else Workload.from_dataset(data, "fixed:1")
    trainer = _CostModelTrainer(config)
    trainer.strategies = list(workload.strategies)
    names = output_names(workload.strategies)
    if trainer.config.model.output_dim != len(names):
        raise ConfigError(
            f"model.output_dim is {trainer.config.model.output_dim} but a cost model of "
            f"{len(workload.strategies)} strategies has {len(names)} outputs ({names})"
        )
    trainer.class_names = names
    model = CostModel(trainer, workload.strategies)
    raw = model.features(workload.samples) if features is None else features
    trainer.fit_normalizer(raw)
    trainer.create_model(raw.shape[1])
    trainer.train((trainer.normalize(raw), cost_targets(workload)))
    return model


def measured_targets(
    model: CostModel, samples: Sequence[dict], features: np.ndarray, unmeasured: str = "prediction"
) -> np.ndarray:
    """Targets of records that may measure only some strategies (a JIT's own records).

    Where a record has the time per call (or compile time) of a strategy and of the
    first strategy (O0), the target is the measured log speed-up (log compile ratio).
    Elsewhere, `unmeasured="prediction"` keeps the model's current prediction, so that
    output is not pulled anywhere by this record; `"shifted"` moves it by the mean
    error of the record's measured outputs of the same kind (a function whose
    measured speed-ups were overestimated has its other ones lowered as much);
    `"pooled"` moves it by the error of that strategy over all the records (shrunk
    toward the mean error of every strategy, so a strategy measured on few records
    moves with the others) plus the record's own error beyond those (shrunk toward
    none): the records are one workload, whose errors are shared.
    """
    if unmeasured not in UNMEASURED_TARGETS:
        raise ConfigError(
            f"unmeasured: one of {', '.join(map(repr, UNMEASURED_TARGETS))}, got {unmeasured!r}"
        )
    current = np.asarray(model.trainer.predict(features), dtype=np.float64)
    targets = current.copy()
    first, rest = model.strategies[0], model.strategies[1:]
    half = len(rest)
    if unmeasured == "pooled":
        return _pooled_targets(samples, current, first, rest).astype("float32")
    for i, record in enumerate(samples):
        for offset, key, sign in ((0, "timings_ns", 1.0), (half, "compile_times_ms", -1.0)):
            values = record.get(key) or {}
            if not values.get(first, 0) > 0:
                continue
            measured = [j for j, name in enumerate(rest) if values.get(name, 0) > 0]
            for j in measured:
                targets[i, offset + j] = sign * np.log(values[first] / values[rest[j]])
            if unmeasured == "shifted" and measured:
                shift = np.mean([targets[i, offset + j] - current[i, offset + j] for j in measured])
                for j in set(range(half)) - set(measured):
                    targets[i, offset + j] += shift
    return targets.astype("float32")


#: The targets `measured_targets` can give the strategies a record did not measure.
UNMEASURED_TARGETS = ("prediction", "shifted", "pooled")
#: `"pooled"`: the prior weight, in records, of the pooled error against one level's
#: own (and of no shift against one record's own).
POOLED_SHRINKAGE = 2.0


def _pooled_targets(samples, current: np.ndarray, first: str, rest: list) -> np.ndarray:
    """`measured_targets(unmeasured="pooled")`: the records' errors (measured minus
    predicted) modelled as a per-strategy error shared by all the records plus a
    per-record error shared by its strategies, each shrunk toward the pooled mean
    (`POOLED_SHRINKAGE` records of prior weight); the unmeasured outputs move by both."""
    targets, half = current.copy(), len(rest)
    for offset, key, sign in ((0, "timings_ns", 1.0), (half, "compile_times_ms", -1.0)):
        mask = np.zeros((len(samples), half), dtype=bool)
        measured = np.zeros((len(samples), half))
        for i, record in enumerate(samples):
            values = record.get(key) or {}
            if not values.get(first, 0) > 0:
                continue
            for j, name in enumerate(rest):
                if values.get(name, 0) > 0:
                    mask[i, j] = True
                    measured[i, j] = sign * np.log(values[first] / values[name])
        if not mask.any():
            continue
        error = np.where(mask, measured - current[:, offset : offset + half], 0.0)
        pooled = error[mask].mean()
        level, record_shift = np.full(half, pooled), np.zeros(len(samples))
        for _ in range(5):  # alternate: per-strategy errors, then per-record ones
            residual = np.where(mask, error - record_shift[:, None] - pooled, 0.0)
            level = pooled + residual.sum(axis=0) / (mask.sum(axis=0) + POOLED_SHRINKAGE)
            residual = np.where(mask, error - level[None, :], 0.0)
            record_shift = residual.sum(axis=1) / (mask.sum(axis=1) + POOLED_SHRINKAGE)
        block = targets[:, offset : offset + half]
        moved = block + level[None, :] + record_shift[:, None]
        targets[:, offset : offset + half] = np.where(mask, measured, moved)
    return targets


def copy_cost_model(model: CostModel) -> CostModel:
    """An independent copy (weights, normalization, config) through save and load."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return CostModel.load(model.save(os.path.join(folder, "cost_model.keras")))


def fine_tune(
    model: CostModel,
    records: Sequence[dict],
    base: Any = None,
    base_features: Optional[np.ndarray] = None,
    epochs: int = 5,
    record_share: float = 0.25,
    unmeasured: str = "prediction",
) -> CostModel:
    """Fine-tunes `model` in place from its current weights on measured records.

    Trains `epochs` epochs through `ModelTrainer.train` (the library's fit) on the
    base functions (complete measurements) plus `records` (a JIT's own, possibly
    partial: see `measured_targets`), keeping the input normalization. Records are
    repeated until they are at least `record_share` of the rows, so a handful of
    them is not drowned by a large base dataset.

    Args:
        model: the cost model to update.
        records: dataset records (`MeasurementLog.samples`).
        base: a `Workload` or dataset (path or dict) with every strategy measured,
            or `None` for the records alone.
        base_features: `base`'s raw feature rows, when already extracted.
        epochs: training epochs (a fine-tune: a few).
        record_share: the least share of the records among the rows, in [0, 1).
        unmeasured: the targets of strategies a record did not measure
            (`measured_targets`): `"prediction"`, `"shifted"` or `"pooled"`.

    Returns:
        `model`, updated.
    """
    from keras_trainer.jit.tiering.workload import Workload

    if not records:
        raise ConfigError("fine_tune: no records to learn from")
    if not 0 <= record_share < 1:
        raise ConfigError(f"record_share must be in [0, 1), got {record_share}")
    raw = model.features(records)
    X, Y = raw, measured_targets(model, records, raw, unmeasured)
    if base is not None:
        if not isinstance(base, Workload):
            base = Workload.from_dataset(base, "fixed:1")
        if list(base.strategies) != model.strategies:
            raise ConfigError(
                f"fine_tune: the base data measures {base.strategies}, the model predicts "
                f"{model.strategies}"
            )
        base_raw = model.features(base.samples) if base_features is None else base_features
        wanted = record_share * len(base_raw) / (1 - record_share)
        repeats = max(1, int(np.ceil(wanted / len(raw))))
        X = np.concatenate([base_raw, np.repeat(raw, repeats, axis=0)])
        Y = np.concatenate([cost_targets(base), np.repeat(Y, repeats, axis=0)])
    trainer = model.trainer
    trainer.config.training = trainer.config.training.replace(
        epochs=int(epochs), validation_split=0.0, verbose=0
    )
    trainer.train((trainer.normalize(X), Y))
    return model
