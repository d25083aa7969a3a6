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

import importlib
import json
import os
import re
import zipfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

import h5py

from keras_trainer.core.saving.atomic import atomic_path
from keras_trainer.errors import CheckpointError
from keras_trainer.version import __version__

if TYPE_CHECKING:  # Keras is imported where a model is saved or loaded, not to read metadata
    import keras

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
    import keras

    return {
        "library_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }


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
    import keras

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


# A model's metadata (class names, feature config, vocabulary) is kilobytes; a
# file claiming more is corrupt or hostile, and reading it whole could exhaust memory.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# Keras' config.json: the architecture and compile settings, never the weights.
MAX_MODEL_CONFIG_BYTES = 64 * 1024 * 1024


def _read_zip_entry(archive: zipfile.ZipFile, path: str, entry: str, limit: int) -> bytes:
    """Reads one archive entry, refusing entries (or zip bombs) larger than `limit` bytes."""
    info = archive.getinfo(entry)
    if info.file_size > limit:
        raise CheckpointError(
            f"{path}: entry {entry!r} claims {info.file_size} bytes, more than the "
            f"{limit}-byte limit; the file is corrupt or not a keras_trainer model"
        )
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"{path}: entry {entry!r} is larger than the {limit}-byte limit")
    return data


def _read_h5_attr(handle: h5py.File, path: str, name: str, limit: int) -> Optional[str]:
    if name not in handle.attrs:
        return None
    size = handle.attrs.get_id(name).get_storage_size()
    if size > limit:
        raise CheckpointError(
            f"{path}: attribute {name!r} holds {size} bytes, more than the {limit}-byte limit; "
            "the file is corrupt or not a keras_trainer model"
        )
    text = handle.attrs[name]
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def _parse_json(text: str | bytes, path: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise CheckpointError(f"{path}: {what} is not valid JSON ({reason})") from None


# What a truncated, corrupt or foreign file raises while we read its zip entries or
# HDF5 attributes (CheckpointError, a ValueError, is re-raised as it is).
_UNREADABLE_FILE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    KeyError,
    ValueError,
)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Reads keras_trainer's metadata from a `.keras` or `.h5` file without loading the model.

    At most `MAX_METADATA_BYTES` are read, whatever the file claims.

    Returns:
        The metadata dict; `{}` for a plain Keras file saved without it.

    Raises:
        CheckpointError: the file is missing, not a model file, corrupt, or its
            metadata is too large or not a JSON object.
    """
    path = os.fspath(path)
    suffix = _check_suffix(path)
    _require_file(path)
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                if METADATA_ENTRY not in archive.namelist():
                    return {}
                text = _read_zip_entry(archive, path, METADATA_ENTRY, MAX_METADATA_BYTES)
        else:
            with h5py.File(path, "r") as handle:
                text = _read_h5_attr(handle, path, H5_METADATA_ATTR, MAX_METADATA_BYTES)
            if text is None:
                return {}
    except _UNREADABLE_FILE as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable model file ({error})") from None
    metadata = _parse_json(text, path, f"its metadata ({METADATA_ENTRY})")
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"{path}: metadata ({METADATA_ENTRY}) must be a JSON object, got {type(metadata).__name__}"
        )
    return metadata


# The modules that define keras_trainer's serializable classes (custom layers,
# losses, metrics). This list, not the file being loaded, decides what is imported.
SERIALIZABLE_MODULES = (
    "keras_trainer.core.building.losses",
    "keras_trainer.core.evaluating.ensemble",
    "keras_trainer.assistant.layers",
    "keras_trainer.assistant.model",
    "keras_trainer.tabular.layers",
)
REGISTERED_PACKAGE = "keras_trainer"
# Keras' own markers for tensors, arrays, bytes and lambdas inside a config; Keras
# handles them itself (safe_mode refuses `__lambda__`).
_KERAS_MARKERS = re.compile(r"^__\w+__$")
_REGISTERED_NAME = re.compile(r"^[\w.-]+>[\w.-]+$")


def allowed_objects() -> dict[str, Any]:
    """keras_trainer's registered serializable classes and functions, by registered name.

    Imports the fixed `SERIALIZABLE_MODULES` (never a module a file names) and
    returns every object registered under the `keras_trainer>` package,
    including losses added with `keras_trainer.register_loss`. Deserialization
    resolves nothing else besides Keras' own built-ins and the caller's explicit
    `custom_objects`.
    """
    import keras

    for module in SERIALIZABLE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # that family's optional dependencies are not installed
            continue
    prefix = f"{REGISTERED_PACKAGE}>"
    return {
        name: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith(prefix)
    }


def _is_keras_symbol(module: str, name: str) -> bool:
    # Keras' own package: Keras resolves these itself (backend-specific classes such
    # as `keras.src.backend.torch.optimizers.torch_adam.Adam` included) and accepts
    # only `KerasSaveable` subclasses from them.
    return module == "keras" or module.startswith("keras.")


def _is_keras_builtin_function(name: str) -> bool:
    from keras.src.api_export import get_symbol_from_name
    from keras.src.saving.serialization_lib import BUILTIN_MODULES

    return any(
        get_symbol_from_name(f"keras.{module}.{name}") is not None for module in BUILTIN_MODULES
    )


def _check_object(node: dict, key: str, allowed: dict, path: str) -> None:
    class_name = node["class_name"]
    if _KERAS_MARKERS.match(class_name):
        return
    module = node.get("module")
    registered = node.get("registered_name")
    if class_name == "function" and module is not None:
        function = node.get("config")
        if not isinstance(function, str):
            raise CheckpointError(
                f"{path}: {key}: a function must be named by a string, got {function!r}"
            )
        if function in allowed:
            return
        if ">" not in function and (
            (module == "builtins" and _is_keras_builtin_function(function))
            or _is_keras_symbol(module, function)
        ):
            return
        raise CheckpointError(
            f"{path}: {key} names the function {function!r} (module {module!r}), which is neither "
            "a Keras built-in nor a registered keras_trainer object; refusing to load it"
        )
    if registered in allowed or (registered is None and class_name in allowed):
        return
    if module is None:  # legacy .h5 configs name classes only; registered ones as 'package>Name'
        if ">" not in class_name and registered in (None, class_name):
            return
    elif registered in (None, class_name) and _is_keras_symbol(module, class_name):
        return
    where = f"{module}.{class_name}" if module else class_name
    raise CheckpointError(
        f"{path}: {key} names the class {where!r}"
        + (f" (registered as {registered!r})" if registered not in (None, class_name) else "")
        + ", which is neither a Keras built-in nor a registered keras_trainer class; refusing to load it"
        + (f". Allowed classes: {sorted(allowed)}" if allowed else "")
    )


def _check_config_tree(
    node: Any, key: str, allowed: dict, path: str, legacy_strings: bool = False
) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str):
            _check_object(node, key, allowed, path)
        for name, value in node.items():
            _check_config_tree(value, f"{key}.{name}", allowed, path, legacy_strings)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_config_tree(value, f"{key}[{index}]", allowed, path, legacy_strings)
    elif (
        legacy_strings
        and isinstance(node, str)
        and _REGISTERED_NAME.match(node)
        and node not in allowed
    ):
        raise CheckpointError(
            f"{path}: {key} names {node!r}, which is not a registered keras_trainer object; "
            "refusing to load it"
        )


def check_model_config(
    path: str | os.PathLike, custom_objects: Optional[dict] = None
) -> dict[str, Any]:
    """Checks that every class a model file names is on the allowlist, without loading it.

    The allowlist is Keras' built-ins, `allowed_objects()` and `custom_objects`.

    Returns:
        The objects to pass to Keras as `custom_objects`.

    Raises:
        CheckpointError: naming the file and the config key of the first class
            that is not allowed, or a config that is unreadable.
    """
    import keras

    path = os.fspath(path)
    custom_objects = dict(custom_objects or {})
    # A caller's class is allowed under the key it was given and under the name it
    # was registered with (`package>Name`), the one a saved file names.
    registered = {
        keras.saving.get_registered_name(obj): obj
        for obj in custom_objects.values()
        if isinstance(obj, type) or callable(obj)
    }
    allowed = {**allowed_objects(), **registered, **custom_objects}
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                text = _read_zip_entry(archive, path, "config.json", MAX_MODEL_CONFIG_BYTES)
            sections = {"config.json": (text, False)}
        else:
            with h5py.File(path, "r") as handle:
                sections = {
                    name: (text, name == "training_config")
                    for name in ("model_config", "training_config")
                    if (text := _read_h5_attr(handle, path, name, MAX_MODEL_CONFIG_BYTES))
                    is not None
                }
    except _UNREADABLE_FILE as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable model file ({error})") from None
    if not sections:
        raise CheckpointError(f"{path}: holds no model configuration (not a Keras model file)")
    for name, (text, legacy_strings) in sections.items():
        config = _parse_json(text, path, name)
        _check_config_tree(config, name, allowed, path, legacy_strings)
    return allowed


def registered_objects_of(modules: Iterable[str]) -> dict[str, Any]:
    """The registered Keras objects of the modules a caller names, for `load_model`.

    Imports each module (named by the caller, never by a file) so that the
    serializable classes it declares register, and returns those classes by
    registered name: what a worker process that loads a file with custom layers
    passes as `custom_objects`.
    """
    import keras

    modules = set(modules)
    for module in modules:
        importlib.import_module(module)
    return {
        name: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if getattr(obj, "__module__", None) in modules
    }


def load_model(
    path: str | os.PathLike, custom_objects: Optional[dict] = None, compile: bool = False
) -> tuple[keras.Model, dict[str, Any]]:
    """Loads a model saved by `save_model` (or any Keras model file) safely.

    Works under any backend, whatever backend saved the file. Nothing in the
    file decides what code runs: every class it names must be a Keras built-in,
    one of keras_trainer's registered classes (`allowed_objects`) or one of
    `custom_objects`; no module is imported because the file names it, lambdas
    are refused (`safe_mode=True`) and nothing is unpickled.

    Args:
        path: A `.keras` or `.h5` file.
        custom_objects: Extra classes the caller allows (registered
            `keras_trainer` layers and losses are allowed without this).
        compile: Whether to restore the training configuration too.

    Returns:
        `(model, metadata)`.

    Raises:
        CheckpointError: missing, truncated or corrupt file, or a class that is
            not allowed (naming the file and the config key).
    """
    import keras

    path = os.fspath(path)
    metadata = read_metadata(path)
    allowed = check_model_config(path, custom_objects)
    try:
        model = keras.saving.load_model(
            path, custom_objects=allowed, compile=compile, safe_mode=True
        )
    except (
        ValueError,
        OSError,
        KeyError,
        TypeError,
        AttributeError,
        EOFError,
        zipfile.BadZipFile,
    ) as error:
        raise CheckpointError(
            f"{path}: cannot load model ({type(error).__name__}: {error})"
        ) from None
    return model, metadata
