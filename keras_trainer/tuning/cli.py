"""`keras-trainer tune CONFIG`: the config's `tuning` search on the config's `model`.

The network is whatever `model.type` names (feed_forward, lstm, cnn_lstm, mlp),
built by the core model registry with each trial's `dropout_rate`; the search
(method, budget, metric, space) is the `tuning` section. The data is a bundled
scikit-learn table (`builtin:breast_cancer`, `builtin:wine`, `builtin:diabetes`)
or a numeric CSV file with a header row. Rows are shuffled with `tuning.seed`
and split into training, validation (`training.validation_split`, 0.2 if 0)
and test (`data.test_split`) parts. While it runs, a line is printed per finished
trial and, with `tuning.population_size`, per wave of trials trained together
(and what "auto" became); then the trial table, the best result and the test
metrics. The best model (taking raw features: the training
statistics are inside) is saved through `keras_trainer.core.saving.persistence`.
A JIT strategy config (the family `train` picks: `mlp` with no table as data)
searches the JIT model on a JIT dataset instead (--data, else `data.path`, else
the bundled one), split as `train` splits it; `tuning.metric` may then be
`regret` or `geomean_regret`, and the best model is saved as a JIT strategy model.

Example:

    keras-trainer tune config/tabular_tuning_config.json --data builtin:breast_cancer \\
        --symbol breast_cancer --output models/breast_cancer.keras
    keras-trainer tune config/model_config.json --set tuning.metric=regret --symbol jit
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

import numpy as np

from keras_trainer.cli_args import (
    add_config_argument,
    add_data_arguments,
    add_override_arguments,
    add_run_arguments,
    config_family,
    finish_run,
    load_verb_config,
    print_config,
    start_run,
    verb_config_dict,
)
from keras_trainer.cli_checks import check_tune


def register(subparsers) -> None:
    """Adds the `tune` subcommand to the main CLI's subparsers."""
    tune = subparsers.add_parser(
        "tune",
        help="hyperparameter search (the config's tuning section) on a table or a JIT dataset",
        description=__doc__.split("\n\n")[1],
    )
    add_config_argument(tune, "config JSON with model and tuning sections")
    add_data_arguments(
        tune,
        "builtin:breast_cancer, builtin:wine, builtin:diabetes, or a .csv, .parquet, .npy or .npz "
        "table (default: builtin:breast_cancer); for a JIT config, a JIT dataset JSON (default: "
        "the config's data.path, else the bundled one)",
        default=None,
        target_help="target column of a CSV file (default: its last column)",
    )
    tune.add_argument("--directory", help="results folder (overrides tuning.directory)")
    tune.add_argument("--symbol", help="name of this search; its results go to DIRECTORY/SYMBOL")
    tune.add_argument(
        "--output", help="saved best model (.keras or .h5; default: DIRECTORY/SYMBOL/best.keras)"
    )
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
    add_override_arguments(tune)
    add_run_arguments(tune, tensorboard=False)
    tune.set_defaults(handler=run_tune)


def _worker_command(args: argparse.Namespace) -> list[str]:
    """The command a local worker runs: this search without --workers."""
    command = [sys.executable, "-m", "keras_trainer", "tune", args.config]
    for flag, value in (
        ("--data", args.data),
        ("--target", args.target),
        ("--directory", args.directory),
        ("--symbol", args.symbol),
        ("--max-trials", args.max_trials),
        ("--max-epochs", args.max_epochs),
        ("--seed", args.seed),
    ):
        if value is not None:
            command += [flag, str(value)]
    for override in args.overrides:
        command += ["--set", override]
    return command


def _config_with_overrides(args: argparse.Namespace, load_config=None):
    """The config file with `--set`, `--seed`, `--directory`, `--max-trials` and
    `--max-epochs` applied, validated (by `load_config`, default the general one)."""
    if load_config is None:
        from keras_trainer.config import load_config

    config = load_verb_config(args, load_config)
    tuning = config.tuning
    if args.directory:
        tuning.directory = args.directory
    if args.max_trials is not None:
        tuning.max_trials = args.max_trials
    if args.max_epochs is not None:
        tuning.max_epochs = args.max_epochs
        tuning.min_epochs = min(tuning.min_epochs, args.max_epochs)
    return load_config(config.to_dict())  # re-validate the overrides


def _print_search(trainer, result, tuning) -> None:
    """The trial table, the best trial and what the saved model is."""
    for event in trainer.distributed_events:
        print(event)
    print(trainer.trials_table().to_markdown())
    print(f"best trial {result.trial_id}: {result.hyperparameters}")
    print(
        f"search: best trial's {result.metric} = {result.search_val_metric:.6g} (during the search)"
    )
    if tuning.retrain_best:
        print(
            f"retrained model: {result.metric} = {result.val_metric:.6g} (best trial's values, retrained "
            f"from scratch for {tuning.max_epochs} epochs; this is the saved model)"
        )
    else:
        print("saved model: the best trial's own checkpoint (tuning.retrain_best is false)")


