"""Population training: P seed-MLP trials as one program vs the same trials one after another.

    KERAS_BACKEND=jax python benchmarks/population.py [--sizes 1 8 64 256] [--samples 4096] \
        [--epochs 5]

Each trial trains the seed's 12-64-32-5 MLP (Adam, batch 32, `--epochs` epochs,
20 % validation, no early stopping, so every trial does the same work) with its
own learning rate (log-spaced 1e-4..1e-2) and seed. Contenders, in one process:

* `fit_population(builder, x, y, configs)`: all P trials in one compiled
  program (JAX: `jax.vmap` over the fused epoch); wall time includes compiling;
* the same trials with plain Keras `fit`, one after another: measured on
  `--sequential-trials` of them (each builds and compiles a fresh model, as a
  tuner does) and scaled to P, because 256 trials in a row take too long.

Also: the wall time of one trial alone through the shared `fit` (fused engine,
compilation included as in the populations; the warm-up uses another
architecture so that no compiled program is reused),
the state bytes per member (weights, optimizer and metric variables), the peak
device memory per member where the device reports it, and, for the largest P,
whether two members' final validation loss equals the same trial trained alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.fit import device_name  # noqa: E402
from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.building.models import build_model  # noqa: E402
from keras_trainer.core.training.fit import fit  # noqa: E402
from keras_trainer.core.training.population import fit_population  # noqa: E402
from keras_trainer.core.training.seeding import set_seed  # noqa: E402


def _configs(count: int, epochs: int) -> list[TrainingConfig]:
    rates = np.geomspace(1e-4, 1e-2, max(count, 2))[:count]
    return [
        TrainingConfig(
            epochs=epochs,
            batch_size=32,
            verbose=0,
            early_stopping_patience=0,
            learning_rate=float(rate),
            seed=index + 1,
        )
        for index, rate in enumerate(rates)
    ]


def _builder(index: int) -> keras.Model:
    return build_model(ModelConfig(output_dim=5), (12,))


def workload(samples: int, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's data (12 features, 5 classes), after printing the run's header."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[(x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)]
    print(
        f"date={datetime.date.today()} backend={keras.backend.backend()} device={device_name()} "
        f"samples={samples} epochs={epochs} batch=32"
    )
    return x, y


def _peak_bytes() -> int | None:
    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sequential-trials", type=int, default=3)
    args = parser.parse_args()
    x, y = workload(args.samples, args.epochs)

    # Warm-up with another architecture (first-use costs of the backend, not
    # compiled programs the contenders could reuse), then one trial alone,
    # compilation included like the populations below.
    warm = ModelConfig(output_dim=5, hidden_layers=[16])
    fit_population(lambda _: build_model(warm, (12,)), x, y, _configs(1, 1))
    fit(build_model(warm, (12,)), x, y, config=_configs(1, 1)[0])
    start = time.perf_counter()
    set_seed(1)
    fit(_builder(0), x, y, config=_configs(1, args.epochs)[0])
    one_trial = time.perf_counter() - start

    start = time.perf_counter()
    for config in _configs(args.sequential_trials, args.epochs):
        set_seed(config.seed)
        model = _builder(0)
        model.compile(
            keras.optimizers.Adam(config.learning_rate),
            "categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=32, epochs=args.epochs, validation_split=0.2, verbose=0)
    keras_per_trial = (time.perf_counter() - start) / args.sequential_trials
    print(
        f"one trial alone (shared fit, engine auto, compilation included): {one_trial:.2f} s; "
        f"plain Keras fit per trial: {keras_per_trial:.2f} s"
    )
    print(
        "| trials | population wall s | x one trial alone | sequential Keras fit s (scaled) "
        "| speed-up | "
        "state bytes/member | peak device bytes/member |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for count in args.sizes:
        configs = _configs(count, args.epochs)
        start = time.perf_counter()
        members = fit_population(_builder, x, y, configs)
        wall = time.perf_counter() - start
        model = members[0].model
        state = sum(
            keras.ops.convert_to_numpy(v.value).nbytes
            for v in (*model.variables, *model.optimizer.variables)
        )
        peak = _peak_bytes()
        sequential = keras_per_trial * count
        print(
            f"| {count} | {wall:.2f} | {wall / one_trial:.2f} | {sequential:.1f} "
            f"| {sequential / wall:.1f}x | "
            f"{state:,} | {'n/a' if peak is None else f'{peak // count:,}'} |",
            flush=True,
        )
    for index in (0, len(configs) - 1):
        set_seed(configs[index].seed)
        solo = fit(_builder(index), x, y, config=configs[index])
        print(
            f"member {index} of {len(configs)}: final val_loss "
            f"{members[index].history.val_loss[-1]:.6f}, "
            f"alone {solo.val_loss[-1]:.6f}"
        )


if __name__ == "__main__":
    main()
