"""How good are the trained model's strategy choices? (held-out split of the corpus dataset)

Trains the seed-000 model with `ModelTrainer` and `config/model_config.json` (the
README's main job: 12 features, Dense 64 -> Dense 32 -> softmax over the 5
strategies, early stopping) on a stratified 75 % of the bundled sample dataset,
then on the held-out 25 % compares the measured runtime of
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


def main(argv=None) -> int:
    from keras_trainer.jit.cli import stratified_split
    from keras_trainer.jit import SAMPLE_DATASET_PATH
    from keras_trainer.jit.collect import read_dataset
    from keras_trainer.jit.trainer import ModelTrainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=SAMPLE_DATASET_PATH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config", default=os.path.join(os.path.dirname(__file__), "..", "config", "model_config.json")
    )
    parser.add_argument("--test-fraction", type=float, default=0.25)
    args = parser.parse_args(argv)

    import keras

    data = read_dataset(args.dataset)
    names = data["strategies"]
    samples = data["samples"]
    labels = [s["label"] for s in samples]
    y = np.array(labels)
    train, test = (idx.tolist() for idx in stratified_split(y, args.test_fraction, args.seed))
    trainer = ModelTrainer(args.config)
    trainer.config.training.verbose = 0
    trainer.config.training.seed = args.seed
    pick = lambda idx, key: [samples[i][key] for i in idx]  # noqa: E731
    X, y_onehot = trainer.prepare_training_data(pick(train, "ir"), pick(train, "runtime"), y[train].tolist())
    trainer.train((X, y_onehot))
    predicted = trainer.predict_strategy(trainer.extract_features(pick(test, "ir"), pick(test, "runtime")))

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
