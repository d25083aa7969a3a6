"""On a GPU: a real out-of-memory, auto batch size, peak device memory, and determinism.

Run once per backend and mode (each mode needs a fresh process: XLA reads its
determinism flags when it starts):

    KERAS_BACKEND=jax python benchmarks/gpu_training_features.py free    # 2 runs + OOM
    KERAS_BACKEND=jax python benchmarks/gpu_training_features.py deterministic

`free` trains the same seeded model twice without determinism switches (are the
weights bit-identical?), then provokes a real device out-of-memory (a batch
whose activations exceed the memory cap) once without and once with
`training.auto_batch_size`. `deterministic` trains twice with
`training.deterministic` (switches turned on before the backend starts). Each
prints one JSON line: bit-identical or not, seconds per epoch, peak memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

MODE = sys.argv[1] if len(sys.argv) > 1 else "free"
BACKEND = os.environ.get("KERAS_BACKEND", "jax")
# A small memory cap makes the out-of-memory quick to reach (and leaves the GPU to others).
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.08")

if MODE == "deterministic":
    from keras_trainer.core.training.determinism import enable_determinism

    enable_determinism()  # before the backend's first computation

import keras
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import TrainingError

if BACKEND == "torch":
    import torch

    torch.cuda.set_per_process_memory_fraction(0.08)


def embedding_model(vocabulary=50_000, width=256):
    """Embedding lookups with repeated ids: their gradient is a scatter-add, a classic
    source of run-to-run differences on GPUs."""
    set_seed(1)
    inputs = keras.Input((32,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, width)(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    hidden = keras.layers.Dense(512, activation="relu")(hidden)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))


def train_twice():
    rng = np.random.default_rng(0)
    x = rng.zipf(1.3, size=(65_536, 32)).clip(max=49_999).astype("int32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, len(x))]
    config = TrainingConfig(
        epochs=3,
        batch_size=1024,
        verbose=0,
        early_stopping_patience=0,
        validation_split=0.0,
        deterministic=MODE == "deterministic",
        metrics=[],
    )
    weights, seconds = [], []
    for _ in range(2):
        model = embedding_model()
        history = fit(model, x, y, config=config)
        weights.append(model.get_weights())
        seconds.append(history.epoch_times[1:])
    identical = all(a.tobytes() == b.tobytes() for a, b in zip(*weights))
    return {
        "bit_identical": identical,
        "seconds_per_epoch": float(np.median(seconds)),
        "peak_device_memory_mb": history.history.get("peak_device_memory_mb"),
        "peak_host_rss_mb": history.history.get("peak_host_rss_mb"),
    }


def out_of_memory(auto):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(65_536, 64)).astype("float32")
    y = rng.normal(size=(65_536, 1)).astype("float32")
    set_seed(2)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(1 << 17, activation="relu")(
        inputs
    )  # 512 KiB of activations per sample
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    config = TrainingConfig(
        epochs=1,
        batch_size=32_768,
        verbose=0,
        early_stopping_patience=0,
        validation_split=0.0,
        loss="mse",
        metrics=[],
        auto_batch_size=auto,
    )
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = fit(model, x, y, config=config)
        return {
            "completed": True,
            "final_batch_size": 32_768 // (model.optimizer.gradient_accumulation_steps or 1),
            "gradient_accumulation_steps": model.optimizer.gradient_accumulation_steps or 1,
            "retries": [
                str(w.message)[:160] for w in caught if "auto_batch_size" in str(w.message)
            ],
            "peak_device_memory_mb": history.history.get("peak_device_memory_mb"),
            "seconds": round(time.perf_counter() - started, 1),
        }
    except TrainingError as error:
        return {
            "completed": False,
            "error": f"{type(error).__name__}: {str(error)[:400]}",
        }


result = {"backend": BACKEND, "mode": MODE}
if BACKEND == "jax":
    import jax

    result["device"] = str(jax.devices()[0])
elif BACKEND == "torch":
    result["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
result["runs"] = train_twice()
if MODE == "free":
    result["oom_without_auto_batch_size"] = out_of_memory(False)
    result["oom_with_auto_batch_size"] = out_of_memory(True)
print("RESULT " + json.dumps(result))
