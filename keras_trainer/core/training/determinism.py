"""`training.deterministic`: every backend's determinism switches, in one place.

With a seed (`training.seed`), training on a CPU is already repeatable. On a GPU,
some kernels (atomic adds in reductions, cuDNN/cuBLAS algorithm choice, XLA's
autotuning) differ from run to run unless told not to. `enable_determinism`
turns on:

* TensorFlow: `tf.config.experimental.enable_op_determinism()` (ops without a
  deterministic kernel then raise instead of silently differing);
* torch: `torch.use_deterministic_algorithms(True)`, cuDNN deterministic with
  benchmarking off, and `CUBLAS_WORKSPACE_CONFIG=:4096:8`;
* JAX/XLA: `--xla_gpu_deterministic_ops=true` and
  `--xla_gpu_exclude_nondeterministic_ops=true` in `XLA_FLAGS`, and no autotuning
  of GEMM/convolution algorithms. XLA reads the flags when it starts its GPU
  client, so set `training.deterministic` (or call this function) before the
  first JAX computation of the process; later, it warns.

The cost is speed on GPUs only (measured in docs/benchmarks.md, "Deterministic
training"); on CPUs the switches change nothing measurable.
"""

from __future__ import annotations

import os
import warnings

import keras

XLA_DETERMINISM_FLAGS = (
    "--xla_gpu_deterministic_ops=true",
    "--xla_gpu_exclude_nondeterministic_ops=true",
    "--xla_gpu_autotune_level=0",
)


def _jax_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except ImportError:  # JAX moved its internals: assume the worst
        return True


def enable_determinism() -> None:
    """Turns on the determinism switches of the active backend (see the module doc).

    Example:

    >>> enable_determinism()
    """
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        missing = [flag for flag in XLA_DETERMINISM_FLAGS if flag.split("=")[0] not in flags]
        if missing:
            os.environ["XLA_FLAGS"] = " ".join([flags, *missing]).strip()
            if _jax_started() and _on_gpu():
                warnings.warn(
                    "training.deterministic: JAX already started its GPU client, so the XLA "
                    "determinism flags apply from the next process on. Set XLA_FLAGS="
                    f"'{' '.join(XLA_DETERMINISM_FLAGS)}' before starting Python, or call "
                    "keras_trainer.core.training.determinism.enable_determinism() before any JAX work.",
                    stacklevel=2,
                )


def _on_gpu() -> bool:
    import jax

    return any(device.platform != "cpu" for device in jax.devices())


def determinism_enabled() -> bool:
    """Whether the active backend's determinism switches are on."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.are_deterministic_algorithms_enabled()
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        return all(flag in flags for flag in XLA_DETERMINISM_FLAGS)
    try:  # where Keras reads it; TensorFlow has no public getter
        from tensorflow.python.framework.config import is_op_determinism_enabled
    except ImportError:
        return os.environ.get("TF_DETERMINISTIC_OPS") == "1"
    return bool(is_op_determinism_enabled())
