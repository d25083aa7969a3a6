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

from keras_trainer.cli_args import (
    add_entry_argument,
    check_overwrite,
    finish_run,
    load_verb_config,
    print_error,
    start_run,
)
from keras_trainer.core.inputs.rows import is_rows_file, read_rows
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
    """Adds the JIT family's own verbs (`collect`, `jit`) to `subparsers`.

    `train`, `evaluate` and `predict` are the core's shared verbs
    (`keras_trainer.cli_verbs`); they call `train`, `evaluate` and `predict`
    below through `keras_trainer.registry.FAMILY_VERBS`.
    """
    _register_collect(subparsers)
    _register_jit(subparsers)

    from keras_trainer.jit.runtime.bench_cli import register_bench
    from keras_trainer.jit.tiering.replay_cli import register_replay

    register_replay(subparsers)
    register_bench(subparsers)


def _register_collect(subparsers) -> None:
    collect = subparsers.add_parser(
        "collect",
        help="Measure IR modules under the 5 strategies and write a JIT dataset JSON.",
        description=(
            "Optimizes each module under every strategy, MCJIT-compiles and times it in a "
            "worker subprocess, and writes the dataset (format keras_trainer.jit_dataset/1)."
        ),
    )
    collect.add_argument(
        "files",
        nargs="*",
        help=".ll files, or .c files compiled with clang (each with the entry function)",
    )
    collect.add_argument(
        "--corpus",
        type=int,
        default=0,
        metavar="N",
        help="also generate N llvmlite corpus kernels (keras_trainer.jit.data.corpus)",
    )
    collect.add_argument(
        "--c-corpus",
        type=int,
        default=0,
        metavar="N",
        help="also generate N C kernels compiled with clang (keras_trainer.jit.data.c_corpus)",
    )
    collect.add_argument("--seed", type=int, default=0, help="corpus seed")
    add_entry_argument(collect, "entry function of the .ll files")
    collect.add_argument(
        "--args",
        type=_number,
        nargs="*",
        default=[],
        help="arguments passed to the .ll files' entry function",
    )
    collect.add_argument("--output", "-o", required=True, help="dataset JSON to write")
    collect.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed runs per strategy; the median is kept (default 5)",
    )
    collect.add_argument(
        "--warmup", type=int, default=1, help="untimed runs per strategy before timing (default 1)"
    )
    collect.add_argument("--timeout", type=float, default=60.0, help="seconds per module")
    collect.add_argument(
        "--tie-tolerance",
        type=float,
        default=0.03,
        help="relative margin within which strategies tie",
    )
    collect.add_argument(
        "--tie-break",
        choices=["overall", "cheapest"],
        default="cheapest",
        help="who wins a tie: the cheapest to compile, or the best strategy overall",
    )
    collect.add_argument(
        "--min-sample-us",
        type=float,
        default=50.0,
        help="time each sample over enough calls to last this long",
    )
    collect.add_argument(
        "--workers",
        type=int,
        default=1,
        help="modules measured at once (default 1: the least timing noise)",
    )
    collect.add_argument(
        "--trusted",
        action="store_true",
        help="measure .ll/.c files without the untrusted-IR rules (only for code you wrote)",
    )
    collect.set_defaults(handler=run_collect)


def _register_jit(subparsers) -> None:
    jit = subparsers.add_parser(
        "jit",
        help="Compile an .ll file with the strategy a trained model picks, and run it.",
    )
    jit.add_argument("model", help="trained strategy model (.keras or .h5)")
    jit.add_argument("file", help=".ll file")
    jit.add_argument("args", type=_number, nargs="*", help="arguments of the entry function")
    add_entry_argument(jit, "entry function of the .ll file (default entry)")
    jit.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds each step of the untrusted IR (probe, build, run) may take",
    )
    jit.add_argument(
        "--trusted",
        action="store_true",
        help="compile and run the IR in this process (only for IR you wrote)",
    )
    jit.set_defaults(handler=run_jit)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
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
    from keras_trainer.jit import DEFAULT_DATASET_PATH

    return DEFAULT_DATASET_PATH


def _print_metrics(title: str, metrics: dict) -> None:
    print(title)
    for name, value in metrics.items():
        print(f"  {name:<24} {value:.4f}" if isinstance(value, float) else f"  {name:<24} {value}")


