"""The command line's shared pieces: argument groups every verb declares alike, and errors.

Each verb (`train`, `evaluate`, `predict` in `cli_verbs`; `tune`; `collect`,
`jit`; `chat`) builds its parser from these helpers instead of repeating the
same `add_argument` calls, so an option means the same and reads the same
wherever it appears (and in `docs/cli.md`, generated from the parsers).
`run_verb` runs a parsed verb: a library error (`KerasTrainerError`) prints one
line `error: ...` on standard error and gives exit status 2, before any work
is lost.

Example:

>>> parser = argparse.ArgumentParser()
>>> add_model_argument(parser)
>>> add_data_arguments(parser, "dataset to score")
>>> add_run_arguments(parser)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from keras_trainer.core.recording.plots import plot_run
from keras_trainer.core.recording.runs import DEFAULT_ROOT, RunFolder
from keras_trainer.errors import ConfigError, KerasTrainerError

#: Exit status of a verb stopped by a library error (bad config, file, column, IR line).
ERROR_STATUS = 2


class HelpFormatter(argparse.HelpFormatter):
    """Keeps a description's line breaks (one example command per line) and wraps
    only the lines wider than the terminal."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if len(indent) + len(line) <= width or line[:1].isspace():
                lines.append(indent + line if line.strip() else "")
            else:
                lines.append(
                    textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n".join(lines)


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` that takes no abbreviations of long options.

    `--epoch` is refused instead of being read as `--epochs`; the subparsers of
    `add_subparsers` are of the parser's own class, so they refuse them too. Its
    descriptions keep their line breaks (`HelpFormatter`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def run_verb(args: argparse.Namespace) -> int:
    """Runs `args.handler(args)`; a `KerasTrainerError` prints one line and returns 2."""
    try:
        return int(args.handler(args) or 0)
    except KerasTrainerError as error:
        return print_error(error)


def print_error(error: KerasTrainerError) -> int:
    """Prints `error: <message>` on standard error; returns the exit status `ERROR_STATUS`."""
    print(f"error: {error}", file=sys.stderr)
    return ERROR_STATUS


def add_config_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """The positional `config`: the JSON config file a verb reads."""
    parser.add_argument("config", help=help)


def add_model_argument(parser: argparse.ArgumentParser, help: str = "") -> None:
    """The positional `model`: a saved model file."""
    parser.add_argument("model", help=help or ".keras/.h5 model (or an assistant ONNX folder)")


def add_data_arguments(
    parser: argparse.ArgumentParser,
    data_help: str,
    *,
    default: str | None = None,
    target_help: str = "target column of a CSV or Parquet table (default: its last column)",
) -> None:
    """`--data` (what to read) and `--target` (which column of a table is the target)."""
    parser.add_argument("--data", default=default, help=data_help)
    parser.add_argument("--target", help=target_help)


def add_report_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """`--report`: also write the evaluation report as JSON to this path."""
    parser.add_argument("--report", help=help)


def add_entry_argument(
    parser: argparse.ArgumentParser, help: str = "entry function of the .ll files (default entry)"
) -> None:
    """`--entry`: the entry function of `.ll` files (default `entry`)."""
    parser.add_argument("--entry", default="entry", help=help)


def add_run_arguments(parser: argparse.ArgumentParser, tensorboard: bool = True) -> None:
    """Adds `--run-name`, `--runs-dir`, `--tensorboard`, `--mlflow`, `--mlflow-uri` to a verb."""
    parser.add_argument(
        "--run-name",
        help="name of the run folder runs/NAME/version_N (default: the config's name)",
    )
    parser.add_argument(
        "--runs-dir", default=DEFAULT_ROOT, help="folder of all runs (default: runs)"
    )
    if tensorboard:
        parser.add_argument(
            "--tensorboard",
            action="store_true",
            help="also write TensorBoard logs into the run",
        )
    parser.add_argument(
        "--mlflow",
        action="store_true",
        help="also log the run to MLflow (default store: RUNS_DIR/mlruns; [mlflow] extra)",
    )
    parser.add_argument(
        "--mlflow-uri", help="MLflow tracking URI instead of the local RUNS_DIR/mlruns"
    )


def start_run(args: Any, default_name: str) -> RunFolder:
    """Creates the run folder a verb's arguments ask for and prints where it is."""
    name = getattr(args, "run_name", None) or os.path.splitext(os.path.basename(default_name))[0]
    run = RunFolder.create(name, getattr(args, "runs_dir", None) or DEFAULT_ROOT)
    print(f"run folder: {run.path}", flush=True)
    return run


def finish_run(
    run: RunFolder,
    args: Any,
    config: dict[str, Any],
    history: Any = None,
    report: Any = None,
    metrics: dict[str, float] | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Writes the run's config, history (unless `fit` wrote it), report, plots and
    summary; logs it to MLflow with `--mlflow`; prints the folder again."""
    run.save_config(config)
    if history is not None and not run.exists(RunFolder.HISTORY_JSON):
        run.save_history(history)
    if report is not None:
        run.save_report(report)
    plot_run(run)
    run.save_summary({**(summary or {}), "metrics": metrics or {}})
    if getattr(args, "mlflow", False):
        from keras_trainer.core.recording.tracking import (
            default_tracking_uri,
            track_run,
            ui_command,
        )

        uri = getattr(args, "mlflow_uri", None) or default_tracking_uri(run)
        run_id = track_run(
            run, experiment=run.name, params=config, metrics=metrics, tracking_uri=uri
        )
        print(f"mlflow run: {run_id}; to browse it ([mlflow-ui] extra): {ui_command(uri)}")
    print(f"run folder: {run.path}")


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE` (repeatable), `--seed N` and `--print-config` for a verb that reads a config."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key by its dotted path, e.g. training.epochs=5 or "
        "model.hidden_layers=[32,16]; the value is JSON, else a plain string (repeatable)",
    )
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (file, overrides and defaults) as JSON and exit",
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"training.epochs=5"` -> `(["training", "epochs"], 5)`: a JSON value, else the string.

    Raises:
        ConfigError: no `=`, or an empty key or path part.
    """
    key, equals, value = text.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(parts):
        raise ConfigError(
            f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. training.epochs=5"
        )
    try:
        return parts, json.loads(value)
    except ValueError:
        return parts, value  # a plain string: --set output.model_path=models/a.keras


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the config `raw` with each `--set KEY=VALUE` written at its dotted path.

    Missing sections are created; validating the result (unknown keys, bad values)
    is the config loader's work, so an override fails exactly as the file would.

    Raises:
        ConfigError: a malformed override, or a path through a value that is not a section.
    """
    raw = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        section = raw
        for depth, part in enumerate(parts[:-1]):
            section = section.setdefault(part, {})
            if not isinstance(section, dict):
                raise ConfigError(
                    f"--set {text!r}: {'.'.join(parts[: depth + 1])} is a value, not a section"
                )
        section[parts[-1]] = value
    return raw


def verb_overrides(args: argparse.Namespace) -> list[str]:
    """The `--set` overrides of a verb, with its shortcut flags (`--seed`, `--epochs`) last."""
    overrides = list(getattr(args, "overrides", None) or [])
    for flag, key in (("seed", "training.seed"), ("epochs", "training.epochs")):
        if getattr(args, flag, None) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return overrides


def load_verb_config(args: argparse.Namespace, loader: Callable[[Any], Any]) -> Any:
    """The verb's config: `args.config` read, its overrides applied, validated by `loader`.

    Raises:
        ConfigError: from the file or an override, naming the file and the key path.
    """
    overrides = verb_overrides(args)
    try:
        return loader(verb_config_dict(args))
    except ConfigError as error:
        where = f"{args.config} with --set" if overrides else args.config
        raise ConfigError(f"{where}: {error}") from None


# Which family a config and its data belong to (`config_family`).
TABULAR_TYPES = ("feed_forward", "lstm", "cnn_lstm")
TABLE_PREFIXES = ("builtin:",)
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".npy", ".npz")
ASSISTANT_KEYS = ("embedding_dim", "hidden_dim", "min_freq", "max_length", "data_path")


def _is_table(source: str | None) -> bool:
    return bool(source) and (
        source.startswith(TABLE_PREFIXES) or source.lower().endswith(TABLE_SUFFIXES)
    )


def config_family(raw: dict, data: str | None = None) -> str:
    """The family whose `train` (and `tune`) handles this config (a JSON object, overrides
    applied) and data: `"assistant"`, `"tabular"` or `"jit"` (see `keras_trainer.cli_verbs`)."""
    if "model" not in raw and any(key in raw for key in ASSISTANT_KEYS):
        return "assistant"
    model_type = (
        (raw.get("model") or {}).get("type", "mlp") if isinstance(raw.get("model"), dict) else "mlp"
    )
    shards = None
    if not data and isinstance(raw.get("data"), dict):
        data, shards = raw["data"].get("path"), raw["data"].get("shards")
    # Shards are tables streamed through fit, whatever the network.
    if model_type in TABULAR_TYPES or _is_table(data) or shards:
        return "tabular"
    return "jit"


def verb_config_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON object of `args.config` with the verb's overrides applied, not yet validated.

    Raises:
        ConfigError: the file is missing, not JSON or not an object; a malformed override.
    """
    from keras_trainer.config import read_json_file

    raw = read_json_file(args.config)
    if not isinstance(raw, dict):
        raise ConfigError(f"{args.config}: a config is a JSON object, got {type(raw).__name__}")
    return apply_overrides(raw, verb_overrides(args))


def print_config(config_dict: dict[str, Any]) -> int:
    """`--print-config`: the resolved config as JSON on standard output; exit status 0."""
    print(json.dumps(config_dict, indent=2))
    return 0


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """`--overwrite`: let a verb replace an existing file at its output path."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing file at the output path (else train refuses it)",
    )


def check_overwrite(
    path: str, option: str, allowed: bool = False, config_key: str | None = None
) -> None:
    """Refuses, before any work, to replace an existing `path` the user did not free.

    Args:
        path: The output file (the run folder's own files are never checked).
        option: Where `path` came from ("--output", "output.model_path").
        allowed: `--overwrite` was given, or the config's output section allows it.
        config_key: The config key that also allows it (`output.overwrite`), if the family has one.

    Raises:
        ConfigError: `path` exists and overwriting was not allowed, naming both ways to allow it.
    """
    if not allowed and os.path.exists(path):
        also = f" (or set {config_key}: true in the config)" if config_key else ""
        raise ConfigError(
            f"{option}: {path} already exists; pass --overwrite{also} to replace it, "
            "or choose another path"
        )
