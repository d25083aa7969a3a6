"""`keras-trainer inspect DATA`: the column types a typed table would be read with.

    keras-trainer inspect builtin:penguins
    keras-trainer inspect customers.csv --target churned
    keras-trainer inspect 'shards/*.csv' --target churned

Prints one line per column (type, missing share, distinct values, range or most
frequent values) and a `data.columns` block to paste into a config and edit.
Imports no Keras.

A folder or glob of CSV or Parquet shards is described by its first shard, from
which `train` infers the types too (and checks them on the other shards).
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
    inspect.add_argument(
        "data",
        help="builtin:penguins, a .csv, .parquet or .json table, or a folder or glob of shards",
    )
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
    source = _first_shard(args.data)
    if source != args.data:
        print(f"{args.data}: the first shard, {source}, from which train infers the types")
    frame = read_frame(source)
    if target is not None and target not in frame.columns:
        from keras_trainer.errors import DataError

        raise DataError(f"{args.data}: no column {target!r} (columns: {', '.join(frame.columns)})")
    print(describe_table(frame, target))
    return 0


def _first_shard(source: str) -> str:
    """`source`, or the first shard of a folder or glob of .csv or .parquet shards (the
    one `train` infers the types from, found by the same rule)."""
    import os

    from keras_trainer.core.inputs.shard_files import is_glob
    from keras_trainer.tabular.tables import typed_shard_paths

    if not (os.path.isdir(source) or is_glob(source)):
        return source
    return typed_shard_paths(source)[0]
