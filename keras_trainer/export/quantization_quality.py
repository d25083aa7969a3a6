"""What int8 quantization changed: the float and quantized ONNX models side by side.

`quantization_report` runs both files through `CompiledInferenceLayer` on a test
split and returns a `QuantizationReport`: accuracy (or mean absolute error, or the
JIT model's regret), file size, and batch-1 / batch-1024 latency, before and after.
It lives apart from `export.quantization` because it needs the inference layer,
which the exporter (and so the quantizer) sits below.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from keras_trainer.errors import QuantizationError
from keras_trainer.export.inference import CompiledInferenceLayer, InferenceBackend


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
    latency_us = _latency_us(layers, features, latency_iterations)
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


def _latency_us(layers: dict, features: Any, latency_iterations: int) -> dict:
    """Median batch-1 and batch-1024 latency (microseconds) of each model, measured alike."""
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
    return {
        key: {size: float(np.median(samples)) for size, samples in sizes.items()}
        for key, sizes in latency.items()
    }


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