def train(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer train` for a JIT strategy config."""
    from keras_trainer.jit.config import load_jit_config

    config = load_verb_config(args, load_jit_config)
    training = config.training
    if args.epochs is not None:
        training.epochs = args.epochs
    if args.checkpoint_dir:
        training.checkpoint.directory = args.checkpoint_dir
    if args.resume:
        training.resume = True
    if args.quiet:
        training.verbose = 0
    if getattr(args, "wandb", False):
        training.logging.wandb = True
    config = load_jit_config(config.to_dict())  # re-validate the overrides
    output = _check_outputs(args, config)
    data_path = _dataset_path(args.data or config.data.path)
    data = read_samples(data_path)
    run = start_run(args, args.config)
    training = config.training
    training.logging.directory = run.path
    training.logging.tensorboard = (
        bool(getattr(args, "tensorboard", False)) or training.logging.tensorboard
    )
    test_path = getattr(args, "test_data", None)  # a test file: every row here trains
    test_split = 0.0 if test_path else config.data.test_split
    config, trainer, prepared, raw, train_idx, test_idx = split_dataset(
        config, data, data_path, test_split
    )
    labels = np.argmax(prepared.y, axis=-1)
    test = prepared.take(test_idx) if len(test_idx) else None
    if test_path:
        trainer.split, test = _test_file(trainer, test_path, trainer.split["sha256"])
    n_test = len(test.y) if test is not None else 0
    print(f"dataset: {data_path} ({len(train_idx)} train, {n_test} test samples)")
    if getattr(args, "cv", None):
        from keras_trainer.core.evaluating.cross_validation import cross_validate

        times = None if prepared.times is None else prepared.times[train_idx]
        result = cross_validate(
            trainer, raw[train_idx], labels[train_idx], folds=args.cv, side_data=times
        )
        print(f"{args.cv}-fold cross-validation on the training split (mean ± std):")
        print(result.summary())
    trainer.create_model(prepared.X.shape[1])
    history = trainer.train(prepared.take(train_idx))
    print(history.summary())
    if trainer.fallback:
        print(
            f"fallback: {trainer.fallback['strategy']} below p={trainer.fallback['threshold']:.3f}"
        )
    report, metrics = None, {}
    if test is not None:
        metrics = {f"test_{k}": v for k, v in trainer.evaluate(test).items()}
        _print_metrics("test metrics:", metrics)
        report = _report(trainer, test, args.report)
    output = args.output or config.output.model_path
    trainer.save_model(output)
    trainer.save_model(run.file(run.MODEL))
    print(f"saved model: {output}")
    finish_run(
        run,
        args,
        config.to_dict(),
        report=report,
        metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
        summary={"command": "train", "family": "jit", "data": data_path, "model": output},
    )
    return 0


def read_samples(data_path: str) -> dict:
    """The JIT dataset at `data_path` (`read_dataset`), refusing one without samples.

    Raises:
        DataError: the file is missing, malformed or has no samples.
    """
    from keras_trainer.jit.data.collect import read_dataset

    data = read_dataset(data_path)
    if not data["samples"]:
        raise DataError(
            f"{data_path}: the dataset has no samples; collect some first (keras-trainer collect)"
        )
    return data


def split_dataset(config, data: dict, data_path: str, test_split: float | None = None) -> tuple:
    """A JIT dataset made ready for training, as `train` and `tune` use it.

    The config takes the dataset's strategies when it names none
    (`_match_strategies`); features are extracted, labels and times derived, the
    rows split into training and test (`test_split`, default `data.test_split`;
    stratified, seeded by `training.seed`), and the normalization fitted on the
    training rows only.

    Returns:
        `(config, trainer, prepared, raw, train_idx, test_idx)`: the config used,
        the `ModelTrainer` (its normalizer fitted, `split` recorded), the
        `PreparedData` of every row (normalized features, labels, times, groups),
        the raw features and the row indices of each part.
    """
    from keras_trainer.core.evaluating.held_out import split_record
    from keras_trainer.jit.data.collect import dataset_fingerprint, dataset_outcomes
    from keras_trainer.jit.model.trainer import ModelTrainer, PreparedData

    samples = data["samples"]
    config = _match_strategies(config, data, data_path)
    trainer = ModelTrainer(config)
    families = [r.get("family") for r in samples]
    prepared = trainer.prepare_training_data(
        [r["ir"] for r in samples],
        [r["runtime"] for r in samples],
        dataset_outcomes(data, trainer.class_names),
        groups=families if all(families) else None,
    )
    seed = config.training.seed or 0
    labels = np.argmax(prepared.y, axis=-1)
    if test_split is None:
        test_split = config.data.test_split
    train_idx, test_idx = stratified_split(labels, test_split, seed)
    # Normalization statistics come from the training rows only.
    raw = trainer.extract_features([r["ir"] for r in samples], [r["runtime"] for r in samples])
    trainer.fit_normalizer(raw[train_idx])
    prepared = PreparedData(
        trainer.normalize(raw), prepared.y, prepared.times, prepared.groups, prepared.strategies
    )
    trainer.split = split_record(
        data_path, dataset_fingerprint(data_path), seed, test_split, test_idx
    )
    return config, trainer, prepared, raw, train_idx, test_idx


def _test_file(trainer, path: str, trained_on: str):
    """`train --test-data`: the split record of a separate test dataset, and its samples
    prepared with the training rows' normalization."""
    from keras_trainer.core.evaluating.held_out import split_record
    from keras_trainer.jit.data.collect import dataset_fingerprint, dataset_outcomes, read_dataset

    data = read_dataset(path)
    samples = data["samples"]
    if not samples:
        raise DataError(f"--test-data {path}: the dataset has no samples")
    test = trainer.prepare_training_data(
        [r["ir"] for r in samples],
        [r["runtime"] for r in samples],
        dataset_outcomes(data, trainer.class_names),
        fit_normalizer=False,
    )
    fingerprint = dataset_fingerprint(path)
    seed = trainer.split["seed"]
    record = split_record(path, fingerprint, seed, 1.0, range(len(samples)), trained_on)
    return {**record, "test_data": path}, test


def _match_strategies(config, data: dict, data_path: str):
    """The config whose `jit.strategies` the dataset measures.

    A config that names no strategies (the built-in five by default) takes the
    dataset's own, with a note naming the difference; one that names strategies the
    dataset lacks is a `ConfigError` naming them.
    """
    from keras_trainer.errors import ConfigError
    from keras_trainer.jit.config import is_default_strategies, load_jit_config

    wanted, have = config.jit.names, list(data["strategies"])
    if set(wanted) <= set(have):
        return config
    missing = [name for name in wanted if name not in have]
    if not is_default_strategies(config.jit.strategies):
        raise ConfigError(
            f"jit.strategies: {missing} are not measured in {data_path}, whose strategies are "
            f"{have}; name the dataset's strategies in jit.strategies"
        )
    print(
        f"note: {data_path} measures the strategies {have}, not the built-in {wanted} "
        f"(no {missing}) that the config uses by default; training on the dataset's",
        file=sys.stderr,
    )
    adopted = config.to_dict()
    adopted["jit"]["strategies"] = [{"name": name} for name in have]
    if adopted["model"].get("output_dim") == len(wanted):
        adopted["model"]["output_dim"] = None  # one output per strategy
    return load_jit_config(adopted)


def _check_outputs(args: argparse.Namespace, config) -> str:
    """Checks every path `train` writes before training starts; returns the model path."""
    from keras_trainer.core.saving.atomic import check_writable_path
    from keras_trainer.core.saving.checkpoints import CheckpointManager
    from keras_trainer.core.saving.persistence import SUPPORTED_SUFFIXES

    output = args.output or config.output.model_path
    option = "--output" if args.output else "output.model_path"
    check_writable_path(output, option, SUPPORTED_SUFFIXES)
    allowed = getattr(args, "overwrite", False) or config.output.overwrite
    check_overwrite(output, option, allowed, "output.overwrite")
    if args.report:
        check_writable_path(args.report, "--report")
    directory = config.training.checkpoint.directory
    if directory is not None:
        CheckpointManager(directory)  # a file where the folder should be is named here
        check_writable_path(os.path.join(directory, "best.keras"), "training.checkpoint.directory")
    if config.training.logging.directory is not None:
        check_writable_path(
            os.path.join(config.training.logging.directory, "history.json"),
            "training.logging.directory",
        )
    return output


def _report(trainer, data, report_path: Optional[str]):
    report = trainer.evaluation_report(data)
    print(report.to_text())
    if getattr(data, "times", None) is not None:
        from keras_trainer.jit.model.choices import format_runtime_report

        runtime = trainer.runtime_report(data)
        print(format_runtime_report(runtime))
        report_dict = report.to_dict() if hasattr(report, "to_dict") else None
        if report_path and report_dict is not None:
            report_dict["runtime"] = runtime
            from keras_trainer.core.saving.atomic import write_json_atomic

            write_json_atomic(report_path, report_dict)
            print(f"saved report: {report_path}")
            return report
    if report_path:
        report.save_json(report_path)
        print(f"saved report: {report_path}")
    return report


def _load_trainer(model_path: str):
    from keras_trainer.jit.model.trainer import load_jit_model

    return load_jit_model(model_path)


def evaluate(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer evaluate` for a JIT strategy model."""
    from keras_trainer.core.evaluating.held_out import rows_to_score
    from keras_trainer.jit.data.collect import dataset_fingerprint, dataset_outcomes, read_dataset

    if args.report:
        from keras_trainer.core.saving.atomic import check_writable_path

        check_writable_path(args.report, "--report")
    trainer = _load_trainer(args.model)
    # By default the model's test data: its --test-data file, else the sample dataset.
    data_path = _dataset_path(args.data or (trainer.split or {}).get("test_data"))
    data = read_dataset(data_path)
    samples = data["samples"]
    rows = rows_to_score(
        trainer.split,
        dataset_fingerprint(data_path),
        len(samples),
        data_path,
        score_all=args.all,
        unit="samples",
    )
    chosen = [samples[i] for i in rows]
    outcomes = dataset_outcomes(
        {"strategies": data["strategies"], "samples": chosen}, trainer.class_names
    )
    prepared = trainer.prepare_training_data(
        [r["ir"] for r in chosen], [r["runtime"] for r in chosen], outcomes, fit_normalizer=False
    )
    _print_metrics(f"metrics on {len(rows)} samples:", trainer.evaluate(prepared))
    _report(trainer, prepared, args.report)
    return 0


def predict(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer predict` for a JIT strategy model: every strategy's
    probability per kernel, named by the kernel (dataset sample name or `.ll` file)."""
    from keras_trainer.config import read_json_file, read_text_file
    from keras_trainer.core.evaluating.predictions import (
        MULTICLASS,
        describe,
        emit_records,
    )

    if args.runtime and not args.ir:
        raise DataError("--runtime: gives the runtime metrics of --ir; pass --ir too")
    trainer = _load_trainer(args.model)
    if args.features:
        rows = read_json_file(args.features, "--features", DataError)
        probabilities = trainer.predict(_feature_rows(rows, args.features))
        names = list(range(len(probabilities)))
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
        names = [os.path.basename(args.ir)]
    elif args.data and is_rows_file(args.data):  # raw feature rows, named by the header
        x, names = read_rows(args.data, trainer.feature_names, args.id_column)
        if x.ndim != 2 or x.shape[1] != len(trainer.feature_names):
            raise DataError(
                f"{args.data}: rows of shape {tuple(x.shape[1:])}; the model reads "
                f"{len(trainer.feature_names)} features {trainer.feature_names}"
            )
        probabilities = trainer.predict(x)
    else:
        from keras_trainer.jit.data.collect import load_dataset, read_dataset

        path = _dataset_path(args.data)
        ir_samples, runtime_data, _ = load_dataset(path)
        probabilities = trainer.predict_ir(ir_samples, runtime_data)
        names = [sample.get("name", i) for i, sample in enumerate(read_dataset(path)["samples"])]
    records = describe(probabilities, MULTICLASS, list(trainer.class_names), names)
    emit_records(records, args.output)
    return 0


def _feature_rows(rows, path: str) -> list:
    if not isinstance(rows, list) or not rows:
        raise DataError(f"--features file {path}: must hold a non-empty JSON list of feature rows")
    for index, row in enumerate(rows):
        values = row if isinstance(row, list) else [row]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise DataError(
                f"--features file {path}: row {index} must be a list of numbers, got {row!r:.100}"
            )
    return rows


def collect_options(args: argparse.Namespace) -> dict:
    """`collect_dataset`'s measuring and labelling options from parsed `collect`-style flags."""
    options = {
        "repeats": args.repeats,
        "warmup": args.warmup,
        "timeout_s": args.timeout,
        "tie_tolerance": args.tie_tolerance,
        "tie_break": args.tie_break,
    }
    for name in ("min_sample_us", "workers"):  # not every script has these flags
        if hasattr(args, name):
            options[name] = getattr(args, name)
    return options


def run_collect(args) -> int:
    from keras_trainer.config import read_text_file
    from keras_trainer.core.saving.atomic import check_writable_path
    from keras_trainer.jit.data.collect import collect_dataset, save_dataset
    from keras_trainer.jit.data.corpus import generate_corpus

    try:
        check_writable_path(args.output, "--output", (".json", ".json.gz"))
        modules = []
        for path in args.files:
            text = read_text_file(path, "C source" if path.endswith(".c") else "IR", DataError)
            if path.endswith(".c"):
                from keras_trainer.jit.data.c_corpus import compile_c

                # Says how to install clang when it is missing (ClangNotFoundError).
                name = os.path.splitext(os.path.basename(path))[0]
                text = compile_c(text, name=name)
            if not getattr(args, "trusted", False):  # collecting runs the code: untrusted rules
                from keras_trainer.jit.runtime.sandbox import check_untrusted_ir

                try:
                    check_untrusted_ir(text, args.entry)
                except DataError as error:
                    raise type(error)(f"{path}: {error} (or pass --trusted)") from None
            modules.append(
                {
                    "name": os.path.basename(path),
                    "ir": text,
                    "entry": args.entry,
                    "args": list(args.args),
                }
            )
        if args.corpus:
            modules.extend(generate_corpus(args.corpus, seed=args.seed))
        if args.c_corpus:
            from keras_trainer.jit.data.c_corpus import generate_c_corpus

            modules.extend(generate_c_corpus(args.c_corpus, seed=args.seed))
        if not modules:
            raise DataError("nothing to collect: give .ll/.c files, --corpus N and/or --c-corpus N")

        def progress(done, total, record):
            if "reason" in record:
                status = f"FAILED ({record['reason']})"
            else:
                status = (
                    "measured (raw fastest "
                    + min(record["timings_ns"], key=record["timings_ns"].get)
                    + "; labels follow the tie rule at the end)"
                )
            print(f"[{done}/{total}] {record['name']}: {status}", flush=True)

        dataset = collect_dataset(modules, progress=progress, **collect_options(args))
        save_dataset(dataset, args.output)
    except KerasTrainerError as error:
        return print_error(error)
    rule = dataset.get("metadata", {})
    print(
        f"final labels (ties within {args.tie_tolerance:g} go to the {args.tie_break} preference"
        + (f" {rule['tie_preference']}" if "tie_preference" in rule else "")
        + "):"
    )
    for sample in dataset["samples"]:
        print(f"  {sample.get('name', '?')}: {sample['label_name']}")
    labels = collections.Counter(s["label_name"] for s in dataset["samples"])
    print(
        f"wrote {args.output}: {len(dataset['samples'])} samples, "
        f"{len(dataset['failed'])} failed; labels {dict(labels)}"
    )
    return 0


def run_jit(args) -> int:
    from keras_trainer.config import read_text_file
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT

    function = None
    try:
        text = read_text_file(args.file, "IR", DataError)
        jit = AdaptiveJIT(args.model, trusted=args.trusted, timeout_s=args.timeout)
        function = jit.compile(text, args.entry, args=args.args)
        result = function(*args.args)
    except KerasTrainerError as error:
        return print_error(error)
    finally:
        if function is not None and hasattr(function, "close"):
            function.close()
    probabilities = ", ".join(f"{k}={v:.3f}" for k, v in function.probabilities.items())
    print(f"strategy: {function.strategy} ({probabilities})")
    print(f"result: {result}")
    return 0
