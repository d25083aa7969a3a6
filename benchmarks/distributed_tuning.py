"""Trials per hour of a tuning search with N workers against one.

    KERAS_BACKEND=jax python benchmarks/distributed_tuning.py [--workers 1,2] [--trials 8]
        [--rows 200000] [--epochs 8]

The same random search (a feed-forward net of two 1,024-unit layers on a
synthetic 64-feature, 10-class table; learning rate, batch size and dropout
searched) runs once per worker count, each time as a distributed search on
KerasTuner's chief/worker protocol: this process is the chief, and the workers
are this script started again (one per GPU when there are GPUs). Wall time runs
from the start of the search to its end, worker start-up included, best-model
retraining excluded. Trials per hour = trials / wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig  # noqa: E402
from keras_trainer.config.tuning import TuningConfig  # noqa: E402
from keras_trainer.core.building.models import build_model  # noqa: E402
from keras_trainer.tuning.auto_trainer import AutoTrainer  # noqa: E402
from keras_trainer.tuning.distributed import worker_role  # noqa: E402


def table(rows: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 64)).astype("float32")
    labels = (x[:, :10].argmax(axis=1) + (x[:, 10] > 1)) % 10
    split = int(rows * 0.8)
    return (x[:split], labels[:split]), (x[split:], labels[split:])


def model_factory(dropout_rate: float):
    config = ModelConfig(
        type="mlp", input_dim=64, hidden_layers=[1024, 1024], output_dim=10, dropout=dropout_rate
    )
    return build_model(config, (64,))


def search(args, workers: int, directory: str):
    config = TuningConfig.from_dict(
        {
            "search_method": "random",
            "max_trials": args.trials,
            "metric": "accuracy",
            "max_epochs": args.epochs,
            "min_epochs": args.epochs,
            "early_stopping_patience": 0,
            "directory": directory,
            "seed": 1,
            "retrain_best": False,
            "loss": "sparse_categorical_crossentropy",
            "hyperparameter_space": {
                "learning_rates": [0.0003, 0.001, 0.003],
                "batch_sizes": [256, 512],
                "optimizers": ["adam"],
                "dropout_rates": [0.0, 0.1],
                "weight_decay": [0.0],
            },
        }
    )
    train, val = table(args.rows)
    command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--directory", directory]
    started = time.perf_counter()
    result = AutoTrainer(config).optimize(
        model_factory, train, val, symbol="bench", workers=workers, worker_command=command
    )
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if worker_role() is not None:
        # A worker: run trials for the chief's search in args.directory.
        search(args, 0, args.directory)
        return
    rates = {}
    for count in [int(n) for n in args.workers.split(",")]:
        directory = tempfile.mkdtemp(prefix=f"tuning-{count}-workers-")
        try:
            result, seconds = search(args, count, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        completed = len(result.trials.completed)
        rates[count] = completed / seconds * 3600
        print(
            f"{count} worker(s): {completed} trials in {seconds:6.1f} s = {rates[count]:7.0f} trials/hour"
            f"   best accuracy {result.val_metric:.4f}",
            flush=True,
        )
    base = min(rates)
    for count, rate in rates.items():
        print(f"{count} worker(s) vs {base}: {rate / rates[base]:.2f}x")


if __name__ == "__main__":
    main()
