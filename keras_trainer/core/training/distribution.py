"""Data-parallel training over local devices, on the engines that already exist.

`training.distribution.strategy = "data_parallel"` replicates the model on every
device and splits each batch between them:

* JAX: Keras' `keras.distribution.DataParallel` (one process drives all local
  devices; several hosts join through `keras.distribution.initialize`, configured
  by the `KERAS_DISTRIBUTION_*` environment variables, see `docs/distributed.md`).
* TensorFlow: `tf.distribute.MirroredStrategy`.
* torch: Keras 3.15 has no distribution API for torch, so this raises
  `BackendNotSupportedError` naming the backends that can.

`training.batch_size` is the global batch: each of N devices computes on
`batch_size / N` rows and the gradients are averaged, so a run on N devices takes
the same optimizer steps, with the same learning rate, as a run on one device.

The model a family builds lives on one device. `DataParallelPlan.replicate`
clones it under the distribution's scope (so variables and optimizer slots are
created replicated) with the same weights; `fit` trains the replica and copies
the trained weights back, so the caller's model, its saved files and everything
that reads it afterwards stay single-device and load on any backend.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import DistributionConfig
from keras_trainer.errors import BackendNotSupportedError, ConfigError

SUPPORTED_BACKENDS = ("jax", "tensorflow")

_MULTI_HOST_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"


def _local_devices(backend: str) -> list[str]:
    """Accelerators if there are any, else CPU devices, as Keras/TF device names."""
    if backend == "jax":
        # keras.distribution.list_devices returns accelerators first, CPUs otherwise.
        return list(keras.distribution.list_devices())
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    return [device.name for device in devices]


def _initialize_multi_host() -> None:
    """Joins a multi-host JAX job when the launcher set `KERAS_DISTRIBUTION_*`."""
    if int(os.environ.get(_MULTI_HOST_ENV, "1") or 1) > 1:
        keras.distribution.initialize()


class DataParallelPlan:
    """The devices a data-parallel run uses and the scope its model lives in.

    Args:
        config: The `training.distribution` section.

    Raises:
        BackendNotSupportedError: on the torch backend.
        ConfigError: more devices asked for than there are.
    """

    def __init__(self, config: DistributionConfig):
        backend = keras.backend.backend()
        if backend not in SUPPORTED_BACKENDS:
            raise BackendNotSupportedError(
                f"training.distribution.strategy='data_parallel' is not available on the "
                f"{backend} backend: Keras 3.15 has no distribution API for it. Use "
                "KERAS_BACKEND=jax (keras.distribution.DataParallel) or tensorflow "
                "(tf.distribute.MirroredStrategy), or set the strategy to 'none'."
            )
        self.backend = backend
        if backend == "jax":
            _initialize_multi_host()
        available = _local_devices(backend)
        wanted = len(available) if config.devices == "all" else int(config.devices)
        if wanted > len(available):
            raise ConfigError(
                f"training.distribution.devices={config.devices}: only {len(available)} "
                f"device(s) are visible ({', '.join(available)})"
            )
        self.devices = available[:wanted]
        if backend == "jax":
            self._engine = keras.distribution.DataParallel(devices=self.devices)
        else:
            import tensorflow as tf

            self._engine = tf.distribute.MirroredStrategy(devices=self.devices)

    @property
    def num_replicas(self) -> int:
        """How many devices each batch is split over."""
        return len(self.devices)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Variables created and steps run inside are distributed."""
        with self._engine.scope():
            yield

    def check_batch_size(self, batch_size: int) -> None:
        """The global batch must split evenly over the devices."""
        if batch_size % self.num_replicas:
            raise ConfigError(
                f"training.batch_size={batch_size} does not split evenly over "
                f"{self.num_replicas} devices; use a multiple of {self.num_replicas} "
                "(batch_size is the global batch)"
            )

    @property
    def needs_even_batches(self) -> bool:
        """JAX shards every batch exactly, so a final partial batch is trimmed."""
        return self.backend == "jax"

    def replicate(self, model: keras.Model) -> keras.Model:
        """A copy of `model` whose variables are created on every device."""
        with self.scope():
            replica = keras.models.clone_model(model)
            if not replica.built:
                replica.build(model.input_shape)
        copy_variables(model, replica)
        return replica


def copy_variables(source: keras.Model, target: keras.Model) -> None:
    """Assigns every variable of `source` (weights and RNG states) to `target`."""
    if len(source.variables) != len(target.variables):
        raise ConfigError(
            f"cannot copy {len(source.variables)} variables into a model with "
            f"{len(target.variables)}; the two models differ"
        )
    for src, dst in zip(source.variables, target.variables):
        dst.assign(keras.ops.convert_to_numpy(src.value))


def plan_distribution(config: DistributionConfig) -> Optional[DataParallelPlan]:
    """The data-parallel plan of `config`, or `None` for single-device training."""
    if config.strategy == "none":
        return None
    return DataParallelPlan(config)


class EvenBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays, each trimmed to a multiple of the device count.

    Used for validation under JAX data parallelism, where every batch is sharded
    exactly over the devices: the last batch loses at most `replicas - 1` rows.
    """

    def __init__(self, data: tuple, batch_size: int, replicas: int):
        super().__init__()
        self._data = tuple(part for part in data if part is not None)
        self._batch_size = batch_size
        self._replicas = replicas
        rows = len(keras.tree.flatten(self._data[0])[0])
        self._rows = rows - rows % replicas
        if self._rows == 0:
            raise ConfigError(
                f"validation data has {rows} rows, fewer than the {replicas} devices "
                "of training.distribution"
            )

    def __len__(self) -> int:
        return math.ceil(self._rows / self._batch_size)

    def __getitem__(self, index: int) -> Any:
        stop = min((index + 1) * self._batch_size, self._rows)
        rows = slice(index * self._batch_size, stop)
        return tuple(
            keras.tree.map_structure(lambda array: np.asarray(array)[rows], part)
            for part in self._data
        )
