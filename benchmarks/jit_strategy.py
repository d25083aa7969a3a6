"""How good are the trained model's strategy choices? (held-out split of the corpus dataset)

Trains the seed-000 MLP (Normalization -> Dense 64 -> Dense 32 -> softmax over
the 5 strategies) on a stratified 75 % of the bundled sample dataset with
`keras.Model.fit`, then on the held-out 25 % compares the measured runtime of
the model's choices with: the per-sample best strategy, always-O0, always-O3
and always the majority class. Runtimes are the dataset's measured medians
(the same numbers the labels come from), so the comparison needs no re-timing.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/jit_strategy.py [--dataset PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys

import numpy as np


def stratified_split(labels, test_fraction, seed):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return sorted(train), sorted(test)


def build_model(n_features, n_classes, train_x, seed):
    import keras

    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization()
    norm.adapt(train_x)
    inputs = keras.Input(shape=(n_features,))
    x = norm(inputs)
    for units in (64, 32):
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None) -> int:
    from keras_trainer.jit import SAMPLE_DATASET_PATH
    from keras_trainer.jit.collect import read_dataset
    from keras_trainer.jit.features import FeatureExtractor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=SAMPLE_DATASET_PATH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    args = parser.parse_args(argv)

    import keras

    data = read_dataset(args.dataset)
    names = data["strategies"]
    samples = data["samples"]
    labels = [s["label"] for s in samples]
    extractor = FeatureExtractor()
    x = extractor.extract([s["ir"] for s in samples], [s["runtime"] for s in samples])
    y = np.array(labels)
    train, test = stratified_split(labels, args.test_fraction, args.seed)
    model = build_model(x.shape[1], len(names), x[train], args.seed)
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=20,
                                          restore_best_weights=True)
    model.fit(x[train], y[train], validation_split=0.2, epochs=args.epochs, batch_size=32,
              verbose=0, callbacks=[early])
    predicted = np.argmax(keras.ops.convert_to_numpy(model(x[test], training=False)), axis=1)

    majority = collections.Counter(y[train].tolist()).most_common(1)[0][0]
    accuracy = float(np.mean(predicted == y[test]))
    majority_accuracy = float(np.mean(y[test] == majority))

    def total(choice):
        return sum(samples[i]["timings_ns"][names[c]] for i, c in zip(test, choice))

    def geomean_slowdown(choice):
        logs = [math.log(samples[i]["timings_ns"][names[c]] / min(samples[i]["timings_ns"].values()))
                for i, c in zip(test, choice)]
        return math.exp(sum(logs) / len(logs))

    best = [int(np.argmin([samples[i]["timings_ns"][n] for n in names])) for i in test]
    policies = {
        "per-sample best (oracle)": best,
        "model": predicted.tolist(),
        "always O0": [0] * len(test),
        "always O3": [names.index("O3")] * len(test),
        f"always {names[majority]} (majority)": [majority] * len(test),
    }
    reference = total(best)
    print(f"backend={keras.backend.backend()} samples={len(samples)} train={len(train)} "
          f"test={len(test)} labels={dict(collections.Counter(names[c] for c in labels))}")
    print(f"accuracy: model {accuracy:.3f}  majority baseline ({names[majority]}) "
          f"{majority_accuracy:.3f}")
    print(f"{'policy':34s} {'total ms':>10s} {'x best':>8s} {'geomean x best':>15s}")
    for name, choice in policies.items():
        t = total(choice)
        print(f"{name:34s} {t / 1e6:10.3f} {t / reference:8.3f} {geomean_slowdown(choice):15.3f}")
    chosen = collections.Counter(names[c] for c in predicted)
    print(f"model's choices on the test split: {dict(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
