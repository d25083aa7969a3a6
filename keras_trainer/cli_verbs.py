"""`train`, `evaluate` and `predict`: one verb each for every model family.

    keras-trainer train CONFIG [--data PATH]            JIT, tabular/sequence or assistant config
    keras-trainer evaluate MODEL [--data PATH]          any saved model
    keras-trainer predict MODEL [--data PATH] [--output predictions.csv|.json]

The verbs are the core's; the work is the family's. `train` reads the config
(and `--data`) to pick the family: a config without a `model` section but with
the assistant's keys is the assistant's; `model.type` `feed_forward`, `lstm`
or `cnn_lstm`, or any model with a table as `--data` (`builtin:<name>`, `.csv`,
`.parquet`, `.npy`, `.npz`), is the tabular family's; the rest (`mlp` on a JIT
dataset, the default) is the JIT family's. `evaluate` and `predict` read the
`task` stored in the saved model. The handler is then looked up in
`keras_trainer.registry.FAMILY_VERBS` under `"<verb>:<family>"`, so a new
family plugs in with three registry lines and no change here.
"""

from __future__ import annotations

import argparse
import os

from keras_trainer.cli_args import (  # noqa: F401  (config_family: its older home)
    ASSISTANT_KEYS,
    TABLE_PREFIXES,
    TABLE_SUFFIXES,
    TABULAR_TYPES,
    add_config_argument,
    add_data_arguments,
    add_model_argument,
    add_override_arguments,
    add_overwrite_argument,
    add_report_argument,
    add_run_arguments,
    config_family,
    load_verb_config,
    print_config,
    verb_config_dict,
)
from keras_trainer.cli_checks import check_evaluate, check_predict, check_train
from keras_trainer.errors import DataError

# The `task` in a saved model's metadata -> the family that reads it.
TASK_FAMILIES = {
    "jit_strategy": "jit",
    "tabular": "tabular",
    "assistant": "assistant",
    "assistant_onnx": "assistant",
}
# The family whose `train` takes a config -> the config kind (`CONFIG_FILES`) it is read as.
FAMILY_CONFIG_KINDS = {"jit": "jit", "tabular": "trainer", "assistant": "assistant"}


def model_family(model_path: str) -> str:
    """The family that reads a saved model (by its metadata's `task`; plain networks: tabular).

    Raises:
        DataError: the path is missing.
    """
    if os.path.isdir(model_path):
        return "assistant"  # an assistant ONNX folder
    if not os.path.isfile(model_path):
        raise DataError(f"model not found: {model_path}")
    if model_path.lower().endswith(".onnx"):
        raise DataError(
            f"{model_path}: evaluate and predict read .keras/.h5 files; serve an .onnx model with "
            "`keras-trainer serve` (or use CompiledInferenceLayer)"
        )
    from keras_trainer.core.saving.persistence import read_metadata

    return TASK_FAMILIES.get(read_metadata(model_path).get("task"), "tabular")


def _handler(verb: str, family: str):
    from keras_trainer.registry import FAMILY_VERBS

    return FAMILY_VERBS.get(f"{verb}:{family}", f"keras-trainer {verb}")


def _train(args: argparse.Namespace) -> int:
    from keras_trainer.config import load_section
    from keras_trainer.registry import CONFIG_FILES

    # The config, data and output paths are checked before the family imports Keras.
    family = config_family(verb_config_dict(args), args.data)
    kind = CONFIG_FILES.get(FAMILY_CONFIG_KINDS[family], "config kind")
    config = load_verb_config(args, lambda raw: load_section(kind, raw)).to_dict()
    if args.print_config:  # the config alone: no family module, no Keras
        return print_config(config)
    check_train(args, config)
    return int(_handler("train", family)(args) or 0)


def _evaluate(args: argparse.Namespace) -> int:
    family = model_family(args.model)
    check_evaluate(args)
    return int(_handler("evaluate", family)(args) or 0)


