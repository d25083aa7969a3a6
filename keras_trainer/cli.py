"""The `keras-trainer` command line (also `python -m keras_trainer`).

    keras-trainer schema [--kind jit]                 print a config file's JSON Schema
    keras-trainer validate my_config.json [--kind jit]   check a config
    keras-trainer train config/model_config.json     (JIT family) train the strategy model

The core owns `schema` and `validate`. Every other verb comes from a family:
`keras_trainer.registry.CLI_COMMANDS` maps a family name to its
`register(subparsers)` (the JIT family's `train`, `evaluate`, `predict`, `collect`,
`jit`; tuning's `tune`; export's `export`). See docs/architecture.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from keras_trainer.errors import KerasTrainerError
from keras_trainer.registry import CLI_COMMANDS, CONFIG_FILES


def _schema(args: argparse.Namespace) -> int:
    from keras_trainer.config import json_schema

    print(json.dumps(json_schema(args.kind), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from keras_trainer.config import load_section

    load_section(CONFIG_FILES.get(args.kind, "--kind"), args.config)
    print(f"{args.config}: valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the core's and the families' subcommands."""
    parser = argparse.ArgumentParser(prog="keras-trainer", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    kinds = CONFIG_FILES.names()
    schema = commands.add_parser("schema", help="print the config JSON Schema")
    schema.add_argument("--kind", choices=kinds, default="trainer",
                        help="which config file (default: the shared sections)")
    schema.set_defaults(handler=_schema)
    validate = commands.add_parser("validate", help="validate a config file")
    validate.add_argument("config")
    validate.add_argument("--kind", choices=kinds, default="jit",
                          help="which config file (default: jit, as config/model_config.json)")
    validate.set_defaults(handler=_validate)

    for family in CLI_COMMANDS.names():
        try:
            register = CLI_COMMANDS.get(family)
        except ImportError:
            continue  # that family's optional dependencies are not installed
        register(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; library errors print one clear line and exit with status 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
