"""The `keras-trainer` command line (also `python -m keras_trainer`).

    keras-trainer train CONFIG [--data PATH]          train any family's model from a config
    keras-trainer evaluate MODEL [--data PATH]        evaluate a saved model
    keras-trainer predict MODEL --data ROWS           every class probability or value, per row
    keras-trainer serve MODEL                         the model over HTTP
    keras-trainer plot RUN                            a run's training curves and confusion matrix
    keras-trainer schema [--kind jit]                 print a config file's JSON Schema
    keras-trainer validate my_config.json [--kind jit]   check a config

The core owns `train`, `evaluate` and `predict` (`keras_trainer.cli_verbs`:
they pick the family from the config or the saved model's task and call its
handler from `keras_trainer.registry.FAMILY_VERBS`), `plot`, `schema` and
`validate`. Every other verb comes from a family or service:
`keras_trainer.registry.CLI_COMMANDS` maps a name to its `register(subparsers)`
(the JIT family's `collect`, `jit`; the assistant's `chat`; tuning's `tune`;
export's `export`; serving's `serve`). See docs/architecture.md and docs/cli.md.

Only the standard library, NumPy and the config are imported before a verb
runs: `--help`, `--version`, `schema` and `validate` never load Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Optional

from keras_trainer.cli_args import ArgumentParser, add_config_argument, run_verb
from keras_trainer.core.training.backend_imports import import_active_backend_only
from keras_trainer.native_logs import filter_native_log_lines
from keras_trainer.registry import CLI_COMMANDS, CONFIG_FILES


def _schema(args: argparse.Namespace) -> int:
    from keras_trainer.config import json_schema

    print(json.dumps(json_schema(args.kind), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from keras_trainer.config import load_section
    from keras_trainer.config.plausibility import plausibility_warnings

    kind = args.kind
    if kind is None:  # the kind `train` would read this file as
        from keras_trainer.cli_args import verb_config_dict
        from keras_trainer.cli_verbs import FAMILY_CONFIG_KINDS, config_family

        kind = FAMILY_CONFIG_KINDS[config_family(verb_config_dict(args))]
    config = load_section(CONFIG_FILES.get(kind, "--kind"), args.config)
    for warning in plausibility_warnings(config):
        print(f"warning: {args.config}: {warning}", file=sys.stderr)
    print(f"{args.config}: valid")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from keras_trainer.core.recording.plots import plot_run
    from keras_trainer.core.recording.runs import RunFolder
    from keras_trainer.errors import DataError

    run = RunFolder.resolve(args.run)
    written = plot_run(run)
    if not written:
        raise DataError(
            f"{run.path}: nothing to plot (no history or evaluation report), or matplotlib is missing"
        )
    for path in written:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the core's and the families' subcommands."""
    from keras_trainer import cli_verbs
    from keras_trainer.version import __version__

    parser = ArgumentParser(prog="keras-trainer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"keras-trainer {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show third-party log lines and warnings (TensorFlow, JAX, absl); may stand anywhere",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cli_verbs.register(commands)
    plot = commands.add_parser(
        "plot", help="draw a run's training curves and confusion matrix (PNG)"
    )
    plot.add_argument(
        "run", help="a run folder: runs/<name> (its latest version) or runs/<name>/version_N"
    )
    plot.set_defaults(handler=_plot)

    kinds = CONFIG_FILES.names()
    schema = commands.add_parser("schema", help="print the config JSON Schema")
    schema.add_argument(
        "--kind",
        choices=kinds,
        default="trainer",
        help="which config file (default: the shared sections)",
    )
    schema.set_defaults(handler=_schema)
    validate = commands.add_parser("validate", help="validate a config file")
    add_config_argument(validate, "the config JSON file to check")
    validate.add_argument(
        "--kind",
        choices=kinds,
        help="which config file (default: the kind train reads it as: jit, trainer for "
        "tabular configs, or assistant)",
    )
    validate.set_defaults(handler=_validate)

    for family in CLI_COMMANDS.names():
        try:
            register = CLI_COMMANDS.get(family)
        except ImportError:
            continue  # that family's optional dependencies are not installed
        register(commands)
    return parser


# Python modules whose warnings and log lines are noise to a command-line user.
_NOISY_MODULES = r"(keras|keras_tuner|tensorflow|tf2onnx|tf_keras|jax|jaxlib|torch|absl|google|onnx|onnxruntime|h5py)(\.|$)"


def quiet_third_party(verbose: int = 0) -> None:
    """Silences the log lines and warnings of TensorFlow, JAX, absl, oneDNN, KerasTuner.

    Must run before those libraries are imported (the C++ loggers read the
    environment once). With `verbose >= 1` nothing is changed. keras_trainer's
    own warnings and errors are never hidden.
    """
    if verbose:
        return
    import logging
    import warnings

    # TensorFlow's C++ logs (oneDNN notice, E0000 use_unbounded_threadpool, absl's
    # "before InitializeLog" line): only fatal ones.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("GLOG_minloglevel", "3")
    for name in (
        "absl",
        "tensorflow",
        "jax._src.xla_bridge",
        "jax",
        "keras_tuner",
        "h5py",
        "tf2onnx",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def plain_warnings(verbose: int = 0) -> None:
    """Prints a warning as one line `warning: <message>`, without its category and the
    source path and line that raised it (a user reads the message, not the library's
    code); with `verbose >= 1` Python's own format is kept."""
    if not verbose:
        import warnings

        warnings.formatwarning = _one_line_warning


def _pop_verbose(argv: list[str]) -> tuple[list[str], int]:
    """`-v`/`--verbose` may stand anywhere on the line; returns the rest and the count."""
    rest = [a for a in argv if a not in ("-v", "--verbose", "-vv")]
    count = sum(2 if a == "-vv" else 1 for a in argv if a in ("-v", "--verbose", "-vv"))
    return rest, count


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; library errors print one clear line and exit with status 2."""
    from_command_line = argv is None
    argv, verbose = _pop_verbose(list(sys.argv[1:] if argv is None else argv))
    quiet_third_party(verbose)
    plain_warnings(verbose)
    import_active_backend_only()  # no TensorFlow under JAX or torch
    if from_command_line and not verbose:
        # Native log lines bypass every Python setting (see native_logs); a Python
        # program that calls main() itself keeps its own stderr.
        filter_native_log_lines()
    args = build_parser().parse_args(argv)
    args.verbose = verbose
    return run_verb(args)


if __name__ == "__main__":
    sys.exit(main())