def _predict(args: argparse.Namespace) -> int:
    family = model_family(args.model)
    check_predict(args, _feature_names(args.model))
    return int(_handler("predict", family)(args) or 0)


def _feature_names(model_path: str) -> list[str]:
    """The raw feature names a saved model's metadata records (read without Keras)."""
    if os.path.isdir(model_path):
        return []  # an assistant ONNX folder reads questions
    from keras_trainer.core.saving.persistence import read_metadata

    metadata = read_metadata(model_path)
    return [str(name) for name in metadata.get("feature_names") or []]


def register(subparsers) -> None:
    """Adds `train`, `evaluate` and `predict` with every family's options."""
    train = subparsers.add_parser(
        "train",
        help="train from a config: JIT strategy, tabular/sequence (feed_forward, lstm, cnn_lstm, mlp) or assistant",
        description=__doc__.split("\n\n")[1],
    )
    add_config_argument(train, "JSON config, e.g. config/model_config.json")
    add_data_arguments(
        train,
        "JIT dataset JSON; table (builtin:NAME, .csv, .parquet, .npy, .npz); "
        "or assistant QA JSON (default: the config's data, else the bundled sample)",
    )
    train.add_argument("--window", type=int, help="rows per input window (lstm, cnn_lstm)")
    train.add_argument(
        "--horizon",
        type=int,
        default=1,
        help="rows after a window that its target lies (default 1)",
    )
    train.add_argument(
        "--output",
        help="also save the model here (it is always saved in the run folder)",
    )
    train.add_argument("--epochs", type=int, help="override training.epochs")
    add_override_arguments(train)
    add_overwrite_argument(train)
    train.add_argument("--checkpoint-dir", help="override training.checkpoint.directory (JIT)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint (JIT)",
    )
    train.add_argument("--quiet", action="store_true", help="no per-epoch output")
    add_report_argument(train, "also write the test-set evaluation report as JSON here")
    train.add_argument(
        "--test-data",
        metavar="FILE",
        help="score the trained model on this held-out file instead of a test split of the "
        "data (then every row of the data trains or validates; evaluate scores FILE by default)",
    )
    train.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="first cross-validate with K folds of the training rows and print each metric "
        "(JIT and tabular; stratified for classes, in order for a time series)",
    )
    train.add_argument(
        "--wandb", action="store_true", help="also log to Weights & Biases (offline by default)"
    )
    add_run_arguments(train)
    train.set_defaults(handler=_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a saved model (any family) on a dataset"
    )
    add_model_argument(evaluate)
    add_data_arguments(
        evaluate,
        "dataset as for train (default: the model's held-out test data: its --test-data "
        "file, else the test split of its data; the assistant's bundled held-out questions)",
        target_help="target column of a CSV or Parquet table",
    )
    add_report_argument(evaluate, "also write the evaluation report as JSON")
    evaluate.add_argument(
        "--all",
        action="store_true",
        help="score every row of the model's own data, not only its held-out split (warns)",
    )
    evaluate.set_defaults(handler=_evaluate)

    predict = subparsers.add_parser(
        "predict",
        help="predict with a saved model: every class probability or the regression values, per row",
    )
    add_model_argument(predict)
    predict.add_argument(
        "--data",
        help=(
            "rows (.csv, .json, .npy, .npz; a typed table also .parquet, or a folder or glob "
            "of .csv/.parquet shards), a JIT dataset JSON, or questions"
        ),
    )
    predict.add_argument("--features", help="(JIT) JSON file with a list of raw feature rows")
    predict.add_argument("--ir", help="(JIT) LLVM IR file (.ll)")
    predict.add_argument("--runtime", help="(JIT) JSON file with the runtime metrics of --ir")
    predict.add_argument("--id-column", help="CSV column (or JSON key) that names each row")
    predict.add_argument(
        "--output",
        help="write the predictions to a .csv or .json file (default: CSV on stdout)",
    )
    predict.set_defaults(handler=_predict)
