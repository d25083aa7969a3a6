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
import os
import sys
from typing import Any

from keras_trainer.core.recording.plots import plot_run
from keras_trainer.core.recording.runs import DEFAULT_ROOT, RunFolder
from keras_trainer.errors import KerasTrainerError

#: Exit status of a verb stopped by a library error (bad config, file, column, IR line).
ERROR_STATUS = 2


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


def add_entry_argument(parser: argparse.ArgumentParser, help: str | None = None) -> None:
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
        from keras_trainer.core.recording.tracking import track_run

        run_id = track_run(
            run,
            experiment=run.name,
            params=config,
            metrics=metrics,
            tracking_uri=getattr(args, "mlflow_uri", None),
        )
        print(f"mlflow run: {run_id}")
    print(f"run folder: {run.path}")
