"""`keras-trainer tune CONFIG`: the config's `tuning` search on the config's `model`.

The network is whatever `model.type` names (feed_forward, lstm, cnn_lstm, mlp),
built by the core model registry with each trial's `dropout_rate`; the search
(method, budget, metric, space) is the `tuning` section. The data is a bundled
scikit-learn table (`builtin:breast_cancer`, `builtin:wine`, `builtin:diabetes`)
or a numeric CSV file with a header row. Rows are shuffled with `tuning.seed`
and split into training, validation (`training.validation_split`, 0.2 if 0)
and test (`data.test_split`) parts. The trial table, the best result and the
test metrics are printed; the best model (taking raw features: the training
statistics are inside) is saved through `keras_trainer.core.persistence`.

Example:

    keras-trainer tune config/tabular_tuning_config.json --data builtin:breast_cancer \\
        --symbol breast_cancer --output models/breast_cancer.keras
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

import numpy as np

from keras_trainer.errors import ConfigError, DataError

BUILTIN = "builtin:"
CLASSIFICATION_ACTIVATIONS = ("softmax", "sigmoid")


def register(subparsers) -> None:
    """Adds the `tune` subcommand to the main CLI's subparsers."""
    tune = subparsers.add_parser(
        "tune",
        help="hyperparameter search (the config's tuning section) on a tabular dataset",
        description=__doc__.split("\n\n")[1],
    )
    tune.add_argument("config", help="config JSON with model and tuning sections")
    tune.add_argument(
        "--data",
        default="builtin:breast_cancer",
        help="builtin:breast_cancer, builtin:wine, builtin:diabetes, or a CSV file (default: builtin:breast_cancer)",
    )
    tune.add_argument("--target", help="target column of a CSV file (default: its last column)")
    tune.add_argument("--directory", help="results folder (overrides tuning.directory)")
    tune.add_argument("--symbol", help="name of this search; its results go to DIRECTORY/SYMBOL")
    tune.add_argument("--output", help="saved best model (.keras or .h5; default: DIRECTORY/SYMBOL/best.keras)")
    tune.add_argument("--max-trials", type=int, help="overrides tuning.max_trials")
    tune.add_argument("--max-epochs", type=int, help="overrides tuning.max_epochs")
    tune.add_argument(
        "--workers",
        type=int,
        default=0,
        help="distribute the search: serve KerasTuner's oracle here and start N local "
        "workers (one per GPU when there are GPUs); see docs/distributed.md",
    )
    tune.add_argument(
        "--oracle-host",
        default="127.0.0.1",
        help="address the oracle listens on with --workers (0.0.0.0 lets other machines join)",
    )
    tune.add_argument(
        "--oracle-port", type=int, default=0, help="port of the oracle (default: a free one)"
    )
    tune.set_defaults(handler=run_tune)


def load_data(source: str, target: Optional[str] = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`(X, y, feature_names)` of `builtin:<name>` or a CSV path.

    Raises:
        DataError: unknown builtin name, bad file, or `--target` given for a builtin table.
    """
    from keras_trainer.tabular.datasets import load_csv, load_table

    if source.startswith(BUILTIN):
        if target is not None:
            raise DataError(f"--target applies to CSV files; {source} has a fixed target")
        return load_table(source[len(BUILTIN):])
    return load_csv(source, target)


def _targets(y: np.ndarray, model_config, source: str) -> tuple[np.ndarray, bool]:
    """The targets as the model's head needs them, and whether the task is classification."""
    activation = model_config.output_activation
    if activation not in CLASSIFICATION_ACTIVATIONS:
        return y.astype("float32"), False
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise DataError(
            f"{source}: model.output_activation={activation!r} needs class labels 0, 1, 2, ... as targets; "
            "use output_activation 'linear' for a regression target"
        )
    labels = y.astype("int64")
    classes = int(labels.max()) + 1
    if activation == "sigmoid" and (model_config.output_dim != 1 or classes > 2):
        raise ConfigError(
            f"model.output_activation: a sigmoid head needs output_dim 1 and 0/1 labels; got output_dim="
            f"{model_config.output_dim} and labels from {labels.min()} to {labels.max()} in {source} (use softmax "
            "with output_dim = number of classes, or 'linear' for a regression target)"
        )
    if activation == "softmax" and model_config.output_dim != classes:
        raise ConfigError(
            f"model.output_dim: is {model_config.output_dim} but {source} has {classes} classes"
        )
    return labels, True


def split(n: int, validation: float, test: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled training, validation and test row indices.

    Raises:
        DataError: a part would be empty.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test))
    n_val = int(round(n * validation))
    if n - n_test - n_val < 1 or n_val < 1:
        raise DataError(
            f"{n} rows cannot be split into training, validation ({validation}) and test ({test}) parts"
        )
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def _worker_command(args: argparse.Namespace) -> list[str]:
    """The command a local worker runs: this search without --workers."""
    command = [sys.executable, "-m", "keras_trainer", "tune", args.config, "--data", args.data]
    for flag, value in (("--target", args.target), ("--directory", args.directory),
                        ("--symbol", args.symbol), ("--max-trials", args.max_trials),
                        ("--max-epochs", args.max_epochs)):
        if value is not None:
            command += [flag, str(value)]
    return command


