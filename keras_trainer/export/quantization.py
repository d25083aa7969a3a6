"""Int8 quantization of exported ONNX models with ONNX Runtime's tools.

Two modes, as ONNX Runtime names them:

- "dynamic": weights are stored as int8; activations are quantized on the fly
  at each call (`quantize_dynamic`, operators `MatMulInteger`, `ConvInteger`,
  `DynamicQuantizeLSTM`). Needs no data.
- "static": weights and activations are int8 with scales fixed ahead of time
  from calibration rows (`quantize_static`, QDQ format, min-max calibration).
  The calibration rows must come from the training data: scales fitted on
  other data clip real inputs.

`quantize_onnx` writes the quantized copy of an `.onnx` file (atomically, with
the source's metadata plus a `quantization` entry); `export_onnx(...,
quantize=...)` calls it. What quantization changed is measured apart, in
`export.quantization_quality.quantization_report` (it runs both models through the
inference layer).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_trainer.core.saving.atomic import atomic_path
from keras_trainer.errors import ExportError, QuantizationError

QUANTIZATION_MODES = ("dynamic", "static")
"""The modes `quantize_onnx` and `export_onnx(quantize=...)` accept."""

_CALIBRATION_BATCH = 32


def quantizable_op_types(mode: str) -> list[str]:
    """ONNX operator types ONNX Runtime can quantize in `mode` ("dynamic" or "static")."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry

    _check_mode(mode)
    return sorted(IntegerOpsRegistry if mode == "dynamic" else QDQRegistry)


def quantize_onnx(
    source: str | os.PathLike,
    path: str | os.PathLike,
    mode: str = "dynamic",
    *,
    calibration_data: Any = None,
    op_types: Sequence[str] | None = None,
    per_channel: bool = False,
) -> str:
    """Writes an int8-quantized copy of an ONNX model.

    Args:
        source: the float `.onnx` file (e.g. written by `export_onnx`).
        path: the quantized `.onnx` file to write (may equal `source`).
        mode: "dynamic" (int8 weights, activations quantized per call) or
            "static" (int8 weights and activations, scales from
            `calibration_data`). Defaults to "dynamic".
        calibration_data: rows from the TRAINING data, as the model takes
            them: an array `(rows, ...)` for a model with one input, or a list
            or dict name -> array for several. Required for "static"; a few
            hundred rows are enough.
        op_types: ONNX operator types to quantize (e.g. `["MatMul"]`).
            Defaults to every type ONNX Runtime can quantize in `mode`.
        per_channel: one scale per output channel of each weight (more
            accurate for convolutions, larger file). Defaults to False.

    Returns:
        The path written.

    Raises:
        QuantizationError: an operator in `op_types` cannot be quantized in
            `mode` (the message names the operator and its nodes), no
            operator of the model can be quantized, calibration data is
            missing or does not fit the model, or the quantized model does
            not run in ONNX Runtime (naming the failing node).
        ExportError: `source` is missing or not an ONNX model.

    Example:

    >>> quantize_onnx("model.onnx", "model.int8.onnx", "static",
    ...               calibration_data=x_train[:256])  # doctest: +SKIP
    'model.int8.onnx'
    """
    import onnx

    _check_mode(mode)
    source, path = os.fspath(source), os.fspath(path)
    model = _load_onnx(source)
    present = Counter(node.op_type for node in model.graph.node)
    targets = _target_op_types(model, source, mode, op_types, present)
    feeds = None
    if mode == "static":
        if calibration_data is None:
            raise QuantizationError(
                "static quantization needs calibration_data: rows from the training data "
                "(e.g. `calibration_data=x_train[:256]`); or use quantize='dynamic'"
            )
        feeds = _calibration_feeds(model, calibration_data)
    with atomic_path(path) as temp:
        _run_quantizer(model, source, temp, mode, targets, feeds, per_channel)
        quantized = onnx.load(temp)
        changed = Counter(n.op_type for n in quantized.graph.node) - present
        metadata = {p.key: p.value for p in model.metadata_props}
        metadata["quantization"] = _json(
            {
                "mode": mode,
                "op_types": targets,
                "weight_type": "int8",
                "activation_type": "int8" if mode == "static" else "int8 (dynamic)",
                "per_channel": per_channel,
                "calibration_rows": 0
                if feeds is None
                else int(sum(len(f[next(iter(f))]) for f in feeds)),
                "source_file": os.path.basename(source),
            }
        )
        del quantized.metadata_props[:]
        for key, value in metadata.items():
            entry = quantized.metadata_props.add()
            entry.key, entry.value = key, value
        quantized.producer_name = model.producer_name or "keras_trainer"
        if not changed:
            raise QuantizationError(
                f"{source!r}: ONNX Runtime quantized no operator in {mode} mode (operators "
                f"{targets} were eligible); the model stays float"
            )
        onnx.save(quantized, temp)
        _check_runs(temp, model, feeds, mode)
    return path


def _target_op_types(
    model, source: str, mode: str, op_types: Sequence[str] | None, present: Counter
) -> list[str]:
    """The operator types to quantize: `op_types` checked against ONNX Runtime's, or all."""
    supported = quantizable_op_types(mode)
    if op_types is not None:
        for op_type in op_types:
            if op_type not in supported:
                nodes = [n.name for n in model.graph.node if n.op_type == op_type][:3]
                where = f" (nodes {nodes})" if nodes else " (the model has no such node)"
                raise QuantizationError(
                    f"operator {op_type!r}{where} cannot be quantized in {mode} mode by ONNX "
                    f"Runtime; quantizable operators: {supported}"
                )
        targets = list(op_types)
    else:
        targets = [op for op in supported if op in present]
    if not any(op in present for op in targets):
        raise QuantizationError(
            f"{source!r}: no operator can be quantized in {mode} mode; the model has "
            f"{sorted(present)}, ONNX Runtime quantizes {supported}"
        )
    return targets


