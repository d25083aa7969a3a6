"""Metadata stored in an exported ONNX model's `metadata_props`.

ONNX metadata values are strings, so each top-level key of the metadata dict
is stored as one `metadata_props` entry whose value is the key's JSON text;
`read_onnx_metadata` decodes them again. Keeping one entry per key (rather than
one JSON blob) lets other ONNX tools (Netron, `onnx.load`) show them directly.
"""

import json
import os
from typing import Any

from keras_trainer.errors import ExportError


def encode_metadata_props(metadata: "dict[str, Any]") -> "dict[str, str]":
    """Encodes a JSON-serializable dict as ONNX `metadata_props` strings.

    Args:
        metadata: dict with string keys and JSON-serializable values.

    Returns:
        A dict key -> JSON text of the value.

    Raises:
        ExportError: a key is not a string or a value is not JSON-serializable.
    """
    props = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ExportError(f"metadata keys must be strings; got {key!r}")
        try:
            props[key] = json.dumps(value, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ExportError(
                f"metadata value of key {key!r} is not JSON-serializable: {error}"
            ) from error
    return props


def decode_metadata_props(props: "dict[str, str]") -> "dict[str, Any]":
    """Decodes `metadata_props` strings; values that are not JSON stay strings."""
    metadata = {}
    for key, text in props.items():
        try:
            metadata[key] = json.loads(text)
        except ValueError:
            metadata[key] = text
    return metadata


def read_onnx_metadata(path: "str | os.PathLike") -> "dict[str, Any]":
    """Reads the metadata stored by `export_onnx` from an ONNX file.

    Only the graph's metadata is read; weights are not loaded into memory
    beyond what `onnx.load` needs to parse the file.

    Args:
        path: path of an `.onnx` file.

    Returns:
        dict of the metadata (feature names, class names, normalization stats,
        library version, source backend, input and output names, ...).

    Raises:
        ExportError: the file is missing or is not a valid ONNX model.

    Example:

    >>> meta = read_onnx_metadata("model.onnx")  # doctest: +SKIP
    >>> meta["class_names"]  # doctest: +SKIP
    ['a', 'b', 'c', 'd', 'e']
    """
    import onnx

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExportError(f"ONNX file not found: {path!r}")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others.
        raise ExportError(f"{path!r} is not a valid ONNX model: {error}") from error
    if not model.graph.node:
        raise ExportError(f"{path!r} is not a valid ONNX model: its graph is empty")
    return decode_metadata_props({p.key: p.value for p in model.metadata_props})
