"""The tabular family on the command line: `train`, `evaluate` and `predict` on tables.

    keras-trainer train config/tabular_config.json --data builtin:breast_cancer
    keras-trainer train config/tabular_config.json --data prices.csv --target close --window 20
    keras-trainer evaluate runs/tabular_config/version_0/model.keras --data builtin:breast_cancer
    keras-trainer predict runs/tabular_config/version_0/model.keras --data rows.csv --output predictions.csv

A config whose `model.type` is `feed_forward`, `lstm` or `cnn_lstm` (or `mlp`
with a table as `--data`) trains here. The table is a bundled one
(`builtin:breast_cancer`, `builtin:wine`, `builtin:diabetes`), a numeric CSV or
Parquet file (target: `--target`, default the last column), or a NumPy `.npy`
(target last) / `.npz` (`x`, `y`) file. Sequence models (`lstm`, `cnn_lstm`)
read windows of `--window` consecutive rows and predict the target
`--horizon` rows after each window; rows keep their order and the split is by
time. Other tables are split at random with `training.seed`, stratified by
class for classification (`keras_trainer.core.inputs.splits`), or by time with
`data.time_series: true`; `--test-data FILE` tests on a separate file instead,
and `--cv K` cross-validates on the training rows first. The split is stored in
the model, so `evaluate` scores its test rows by default
(`keras_trainer.core.evaluating.held_out`). The head decides the task: softmax
(classes 0..k-1), sigmoid (0/1) or linear (regression). The saved model takes raw features (the training
statistics are inside) and carries its feature names, class names, window
and target, so `evaluate` and `predict` need only the model and the data.

The core CLI (`keras_trainer/cli.py`) owns the verbs and calls these handlers
through `keras_trainer.registry.FAMILY_VERBS` ("train:tabular", ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

import numpy as np

from keras_trainer.core.inputs.rows import read_rows
from keras_trainer.errors import ConfigError, DataError

SEQUENCE_TYPES = ("lstm", "cnn_lstm")
TABULAR_TYPES = ("feed_forward", "lstm", "cnn_lstm")


def _default_loss(activation: str) -> str:
    return {
        "softmax": "sparse_categorical_crossentropy",
        "sigmoid": "binary_crossentropy",
    }.get(activation, "mse")


def _windows(x: np.ndarray, y: np.ndarray, window: int, horizon: int):
    from keras_trainer.tabular.windows import make_windows

    return make_windows(x, window, horizon=horizon, targets=y)


def is_shard_source(source: str | None) -> bool:
    """Whether `source` is a folder or glob of table shards, streamed instead of loaded."""
    from keras_trainer.core.inputs.shard_files import is_glob

    return bool(source) and (os.path.isdir(source) or is_glob(source))


def train(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer train` for tabular and sequence configs."""
    from keras_trainer.cli_args import (
        check_overwrite,
        finish_run,
        load_verb_config,
        start_run,
        verb_config_dict,
    )
    from keras_trainer.config import load_config
    from keras_trainer.core.training import precision
    from keras_trainer.core.training.fit import fit
    from keras_trainer.core.training.seeding import set_seed
    from keras_trainer.tabular.normalization import save_tabular_model, serving_model

    raw = verb_config_dict(args)
    config = load_verb_config(args, load_config)
    training = config.training
    if args.output:
        check_overwrite(args.output, "--output", getattr(args, "overwrite", False))
    if getattr(args, "quiet", False):
        training.verbose = 0
    source = args.data or config.data.path or config.data.shards
    if not source:
        raise DataError(
            "train: a tabular config needs --data (builtin:<name>, .csv, .parquet, .npy, .npz, "
            "or a folder or glob of shards)"
        )
    test_source = getattr(args, "test_data", None)
    if is_shard_source(source) and (test_source or getattr(args, "cv", None)):
        raise ConfigError(
            f"--test-data and --cv read one table whole; {source} is streamed as shards "
            "(its test rows are its last data.test_split rows)"
        )
    prepare = _stream_splits if is_shard_source(source) else _array_splits
    splits = prepare(args, config, source)
    model_config = config.model
    loss = raw.get("training", {}).get("loss") or _default_loss(model_config.output_activation)
    if getattr(args, "cv", None):
        _cross_validate(args.cv, config, splits, loss)
    run = start_run(args, args.config)
    training.logging.directory = run.path
    training.logging.tensorboard = (
        bool(getattr(args, "tensorboard", False)) or training.logging.tensorboard
    )
    # The initial weights come from the seeded generators: same seed, same weights.
    set_seed(training.seed)
    with precision.policy_scope(training.mixed_precision):
        network = splits.network(model_config)
    print(
        f"data: {source} ({splits.describe()}, {splits.input_shape[-1]} features), "
        f"model.type={model_config.type}",
        flush=True,
    )
    history = fit(
        network,
        splits.train,
        splits.train_targets,
        config=training,
        loss=loss,
        metrics=["accuracy"] if splits.classification else ["mae"],
        validation_data=splits.validation,
    )
    print(history.summary())
    model = serving_model(network, splits.scaler) if splits.scaler is not None else network
    class_names = splits.class_names(model_config, source)
    report, metric_values = splits.test_scores(model, class_names)
    metadata = {
        "config": config.to_dict(),
        "feature_names": splits.feature_names,
        "class_names": class_names,
        "data": source,
        "target": args.target,
        "target_name": _target_name(source, args.target),
        "window": splits.window,
        "horizon": splits.horizon,
        "split": splits.split,
        "test_data": test_source,
    }
    if splits.typed is not None:
        from keras_trainer.tabular.typed_training import typed_metadata

        metadata.update(typed_metadata(splits.typed))
    path = save_tabular_model(network, run.file(run.MODEL), splits.scaler, metadata)
    if args.output:
        path = save_tabular_model(network, args.output, splits.scaler, metadata)
    print(f"saved model: {path}")
    finish_run(
        run,
        args,
        config.to_dict(),
        report=report,
        metrics=metric_values,
        summary={"command": "train", "family": "tabular", "data": source, "model": path},
    )
    return 0


