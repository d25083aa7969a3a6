"""Saving and loading models with keras_trainer's metadata inside the file.

A `.keras` file is a zip archive of Keras' `config.json`, `metadata.json` and
`model.weights.h5`; we add `keras_trainer.json` beside them. A legacy `.h5`
file gets the same JSON as an attribute of its root group. Either way the
normalization statistics, feature configuration and class names travel with
the weights and cannot be lost as a side file can.

Saving is atomic; loading goes through `keras.saving.load_model(safe_mode=True)`,
which refuses to deserialize code (lambdas), and never unpickles.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Optional

import h5py
import keras

from keras_trainer.core.atomic import atomic_path
from keras_trainer.errors import CheckpointError
from keras_trainer.version import __version__

METADATA_ENTRY = "keras_trainer.json"
H5_METADATA_ATTR = "keras_trainer_metadata"
SUPPORTED_SUFFIXES = (".keras", ".h5")


def _check_suffix(path: str) -> str:
    for suffix in SUPPORTED_SUFFIXES:
        if path.endswith(suffix):
            return suffix
    raise CheckpointError(
        f"{path}: model files must end in '.keras' (recommended) or '.h5', not "
        f"{os.path.splitext(path)[1] or 'nothing'!r}"
    )


def base_metadata() -> dict[str, Any]:
    """Metadata every saved model carries: library version and training backend."""
    return {"library_version": __version__, "keras_version": keras.__version__, "backend": keras.backend.backend()}


def save_model(model: keras.Model, path: str | os.PathLike, metadata: Optional[dict] = None) -> str:
    """Saves `model` and `metadata` into one file, atomically.

    Args:
        model: A built Keras model.
        path: Target file ending in `.keras` or `.h5`. Folders are created.
        metadata: JSON-serializable dict stored inside the file (merged over
            `base_metadata()`).

    Returns:
        The path written.

    Raises:
        CheckpointError: bad suffix, or metadata that is not JSON-serializable.

    Example:

    >>> save_model(model, "models/m.keras", {"class_names": ["a", "b"]})
    >>> model, metadata = load_model("models/m.keras")
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    full_metadata = {**base_metadata(), **(metadata or {})}
    try:
        text = json.dumps(full_metadata)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"metadata for {path} is not JSON-serializable: {error}") from None
    with atomic_path(path) as temp:
        if suffix == ".keras":
            model.save(temp)
            with zipfile.ZipFile(temp, "a") as archive:
                archive.writestr(METADATA_ENTRY, text)
        else:
            keras.saving.save_model(model, temp)
            with h5py.File(temp, "a") as handle:
                handle.attrs[H5_METADATA_ATTR] = text
    return path


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise CheckpointError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a directory, not a model file")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Reads keras_trainer's metadata from a `.keras` or `.h5` file without loading the model.

    Returns:
        The metadata dict; `{}` for a plain Keras file saved without it.

    Raises:
        CheckpointError: the file is missing, not a model file, or corrupt.
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    _require_file(path)
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                if METADATA_ENTRY not in archive.namelist():
                    return {}
                return json.loads(archive.read(METADATA_ENTRY))
        with h5py.File(path, "r") as handle:
            text = handle.attrs.get(H5_METADATA_ATTR)
            return json.loads(text) if text is not None else {}
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, KeyError) as error:
        raise CheckpointError(f"{path}: not a readable model file ({error})") from None


def load_model(
    path: str | os.PathLike, custom_objects: Optional[dict] = None, compile: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """Loads a model saved by `save_model` (or any Keras model file) safely.

    Works under any backend, whatever backend saved the file.

    Args:
        path: A `.keras` or `.h5` file.
        custom_objects: Extra classes for deserialization (registered
            `keras_trainer` layers and losses are found without this).
        compile: Whether to restore the training configuration too.

    Returns:
        `(model, metadata)`.

    Raises:
        CheckpointError: missing, truncated or corrupt file, naming it.
    """
    path = os.fspath(path)
    metadata = read_metadata(path)
    import keras_trainer  # noqa: F401  registers the library's serializable classes

    try:
        model = keras.saving.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=True
        )
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: cannot load model ({type(error).__name__}: {error})") from None
    return model, metadata
