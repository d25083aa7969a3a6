"""Memory during training: per-epoch peaks, out-of-memory errors, smaller batches, devices.

* `MemoryTracker` adds `peak_host_rss_mb` (every backend, CPU and GPU) and, on an
  accelerator, `peak_device_memory_mb` to each epoch's logs, so they reach the
  `TrainingHistory`, history.csv/json, TensorBoard and W&B like any metric.
* `is_out_of_memory` recognizes a host `MemoryError` and the device allocation
  failures of the three backends (XLA `RESOURCE_EXHAUSTED`, TensorFlow
  `ResourceExhaustedError`, torch `OutOfMemoryError`); `fit` turns them into an
  `OutOfMemoryError` (a `TrainingError`) naming the batch size, the model size and
  what to try.
* `fit_with_auto_batch_size` (`training.auto_batch_size`) halves the batch and doubles
  the gradient accumulation steps after each out-of-memory, keeping the effective
  batch, and resumes from the state of the last completed epoch (`LastGoodState`).
* `device_scope` implements `training.device`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import resource
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_trainer.errors import BackendNotSupportedError, ConfigError, TrainingError

_MB = 1024.0 * 1024.0


class OutOfMemoryError(TrainingError):
    """Training ran out of host or device memory (see the message for what to try)."""

    def __init__(self, message: str, batch_size: int):
        super().__init__(message)
        self.batch_size = batch_size


# ------------------------------------------------------------------ measuring
def _reset_host_peak() -> bool:
    # Writing 5 to clear_refs resets the kernel's peak RSS (VmHWM) of this process.
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_host_rss_mb() -> float:
    """Peak resident memory of this process in MiB since the last reset (Linux) or start."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MB if sys.platform == "darwin" else peak / 1024.0


def _accelerator_memory(reset: bool) -> float | None:
    """Peak device memory in MiB of the first accelerator, or `None` on a CPU."""
    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            if reset:
                torch.cuda.reset_peak_memory_stats()
                return None
            return torch.cuda.max_memory_allocated() / _MB
        if backend == "jax":
            import jax

            device = jax.local_devices()[0]
            if device.platform == "cpu":
                return None
            stats = device.memory_stats() or {}
            # XLA keeps one peak per process and cannot reset it: this is the
            # peak up to the end of the epoch.
            peak = stats.get("peak_bytes_in_use")
            return None if reset or peak is None else peak / _MB
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_logical_devices("GPU"):
                return None
            if reset:
                tf.config.experimental.reset_memory_stats("GPU:0")
                return None
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / _MB
    except (RuntimeError, ValueError, ImportError):
        return None
    return None


