"""Crash-safe file writes: write to a temporary sibling, then rename.

`os.replace` is atomic on POSIX and Windows when source and target are on the
same file system, which a sibling in the same folder guarantees. A kill at any
moment leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

TEMP_MARKER = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[str]:
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps the target's suffix (Keras picks the format by it) and
    contains `TEMP_MARKER`, so readers can tell leftovers from real files.

    Args:
        path: The final file (or folder) path.
        directory: Whether a folder, rather than a file, is being written.

    Yields:
        The temporary path to write to. If the block raises, it is removed.

    Example:

    >>> with atomic_path("model.keras") as tmp:
    ...     model.save(tmp)
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(path)
    stem, suffix = _split_suffix(base)
    if directory:
        temp = tempfile.mkdtemp(prefix=f".{stem}{TEMP_MARKER}", suffix=suffix, dir=parent)
    else:
        handle, temp = tempfile.mkstemp(prefix=f".{stem}{TEMP_MARKER}", suffix=suffix, dir=parent)
        os.close(handle)
        os.unlink(temp)  # writers such as h5py or zipfile create the file themselves
    try:
        yield temp
        if directory:
            _fsync_tree(temp)
            if os.path.isdir(path):
                shutil.rmtree(path)
        else:
            _fsync_file(temp)
        os.replace(temp, path)
        _fsync_dir(parent)
    except BaseException:
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
        elif os.path.exists(temp):
            os.unlink(temp)
        raise


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in (".weights.h5", ".keras", ".h5", ".json", ".onnx", ".npz", ".csv", ".png"):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    stem, suffix = os.path.splitext(name)
    return stem, suffix


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_tree(path: str) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            _fsync_file(os.path.join(root, name))


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_path(path: str | os.PathLike) -> None:
    """Flushes a file or a folder entry to disk (best effort; errors are ignored)."""
    _fsync_dir(os.fspath(path))


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented JSON to `path`, atomically."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path`, atomically."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is an unfinished `atomic_path` leftover."""
    return TEMP_MARKER in os.path.basename(name)
