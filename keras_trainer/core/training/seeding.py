"""One seed for every random number generator a training run touches."""

from __future__ import annotations

import os
import random

import keras
import numpy as np


def set_seed(seed: int | None) -> None:
    """Seeds Python's `random`, NumPy and the active Keras backend.

    With the same seed, the same backend and a CPU, two runs give identical
    weights: Keras layers draw their initial weights and dropout masks from the
    seeded backend generator, and `fit` shuffles with seeds derived from it.

    Args:
        seed: A non-negative integer, or `None` to leave the generators alone.

    Example:

    >>> set_seed(42)
    """
    if seed is None:
        return
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        return
    _seed_keras_without_tensorflow(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def _seed_keras_without_tensorflow(seed: int) -> None:
    # keras.utils.set_random_seed also seeds TensorFlow whenever it is installed,
    # importing it (seconds, and hundreds of MB) under the JAX and torch backends
    # that never use it. This sets the same Keras global state without that.
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # Keras moved its internals: fall back to the public API
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def capture_rng_state() -> tuple[dict, dict[str, np.ndarray]]:
    """Snapshots the global RNGs that training may draw from outside the model.

    Layers with a seed keep their generator state in model variables, which
    checkpoints save anyway; unseeded dropout on the torch backend draws from
    torch's global generator instead, and user code may draw from Python's or
    NumPy's. Restoring this snapshot makes a resumed run continue their streams.

    Returns:
        `(json_state, arrays)`: JSON-ready values and arrays for an `.npz` file.
    """
    version, python_state, gauss = random.getstate()
    kind, numpy_keys, position, has_gauss, cached = np.random.get_state()
    json_state = {
        "python": [version, list(python_state), gauss],
        "numpy": [kind, int(position), int(has_gauss), float(cached)],
    }
    arrays = {"rng_numpy_keys": np.asarray(numpy_keys)}
    if keras.backend.backend() == "torch":
        import torch

        arrays["rng_torch_cpu"] = torch.get_rng_state().numpy()
    return json_state, arrays


def restore_rng_state(json_state: dict, arrays: dict[str, np.ndarray]) -> None:
    """Restores a snapshot taken by `capture_rng_state`."""
    version, python_state, gauss = json_state["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, position, has_gauss, cached = json_state["numpy"]
    np.random.set_state((kind, arrays["rng_numpy_keys"], position, has_gauss, cached))
    if "rng_torch_cpu" in arrays and keras.backend.backend() == "torch":
        import torch

        torch.set_rng_state(torch.from_numpy(arrays["rng_torch_cpu"].copy()))
