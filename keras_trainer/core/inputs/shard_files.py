"""Which files a folder, glob or list of shards names: pure Python, no Keras.

`keras_trainer.core.inputs.streaming` streams the shards; commands that only look
at them (`keras-trainer inspect`) find them here
without importing a backend.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from keras_trainer.errors import DataError

SHARD_SUFFIXES = (".npy", ".csv", ".parquet")


def is_glob(source: str | os.PathLike) -> bool:
    """Whether `source` is a glob pattern (`*`, `?` or `[`) rather than one path."""
    return glob.has_magic(os.fspath(source))


def folder_files(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    """The files of `folder` ending in `suffixes`, sorted; hidden files are left out."""
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.endswith(suffixes) and not name.startswith(".")
    )


def shard_paths(source: str | os.PathLike | Sequence[str]) -> list[str]:
    """The shard files of a folder, glob or list, sorted; all of one suffix.

    Raises:
        DataError: no shards, or shards of several kinds.
    """
    if isinstance(source, (list, tuple)):
        paths = [os.fspath(p) for p in source]
    else:
        source = os.fspath(source)
        if os.path.isdir(source):
            paths = folder_files(source, SHARD_SUFFIXES)
        else:
            paths = sorted(glob.glob(source))
    if not paths:
        raise DataError(f"{source}: no shards found (expected {', '.join(SHARD_SUFFIXES)} files)")
    suffixes = {os.path.splitext(p)[1] for p in paths}
    if len(suffixes) != 1 or not suffixes <= set(SHARD_SUFFIXES):
        raise DataError(
            f"{source}: shards must all be one of {', '.join(SHARD_SUFFIXES)}, found {sorted(suffixes)}"
        )
    return paths
