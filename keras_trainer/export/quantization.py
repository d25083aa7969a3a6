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
quantize=...)` calls it. `QuantizationReport` measures what quantization
changed: accuracy (or mean absolute error, or the JIT model's regret) on a
test split, file size, and batch-1 / batch-1024 latency, before and after.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
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
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    _check_mode(mode)
    source, path = os.fspath(source), os.fspath(path)
    model = _load_onnx(source)
    present = Counter(node.op_type for node in model.graph.node)
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
    feeds = None
    if mode == "static":
        if calibration_data is None:
            raise QuantizationError(
                "static quantization needs calibration_data: rows from the training data "
                "(e.g. `calibration_data=x_train[:256]`); or use quantize='dynamic'"
            )
        feeds = _calibration_feeds(model, calibration_data)
    with atomic_path(path) as temp:
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


@dataclasses.dataclass
class QuantizationReport:
    """What quantization changed, measured on a test split.

    Attributes:
        mode: "dynamic" or "static".
        metric: "accuracy" (argmax of class probabilities against labels),
            "mae" (mean absolute error of values against targets) or
            "agreement" (no labels: argmax agreement with the float model).
        float_metric, quantized_metric: that metric for each model.
        float_regret, quantized_regret: total runtime of the chosen
            strategies over the per-sample oracle's (JIT model, when per-class
            times are given), else None.
        max_abs_diff: largest absolute difference of the outputs.
        argmax_agreement: share of rows where both pick the same class.
        float_bytes, quantized_bytes: file sizes.
        latency_us: {"float" | "quantized": {"batch_1": p50 us,
            "batch_1024": median us}}, measured through
            `CompiledInferenceLayer`, interleaved.
        rows: number of test rows.
    """

    mode: str
    metric: str
    float_metric: float
    quantized_metric: float
    max_abs_diff: float
    argmax_agreement: float
    float_bytes: int
    quantized_bytes: int
    latency_us: dict
    rows: int
    float_regret: float | None = None
    quantized_regret: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_text(self) -> str:
        lat = self.latency_us
        lines = [
            f"{self.mode} int8 quantization, {self.rows} test rows",
            f"{'':24s} {'float':>12s} {'int8':>12s} {'change':>10s}",
            _row(self.metric, self.float_metric, self.quantized_metric),
        ]
        if self.float_regret is not None:
            lines.append(_row("regret (x oracle)", self.float_regret, self.quantized_regret))
        lines += [
            _row("file size (bytes)", self.float_bytes, self.quantized_bytes, ratio=True),
            _row(
                "batch-1 p50 (us)", lat["float"]["batch_1"], lat["quantized"]["batch_1"], ratio=True
            ),
            _row(
                "batch-1024 (us)",
                lat["float"]["batch_1024"],
                lat["quantized"]["batch_1024"],
                ratio=True,
            ),
            f"max |float - int8| output difference {self.max_abs_diff:.4g}; "
            f"same argmax on {self.argmax_agreement:.1%} of rows",
        ]
        return "\n".join(lines)


def _row(name, before, after, ratio=False) -> str:
    change = f"{after / before:9.2f}x" if ratio and before else f"{after - before:+10.4f}"
    fmt = "{:12,.0f}" if isinstance(before, int) else "{:12.4f}"
    return f"{name:24s} {fmt.format(before)} {fmt.format(after)} {change}"


def quantization_report(
    float_path: str | os.PathLike,
    quantized_path: str | os.PathLike,
    features: Any,
    targets: Any = None,
    *,
    strategy_times: Any = None,
    latency_iterations: int = 300,
) -> QuantizationReport:
    """Compares a float ONNX model with its quantized copy on a test split.

    Args:
        float_path, quantized_path: the two `.onnx` files.
        features: the test split's inputs, as `CompiledInferenceLayer.predict`
            takes them (raw features for the library's serving models).
        targets: class labels `(rows,)` for a classifier (accuracy), or
            values for a regressor (mean absolute error). None: argmax
            agreement with the float model is the metric.
        strategy_times: for the JIT strategy model, the measured time of
            every strategy per row `(rows, classes)`, in the model's class
            order; adds the regret of each model (total time of the chosen
            strategies / total time of the fastest).
        latency_iterations: batch-1 calls per model (batch-1024 uses a 30th).

    Returns:
        A `QuantizationReport` (`to_text()` prints the table).
    """
    from keras_trainer.export.inference import CompiledInferenceLayer, InferenceBackend

    layers = {
        "float": CompiledInferenceLayer(InferenceBackend.ONNX).load_model(float_path),
        "quantized": CompiledInferenceLayer(InferenceBackend.ONNX).load_model(quantized_path),
    }
    outputs = {
        key: _first_output(layer.predict(features).prediction) for key, layer in layers.items()
    }
    before, after = outputs["float"], outputs["quantized"]
    rows = len(before)
    agreement = (
        float(np.mean(np.argmax(before, -1) == np.argmax(after, -1)))
        if before.shape[-1] > 1
        else 1.0
    )
    if targets is None:
        metric, values = "agreement", (1.0, agreement)
    else:
        targets = np.asarray(targets)
        if len(targets) != rows:
            raise QuantizationError(f"targets has {len(targets)} rows but features has {rows}")
        if targets.dtype.kind in "iu" and before.shape[-1] > 1:
            metric = "accuracy"
            values = tuple(
                float(np.mean(np.argmax(o, -1) == targets.reshape(-1))) for o in (before, after)
            )
        else:
            metric = "mae"
            values = tuple(
                float(np.mean(np.abs(o.reshape(targets.shape) - targets))) for o in (before, after)
            )
    regrets = (None, None)
    if strategy_times is not None:
        times = np.asarray(strategy_times, dtype="float64")
        if times.shape != before.shape:
            raise QuantizationError(
                f"strategy_times has shape {times.shape}; expected {before.shape} (rows, classes)"
            )
        oracle = times.min(axis=1).sum()
        regrets = tuple(
            float(times[np.arange(rows), np.argmax(o, -1)].sum() / oracle) for o in (before, after)
        )
    single = _first_rows(features, 1)
    big = _tile_rows(features, 1024)
    latency = {key: {"batch_1": [], "batch_1024": []} for key in layers}
    for layer in layers.values():  # warm-up
        for _ in range(20):
            layer.predict(single)
        layer.predict(big)
    for _ in range(5):  # interleaved rounds: machine load affects both alike
        for key, layer in layers.items():
            latency[key]["batch_1"].extend(
                _timed(layer.predict, single, max(1, latency_iterations // 5))
            )
            latency[key]["batch_1024"].extend(
                _timed(layer.predict, big, max(1, latency_iterations // 150))
            )
    latency_us = {
        key: {size: float(np.median(samples)) for size, samples in sizes.items()}
        for key, sizes in latency.items()
    }
    return QuantizationReport(
        mode=str(layers["quantized"].metadata.get("quantization", {}).get("mode", "?")),
        metric=metric,
        float_metric=values[0],
        quantized_metric=values[1],
        max_abs_diff=float(np.max(np.abs(before - after))),
        argmax_agreement=agreement,
        float_bytes=os.path.getsize(float_path),
        quantized_bytes=os.path.getsize(quantized_path),
        latency_us=latency_us,
        rows=rows,
        float_regret=regrets[0],
        quantized_regret=regrets[1],
    )


def _first_output(prediction) -> np.ndarray:
    if isinstance(prediction, dict):
        return np.asarray(next(iter(prediction.values())))
    return np.asarray(prediction)


def _map_inputs(features, fn):
    if isinstance(features, dict):
        return {k: fn(np.asarray(v)) for k, v in features.items()}
    if isinstance(features, (list, tuple)):
        return [fn(np.asarray(v)) for v in features]
    return fn(np.asarray(features))


def _first_rows(features, count):
    return _map_inputs(features, lambda a: a[:count])


def _tile_rows(features, count):
    return _map_inputs(features, lambda a: np.resize(a, (count, *a.shape[1:])))


def _timed(fn, x, iterations) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn(x)
        samples.append((time.perf_counter_ns() - start) / 1e3)
    return samples