def _test_metrics(model, x_test, y_test, classification: bool):
    """Accuracy (or MAE and RMSE) on the test rows, printed, and the `EvaluationReport`."""
    from keras_trainer.core.evaluating.evaluation import ModelEvaluator

    task = "classification" if classification else "regression"
    report = ModelEvaluator(model, task=task).evaluate(x_test, y_test)
    predictions = np.asarray(model.predict(x_test, verbose=0))
    test_metrics = {}
    if classification:
        labels = (
            (predictions.reshape(-1) > 0.5).astype("int64")
            if predictions.shape[-1] == 1
            else predictions.argmax(axis=-1)
        )
        test_metrics["accuracy"] = float(np.mean(labels == y_test))
    else:
        errors = predictions.reshape(len(x_test), -1)[:, 0] - y_test
        test_metrics["mae"] = float(np.mean(np.abs(errors)))
        test_metrics["rmse"] = float(np.sqrt(np.mean(errors**2)))
    print(
        "test metrics: " + ", ".join(f"{name}={value:.4f}" for name, value in test_metrics.items())
    )
    return test_metrics, report


# The search's progress lines: each finished trial, each wave of a population
# search, and what `population_size: "auto"` became. Its other log lines stay in
# tuning.log.
_PROGRESS = ("trial ", "wave ", "population_size auto: ")


@contextlib.contextmanager
def _one_line_per_trial():
    """Prints the tuner's progress log lines (`_PROGRESS`) on standard output while it runs."""
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("%(message)s"))
    progress.addFilter(lambda record: record.getMessage().startswith(_PROGRESS))
    trial_logger = logging.getLogger("keras_trainer.tuning")
    trial_logger.addHandler(progress)
    try:
        yield
    finally:
        trial_logger.removeHandler(progress)


