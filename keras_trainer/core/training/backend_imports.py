"""Only the active Keras backend is imported: no TensorFlow under JAX or torch.

Keras 3 asks "is this a TensorFlow object?" while it serializes a model or its
compile config (`tf.available and isinstance(obj, tf.TensorShape)`), and its
lazy `tensorflow` handle answers by importing TensorFlow whenever it is
installed: seconds and hundreds of MB under the JAX and torch backends, which
never use it. An object can only be a TensorFlow object once TensorFlow is
imported, so `import_active_backend_only` makes that handle report TensorFlow
as available only when something has imported it already. A feature that does
need TensorFlow (ONNX export through tf2onnx, a `tf.data` pipeline) imports it
itself, and the handle then answers as before.

Example:

>>> import_active_backend_only()
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
from typing import Any

_MODULE_UTILS = "keras.src.utils.module_utils"


def active_backend() -> str:
    """The backend Keras will use, read without importing Keras.

    `KERAS_BACKEND` first, then `~/.keras/keras.json` (or `$KERAS_HOME`), else
    TensorFlow, Keras' own default.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as handle:
            return str(json.load(handle).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def import_active_backend_only() -> None:
    """Keeps Keras from importing TensorFlow under another backend (see the module).

    Safe to call before or after Keras is imported, and more than once; does
    nothing under the TensorFlow backend.
    """
    if active_backend() == "tensorflow":
        return
    if _MODULE_UTILS in sys.modules:
        _patch(sys.modules[_MODULE_UTILS])
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _patch(module_utils: Any) -> None:
    handle = getattr(module_utils, "tensorflow", None)
    lazy = getattr(module_utils, "LazyModule", None)
    if handle is None or lazy is None or isinstance(handle, _ImportedOnly):
        return  # another Keras layout: leave it alone

    class ImportedOnly(_ImportedOnly, type(handle)):
        pass

    handle.__class__ = ImportedOnly


class _ImportedOnly:
    """Mixed into Keras' `LazyModule`: available only once TensorFlow is imported."""

    @property
    def available(self) -> bool:
        if "tensorflow" not in sys.modules:
            return False
        return super().available  # type: ignore[misc]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches Keras' `module_utils` right after it is first imported."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name != _MODULE_UTILS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec
