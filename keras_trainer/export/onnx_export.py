"""Export of Keras models to ONNX, from any training backend.

The route: the model (a `.keras`/`.h5` file, or a model object, which is first
saved to a temporary `.keras`) is loaded in a subprocess under the TensorFlow
backend and a `tf.function` with a dynamic batch dimension is converted with
`tf2onnx.convert.from_function`. This works the same for models trained under
TensorFlow, JAX and torch, including bidirectional LSTMs, where Keras' own
exporters do not (JAX needs `jax2onnx` and fails on reverse scans; torch uses
the deprecated TorchScript exporter). See `_tf_worker.py`.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from keras_trainer.errors import ExportError, QuantizationError
from keras_trainer.export.metadata import encode_metadata_props
from keras_trainer.export.quantization import (
    QUANTIZATION_MODES,
    quantizable_op_types,
    quantize_onnx,
)
from keras_trainer.version import __version__

DEFAULT_OPSET = 17
"""ONNX opset used when none is given (supported by tf2onnx 1.17 and ORT >= 1.14)."""

_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclasses.dataclass
class ExportRequest:
    """One model to export with `export_onnx_many`.

    Args:
        model_or_path: a Keras model, or the path of a `.keras`/`.h5` file.
        path: the `.onnx` file to write.
        input_signature: optional list of `(shape, dtype)` or
            `(name, shape, dtype)` tuples (or objects with `shape`, `dtype` and
            optionally `name`, like `tf.TensorSpec`), one per model input;
            `None` in a shape is a dynamic dimension. Defaults to the model's
            inputs with a dynamic batch dimension.
        metadata: optional dict stored in the ONNX `metadata_props`; it
            overrides the metadata read from the `.keras` file.
        custom_modules: modules to import before loading the model, where its
            custom layers are registered. For a model object they are found
            from its layers; `keras_trainer` is always imported.
        quantize: None (float model), "dynamic" or "static": int8
            quantization with ONNX Runtime (see `quantize_onnx`).
        calibration_data: rows from the training data for "static", as the
            model takes them (array, or list/dict of arrays).
        quantize_op_types: operator types to quantize; defaults to all that
            ONNX Runtime can quantize in that mode.
    """

    model_or_path: Any
    path: Union[str, os.PathLike]
    input_signature: Optional[Sequence[Any]] = None
    metadata: Optional[Mapping[str, Any]] = None
    custom_modules: Sequence[str] = ()
    quantize: Optional[str] = None
    calibration_data: Any = dataclasses.field(default=None, repr=False)
    quantize_op_types: Optional[Sequence[str]] = None


def export_onnx(
    model_or_path: Any,
    path: Union[str, os.PathLike],
    *,
    input_signature: Optional[Sequence[Any]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    opset: Optional[int] = None,
    custom_modules: Sequence[str] = (),
    quantize: Optional[str] = None,
    calibration_data: Any = None,
    quantize_op_types: Optional[Sequence[str]] = None,
) -> str:
    """Exports a Keras model to an ONNX file with a dynamic batch dimension.

    Works for models trained under any Keras backend. The file is written
    atomically (temp file, then rename). Its `metadata_props` hold the model's
    metadata (read from the `.keras` file when it has any, e.g. feature names,
    class names, normalization stats), updated with `metadata`, plus
    `library_version`, `source_backend`, `input_names`, `output_names`,
    `opset` and `exporter`. Read them back with `read_onnx_metadata`.

    Args:
        model_or_path: a Keras model, or the path of a `.keras`/`.h5` file.
        path: the `.onnx` file to write.
        input_signature: see `ExportRequest`. Defaults to the model's inputs.
        metadata: optional JSON-serializable dict stored in the ONNX file.
        opset: ONNX opset; defaults to `DEFAULT_OPSET` (17).
        custom_modules: see `ExportRequest`.
        quantize: None (default, float32), "dynamic" or "static": writes an
            int8-quantized model through ONNX Runtime's quantization tools
            (see `keras_trainer.export.quantize_onnx`). Its metadata gains a
            `quantization` entry.
        calibration_data: for "static", rows from the training data as the
            model takes them (e.g. `x_train[:256]`).
        quantize_op_types: operator types to quantize (default: every type
            ONNX Runtime can quantize in that mode).

    Returns:
        The path of the written `.onnx` file.

    Raises:
        ExportError: the model file is missing or unreadable, a custom layer
            cannot be found, or the conversion fails.
        QuantizationError: an operator cannot be quantized (named), or
            "static" without calibration data.

    Example:

    >>> export_onnx("runs/jit/model.keras", "model.onnx")  # doctest: +SKIP
    'model.onnx'
    >>> export_onnx("runs/jit/model.keras", "model.int8.onnx", quantize="static",
    ...             calibration_data=x_train[:256])  # doctest: +SKIP
    'model.int8.onnx'
    """
    request = ExportRequest(
        model_or_path,
        path,
        input_signature=input_signature,
        metadata=metadata,
        custom_modules=custom_modules,
        quantize=quantize,
        calibration_data=calibration_data,
        quantize_op_types=quantize_op_types,
    )
    return export_onnx_many([request], opset=opset)[0]


def export_onnx_many(
    requests: Sequence[ExportRequest], *, opset: Optional[int] = None, timeout: float = 900.0
) -> "list[str]":
    """Exports several models to ONNX in one TensorFlow subprocess.

    Starting TensorFlow and tf2onnx costs seconds, so exporting many models at
    once is much faster than calling `export_onnx` for each.

    Args:
        requests: the models to export, as `ExportRequest`s.
        opset: ONNX opset; defaults to `DEFAULT_OPSET`.
        timeout: seconds the conversion subprocess may run.

    Returns:
        The paths of the written `.onnx` files, in the order of `requests`.

    Raises:
        ExportError: naming the first request that failed; the others that
            succeeded are written.
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    for index, request in enumerate(requests):
        if request.quantize is not None and request.quantize not in QUANTIZATION_MODES:
            raise QuantizationError(
                f"requests[{index}].quantize must be one of {list(QUANTIZATION_MODES)} or None, "
                f"got {request.quantize!r}"
            )
        if request.quantize == "static" and request.calibration_data is None:
            raise QuantizationError(
                f"requests[{index}]: static quantization needs calibration_data (rows from the "
                "training data); or use quantize='dynamic'"
            )
        if request.quantize and request.quantize_op_types is not None:
            supported = quantizable_op_types(request.quantize)
            for op_type in request.quantize_op_types:
                if op_type not in supported:
                    raise QuantizationError(
                        f"requests[{index}]: operator {op_type!r} cannot be quantized in "
                        f"{request.quantize} mode by ONNX Runtime; quantizable operators: "
                        f"{supported}"
                    )
    with tempfile.TemporaryDirectory(prefix="keras_trainer_export_") as workdir:
        jobs = [_prepare(request, i, workdir) for i, request in enumerate(requests)]
        job_path = os.path.join(workdir, "job.json")
        result_path = os.path.join(workdir, "result.json")
        with open(job_path, "w") as f:
            json.dump({"opset": opset, "requests": jobs}, f)
        results = _run_worker(job_path, result_path, workdir, timeout)
        failures = [(job, r) for job, r in zip(jobs, results) if r["error"]]
        # The float model of a quantized request went to the work folder.
        for request, job, result in zip(requests, jobs, results):
            if request.quantize and not result["error"]:
                try:
                    quantize_onnx(
                        job["output"],
                        job["final_output"],
                        request.quantize,
                        calibration_data=request.calibration_data,
                        op_types=request.quantize_op_types,
                    )
                except QuantizationError as error:
                    failures.append((job, {"error": str(error), "quantization": error}))
    if failures:
        job, result = failures[0]
        kind = QuantizationError if "quantization" in result else ExportError
        raise kind(
            f"export of {job['display']} to {job['final_output']!r} failed: {result['error']}"
            + (f" ({len(failures) - 1} more export(s) failed)" if len(failures) > 1 else "")
        )
    return [job["final_output"] for job in jobs]


