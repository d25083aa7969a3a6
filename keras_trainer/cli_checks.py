"""Checks a verb runs before Keras is imported: a mistake costs a second, not a TensorFlow load.

`train`, `evaluate`, `predict` and `tune` call these before their family's
handler (which imports Keras and the backend): the config is read and
validated, every input file must exist and be readable, the CSV columns the
command names (`--target`, `--id-column`, typed `data.columns`, a saved
model's feature names) must be in the file's header (only the header is read),
and every output path must be writable, an existing model file only with
`--overwrite`. Each failure is the same named error (`ConfigError`,
`DataError`) the family would raise later, with the option or key it came from.

Example:

>>> check_input("rows.csv", "--data")
>>> check_csv_columns("rows.csv", ["age"], "--target")
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
from collections.abc import Iterable
from typing import Any

from keras_trainer.cli_args import check_overwrite
from keras_trainer.core.saving.atomic import check_writable_path
from keras_trainer.errors import ConfigError, DataError

MODEL_SUFFIXES = (".keras", ".h5")


def check_input(path: str | None, option: str) -> None:
    """Refuses a missing or unreadable input (bundled `builtin:` tables pass; a glob must match).

    Raises:
        DataError: naming `option` and the path.
    """
    if not path or path.startswith("builtin:"):
        return
    if glob.has_magic(path):
        if not glob.glob(path):
            raise DataError(f"{option}: no file matches {path}")
        return
    what = "data" if option == "--data" else option
    if not os.path.exists(path):
        raise DataError(f"{what} file not found: {path}")
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} file not readable: {path}")


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file (its first non-empty row); reads nothing else."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None
    raise DataError(f"{path}: empty; a CSV file needs a header row")


def check_csv_columns(path: str | None, columns: Iterable[str | None], what: str) -> None:
    """Refuses a CSV file whose header lacks any of `columns` (other files and `None`s pass).

    Column indices (`"-1"`, `"0"`) are not names and pass too.

    Raises:
        DataError: naming the file, the missing columns, `what` asked for them, and
            the columns the file has.
    """
    if not path or not path.lower().endswith(".csv") or not os.path.isfile(path):
        return
    wanted = [c for c in columns if c is not None and not str(c).lstrip("-").isdigit()]
    if not wanted:
        return
    header = csv_header(path)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(c) for c in missing)} ({what}); "
            f"its columns: {', '.join(header)}"
        )


def check_model_output(path: str | None, option: str, allowed: bool, config_key: str | None):
    """A model file to write: `.keras`/`.h5`, its folder writable, not replacing one unasked."""
    if path:
        check_writable_path(path, option, MODEL_SUFFIXES)
        check_overwrite(path, option, allowed, config_key)


def check_train(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """`train`'s inputs and outputs, from its arguments and validated config (a dict).

    Raises:
        DataError: a missing input file or CSV column.
        ConfigError: an output path that cannot be written or would be replaced.
    """
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    source, option = args.data, "--data"
    for key, value in (("data.path", data.get("path")), ("data.shards", data.get("shards"))):
        if not source and value:
            source, option = value, key
    if not source and config.get("data_path"):
        source, option = config["data_path"], "data_path"
    check_input(source, option)
    check_csv_columns(source, [args.target], "--target")
    declared = list(data.get("columns") or {})
    if declared and source and source.lower().endswith(".csv") and os.path.isfile(source):
        missing = [name for name in declared if name not in csv_header(source)]
        if missing:  # a typo in the config: the same error the typed table would raise
            raise ConfigError(f"data.columns: the table {source} has no column(s) {missing}")
    output = config.get("output") if isinstance(config.get("output"), dict) else {}
    allowed = bool(getattr(args, "overwrite", False) or output.get("overwrite"))
    if args.output:
        check_model_output(args.output, "--output", allowed, "output.overwrite" if output else None)
    elif output.get("model_path"):
        check_model_output(output["model_path"], "output.model_path", allowed, "output.overwrite")
    if getattr(args, "report", None):
        check_writable_path(args.report, "--report")


def check_evaluate(args: argparse.Namespace) -> None:
    """`evaluate`'s `--data` (and its `--target` column) and `--report`."""
    check_input(args.data, "--data")
    check_csv_columns(args.data, [args.target], "--target")
    if args.report:
        check_writable_path(args.report, "--report")


def check_predict(args: argparse.Namespace, feature_names: list[str] | None) -> None:
    """`predict`'s input files, the CSV's feature and id columns, and `--output`."""
    if args.output:
        check_writable_path(args.output, "--output", (".csv", ".json"))
    for option in ("data", "features", "ir", "runtime"):
        check_input(getattr(args, option, None), f"--{option}")
    if args.data and args.data.lower().endswith(".csv") and os.path.isfile(args.data):
        header = csv_header(args.data)
        missing = [name for name in feature_names or [] if name not in header]
        if missing:
            raise DataError(
                f"{args.data}: missing feature column(s) {missing} (the model reads {feature_names})"
            )
        check_csv_columns(args.data, [args.id_column], "--id-column")


def check_tune(args: argparse.Namespace) -> None:
    """`tune`'s `--data` (and its `--target` column) and `--output`."""
    check_input(args.data, "--data")
    check_csv_columns(args.data, [args.target], "--target")
    if args.output:
        check_writable_path(args.output, "--output", MODEL_SUFFIXES)
