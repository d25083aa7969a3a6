"""The JIT family's command-line verbs: `train`, `evaluate`, `predict`, `collect`, `jit`.

    keras-trainer train config/model_config.json     train the JIT strategy model
    keras-trainer evaluate models/jit_optimizer.keras
    keras-trainer predict models/jit_optimizer.keras --ir kernel.ll --runtime metrics.json
    keras-trainer collect --corpus 300 --seed 0 --output data/jit.json
    keras-trainer collect kernels/*.ll --entry entry --args 1000 --output data/jit.json
    keras-trainer jit models/jit_optimizer.keras kernel.ll --entry entry 1000

`keras_trainer/cli.py` calls `register(subparsers)` through
`keras_trainer.registry.CLI_COMMANDS` (entry "jit").
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from typing import Optional

import numpy as np

from keras_trainer.errors import DataError, KerasTrainerError


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def register(subparsers) -> None:
    """Adds the JIT verbs (`train`, `evaluate`, `predict`, `collect`, `jit`) to `subparsers`."""
    commands = subparsers
    train = commands.add_parser("train", help="train the JIT strategy model from a config")
    train.add_argument("config", help="JSON config, e.g. config/model_config.json")
    train.add_argument("--data", help="dataset JSON (default: data.path, else the bundled sample)")
    train.add_argument("--output", help="model file to write (default: output.model_path)")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--checkpoint-dir", help="override training.checkpoint.directory")
    train.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--report", help="also write the test-set evaluation report as JSON")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a dataset")
    evaluate.add_argument("model")
    evaluate.add_argument("--data", help="dataset JSON (default: the bundled sample)")
    evaluate.add_argument("--report", help="also write the evaluation report as JSON")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="predict strategies with a saved model")
    predict.add_argument("model")
    source = predict.add_mutually_exclusive_group()
    source.add_argument("--data", help="dataset JSON")
    source.add_argument("--features", help="JSON file with a list of raw feature rows")
    source.add_argument("--ir", help="LLVM IR file (.ll)")
    predict.add_argument("--runtime", help="JSON file with the runtime metrics of --ir")
    predict.set_defaults(handler=_predict)

    collect = subparsers.add_parser(
        "collect",
        help="Measure IR modules under the 5 strategies and write a JIT dataset JSON.",
        description=(
            "Optimizes each module under every strategy, MCJIT-compiles and times it in a "
            "worker subprocess, and writes the dataset (format keras_trainer.jit_dataset/1)."
        ),
    )
    collect.add_argument("files", nargs="*", help=".ll files (each with the entry function)")
    collect.add_argument("--corpus", type=int, default=0, metavar="N",
                         help="also generate N corpus kernels (keras_trainer.jit.corpus)")
    collect.add_argument("--seed", type=int, default=0, help="corpus seed")
    collect.add_argument("--entry", default="entry", help="entry function of the .ll files")
    collect.add_argument("--args", type=_number, nargs="*", default=[],
                         help="arguments passed to the .ll files' entry function")
    collect.add_argument("--output", "-o", required=True, help="dataset JSON to write")
    collect.add_argument("--repeats", type=int, default=5)
    collect.add_argument("--warmup", type=int, default=1)
    collect.add_argument("--timeout", type=float, default=60.0, help="seconds per module")
    collect.add_argument("--tie-tolerance", type=float, default=0.02,
                         help="relative margin within which strategies tie")
    collect.add_argument("--tie-break", choices=["overall", "cheapest"], default="overall",
                         help="who wins a tie: the best strategy overall, or the cheapest")
    collect.add_argument("--workers", type=int, default=1)
    collect.set_defaults(handler=run_collect)

    jit = subparsers.add_parser(
        "jit",
        help="Compile an .ll file with the strategy a trained model picks, and run it.",
    )
    jit.add_argument("model", help="trained strategy model (.keras or .h5)")
    jit.add_argument("file", help=".ll file")
    jit.add_argument("args", type=_number, nargs="*", help="arguments of the entry function")
    jit.add_argument("--entry", default="entry")
    jit.add_argument("--timeout", type=float, default=60.0,
                     help="seconds each step of the untrusted IR (probe, build, run) may take")
    jit.add_argument("--trusted", action="store_true",
                     help="compile and run the IR in this process (only for IR you wrote)")
    jit.set_defaults(handler=run_jit)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(train, test)` with about `fraction` of each class in `test`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * fraction)) if len(members) > 1 else 0
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return rng.permutation(np.asarray(train, dtype=int)), np.sort(np.asarray(test, dtype=int))


def _dataset_path(path: Optional[str]) -> str:
    if path:
        return path
    from keras_trainer.jit import SAMPLE_DATASET_PATH

    return SAMPLE_DATASET_PATH


def _print_metrics(title: str, metrics: dict) -> None:
    print(title)
    for name, value in metrics.items():
        print(f"  {name:<24} {value:.4f}" if isinstance(value, float) else f"  {name:<24} {value}")


def _train(args: argparse.Namespace) -> int:
    from keras_trainer.jit.collect import load_dataset, read_dataset
    from keras_trainer.jit.config import load_jit_config
    from keras_trainer.jit.trainer import ModelTrainer

    config = load_jit_config(args.config)
    training = config.training
    if args.epochs is not None:
        training.epochs = args.epochs
    if args.checkpoint_dir:
        training.checkpoint.directory = args.checkpoint_dir
    if args.resume:
        training.resume = True
    if args.quiet:
        training.verbose = 0
    config = load_jit_config(config.to_dict())  # re-validate the overrides
    output = _check_outputs(args, config)
    data_path = _dataset_path(args.data or config.data.path)
    ir_samples, runtime_data, labels = load_dataset(data_path)
    class_names = read_dataset(data_path)["strategies"]
    train_idx, test_idx = stratified_split(np.asarray(labels), config.data.test_split, training.seed or 0)
    pick = lambda items, idx: [items[i] for i in idx]  # noqa: E731

    trainer = ModelTrainer(config)
    trainer.class_names = class_names
    X_train, y_train = trainer.prepare_training_data(
        pick(ir_samples, train_idx), pick(runtime_data, train_idx), pick(labels, train_idx)
    )
    if len(test_idx):  # data.test_split = 0 holds out nothing
        X_test, y_test = trainer.prepare_training_data(
            pick(ir_samples, test_idx),
            pick(runtime_data, test_idx),
            pick(labels, test_idx),
            fit_normalizer=False,
        )
    print(f"dataset: {data_path} ({len(train_idx)} train, {len(test_idx)} test samples)")
    trainer.create_model(X_train.shape[1])
    history = trainer.train((X_train, y_train))
    print(history.summary())
    if len(test_idx):
        _print_metrics("test metrics:", trainer.evaluate((X_test, y_test)))
        _report(trainer, X_test, y_test, args.report)
    output = args.output or config.output.model_path
    trainer.save_model(output)
    print(f"saved model: {output}")
    return 0


def _check_outputs(args: argparse.Namespace, config) -> str:
    """Checks every path `train` writes before training starts; returns the model path."""
    from keras_trainer.core.atomic import check_writable_path
    from keras_trainer.core.checkpoints import CheckpointManager
    from keras_trainer.core.persistence import SUPPORTED_SUFFIXES

    output = args.output or config.output.model_path
    check_writable_path(output, "--output" if args.output else "output.model_path", SUPPORTED_SUFFIXES)
    if args.report:
        check_writable_path(args.report, "--report")
    directory = config.training.checkpoint.directory
    if directory is not None:
        CheckpointManager(directory)  # a file where the folder should be is named here
        check_writable_path(os.path.join(directory, "best.keras"), "training.checkpoint.directory")
    if config.training.logging.directory is not None:
        check_writable_path(
            os.path.join(config.training.logging.directory, "history.json"), "training.logging.directory"
        )
    return output


def _report(trainer, X: np.ndarray, y: np.ndarray, report_path: Optional[str]) -> None:
    report = trainer.evaluation_report((X, y))
    print(report.to_text())
    if report_path:
        report.save_json(report_path)
        print(f"saved report: {report_path}")


def _load_trainer(model_path: str):
    from keras_trainer.jit.trainer import load_jit_model

    return load_jit_model(model_path)


def _evaluate(args: argparse.Namespace) -> int:
    from keras_trainer.jit.collect import load_dataset

    if args.report:
        from keras_trainer.core.atomic import check_writable_path

        check_writable_path(args.report, "--report")
    trainer = _load_trainer(args.model)
    ir_samples, runtime_data, labels = load_dataset(_dataset_path(args.data))
    X, y = trainer.prepare_training_data(ir_samples, runtime_data, labels, fit_normalizer=False)
    _print_metrics(f"metrics on {len(labels)} samples:", trainer.evaluate((X, y)))
    _report(trainer, X, y, args.report)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from keras_trainer.config import read_json_file, read_text_file

    if args.runtime and not args.ir:
        raise DataError("--runtime: gives the runtime metrics of --ir; pass --ir too")
    trainer = _load_trainer(args.model)
    if args.features:
        rows = read_json_file(args.features, "--features", DataError)
        probabilities = trainer.predict(_feature_rows(rows, args.features))
        names = [f"row {i}" for i in range(len(probabilities))]
    elif args.ir:
        ir_text = read_text_file(args.ir, "--ir", DataError)
        runtime = {}
        if args.runtime:
            runtime = read_json_file(args.runtime, "--runtime", DataError)
            if not isinstance(runtime, dict):
                raise DataError(
                    f"--runtime file {args.runtime}: must hold a JSON object of runtime metrics, "
                    f"got {type(runtime).__name__}"
                )
        probabilities = trainer.predict_ir([ir_text], [runtime])
        names = [args.ir]
    else:
        from keras_trainer.jit.collect import load_dataset

        ir_samples, runtime_data, _ = load_dataset(_dataset_path(args.data))
        probabilities = trainer.predict_ir(ir_samples, runtime_data)
        names = [f"sample {i}" for i in range(len(probabilities))]
    for name, row in zip(names, probabilities):
        best = int(np.argmax(row))
        print(f"{name}: {trainer.class_names[best]} (p={row[best]:.3f})")
    return 0


def _feature_rows(rows, path: str) -> list:
    if not isinstance(rows, list) or not rows:
        raise DataError(f"--features file {path}: must hold a non-empty JSON list of feature rows")
    for index, row in enumerate(rows):
        values = row if isinstance(row, list) else [row]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise DataError(f"--features file {path}: row {index} must be a list of numbers, got {row!r:.100}")
    return rows


def run_collect(args) -> int:
    from keras_trainer.jit.collect import collect_dataset, save_dataset
    from keras_trainer.jit.corpus import generate_corpus

    from keras_trainer.config import read_text_file
    from keras_trainer.core.atomic import check_writable_path

    try:
        check_writable_path(args.output, "--output", (".json",))
        modules = []
        for path in args.files:
            text = read_text_file(path, "IR", DataError)
            modules.append({"name": os.path.basename(path), "ir": text, "entry": args.entry,
                            "args": list(args.args)})
        if args.corpus:
            modules.extend(generate_corpus(args.corpus, seed=args.seed))
        if not modules:
            raise DataError("nothing to collect: give .ll files and/or --corpus N")

        def progress(done, total, record):
            if "reason" in record:
                status = f"FAILED ({record['reason']})"
            else:
                status = "fastest " + min(record["timings_ns"], key=record["timings_ns"].get)
            print(f"[{done}/{total}] {record['name']}: {status}", flush=True)

        dataset = collect_dataset(modules, repeats=args.repeats, warmup=args.warmup,
                                  timeout_s=args.timeout, tie_tolerance=args.tie_tolerance,
                                  tie_break=args.tie_break,
                                  workers=args.workers, progress=progress)
        save_dataset(dataset, args.output)
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    labels = collections.Counter(s["label_name"] for s in dataset["samples"])
    print(f"wrote {args.output}: {len(dataset['samples'])} samples, "
          f"{len(dataset['failed'])} failed; labels {dict(labels)}")
    return 0


def run_jit(args) -> int:
    from keras_trainer.config import read_text_file
    from keras_trainer.jit.adaptive import AdaptiveJIT

    function = None
    try:
        text = read_text_file(args.file, "IR", DataError)
        jit = AdaptiveJIT(args.model, trusted=args.trusted, timeout_s=args.timeout)
        function = jit.compile(text, args.entry, args=args.args)
        result = function(*args.args)
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if function is not None and hasattr(function, "close"):
            function.close()
    probabilities = ", ".join(f"{k}={v:.3f}" for k, v in function.probabilities.items())
    print(f"strategy: {function.strategy} ({probabilities})")
    print(f"result: {result}")
    return 0
