"""`keras-trainer inspect DATA`: the column types a typed table would be read with.

    keras-trainer inspect builtin:penguins
    keras-trainer inspect customers.csv --target churned

Prints one line per column (type, missing share, distinct values, range or most
frequent values) and a `data.columns` block to paste into a config and edit.
Imports no Keras.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Adds the `inspect` subcommand."""
    inspect = subparsers.add_parser(
        "inspect",
        help="print the inferred column types of a table (CSV, Parquet, JSON, builtin:penguins)",
        description=__doc__.split("\n\n")[2],
    )
    inspect.add_argument("data", help="builtin:penguins, or a .csv, .parquet or .json table")
    inspect.add_argument(
        "--target",
        help="target column (default: the bundled table's, else none; it is marked, not typed)",
    )
    inspect.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer inspect`."""
    from keras_trainer.tabular.datasets import FRAMES
    from keras_trainer.tabular.tables import describe_table, read_frame

    target = args.target
    if target is None and args.data.startswith("builtin:"):
        target = FRAMES.get(args.data[len("builtin:") :])
    frame = read_frame(args.data)
    if target is not None and target not in frame.columns:
        from keras_trainer.errors import DataError

        raise DataError(f"{args.data}: no column {target!r} (columns: {', '.join(frame.columns)})")
    print(describe_table(frame, target))
    return 0