def _run_quantizer(
    model, source: str, temp: str, mode: str, targets: list, feeds, per_channel: bool
) -> None:
    """ONNX Runtime's quantizer for `mode`, its plain exceptions as `QuantizationError`."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    try:
        if mode == "dynamic":
            quantize_dynamic(
                source,
                temp,
                op_types_to_quantize=targets,
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
            )
        else:
            quantize_static(
                source,
                temp,
                _Calibration(feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=targets,
                per_channel=per_channel,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
    except QuantizationError:
        raise
    except Exception as error:  # ORT's quantizer raises plain exceptions.
        raise QuantizationError(
            f"ONNX Runtime could not quantize {source!r} ({mode}){_node_hint(error, model)}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _check_mode(mode: str) -> None:
    if mode not in QUANTIZATION_MODES:
        raise QuantizationError(f"quantize must be one of {list(QUANTIZATION_MODES)}, got {mode!r}")


def _load_onnx(path: str):
    import onnx

    if not os.path.isfile(path):
        raise ExportError(f"ONNX file not found: {path!r}")
    try:
        return onnx.load(path)
    except Exception as error:
        raise ExportError(f"{path!r} is not a valid ONNX model: {error}") from error


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _graph_inputs(model) -> list[tuple[str, np.dtype, tuple]]:
    from onnx import helper

    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        inputs.append((value.name, dtype, shape))
    return inputs


def _calibration_feeds(model, data) -> list[dict[str, np.ndarray]]:
    """Calibration data as ONNX Runtime feeds of at most 32 rows each."""
    inputs = _graph_inputs(model)
    names = [name for name, _, _ in inputs]
    if isinstance(data, Mapping):
        missing = [n for n in names if n not in data]
        if missing:
            raise QuantizationError(
                f"calibration_data has keys {sorted(data)}; the model's inputs are {names}"
            )
        arrays = [data[n] for n in names]
    elif len(inputs) == 1:
        arrays = [data]
    elif isinstance(data, (list, tuple)) and len(data) == len(inputs):
        arrays = list(data)
    else:
        raise QuantizationError(
            f"the model has {len(inputs)} inputs {names}; pass calibration_data as a list or "
            "dict of that many arrays"
        )
    converted = []
    for (name, dtype, shape), array in zip(inputs, arrays, strict=True):
        try:
            array = np.asarray(array).astype(dtype, copy=False)
        except (TypeError, ValueError) as error:
            raise QuantizationError(
                f"calibration_data[{name!r}] is not numeric: {error}"
            ) from error
        if array.ndim != len(shape) or any(
            d is not None and d != a for d, a in zip(shape[1:], array.shape[1:], strict=True)
        ):
            expected = ", ".join("batch" if i == 0 else str(d or "?") for i, d in enumerate(shape))
            raise QuantizationError(
                f"calibration_data[{name!r}] has shape {array.shape}; "
                f"the model expects ({expected})"
            )
        if len(array) == 0:
            raise QuantizationError(f"calibration_data[{name!r}] has no rows")
        if dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise QuantizationError(f"calibration_data[{name!r}] has NaN or infinite values")
        converted.append(array)
    rows = {len(a) for a in converted}
    if len(rows) != 1:
        raise QuantizationError(
            f"calibration_data inputs have different row counts: {sorted(rows)}"
        )
    count = rows.pop()
    return [
        {
            name: a[start : start + _CALIBRATION_BATCH]
            for name, a in zip(names, converted, strict=True)
        }
        for start in range(0, count, _CALIBRATION_BATCH)
    ]


class _Calibration:
    """The `CalibrationDataReader` protocol over prepared feeds."""

    def __init__(self, feeds):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _node_hint(error: Exception, model) -> str:
    """' at node X (OpType)' when the error names a node of the model."""
    text = str(error)
    nodes = {n.name: n.op_type for n in model.graph.node if n.name}
    for name, op_type in nodes.items():
        if name and name in text:
            return f" at node {name!r} ({op_type})"
    return ""


def _check_runs(path: str, source_model, feeds, mode: str) -> None:
    """Runs the quantized model once; a failure names the node ORT refused."""
    import onnx

    from keras_trainer.errors import InferenceError
    from keras_trainer.export.runtime import ort_session

    if feeds:
        feed = {k: v[:2] for k, v in feeds[0].items()}
    else:
        feed = {}
        for name, dtype, shape in _graph_inputs(source_model):
            dims = [2] + [8 if d is None else d for d in shape[1:]]
            feed[name] = np.zeros(dims, dtype=dtype)
    try:
        ort_session(path).run(None, feed)
    except (InferenceError, Exception) as error:
        quantized = onnx.load(path)
        match = re.search(r"node (?:with name )?'([^']+)'", str(error)) or re.search(
            r"Node \(([^)]+)\)", str(error)
        )
        where = ""
        if match:
            op = {n.name: n.op_type for n in quantized.graph.node}.get(match.group(1), "?")
            where = f" at node {match.group(1)!r} (operator {op})"
        raise QuantizationError(
            f"the {mode}-quantized model does not run in ONNX Runtime{where}: "
            f"{str(error).strip().splitlines()[0]}; exclude that operator with op_types=[...]"
        ) from error