def run_tune(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer tune`; returns the exit code."""
    if config_family(verb_config_dict(args), args.data) == "jit":
        return run_tune_jit(args)
    config = _config_with_overrides(args)
    args.data = args.data or config.data.path or "builtin:breast_cancer"
    if args.print_config:  # before any Keras import
        return print_config(config.to_dict())
    check_tune(args)  # data, columns and output before Keras is imported
    from keras_trainer import tabular  # noqa: F401  registers feed_forward, lstm, cnn_lstm
    from keras_trainer.core.building.models import build_model
    from keras_trainer.tabular.typed_training import table_splits
    from keras_trainer.tuning.auto_trainer import AutoTrainer
    from keras_trainer.tuning.distributed import worker_role

    tuning, model_config = config.tuning, config.model

    # Numeric or typed (text, blanks: preprocessing fitted on the training rows) tables.
    x, y, feature_names, classification, split, table_metadata = table_splits(
        args.data, args.target, config, tuning.seed or 0
    )
    train_idx, val_idx, test_idx = split
    input_shape = (x.shape[1],)

    def model_factory(dropout_rate: float):
        return build_model(
            model_config.replace(dropout=dropout_rate, input_dim=x.shape[1]), input_shape
        )

    # Workers of a distributed search report to the chief; only the chief writes a run folder.
    run = None if worker_role() else start_run(args, args.symbol or args.config)
    print(
        f"data: {args.data} ({len(train_idx)} train, {len(val_idx)} validation, {len(test_idx)} test rows, "
        f"{x.shape[1]} features)"
    )
    print(
        f"search: {tuning.search_method}, up to {tuning.max_trials} trials of up to {tuning.max_epochs} epochs, "
        f"model.type={model_config.type}"
    )
    trainer = AutoTrainer(tuning)
    with _one_line_per_trial():
        result = trainer.optimize(
            model_factory,
            (x[train_idx], y[train_idx]),
            (x[val_idx], y[val_idx]),
            symbol=args.symbol,
            workers=args.workers,
            worker_command=_worker_command(args),
            oracle_host=args.oracle_host,
            oracle_port=args.oracle_port,
        )
    if result is None:
        print(f"worker {worker_role()}: no trials left; the chief keeps the results")
        return 0
    _print_search(trainer, result, tuning)
    test_metrics, report = {}, None
    if len(test_idx):
        test_metrics, report = _test_metrics(result.model, x[test_idx], y[test_idx], classification)
    output = args.output or os.path.join(result.directory, "best.keras")
    path = result.save(
        output,
        {
            "feature_names": feature_names,
            "data": args.data,
            "test_metrics": test_metrics,
            "config": config.to_dict(),
            **table_metadata,
        },
    )
    print(f"saved model: {path}")
    if os.path.abspath(path) != os.path.abspath(run.file(run.MODEL)):
        import shutil

        shutil.copyfile(path, run.file(run.MODEL))
    finish_run(
        run,
        args,
        config.to_dict(),
        history=result.history,
        report=report,
        metrics={f"test_{k}": v for k, v in test_metrics.items()}
        | {
            f"search_{result.metric}": result.search_val_metric,
            f"retrained_{result.metric}": result.val_metric,
        },
        summary={
            "command": "tune",
            "data": args.data,
            "best_trial": result.trial_id,
            "hyperparameters": result.hyperparameters,
            "tuning_directory": result.directory,
        },
    )
    return 0


def run_tune_jit(args: argparse.Namespace) -> int:
    """`keras-trainer tune` on a JIT strategy config: the JIT model and data, the same search.

    The dataset is read and split as `train` does (`keras_trainer.jit.cli.split_dataset`:
    stratified test rows, normalization fitted on the training rows); the validation
    rows are `training.validation_split` (0.2 if 0) of the training rows, whole program
    families when the samples have them. Each trial builds `config.model` with its
    `dropout_rate` and trains through the core `fit` (without `jit.class_weighting`,
    which the tabular searches have no counterpart of). With `tuning.metric` `regret`
    (or `geomean_regret`) a trial is scored by the runtime of the strategies it
    picks on the validation rows against their fastest. The best model is saved as a
    JIT strategy model (normalization inside, `keras-trainer evaluate` reads it) and
    scored on the test rows (regret among the test metrics when the data has times).
    """
    from keras_trainer.jit import DEFAULT_DATASET_PATH
    from keras_trainer.jit.config import load_jit_config

    config = _config_with_overrides(args, load_jit_config)
    if args.print_config:
        return print_config(config.to_dict())
    from keras_trainer.core.building.models import build_model
    from keras_trainer.jit.cli import read_samples, split_dataset
    from keras_trainer.jit.model.choices import validation_rows
    from keras_trainer.tuning.auto_trainer import AutoTrainer
    from keras_trainer.tuning.distributed import worker_role

    args.data = args.data or config.data.path or DEFAULT_DATASET_PATH
    data = read_samples(args.data)
    config, trainer, prepared, _, train_idx, test_idx = split_dataset(config, data, args.data)
    fraction = config.training.validation_split or 0.2
    groups = None if prepared.groups is None else prepared.groups[train_idx]
    fit_rows, val_rows = validation_rows(
        np.argmax(prepared.y[train_idx], axis=-1), groups, fraction, config.training.seed or 0
    )
    train, val = prepared.take(train_idx[fit_rows]), prepared.take(train_idx[val_rows])
    width = prepared.X.shape[1]

    def model_factory(dropout_rate: float):
        return build_model(config.model.replace(dropout=dropout_rate), (width,))

    run = None if worker_role() else start_run(args, args.symbol or args.config)
    print(
        f"data: {args.data} ({len(train.X)} train, {len(val.X)} validation, {len(test_idx)} test samples, "
        f"{width} features, strategies {trainer.class_names})"
    )
    tuning = config.tuning.replace(normalize=False)  # the JIT model's normalization is its own
    print(
        f"search: {tuning.search_method}, up to {tuning.max_trials} trials of up to "
        f"{tuning.max_epochs} epochs, model.type={config.model.type}, metric {tuning.metric}"
    )
    auto = AutoTrainer(tuning)
    with _one_line_per_trial():
        result = auto.optimize(
            model_factory,
            (train.X, trainer._targets(train.y, train.times, "training data")),
            (val.X, trainer._targets(val.y, val.times, "validation data")),
            symbol=args.symbol,
            loss=trainer._loss() or "categorical_crossentropy",
            metrics=["accuracy"],
            workers=args.workers,
            worker_command=_worker_command(args),
            oracle_host=args.oracle_host,
            oracle_port=args.oracle_port,
            val_times=val.times,
        )
    if result is None:
        print(f"worker {worker_role()}: no trials left; the chief keeps the results")
        return 0
    _print_search(auto, result, tuning)
    trainer.model = result.network
    test_metrics = {}
    if len(test_idx):
        test_metrics = trainer.evaluate(prepared.take(test_idx))
        print("test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in test_metrics.items()))
    output = args.output or os.path.join(result.directory, "best.keras")
    path = trainer.save_model(output)
    trainer.save_model(run.file(run.MODEL))
    print(f"saved model: {path}")
    finish_run(
        run,
        args,
        config.to_dict(),
        history=result.history,
        metrics={f"test_{k}": float(v) for k, v in test_metrics.items()}
        | {
            f"search_{result.metric}": result.search_val_metric,
            f"retrained_{result.metric}": result.val_metric,
        },
        summary={
            "command": "tune",
            "family": "jit",
            "data": args.data,
            "best_trial": result.trial_id,
            "hyperparameters": result.hyperparameters,
            "tuning_directory": result.directory,
        },
    )
    return 0