class MemoryTracker(keras.callbacks.Callback):
    """Logs the peak host RSS and peak device memory of each epoch (in MiB).

    It must run before the callbacks that record or write logs: `fit` puts it
    first. Keys: `peak_host_rss_mb` always, `peak_device_memory_mb` when the
    backend runs on an accelerator (torch and TensorFlow reset the device peak
    each epoch; XLA under JAX cannot, so there it is the peak up to that epoch).
    """

    def on_epoch_begin(self, epoch, logs=None):
        _reset_host_peak()
        _accelerator_memory(reset=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["peak_host_rss_mb"] = peak_host_rss_mb()
        device = _accelerator_memory(reset=False)
        if device is not None:
            logs["peak_device_memory_mb"] = device


# ------------------------------------------------------------------ out of memory
_OOM_TYPES = {"OutOfMemoryError", "ResourceExhaustedError"}
_OOM_TEXT = (
    "resource_exhausted",
    "out of memory",
    "oom when allocating",
    "failed to allocate",
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is a host or device allocation failure."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError) or type(error).__name__ in _OOM_TYPES:
            return True
        if isinstance(error, RuntimeError) and any(t in str(error).lower() for t in _OOM_TEXT):
            return True
        error = error.__cause__ or error.__context__
    return False


def variables_bytes(variables: Sequence[Any]) -> int:
    """Bytes the Keras `variables` hold (shape times the size of their dtype)."""
    return sum(
        int(np.prod(variable.shape))
        * np.dtype(keras.backend.standardize_dtype(variable.dtype)).itemsize
        for variable in variables
    )


def model_size(model: keras.Model) -> tuple[int, float]:
    """`(parameters, MiB)` of the model's weights."""
    count = sum(int(np.prod(variable.shape)) for variable in model.weights)
    return count, variables_bytes(model.weights) / _MB


def out_of_memory_error(error: BaseException, model: keras.Model, config: Any) -> OutOfMemoryError:
    """The `OutOfMemoryError` `fit` raises for an allocation failure `error`."""
    parameters, megabytes = model_size(model)
    where = "host" if isinstance(error, MemoryError) else "device"
    hints = [
        (
            f"lower training.batch_size (now {config.batch_size}) and raise "
            "training.gradient_accumulation_steps to keep the effective batch"
        ),
        "set training.auto_batch_size: true to do that automatically",
    ]
    if config.mixed_precision == "off":
        hints.append("set training.mixed_precision: 'bfloat16' (or 'float16')")
    if config.remat == "off":
        hints.append("set training.remat: 'full' to recompute activations instead of storing them")
    first_line = (
        str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    )
    return OutOfMemoryError(
        f"training ran out of {where} memory with batch_size={config.batch_size} "
        f"(gradient_accumulation_steps={config.gradient_accumulation_steps}) on a model of "
        f"{parameters:,} parameters ({megabytes:.3g} MiB of weights). Try: "
        + "; ".join(hints)
        + f". ({type(error).__name__}: {first_line})",
        batch_size=config.batch_size,
    )


def release_memory() -> None:
    """Frees what a failed step left behind (Python garbage, torch's CUDA cache)."""
    gc.collect()
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ------------------------------------------------------------------ auto batch size
@dataclasses.dataclass
class _Snapshot:
    epoch: int  # last completed epoch; -1 = before the first
    model: list
    optimizer: dict
    history: dict | None


class LastGoodState(keras.callbacks.Callback):
    """Keeps, in host memory, the model and optimizer state after the last completed epoch."""

    def __init__(self, history: Any = None):
        super().__init__()
        self.training_history = history
        self.snapshot: _Snapshot | None = None

    def _take(self, epoch: int) -> None:
        optimizer = self.model.optimizer
        variables = {}
        if optimizer is not None and optimizer.built:
            variables = {
                v.path: np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables
            }
        history = self.training_history.to_dict() if self.training_history is not None else None
        self.snapshot = _Snapshot(epoch, self.model.get_weights(), variables, history)

    def on_train_begin(self, logs=None):
        if self.snapshot is None:
            self._take(-1)

    def on_epoch_end(self, epoch, logs=None):
        self._take(epoch)

    def restore(self, model: keras.Model) -> int:
        """Puts the snapshot into a compiled `model`; returns the epoch to continue from."""
        snapshot = self.snapshot
        model.set_weights(snapshot.model)
        optimizer = model.optimizer
        if snapshot.optimizer:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            for variable in optimizer.variables:
                # Gradient accumulators are new with the new accumulation steps: they start at 0.
                value = snapshot.optimizer.get(variable.path)
                if value is not None and tuple(value.shape) == tuple(variable.shape):
                    variable.assign(value)
        return snapshot.epoch + 1


def fit_with_auto_batch_size(fit_once: Callable[[Any, LastGoodState], Any], config: Any) -> Any:
    """Runs `fit_once(config, last_good)` and retries with half the batch after an out-of-memory.

    `fit_once` trains with `last_good` among its callbacks, and restores it
    first when it holds a snapshot. Each retry doubles
    `gradient_accumulation_steps`, so that batch size times accumulation steps
    (the effective batch) stays the same, and continues from the state after
    the last completed epoch.

    Raises:
        OutOfMemoryError: even a batch of one sample does not fit.
    """
    last_good = LastGoodState()
    while True:
        try:
            return fit_once(config, last_good)
        except OutOfMemoryError:
            if config.batch_size <= 1:
                raise
            release_memory()
            smaller = config.replace(
                batch_size=config.batch_size // 2,
                gradient_accumulation_steps=config.gradient_accumulation_steps * 2,
            )
            warnings.warn(
                f"training.auto_batch_size: out of memory with batch_size={config.batch_size}; "
                f"retrying with batch_size={smaller.batch_size} and gradient_accumulation_steps="
                f"{smaller.gradient_accumulation_steps}"
                + (
                    f" from the end of epoch {last_good.snapshot.epoch + 1}"
                    if last_good.snapshot and last_good.snapshot.epoch >= 0
                    else ""
                ),
                stacklevel=3,
            )
            config = smaller


# ------------------------------------------------------------------ devices
def accelerator_usable() -> tuple[bool, str]:
    """Whether the backend has an accelerator that can allocate and compute; and why not."""
    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return False, "torch sees no CUDA device"
            probe = torch.ones(8, device="cuda")
            float((probe * 2).sum())
            return True, ""
        if backend == "jax":
            import jax

            devices = [d for d in jax.devices() if d.platform != "cpu"]
            if not devices:
                return False, "JAX sees no GPU or TPU"
            probe = jax.device_put(np.ones(8, "float32"), devices[0])
            float((probe * 2).sum())
            return True, ""
        import tensorflow as tf

        if not tf.config.list_logical_devices("GPU"):
            return False, "TensorFlow sees no GPU"
        with tf.device("GPU:0"):
            float(tf.reduce_sum(tf.ones(8) * 2))
        return True, ""
    except Exception as error:  # noqa: BLE001 - any failure means: not usable
        return False, f"{type(error).__name__}: {str(error)[:200]}"


def device_scope(device: str | None):
    """A context manager placing training on `training.device` (null: Keras' choice)."""
    if device is None:
        return contextlib.nullcontext()
    # "cpu", not "cpu:0": under the latter Keras' torch backend makes a layer's
    # integer seed state a torch Parameter that requires gradients, and fails.
    if device == "cpu":
        return keras.device("cpu")
    usable, reason = accelerator_usable()
    if usable:
        return keras.device("gpu:0")
    if device == "gpu":
        raise ConfigError(
            f"training.device='gpu' but no accelerator is usable ({reason}); use 'auto' or 'cpu'"
        )
    warnings.warn(
        f"training.device='auto': no usable accelerator ({reason}); training on the CPU",
        stacklevel=3,
    )
    return keras.device("cpu")


# ------------------------------------------------------------------ gradient checkpointing
def apply_remat(model: keras.Model, config: Any) -> int:
    """Turns on gradient checkpointing (`training.remat`) in the layers of a built model.

    Keras' `RematScope` gives a layer its rematerialization mode when the layer
    is created; this gives the same `RematScope` to every leaf layer of a model
    that already exists, so `fit` can apply `training.remat` to any model. Under
    JAX, layers that take a `training` argument (dropout, batch normalization)
    are left out: `jax.checkpoint` would trace the Python flag. TensorFlow is
    not supported (see the error it raises). Set
    `training.remat` to `'off'` to leave a model as built.

    Returns:
        How many layers now rematerialize.
    """
    if config.remat == "off":
        return 0
    if keras.backend.backend() == "tensorflow":
        raise BackendNotSupportedError(
            f"training.remat={config.remat!r}: Keras rematerializes through tf.custom_gradient, which "
            "rejects the keyword arguments Keras passes in TensorFlow's compiled training step; "
            "use the jax or torch backend, or set training.remat: 'off'"
        )
    scope = keras.RematScope(mode=config.remat, output_size_threshold=config.remat_size_threshold)
    skip_training_flag = keras.backend.backend() == "jax"
    count = 0
    for layer in model._flatten_layers(include_self=False):
        if list(layer._flatten_layers(include_self=False)):
            continue  # a container: its leaves are handled one by one
        if skip_training_flag and getattr(layer, "_call_has_training_arg", False):
            continue
        layer._remat_mode = scope
        count += 1
    return count


def uses_remat(model: keras.Model) -> bool:
    """Whether any layer of `model` rematerializes in the backward pass."""
    return any(getattr(layer, "_remat_mode", None) is not None for layer in model._flatten_layers())