def run_tune(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer tune`; returns the exit code."""
    from keras_trainer import tabular  # noqa: F401  registers feed_forward, lstm, cnn_lstm
    from keras_trainer.config import load_config
    from keras_trainer.core.models import build_model
    from keras_trainer.tuning.auto_trainer import AutoTrainer
    from keras_trainer.tuning.distributed import worker_role

    config = load_config(args.config)
    tuning = config.tuning
    if args.directory:
        tuning.directory = args.directory
    if args.max_trials is not None:
        tuning.max_trials = args.max_trials
    if args.max_epochs is not None:
        tuning.max_epochs = args.max_epochs
        tuning.min_epochs = min(tuning.min_epochs, args.max_epochs)
    config = load_config(config.to_dict())  # re-validate the overrides
    tuning, model_config = config.tuning, config.model

    x, y, feature_names = load_data(args.data, args.target)
    if model_config.input_dim is not None and model_config.input_dim != x.shape[1]:
        raise ConfigError(f"model.input_dim: is {model_config.input_dim} but {args.data} has {x.shape[1]} features")
    y, classification = _targets(y, model_config, args.data)
    validation = config.training.validation_split or 0.2
    train_idx, val_idx, test_idx = split(len(x), validation, config.data.test_split, tuning.seed or 0)
    input_shape = (x.shape[1],)

    def model_factory(dropout_rate: float):
        return build_model(model_config.replace(dropout=dropout_rate, input_dim=x.shape[1]), input_shape)

    print(f"data: {args.data} ({len(train_idx)} train, {len(val_idx)} validation, {len(test_idx)} test rows, "
          f"{x.shape[1]} features)")
    print(f"search: {tuning.search_method}, up to {tuning.max_trials} trials of up to {tuning.max_epochs} epochs, "
          f"model.type={model_config.type}")
    trainer = AutoTrainer(tuning)
    result = trainer.optimize(model_factory, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                              symbol=args.symbol, workers=args.workers,
                              worker_command=_worker_command(args),
                              oracle_host=args.oracle_host, oracle_port=args.oracle_port)
    if result is None:
        print(f"worker {worker_role()}: no trials left; the chief keeps the results")
        return 0
    for event in trainer.distributed_events:
        print(event)
    print(trainer.trials_table().to_markdown())
    print(f"best trial {result.trial_id}: {result.hyperparameters}")
    print(f"best {result.metric}: {result.val_metric:.6g}"
          + ("" if tuning.retrain_best else " (search checkpoint, not retrained)"))
    test_metrics = {}
    if len(test_idx):
        predictions = np.asarray(result.model.predict(x[test_idx], verbose=0))
        if classification:
            labels = (predictions.reshape(-1) > 0.5).astype("int64") if predictions.shape[-1] == 1 \
                else predictions.argmax(axis=-1)
            test_metrics["accuracy"] = float(np.mean(labels == y[test_idx]))
        else:
            errors = predictions.reshape(len(test_idx), -1)[:, 0] - y[test_idx]
            test_metrics["mae"] = float(np.mean(np.abs(errors)))
            test_metrics["rmse"] = float(np.sqrt(np.mean(errors ** 2)))
        print("test metrics: " + ", ".join(f"{name}={value:.4f}" for name, value in test_metrics.items()))
    output = args.output or os.path.join(result.directory, "best.keras")
    path = result.save(output, {
        "feature_names": feature_names,
        "data": args.data,
        "test_metrics": test_metrics,
        "config": config.to_dict(),
    })
    print(f"saved model: {path}")
    return 0
