"""`keras-trainer export`: a saved Keras model to an ONNX file."""

import argparse
import json
import sys

from keras_trainer.errors import KerasTrainerError


def register(subparsers) -> None:
    """Adds the `export` subcommand to an argparse subparsers object.

    Args:
        subparsers: the object returned by `ArgumentParser.add_subparsers()`.
    """
    parser = subparsers.add_parser(
        "export",
        help="Export a saved Keras model (.keras/.h5) to ONNX.",
        description=(
            "Export a saved Keras model, trained under any backend, to an ONNX file with a "
            "dynamic batch dimension. The model's metadata (feature names, class names, "
            "normalization stats) is stored in the ONNX metadata. The conversion needs "
            "TensorFlow (tf2onnx): it runs in a TensorFlow subprocess, whatever KERAS_BACKEND "
            "says, so TensorFlow must be installed even under JAX or torch."
        ),
    )
    parser.add_argument("model_path", metavar="MODEL_PATH", help="a .keras or .h5 model file")
    parser.add_argument("output", metavar="OUTPUT.onnx", help="the ONNX file to write")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    parser.add_argument(
        "--metadata",
        default=None,
        metavar="JSON_FILE",
        help="a JSON file with a dict of extra metadata to store in the ONNX file",
    )
    parser.add_argument(
        "--custom-module",
        action="append",
        default=[],
        dest="custom_modules",
        metavar="MODULE",
        help="a module to import before loading, where custom layers are registered (repeatable)",
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Runs `export` for parsed arguments; returns the exit code."""
    from keras_trainer.export.onnx_export import export_onnx

    try:
        metadata = _read_metadata_file(args.metadata) if args.metadata else None
        path = export_onnx(
            args.model_path,
            args.output,
            metadata=metadata,
            opset=args.opset,
            custom_modules=args.custom_modules,
        )
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _read_metadata_file(path: str) -> dict:
    from keras_trainer.errors import ExportError

    try:
        with open(path) as f:
            metadata = json.load(f)
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read metadata JSON file {path!r}: {error}") from error
    if not isinstance(metadata, dict):
        raise ExportError(f"metadata file {path!r} must hold a JSON object")
    return metadata
