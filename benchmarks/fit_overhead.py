"""Overhead of keras_trainer's shared `fit` against plain `keras.Model.fit`.

    KERAS_BACKEND=jax python benchmarks/fit_overhead.py [--samples 20000] [--epochs 3]

Both train the seed's 12-64-32-5 MLP on the same arrays with batch 32, Adam, no
validation, shuffling each epoch, in the same process, after a one-epoch warm-up
(compilation excluded); they take turns for `--rounds` rounds and the medians
are compared. The ratio is samples/s of ours over plain Keras (whole `fit` call).
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.fit import fit  # noqa: E402
from keras_trainer.core.models import build_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, args.samples)]

    plain = build_model(ModelConfig(), (12,))
    plain.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x, y, batch_size=32, epochs=1, verbose=0)
    ours = build_model(ModelConfig(), (12,))
    config = TrainingConfig(epochs=1, verbose=0, validation_split=0.0, early_stopping_patience=0)
    fit(ours, x, y, config=config)

    # Interleaved rounds, medians: the two take turns, so load from other
    # processes hits both alike.
    plain_rates, ours_rates = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        plain.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, shuffle=True)
        plain_rates.append(args.samples * args.epochs / (time.perf_counter() - start))
        start = time.perf_counter()
        fit(ours, x, y, config=config.replace(epochs=args.epochs), compile=False)
        ours_rates.append(args.samples * args.epochs / (time.perf_counter() - start))
    plain_rate, ours_rate = float(np.median(plain_rates)), float(np.median(ours_rates))

    print(f"backend={keras.backend.backend()} samples={args.samples} epochs={args.epochs} rounds={args.rounds}")
    print(f"plain keras fit   : {plain_rate:10.0f} samples/s")
    print(f"keras_trainer fit : {ours_rate:10.0f} samples/s")
    print(f"ratio ours/plain  : {ours_rate / plain_rate:.2f}")


if __name__ == "__main__":
    main()
