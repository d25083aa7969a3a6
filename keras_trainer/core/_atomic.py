"""Crash-safe file writes: a temporary file in the same folder, then `os.replace`."""

from __future__ import annotations

import os
import tempfile


def write_bytes_atomic(path: str, data: bytes) -> str:
    """Writes `data` to `path` so that a crash never leaves a half-written file.

    The bytes go to a temporary file next to `path` (same filesystem, so the
    rename is atomic), are flushed to disk, and the file is renamed over `path`.

    Args:
        path: Destination file; missing parent folders are created.
        data: The complete file content.

    Returns:
        The absolute path written.
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
