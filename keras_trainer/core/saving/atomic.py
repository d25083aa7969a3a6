"""Crash-safe file writes: write to a temporary sibling, then rename.

`os.replace` is atomic on POSIX and Windows when source and target are on the
same file system, which a sibling in the same folder guarantees. A kill at any
moment leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from keras_trainer.errors import ConfigError

TEMP_MARKER = ".tmp-"
# Temporary names carry the writer's process id: `.model.tmp-1234-x8k2.keras`.
_TEMP_PID = re.compile(re.escape(TEMP_MARKER) + r"(\d+)-")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[str]:
    """Yields a temporary path next to `path`; renames it onto `path` on success.

    The temporary name keeps the target's suffix (Keras picks the format by it) and
    contains `TEMP_MARKER` and the writer's process id, so readers can tell
    leftovers from real files. Leftovers of earlier writes of the same `path`
    whose writer is dead (killed mid-write) are removed first.

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
    prefix = f".{stem}{TEMP_MARKER}"
    remove_stale_temporaries(parent, prefix=prefix, suffix=suffix)
    prefix = f"{prefix}{os.getpid()}-"
    if directory:
        temp = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent)
    else:
        handle, temp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
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
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path`, atomically."""
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is an unfinished `atomic_path` leftover."""
    return TEMP_MARKER in os.path.basename(name)


def _writer_alive(name: str) -> bool:
    match = _TEMP_PID.search(name)
    if match is None:
        return False  # no process id: an older leftover
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def remove_stale_temporaries(
    directory: str | os.PathLike, prefix: str = "", suffix: str = ""
) -> list[str]:
    """Deletes `atomic_path` leftovers in `directory` whose writing process is dead.

    A write killed before its rename leaves its temporary file or folder behind;
    a live writer's temporaries are kept.

    Args:
        directory: The folder to clean.
        prefix: Only names starting with this (e.g. `.model.tmp-`).
        suffix: Only names ending with this.

    Returns:
        The paths removed.
    """
    directory = os.fspath(directory)
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if not (is_temporary(name) and name.startswith(prefix) and name.endswith(suffix)):
            continue
        if _writer_alive(name):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(
                path
            )
            removed.append(path)
    return removed


def check_writable_path(
    path: str | os.PathLike, what: str, suffixes: Optional[Sequence[str]] = None
) -> str:
    """Checks, before any work, that `path` can be written: suffix, folder, permissions.

    Creates the missing folders and writes (then deletes) a probe file in the
    target folder, so that a run fails in its first second, not after training.

    Args:
        path: The file that will be written.
        what: What the path is, for messages (e.g. "--output", "output.model_path").
        suffixes: Accepted endings (e.g. `(".keras", ".h5")`), or `None`.

    Returns:
        `path` as a string.

    Raises:
        ConfigError: naming `what` and the path: wrong suffix, a folder where
            the file should be, or a folder that cannot be created or written.
    """
    path = os.fspath(path)
    if suffixes and not path.endswith(tuple(suffixes)):
        raise ConfigError(
            f"{what}: {path!r} must end in {' or '.join(repr(s) for s in suffixes)}, not "
            f"{os.path.splitext(path)[1] or 'nothing'!r}"
        )
    if os.path.isdir(path):
        raise ConfigError(f"{what}: {path!r} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        handle, probe = tempfile.mkstemp(
            prefix=f".write-check{TEMP_MARKER}{os.getpid()}-", dir=parent
        )
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(
            f"{what}: cannot write {path!r} ({error.strerror or error}); choose a writable folder"
        ) from None
    return path
