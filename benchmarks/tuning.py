"""Wall time per trial: our `AutoTrainer` against plain KerasTuner.

    KERAS_BACKEND=jax python benchmarks/tuning.py [--trials 4] [--epochs 5] [--rounds 3] \
        [--population-size 16]

Both search the same grid (`--trials` learning rates, batch size 64, Adam) for
the seed's 12-64-32-5 MLP (ReLU, softmax) on the same synthetic 12-feature,
5-class data (2048 training and 512 validation rows, features standardized
once up front), for `--epochs` epochs per trial with validation each epoch, in
the same process:

* plain: `keras_tuner.GridSearch` with a hand-written `build(hp)` that builds
  and compiles the Sequential model; `tuner.search(x, y, epochs, batch_size,
  validation_data)`.
* ours: `AutoTrainer(search_method="grid", retrain_best=False,
  early_stopping_patience=0)` on `ModelConfig(hidden_sizes=[64, 32],
  output_size=5)`: trials train through the core `fit` (seeding, optimizer and
  config building, history, trial records, logs, `trials.json`).

Each search runs in a fresh folder; the two take turns for `--rounds` rounds
(after one warm-up round each, not timed) and the medians of seconds per trial
are compared: ratio = ours / plain (1.0 = same cost; compilation included, as
every trial builds a new model in both). `--population-size P` adds a third contender: ours with `tuning.population_size:
P`, whose trials (one batch size) train as populations through `fit_population`.
`--split-activations` gives the plain
model the layer structure of our builders (Dense, then a separate Activation
layer), isolating the tuner/fit overhead from the model's layer count.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.tabular import ModelConfig  # noqa: E402
from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace  # noqa: E402

# The first six are the grid of the recorded runs; the rest let populations grow to 16.
LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2, 3e-4, 1e-1, 2e-3, 5e-3, 2e-2, 5e-4, 7e-3, 1.5e-2]
LEARNING_RATES += [4e-3, 6e-4, 8e-3, 2.5e-2]
BATCH_SIZE = 64


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2560, 12)).astype("float32")
    weights = rng.normal(size=(12, 5))
    y = np.argmax(x @ weights + 0.5 * rng.normal(size=(2560, 5)), axis=1).astype("int64")
    x = (x - x[:2048].mean(axis=0)) / x[:2048].std(axis=0)
    return (x[:2048], y[:2048]), (x[2048:], y[2048:])


def plain_search(train, val, trials: int, epochs: int, split_activations: bool = False) -> float:
    rates = LEARNING_RATES[:trials]

    def dense(units, activation):
        if (
            split_activations
        ):  # the layer structure of our builders: Dense, then an Activation layer
            return [keras.layers.Dense(units), keras.layers.Activation(activation)]
        return [keras.layers.Dense(units, activation=activation)]

    def build(hp):
        model = keras.Sequential(
            [keras.Input((12,)), *dense(64, "relu"), *dense(32, "relu"), *dense(5, "softmax")]
        )
        model.compile(
            keras.optimizers.Adam(hp.Choice("learning_rate", rates)),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    tuner = keras_tuner.GridSearch(
        build,
        objective="val_accuracy",
        max_trials=trials,
        seed=42,
        directory=tempfile.mkdtemp(prefix="plain_kt_"),
        project_name="p",
    )
    start = time.perf_counter()
    tuner.search(*train, epochs=epochs, batch_size=BATCH_SIZE, validation_data=val, verbose=0)
    return (time.perf_counter() - start) / trials


def our_search(train, val, trials: int, epochs: int, population_size: int = 1) -> float:
    config = AutoTrainerConfig(
        population_size=population_size,
        search_method="grid",
        max_trials=trials,
        metric="accuracy",
        max_epochs=epochs,
        early_stopping_patience=0,
        retrain_best=False,
        directory=tempfile.mkdtemp(prefix="ours_kt_"),
        hyperparameter_space=HyperparameterSpace(
            learning_rates=LEARNING_RATES[:trials],
            batch_sizes=[BATCH_SIZE],
            optimizers=["adam"],
            dropout_rates=[0.0],
            weight_decay=[0.0],
        ),
    )
    network = ModelConfig(
        hidden_sizes=[64, 32],
        output_size=5,
        task="classification",
        use_batch_norm=False,
        dropout_rate=0.0,
    )
    start = time.perf_counter()
    AutoTrainer(config).optimize(network, train, val)
    return (time.perf_counter() - start) / trials


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--split-activations",
        action="store_true",
        help="plain model with separate Activation layers, as our builders make it",
    )
    parser.add_argument(
        "--population-size",
        type=int,
        default=1,
        help="also time AutoTrainer with tuning.population_size set to this (all trials share a batch size)",
    )
    args = parser.parse_args()
    if not 1 <= args.trials <= len(LEARNING_RATES):
        parser.error(f"--trials must be between 1 and {len(LEARNING_RATES)}")
    train, val = make_data()
    plain_search(train, val, 1, 1)  # warm-up: imports, first compilations
    our_search(train, val, 1, 1)
    populations = args.population_size > 1
    if populations:
        our_search(train, val, args.population_size, 1, args.population_size)
    plain, ours, population = [], [], []
    for _ in range(args.rounds):
        plain.append(plain_search(train, val, args.trials, args.epochs, args.split_activations))
        ours.append(our_search(train, val, args.trials, args.epochs))
        if populations:
            population.append(
                our_search(train, val, args.trials, args.epochs, args.population_size)
            )
    p, o = statistics.median(plain), statistics.median(ours)
    print(
        f"backend={keras.backend.backend()} trials={args.trials} epochs={args.epochs} batch={BATCH_SIZE} "
        f"rows=2048+512 rounds={args.rounds} plain_split_activations={args.split_activations}"
    )
    print(f"plain KerasTuner : {p:.3f} s/trial  (rounds: {', '.join(f'{v:.3f}' for v in plain)})")
    print(f"ours AutoTrainer : {o:.3f} s/trial  (rounds: {', '.join(f'{v:.3f}' for v in ours)})")
    print(f"ratio ours/plain : {o / p:.2f}")
    if populations:
        q = statistics.median(population)
        print(
            f"ours, population_size={args.population_size}: {q:.3f} s/trial  "
            f"(rounds: {', '.join(f'{v:.3f}' for v in population)}); ratio to plain {q / p:.2f}, "
            f"to ours one by one {q / o:.2f}"
        )


if __name__ == "__main__":
    main()
