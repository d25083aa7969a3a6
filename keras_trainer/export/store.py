"""A versioned model store: numbered versions, a `production` alias, rollback.

A store is a folder:

    models/store/
      store.json                 {"format": "keras_trainer.model_store/1"}
      versions/0001/model.keras  the model file, copied in
      versions/0001/model.onnx   optional ONNX export of it
      versions/0001/version.json its metadata (below)
      aliases.json               {"production": {"version": 2, "history": [1, 2], ...}}

`version.json` records the version number, date, library version, the
model's config and task, its metrics on the stored test split, a fingerprint
(SHA-256) of the data it was trained on, and the SHA-256 of every file of the
version.

Crash safety: a version is written in a temporary folder and renamed into
`versions/` only when complete (files fsynced), so a kill during `add` leaves
no version, only a temporary folder that `list` ignores. `aliases.json` is
replaced atomically (`core.saving.atomic`) after the target version has been checked
(files present, checksums right), so a kill during `promote` or `rollback`
leaves the alias on the old version or on the new, complete one, never on a
half-written version. Writers take a lock file, so concurrent `add`s get
distinct numbers.

Models are loaded by reference from `CompiledInferenceLayer.load_model`,
`AdaptiveJIT` and the CLI: `"models/store@production"`, `"models/store@3"`,
or `"models/store"` (its production version); `resolve_model_path` turns a
reference into a file path.

Example:

>>> store = ModelStore("models/store")
>>> v = store.add("models/jit_optimizer.keras", metrics={"accuracy": 0.75})  # doctest: +SKIP
>>> store.promote(v.version)  # doctest: +SKIP
>>> CompiledInferenceLayer("keras").load_model("models/store@production")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from keras_trainer.core.saving.atomic import (
    TEMP_MARKER,
    fsync_path,
    is_temporary,
    write_json_atomic,
)
from keras_trainer.errors import ModelStoreError
from keras_trainer.version import __version__

STORE_FORMAT = "keras_trainer.model_store/1"
DEFAULT_ALIAS = "production"
DEFAULT_STORE_ENV = "KERAS_TRAINER_MODEL_STORE"
_VERSION_FILE = "version.json"
_MODEL_SUFFIXES = (".keras", ".h5")


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """One stored version.

    Attributes:
        version: its number (1, 2, ...).
        directory: its folder.
        info: the contents of its `version.json`.
    """

    version: int
    directory: str
    info: dict

    @property
    def model_path(self) -> str:
        """The `.keras` (or `.h5`) file of this version."""
        return os.path.join(self.directory, self.info["model_file"])

    @property
    def onnx_path(self) -> str | None:
        """The `.onnx` export of this version, or None when it has none."""
        name = self.info.get("onnx_file")
        return os.path.join(self.directory, name) if name else None


def file_fingerprint(path: str | os.PathLike) -> str:
    """`sha256:<hex>` of a file's bytes (a data set, a model file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class ModelStore:
    """Numbered model versions with aliases, in a folder.

    Args:
        root: the store's folder; created (with `store.json`) on first write.
            Defaults to `$KERAS_TRAINER_MODEL_STORE`, else `models/store`.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = os.path.abspath(
            os.fspath(root)
            if root is not None
            else os.environ.get(DEFAULT_STORE_ENV, "models/store")
        )
        self._versions = os.path.join(self.root, "versions")
        self._aliases = os.path.join(self.root, "aliases.json")

    # ------------------------------------------------------------- reading
    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.root, "store.json"))

    def versions(self) -> list[ModelVersion]:
        """Every complete version, oldest first (temporary leftovers are ignored)."""
        if not os.path.isdir(self._versions):
            return []
        found = []
        for name in os.listdir(self._versions):
            if is_temporary(name) or not name.isdigit():
                continue
            info_path = os.path.join(self._versions, name, _VERSION_FILE)
            try:
                with open(info_path, encoding="utf-8") as handle:
                    info = json.load(handle)
            except (OSError, ValueError):
                continue  # not a complete version
            found.append(ModelVersion(int(name), os.path.join(self._versions, name), info))
        return sorted(found, key=lambda v: v.version)

    def aliases(self) -> dict[str, dict]:
        """alias -> {"version", "history", "updated"}."""
        try:
            with open(self._aliases, encoding="utf-8") as handle:
                aliases = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as error:
            raise ModelStoreError(f"{self._aliases}: unreadable aliases file: {error}") from error
        if not isinstance(aliases, dict):
            raise ModelStoreError(
                f"{self._aliases}: expected an object alias -> version entry, got "
                f"{type(aliases).__name__}"
            )
        return aliases

    def get(self, reference: int | str = DEFAULT_ALIAS) -> ModelVersion:
        """A version by number (`3`, `"3"`, `"v3"`) or alias (`"production"`).

        Raises:
            ModelStoreError: no such version or alias, or its files are
                damaged (checksum mismatch).
        """
        number = self._number(reference)
        directory = os.path.join(self._versions, f"{number:04d}")
        info_path = os.path.join(directory, _VERSION_FILE)
        if not os.path.isfile(info_path):
            known = [v.version for v in self.versions()]
            raise ModelStoreError(f"{self.root}: no version {number} (versions: {known})")
        return ModelVersion(number, directory, _read_version_info(info_path))

    def path(self, reference: int | str = DEFAULT_ALIAS, kind: str = "keras") -> str:
        """The model file of a version: kind "keras" (the saved model) or "onnx"."""
        version = self.get(reference)
        if kind == "onnx":
            if version.onnx_path is None:
                raise ModelStoreError(
                    f"{self.root}: version {version.version} has no ONNX export; add it with "
                    "`keras-trainer models add MODEL --onnx` (or serve the .keras file)"
                )
            return _checked_file(version, version.info["onnx_file"])
        return _checked_file(version, version.info["model_file"])

    def _number(self, reference: int | str) -> int:
        if isinstance(reference, int):
            return reference
        text = str(reference).strip()
        if text.lstrip("v").isascii() and text.lstrip("v").isdigit():
            return int(text.lstrip("v"))
        aliases = self.aliases()
        if text not in aliases:
            raise ModelStoreError(
                f"{self.root}: no alias {text!r} (aliases: {sorted(aliases)}); "
                f"promote a version with `keras-trainer models promote VERSION --alias {text}`"
            )
        entry = aliases[text]
        number = entry.get("version") if isinstance(entry, dict) else None
        if type(number) is not int or number < 1:
            raise ModelStoreError(
                f"{self._aliases}: alias {text!r} must be an object with a version number "
                f"(an integer >= 1), got {_short(entry)}"
            )
        return number

    # ------------------------------------------------------------- writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self._versions, exist_ok=True)
        store_file = os.path.join(self.root, "store.json")
        if not os.path.exists(store_file):
            write_json_atomic(store_file, {"format": STORE_FORMAT})
        with open(os.path.join(self.root, ".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(
        self,
        model_path: str | os.PathLike,
        *,
        metrics: Mapping[str, Any] | None = None,
        data_path: str | os.PathLike | None = None,
        config: Mapping[str, Any] | None = None,
        onnx_path: str | os.PathLike | None = None,
        notes: str = "",
    ) -> ModelVersion:
        """Stores a copy of a saved model as the next version.

        Args:
            model_path: a `.keras`/`.h5` file (its keras_trainer metadata is
                read for the config, task, class names and any stored
                test metrics).
            metrics: the model's metrics on its stored test split (e.g. the
                evaluation report `keras-trainer train --report` writes).
                Defaults to the metrics in the model's metadata, if any.
            data_path: the training data file; its SHA-256 is recorded as the
                data fingerprint (default: the fingerprint in the metadata).
            config: the training config (default: the metadata's `config`).
            onnx_path: an ONNX export of the model to keep beside it.
            notes: free text.

        Returns:
            The new `ModelVersion`.

        Raises:
            ModelStoreError: the model file is missing or not a model file.
        """
        from keras_trainer.core.saving.persistence import read_metadata
        from keras_trainer.errors import KerasTrainerError

        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path) or not model_path.endswith(_MODEL_SUFFIXES):
            raise ModelStoreError(f"model file not found or not a .keras/.h5 file: {model_path!r}")
        try:
            metadata = read_metadata(model_path)
        except KerasTrainerError as error:
            raise ModelStoreError(f"{model_path}: {error}") from error
        if onnx_path is not None and not os.path.isfile(onnx_path):
            raise ModelStoreError(f"ONNX file not found: {os.fspath(onnx_path)!r}")
        if data_path is not None and not os.path.isfile(data_path):
            raise ModelStoreError(f"data file not found: {os.fspath(data_path)!r}")
        model_file = "model" + os.path.splitext(model_path)[1]
        info = {
            "model_file": model_file,
            "onnx_file": "model.onnx" if onnx_path is not None else None,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "library_version": __version__,
            "trained_with_library_version": metadata.get("library_version"),
            "keras_version": metadata.get("keras_version"),
            "backend": metadata.get("backend"),
            "task": metadata.get("task"),
            "class_names": metadata.get("class_names"),
            "source": os.path.abspath(model_path),
            "config": dict(config) if config is not None else metadata.get("config"),
            "metrics": dict(metrics) if metrics is not None else metadata.get("test_metrics"),
            "data_fingerprint": (
                file_fingerprint(data_path)
                if data_path is not None
                else metadata.get("data_fingerprint")
            ),
            "notes": notes,
        }
        with self._locked():
            temp = tempfile.mkdtemp(prefix=f".version{TEMP_MARKER}", dir=self._versions)
            try:
                shutil.copyfile(model_path, os.path.join(temp, model_file))
                if onnx_path is not None:
                    shutil.copyfile(onnx_path, os.path.join(temp, "model.onnx"))
                info["files"] = {
                    name: file_fingerprint(os.path.join(temp, name))
                    for name in sorted(os.listdir(temp))
                }
                number = max([v.version for v in self.versions()], default=0) + 1
                info["version"] = number
                write_json_atomic(os.path.join(temp, _VERSION_FILE), info)
                for name in os.listdir(temp):
                    fsync_path(os.path.join(temp, name))
                final = os.path.join(self._versions, f"{number:04d}")
                os.rename(temp, final)  # atomic; never replaces an existing version
                fsync_path(self._versions)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
        return ModelVersion(number, final, info)

    def verify(self, reference: int | str) -> ModelVersion:
        """Checks that a version is complete: every recorded file with its checksum.

        Raises:
            ModelStoreError: a file is missing or its checksum differs.
        """
        version = self.get(reference)
        files = version.info.get("files") or {}
        if version.info.get("model_file") not in files:
            raise ModelStoreError(f"{version.directory}: incomplete version (no file list)")
        for name in files:
            if not _inside(version.directory, name):
                raise ModelStoreError(
                    f"{version.directory}: version.json lists a file outside the version's "
                    f"folder: {_short(name)}"
                )
            _checked_file(version, name)
        return version

    def promote(self, reference: int | str, alias: str = DEFAULT_ALIAS) -> ModelVersion:
        """Points `alias` at a version, after checking the version's files.

        The previous target stays in the alias' history for `rollback`.

        Raises:
            ModelStoreError: no such version, or it is incomplete/damaged.
        """
        _check_alias(alias)
        with self._locked():
            version = self.verify(reference)
            aliases = self.aliases()
            entry = aliases.get(alias, {"history": []})
            history = [v for v in entry.get("history", [])]
            if not history or history[-1] != version.version:
                history.append(version.version)
            aliases[alias] = {"version": version.version, "history": history, "updated": _now()}
            write_json_atomic(self._aliases, aliases)
        return version

    def rollback(self, alias: str = DEFAULT_ALIAS) -> ModelVersion:
        """Points `alias` back at the version it had before the last promote.

        Raises:
            ModelStoreError: the alias does not exist or has no earlier version.
        """
        with self._locked():
            aliases = self.aliases()
            if alias not in aliases:
                raise ModelStoreError(f"{self.root}: no alias {alias!r} to roll back")
            history = list(aliases[alias].get("history", []))
            if len(history) < 2:
                raise ModelStoreError(
                    f"{self.root}: alias {alias!r} has no earlier version to roll back to "
                    f"(history {history})"
                )
            history.pop()
            version = self.verify(history[-1])
            aliases[alias] = {"version": version.version, "history": history, "updated": _now()}
            write_json_atomic(self._aliases, aliases)
        return version


def resolve_model_path(reference: str | os.PathLike, kind: str = "keras") -> str:
    """The model file a reference names.

    Args:
        reference: a model file path (returned as is), a store folder (its
            `production` version), or `"STORE@ALIAS"` / `"STORE@VERSION"`
            (e.g. `"models/store@production"`, `"models/store@3"`).
        kind: "keras" (the saved model) or "onnx" (the version's ONNX export).

    Returns:
        The path of the file.

    Raises:
        ModelStoreError: not a file and not a store reference, or an unknown
            alias or version.
    """
    text = os.fspath(reference)
    if os.path.isfile(text):
        return text
    root, _, ref = text.rpartition("@") if "@" in text else (text, "", DEFAULT_ALIAS)
    store = ModelStore(root)
    if not store.exists():
        raise ModelStoreError(
            f"{text!r} is neither a model file nor a model store reference "
            "('STORE_DIR@production' or 'STORE_DIR@VERSION')"
        )
    return store.path(ref or DEFAULT_ALIAS, kind=kind)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_version_info(path: str) -> dict:
    """A version's `version.json`, checked: an object whose file names stay in its folder.

    Raises:
        ModelStoreError: naming the file and what is wrong with it.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError, RecursionError) as error:
        raise ModelStoreError(f"{path}: unreadable version file: {error}") from None
    if not isinstance(info, dict):
        raise ModelStoreError(f"{path}: expected a JSON object, got {type(info).__name__}")
    for key in ("model_file", "onnx_file"):
        name = info.get(key)
        if name is None and key == "onnx_file":
            continue
        if not isinstance(name, str) or not _inside(os.path.dirname(path), name):
            raise ModelStoreError(
                f"{path}: {key} must name a file inside the version's folder, got {_short(name)}"
            )
    if not isinstance(info.get("files", {}), dict):
        raise ModelStoreError(f"{path}: files must be an object file name -> checksum")
    return info


def _inside(directory: str, name: str) -> bool:
    """Whether `name` is a plain file name that resolves inside `directory` (links too)."""
    if not name or os.path.isabs(name) or os.path.basename(name) != name or name in (".", ".."):
        return False
    real = os.path.realpath(directory)
    return os.path.dirname(os.path.realpath(os.path.join(real, name))) == real


def _checked_file(version: ModelVersion, name: str) -> str:
    """The path of a version's file, after checking its recorded SHA-256.

    Raises:
        ModelStoreError: the file is missing, unrecorded or changed since `add`.
    """
    path = os.path.join(version.directory, name)
    recorded = (version.info.get("files") or {}).get(name)
    if recorded is None:
        raise ModelStoreError(
            f"{path}: no checksum recorded in version.json; the version is incomplete"
        )
    if not os.path.isfile(path):
        raise ModelStoreError(f"{path}: missing from version {version.version}")
    if file_fingerprint(path) != recorded:
        raise ModelStoreError(
            f"{path}: changed since it was stored (checksum mismatch: its SHA-256 differs "
            "from version.json); refusing it; add the new file as a new version"
        )
    return path


def _check_alias(alias: str) -> None:
    if (
        not alias
        or alias.lstrip("v").isdigit()
        or not alias.replace("-", "").replace("_", "").isalnum()
    ):
        raise ModelStoreError(
            f"alias must be a name of letters, digits, '-' or '_' (not a number), got {alias!r}"
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
