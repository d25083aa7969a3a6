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