def _cross_validate(folds: int, config: Any, splits: _Splits, loss: Any) -> None:
    """`--cv K`: K folds of the training and validation rows (the test rows stay out),
    stratified for classification, contiguous for a time series; prints each metric."""
    from keras_trainer.core.evaluating.cross_validation import cross_validate
    from keras_trainer.tabular.cross_validation import TableTrainer

    build = splits.network if splits.typed is not None else None
    trainer = TableTrainer(
        config,
        splits.input_shape,
        loss,
        splits.classification,
        build=build,
        standardize=splits.typed is None,
    )
    x, y = splits.cv_rows
    ordered = config.data.time_series or splits.window is not None
    result = cross_validate(trainer, x, y, folds=folds, shuffle=not ordered)
    print(f"{folds}-fold cross-validation on the training rows (mean ± std):")
    print(result.summary(), flush=True)


def _target_name(source: str, target: str | None) -> str | None:
    """The target column's name: `--target`, else a CSV file's last column (what
    `predict` names its regression output by)."""
    if target or not source.lower().endswith(".csv") or not os.path.isfile(source):
        return target
    from keras_trainer.cli_checks import csv_header

    return csv_header(source)[-1]


@dataclasses.dataclass
class _Splits:
    """Training, validation and test data of one `train` run, as arrays or as streams."""

    train: Any
    train_targets: Any  # None for a stream, which yields its targets
    validation: Any
    scaler: Any
    input_shape: tuple
    feature_names: list[str]
    classification: bool
    sizes: tuple[int, int, int]
    unit: str = "rows"
    test: Any = None  # (x, y) arrays, or a stream of raw (x, y) batches
    window: int | None = None
    horizon: int | None = None
    typed: Any = None  # a TypedTable: raw rows encoded by its preprocessor
    split: Any = None  # the held-out split's record (`core.evaluating.held_out.split_record`)
    cv_rows: Any = None  # (x, y) of the training and validation rows, before scaling

    def class_names(self, model_config: Any, source: str) -> list[str] | None:
        """The names of the head's classes: a typed table's, a bundled table's, else numbers."""
        if self.typed is not None:
            return self.typed.class_names
        if not self.classification:
            return None
        width = 2 if model_config.output_activation == "sigmoid" else model_config.output_dim
        return _builtin_class_names(source, width) or [str(i) for i in range(width)]

    def describe(self) -> str:
        n_train, n_val, n_test = self.sizes
        return f"{n_train} train, {n_val} validation, {n_test} test {self.unit}"

    def network(self, model_config: Any):
        """The network for these inputs (a typed table's embeddings in front)."""
        if self.typed is not None:
            from keras_trainer.tabular.typed_training import build_typed_model

            return build_typed_model(model_config, self.typed.preprocessor, self.typed.width)
        from keras_trainer.core.building.models import build_model

        return build_model(model_config.replace(input_dim=self.input_shape[-1]), self.input_shape)

    @property
    def has_test(self) -> bool:
        return self.sizes[2] > 0

    def test_scores(self, model: Any, class_names: list[str] | None) -> tuple[Any, dict]:
        """The test report (printed) and its numbers as `test_<metric>`; `(None, {})` without a test."""
        if not self.has_test:
            return None, {}
        report = self.test_report(model, class_names)
        print(report.to_text())
        metrics = report.to_dict().get("metrics", {})
        return report, {f"test_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}

    def test_report(self, model: Any, class_names: list[str] | None):
        from keras_trainer.core.evaluating.evaluation import ModelEvaluator

        evaluator = ModelEvaluator(
            model,
            task="classification" if self.classification else "regression",
            class_names=class_names,
        )
        if isinstance(self.test, tuple):
            return evaluator.evaluate(*self.test)
        return evaluator.evaluate(self.test)  # a stream: only predictions and targets kept


def _array_splits(args: argparse.Namespace, config: Any, source: str) -> _Splits:
    """A table read whole: rows split at random (stratified for classification), or by
    time (`data.time_series`, and always for the windows of a sequence model)."""
    from keras_trainer.core.evaluating.held_out import data_fingerprint, split_record
    from keras_trainer.tabular.data import head_targets, load_data, split_rows
    from keras_trainer.tabular.normalization import FeatureScaler
    from keras_trainer.tabular.typed_training import is_typed_table

    if is_typed_table(source, config):
        return _typed_splits(args, config, source)
    x, y, feature_names = load_data(source, args.target)
    fingerprint = data_fingerprint(x, y)
    model_config, training = config.model, config.training
    y, classification = head_targets(y, model_config, source)
    sequence = model_config.type in SEQUENCE_TYPES
    window, horizon = getattr(args, "window", None), getattr(args, "horizon", 1) or 1
    validation = training.validation_split or 0.2
    seed = training.seed or 0
    test_source = getattr(args, "test_data", None)
    test_split = 0.0 if test_source else config.data.test_split
    if sequence:
        if not window:
            raise ConfigError(
                f"model.type: {model_config.type!r} reads windows of rows; pass --window N"
            )
        xs, ys = _windows(x, y, window, horizon)
        n = len(xs)
        n_test, n_val = int(round(n * test_split)), int(round(n * validation))
        # By time, with the windows that would share rows across a cut dropped.
        gap = window + horizon - 1
        test_idx = np.arange(n - n_test, n)
        val_idx = np.arange(max(n - n_test - gap - n_val, 0), max(n - n_test - gap, 0))
        train_idx = np.arange(0, max(val_idx[0] - gap, 0) if len(val_idx) else 0)
        if len(train_idx) < 1 or len(val_idx) < 1:
            raise DataError(
                f"{source}: {len(x)} rows give {n} windows of {window}; too few to split by time"
            )
        x, y = xs, ys
    else:
        train_idx, val_idx, test_idx = split_rows(
            len(x),
            validation,
            test_split,
            seed,
            labels=y if classification else None,
            shuffle=not config.data.time_series,
        )
    scaler = FeatureScaler().fit(x[train_idx])
    test, split = (x[test_idx], y[test_idx]), None
    if test_source:
        test_x, test_y, _ = load_data(test_source, args.target)
        test_fingerprint = data_fingerprint(test_x, test_y)
        test_y, _ = head_targets(test_y, model_config, test_source)
        test = _windows(test_x, test_y, window, horizon) if sequence else (test_x, test_y)
        test_idx = np.arange(len(test[1]))
        split = split_record(test_source, test_fingerprint, seed, 1.0, test_idx, fingerprint)
    else:
        split = split_record(source, fingerprint, seed, test_split, test_idx)
    rest = np.concatenate([train_idx, val_idx])
    return _Splits(
        train=scaler.transform(x[train_idx]),
        train_targets=y[train_idx],
        validation=(scaler.transform(x[val_idx]), y[val_idx]),
        scaler=scaler,
        input_shape=tuple(x.shape[1:]),
        feature_names=feature_names,
        classification=classification,
        sizes=(len(train_idx), len(val_idx), len(test_idx)),
        unit="windows" if sequence else "rows",
        test=test,
        window=window if sequence else None,
        horizon=horizon if sequence else None,
        split=split,
        cv_rows=(x[np.sort(rest)], y[np.sort(rest)]),
    )


def _builtin_class_names(source: str, width: int) -> list[str] | None:
    """A bundled table's class names (breast_cancer: malignant, benign), when they fit the head."""
    from keras_trainer.tabular.datasets import table_class_names

    if not source.startswith("builtin:"):
        return None
    names = table_class_names(source[len("builtin:") :])
    return names if names and len(names) == width else None


def _typed_splits(args: argparse.Namespace, config: Any, source: str) -> _Splits:
    """A typed table: rows split at random, columns encoded as the training rows teach."""
    from keras_trainer.core.evaluating.held_out import split_record
    from keras_trainer.tabular.tables import drop_missing_targets, encode_target, read_frame
    from keras_trainer.tabular.typed_training import frame_fingerprint, prepare_typed_table

    if config.model.type in SEQUENCE_TYPES:
        raise ConfigError(
            f"model.type: {config.model.type!r} reads windows of numeric rows; a table with typed "
            "columns (text, blanks, data.columns) trains a feed_forward model"
        )
    test_source = getattr(args, "test_data", None)
    if test_source:
        config = config.replace(data=config.data.replace(test_split=0.0))
    table = prepare_typed_table(source, args.target, config)
    kinds = ", ".join(f"{c['name']}: {c['type']}" for c in table.preprocessor.columns)
    print(
        f"columns ({'declared or ' if config.data.columns else ''}inferred): {kinds}; target: {table.target}"
    )
    train, validation, test = (table.parts[k] for k in ("train", "validation", "test"))
    seed = config.training.seed or 0
    split = split_record(source, table.fingerprint, seed, config.data.test_split, table.test_rows)
    if test_source:
        frame = drop_missing_targets(read_frame(test_source), table.target, test_source)
        y, _ = encode_target(frame[table.target], table.target, table.class_names)
        x, _ = table.preprocessor.transform(frame)
        test = (x, y if table.classification else y.astype("float32"))
        split = split_record(
            test_source,
            frame_fingerprint(frame),
            seed,
            1.0,
            np.arange(len(frame)),
            table.fingerprint,
        )
    return _Splits(
        train=train[0],
        train_targets=train[1],
        validation=validation,
        scaler=None,
        input_shape=(table.width,),
        feature_names=table.preprocessor.input_columns,
        classification=table.classification,
        sizes=(len(train[0]), len(validation[0]), len(test[0])),
        test=test,
        typed=table,
        split=split,
        cv_rows=tuple(np.concatenate([a, b]) for a, b in zip(train, validation)),
    )


def _typed_stream_splits(args: argparse.Namespace, config: Any, source: str) -> _Splits:
    """Typed shards: the preprocessing learned in one pass over the training shards, then
    every shard encoded as a batch first needs it (`keras_trainer.tabular.typed_shards`)."""
    from keras_trainer.tabular.typed_shards import TypedShards

    shards = TypedShards.learn(source, args.target, config)
    kinds = ", ".join(f"{c['name']}: {c['type']}" for c in shards.preprocessor.columns)
    print(
        f"columns ({'declared or ' if config.data.columns else ''}inferred from "
        f"{shards.paths[0]}): {kinds}; target: {shards.target}"
    )
    train, validation, test = shards.streams(config)
    return _Splits(
        train=train,
        train_targets=None,
        validation=validation,
        scaler=None,
        input_shape=(shards.width,),
        feature_names=shards.preprocessor.input_columns,
        classification=shards.classification,
        sizes=shards.sizes,
        test=test,
        typed=shards,
    )


def _stream_splits(args: argparse.Namespace, config: Any, source: str) -> _Splits:
    """Shards streamed through fit: the last rows (file order) are the test, then the
    validation rows; the scaler's statistics and the label range take one pass each."""
    from keras_trainer.core.inputs.streaming import ShardDataset, stream_statistics
    from keras_trainer.tabular.data import head_targets
    from keras_trainer.tabular.normalization import FeatureScaler
    from keras_trainer.tabular.typed_shards import is_typed_shards

    model_config, training = config.model, config.training
    if model_config.type in SEQUENCE_TYPES:
        raise ConfigError(
            f"model.type: {model_config.type!r} reads windows of consecutive rows, which are "
            f"not cut across shards; give one table file as --data, or a feed_forward model"
        )
    if is_typed_shards(source, config):
        return _typed_stream_splits(args, config, source)
    data = config.data if args.target is None else config.data.replace(target_columns=[args.target])
    stream = ShardDataset.from_config(data, training, source)
    train, validation, test = stream.splits(
        config.data.test_split, training.validation_split or 0.2
    )
    # One pass over the training rows: the scaler's statistics, and the targets'
    # range, which gives the head's size and kind.
    low, high, whole = np.inf, -np.inf, True

    def features():
        nonlocal low, high, whole
        for x, targets in train.chunks():
            low, high = min(low, float(targets.min())), max(high, float(targets.max()))
            whole = whole and bool(np.all(np.mod(targets, 1) == 0))
            yield x

    scaler = FeatureScaler(*stream_statistics(features()))
    width = len(stream.target_index)
    probe = np.array([low, high if whole else high + 0.5], dtype="float64")
    _, classification = head_targets(
        probe if width == 1 else np.tile(probe[:, None], (1, width)), model_config, source
    )

    def standardize(x, y):
        return scaler.transform(x), y.astype("int64") if classification else y

    feature_names = [stream.columns[i] for i in stream.feature_index]
    return _Splits(
        train=train.with_transform(standardize),
        train_targets=None,
        validation=validation.with_transform(standardize),
        scaler=scaler,
        input_shape=(len(feature_names),),
        feature_names=feature_names,
        classification=classification,
        sizes=(train.size, validation.size, test.size if test is not None else 0),
        test=test,
    )


def _load(model_path: str):
    from keras_trainer.tabular.normalization import load_tabular_model

    return load_tabular_model(model_path)


def _windowed(x: np.ndarray, y: np.ndarray, metadata: dict):
    """Windows of a time-ordered table for a sequence model (as in training); else the rows."""
    window = metadata.get("window")
    return _windows(x, y, window, metadata.get("horizon") or 1) if window else (x, y)


def evaluate(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer evaluate` for a tabular model."""
    from keras_trainer.config import load_config
    from keras_trainer.core.evaluating.evaluation import ModelEvaluator
    from keras_trainer.core.evaluating.held_out import (
        data_fingerprint,
        rows_to_score,
        warn_training_data,
    )
    from keras_trainer.core.evaluating.predictions import CLASSIFICATION_HEADS, head_kind
    from keras_trainer.tabular.data import head_targets, load_data

    model, metadata = _load(args.model)
    # By default the data the model was tested on: its separate test file, else its data.
    source = args.data or metadata.get("test_data") or metadata.get("data")
    if not source:
        raise DataError(f"evaluate: pass --data (the model {args.model} does not name its data)")
    if metadata.get("preprocessing"):
        return _evaluate_typed(args, model, metadata, source)
    target = args.target or metadata.get("target")
    unit = "windows" if metadata.get("window") else "rows"
    head = head_kind(metadata, int(np.prod(model.output_shape[1:])), model)
    classification = head in CLASSIFICATION_HEADS
    evaluator = ModelEvaluator(
        model,
        task="classification" if classification else "regression",
        class_names=metadata.get("class_names") if classification else None,
    )
    if is_shard_source(source):
        from keras_trainer.core.inputs.streaming import ShardDataset

        stream = ShardDataset(
            source, target_columns=[target if target is not None else -1], shuffle=False
        )
        if source == metadata.get("data"):
            warn_training_data(source)
        report, count = evaluator.evaluate(stream), stream.size
    else:
        x, y, _ = load_data(source, target)
        fingerprint = data_fingerprint(x, y)
        if "config" in metadata:
            y, _ = head_targets(y, load_config(metadata["config"]).model, source)
        x, y = _windowed(x, y, metadata)
        rows = rows_to_score(metadata.get("split"), fingerprint, len(y), source, args.all, unit)
        report, count = evaluator.evaluate(x[rows], y[rows]), len(rows)
    print(f"metrics on {count} {unit} of {source}:")
    _print_report(report, args.report)
    return 0


def _print_report(report: Any, path: str | None) -> None:
    """The report as text, and as JSON at `--report PATH` when given."""
    print(report.to_text())
    if path:
        report.save_json(path)
        print(f"saved report: {path}")


def _evaluate_typed(args: argparse.Namespace, model: Any, metadata: dict, source: str) -> int:
    """`evaluate` of a typed-table model: raw rows, the target by class name or value."""
    from keras_trainer.core.evaluating.held_out import rows_to_score
    from keras_trainer.tabular.table_model import TableModel
    from keras_trainer.tabular.tables import drop_missing_targets
    from keras_trainer.tabular.typed_training import frame_fingerprint

    table = TableModel(model, metadata)
    if args.target and args.target != table.target:
        raise DataError(
            f"evaluate: the model predicts {table.target!r}, not --target {args.target!r}"
        )
    if is_shard_source(source):
        return _evaluate_typed_shards(args, table, metadata, source)
    frame = drop_missing_targets(table.frame(source), table.target, source)
    rows = rows_to_score(
        metadata.get("split"), frame_fingerprint(frame), len(frame), source, args.all
    )
    report = table.evaluate(frame.iloc[rows].reset_index(drop=True))
    print(f"metrics on {report.n_samples} rows of {source}:")
    _print_report(report, args.report)
    return 0


def _evaluate_typed_shards(
    args: argparse.Namespace, table: Any, metadata: dict, source: str
) -> int:
    """`evaluate` of a typed-table model on typed shards: every row with a target, each
    shard encoded with the saved state as it is read; unseen values go to the notes."""
    from keras_trainer.core.evaluating.evaluation import ModelEvaluator
    from keras_trainer.core.evaluating.held_out import warn_training_data
    from keras_trainer.core.inputs.streaming import ShardDataset
    from keras_trainer.tabular.tables import typed_shard_paths
    from keras_trainer.tabular.typed_shards import TypedShardReader

    classification = table.class_names is not None
    reader = TypedShardReader(table.preprocessor, table.target, table.class_names)
    stream = ShardDataset(
        typed_shard_paths(source), target_columns=[table.target], shuffle=False, reader=reader
    )
    if classification:
        stream = stream.with_transform(lambda x, y: (x, y.astype("int64")))
    if source == metadata.get("data"):
        warn_training_data(source)
    evaluator = ModelEvaluator(
        table.model,
        task="classification" if classification else "regression",
        class_names=table.class_names,
    )
    report = evaluator.evaluate(stream)
    report.notes += [line for line in reader.report().to_text().splitlines() if line]
    print(f"metrics on {stream.size} rows of {source}:")
    _print_report(report, args.report)
    return 0


def predict(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer predict` for a tabular model."""
    from keras_trainer.core.evaluating.predictions import (
        class_names_for,
        describe,
        emit_records,
        head_kind,
    )

    if not args.data:
        raise DataError("predict: pass --data ROWS (.csv, .json, .npy or .npz)")
    if args.output:  # a folder or another suffix is named now, not after predicting
        from keras_trainer.core.saving.atomic import check_writable_path

        check_writable_path(args.output, "--output", (".csv", ".json"))
    model, metadata = _load(args.model)
    if metadata.get("preprocessing"):
        return _predict_typed(args, model, metadata)
    feature_names = list(metadata.get("feature_names") or [])
    x, ids = read_rows(args.data, feature_names, getattr(args, "id_column", None))
    window = metadata.get("window")
    if window and x.ndim == 2:
        if len(x) < window:
            raise DataError(f"{args.data}: {len(x)} rows; the model reads windows of {window}")
        ids = ids[window - 1 :]  # each window is named by its last row
        x = np.stack([x[s : s + window] for s in range(len(x) - window + 1)])
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{args.data}: rows of shape {tuple(x.shape[1:])}; the model expects {expected}"
        )
    outputs = np.asarray(model.predict(x, verbose=0))
    width = int(np.prod(outputs.shape[1:]))
    head = head_kind(metadata, width, model)
    target = metadata.get("target_name") or metadata.get("target")
    records = describe(
        outputs,
        head,
        class_names_for(metadata, head, width),
        ids,
        target_names=[target] if target and width == 1 else (),
    )
    emit_records(records, args.output)
    return 0


def _predict_typed(args: argparse.Namespace, model: Any, metadata: dict) -> int:
    """`predict` of a typed-table model on raw rows (.csv, .parquet, .json, or a folder or
    glob of .csv/.parquet shards, read one at a time); unseen category values and filled
    cells are reported on stderr, counted over all rows."""
    import sys

    from keras_trainer.core.evaluating.predictions import emit_records
    from keras_trainer.tabular.preprocessing import TransformReport, data_row
    from keras_trainer.tabular.table_model import TableModel
    from keras_trainer.tabular.typed_shards import shard_frames, shard_place

    table = TableModel(model, metadata)
    if is_shard_source(args.data):
        parts = shard_frames(args.data)  # one shard in memory at a time
    else:
        parts = [(args.data, table.frame(args.data))]
    id_column = getattr(args, "id_column", None)
    records, report = [], TransformReport()
    for path, frame in parts:
        if id_column and id_column not in frame.columns:
            raise DataError(
                f"{path}: no id column {id_column!r} (columns: {', '.join(frame.columns)})"
            )
        where = shard_place(path, np.arange(len(frame))) if path != args.data else data_row
        ids = list(frame[id_column]) if id_column else None
        records += table.predict(frame, ids=ids, where=where)
        report.add(table.last_report)
    if report.to_text():
        print(report.to_text(), file=sys.stderr)
    emit_records(records, args.output)
    return 0