def _run_worker(job_path, result_path, workdir, timeout):
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""  # Conversion needs no GPU; do not grab one.
    # The worker must import the same modules (keras_trainer, custom layers).
    # Made absolute because the worker runs in another directory.
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
    command = [sys.executable, "-m", "keras_trainer.export._tf_worker", job_path, result_path]
    try:
        process = subprocess.run(
            command, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise ExportError(f"ONNX conversion did not finish within {timeout:.0f} s") from error
    if process.returncode != 0 or not os.path.exists(result_path):
        tail = (process.stderr or process.stdout or "").strip().splitlines()[-15:]
        raise ExportError(
            f"ONNX conversion subprocess failed (exit code {process.returncode}):\n"
            + "\n".join(tail)
        )
    with open(result_path) as f:
        return json.load(f)


def _prepare(request: ExportRequest, index: int, workdir: str) -> "dict[str, Any]":
    output = os.path.abspath(os.fspath(request.path))
    if not os.path.isdir(os.path.dirname(output)):
        raise ExportError(f"output directory of {output!r} does not exist")
    modules = ["keras_trainer", *request.custom_modules]
    source_backend = None
    if isinstance(request.model_or_path, (str, os.PathLike)):
        source = os.path.abspath(os.fspath(request.model_or_path))
        display = repr(os.fspath(request.model_or_path))
        if not os.path.isfile(source):
            raise ExportError(f"model file not found: {source!r}")
        if not source.endswith(_KERAS_SUFFIXES):
            raise ExportError(f"cannot export {source!r}: expected a `.keras` or `.h5` model file")
        metadata = _read_file_metadata(source)
    else:
        model = request.model_or_path
        if not hasattr(model, "save") or not hasattr(model, "layers"):
            raise ExportError(
                f"expected a Keras model or a model file path; got {type(model).__name__}"
            )
        import keras

        display = f"model {getattr(model, 'name', '?')!r}"
        source = os.path.join(workdir, f"model_{index}.keras")
        try:
            model.save(source)
        except Exception as error:
            raise ExportError(f"cannot save {display} for export: {error}") from error
        modules.extend(_custom_modules_of(model))
        source_backend = keras.backend.backend()
        metadata = {}
    metadata = dict(metadata)
    metadata.update(request.metadata or {})
    metadata["library_version"] = metadata.get("library_version") or __version__
    metadata.setdefault("source_backend", metadata.get("backend") or source_backend or "unknown")
    encode_metadata_props(metadata)  # Fails early, in this process, on bad values.
    final_output = output
    if request.quantize:
        output = os.path.join(workdir, f"float_{index}.onnx")
    return {
        "source": source,
        "output": output,
        "final_output": final_output,
        "display": display,
        "input_signature": _normalize_signature(request.input_signature),
        "metadata": metadata,
        "custom_modules": list(dict.fromkeys(modules)),
    }


def _read_file_metadata(path: str) -> "dict[str, Any]":
    """Metadata the library stored inside a `.keras` file, if any."""
    from keras_trainer.core.saving.persistence import read_metadata

    try:
        return dict(read_metadata(path) or {})
    except Exception as error:
        raise ExportError(f"cannot read metadata of {path!r}: {error}") from error


def _custom_modules_of(model) -> "list[str]":
    """Modules defining the model's non-Keras classes (where they are registered)."""
    modules = []
    layers = [model]
    if hasattr(model, "_flatten_layers"):
        layers = list(model._flatten_layers(include_self=True, recursive=True))
    for layer in layers:
        module = type(layer).__module__
        if module.split(".")[0] not in ("keras", "builtins") and module != "__main__":
            modules.append(module)
    return modules


def _normalize_signature(signature) -> "Optional[list[dict[str, Any]]]":
    if signature is None:
        return None
    normalized = []
    for i, entry in enumerate(signature):
        if hasattr(entry, "shape") and hasattr(entry, "dtype"):
            name = getattr(entry, "name", None)
            shape, dtype = entry.shape, entry.dtype
        elif isinstance(entry, (tuple, list)) and len(entry) in (2, 3):
            name, shape, dtype = (None, *entry) if len(entry) == 2 else entry
        else:
            raise ExportError(
                f"input_signature[{i}] must be (shape, dtype), (name, shape, dtype) or a "
                f"TensorSpec; got {entry!r}"
            )
        try:
            shape = [None if d is None else int(d) for d in shape]
        except (TypeError, ValueError) as error:
            raise ExportError(f"input_signature[{i}] has a bad shape {shape!r}") from error
        dtype = getattr(dtype, "name", None) or str(dtype)
        normalized.append({"name": name or f"input_{i}", "shape": shape, "dtype": dtype})
    return normalized
