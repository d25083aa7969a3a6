"""Int8 quantization of exported models (`export_onnx(quantize=...)`, `quantize_onnx`).

Stated tolerance: a quantized model's probabilities differ from the float
model's by at most 0.2 and by 0.04 on average; other outputs by at most 25 %
of their largest magnitude + 0.15. The models are small and random (untrained),
the hardest case for int8 scales; a random regressor's outputs can be small while
the int8 error follows its hidden activations, hence the absolute term. The float model
itself matches Keras within 1e-5 (test_onnx_export.py).
"""

import os

import numpy as np
import onnx
import pytest

from keras_trainer.errors import ExportError, QuantizationError
from keras_trainer.export import (
    CompiledInferenceLayer,
    InferenceBackend,
    QuantizationReport,
    export_onnx,
    quantization_report,
    quantize_onnx,
    read_onnx_metadata,
)

FAMILIES = [
    "jit_mlp",
    "jit_trainer",
    "tabular_feed_forward",
    "tabular_lstm",
    "tabular_cnn_lstm",
    "seq2seq_encoder",
    "seq2seq_decoder_step",
    "jit_ensemble",
]


def _calibration_rows(example, rng, rows=64):
    """Rows like the example (the training data's distribution) for calibration."""
    arrays = []
    for array in example:
        picks = array[rng.integers(0, len(array), rows)]
        if array.dtype.kind == "f":
            picks = picks + rng.normal(0, 0.05, picks.shape).astype(array.dtype)
        arrays.append(picks)
    return arrays if len(arrays) > 1 else arrays[0]


def _predict(path, example):
    layer = CompiledInferenceLayer(InferenceBackend.ONNX).load_model(path)
    features = (
        dict(zip(layer.input_names, example, strict=True)) if len(example) > 1 else example[0]
    )
    prediction = layer.predict(features).prediction
    return list(prediction.values()) if isinstance(prediction, dict) else [prediction]


def _assert_close_to_float(quantized, reference):
    for got, expected in zip(quantized, reference, strict=True):
        assert got.shape == expected.shape
        error = np.abs(got - expected)
        if expected.ndim == 2 and np.allclose(expected.sum(-1), 1, atol=1e-4):  # probabilities
            assert error.max() <= 0.2 and error.mean() <= 0.04
        else:
            assert error.max() <= 0.25 * np.max(np.abs(expected)) + 0.15


@pytest.mark.parametrize("mode", ["dynamic", "static"])
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_quantizes_within_tolerance(exported_models, tmp_path, name, mode):
    exported = exported_models[name]
    rng = np.random.default_rng(3)
    path = quantize_onnx(
        exported.onnx_path,
        tmp_path / f"{name}.int8.onnx",
        mode,
        calibration_data=_calibration_rows(exported.example, rng) if mode == "static" else None,
    )
    graph_ops = {node.op_type for node in onnx.load(path).graph.node}
    assert graph_ops & {"MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM", "QuantizeLinear"}
    _assert_close_to_float(_predict(path, exported.example), exported.keras_outputs)


def test_export_onnx_writes_quantized_models_with_their_metadata(exported_models):
    for name, mode in (("jit_mlp", "dynamic"), ("jit_trainer", "static")):
        exported = exported_models[name]
        path = os.path.join(os.path.dirname(exported.onnx_path), f"{name}_{mode}.onnx")
        metadata = read_onnx_metadata(path)
        assert metadata["quantization"]["mode"] == mode
        assert metadata["input_names"] == ["features"]
        if mode == "static":
            assert metadata["quantization"]["calibration_rows"] == 128
            assert metadata["class_names"] == read_onnx_metadata(exported.onnx_path)["class_names"]
        _assert_close_to_float(_predict(path, exported.example), exported.keras_outputs)
        assert os.path.getsize(path) < os.path.getsize(exported.onnx_path)


def test_operator_that_cannot_be_quantized_is_named(exported_models, tmp_path):
    source = exported_models["jit_mlp"].onnx_path
    with pytest.raises(QuantizationError, match=r"operator 'Softmax' \(nodes \[.*Softmax"):
        quantize_onnx(source, tmp_path / "q.onnx", "dynamic", op_types=["Softmax"])
    assert not os.path.exists(tmp_path / "q.onnx")


def test_export_refuses_unquantizable_operator_before_converting(exported_models, tmp_path):
    with pytest.raises(QuantizationError, match="'Softmax' cannot be quantized in static mode"):
        export_onnx(
            exported_models["jit_mlp"].keras_path,
            tmp_path / "q.onnx",
            quantize="static",
            calibration_data=exported_models["jit_mlp"].example[0],
            quantize_op_types=["Softmax"],
        )


def test_model_without_quantizable_operator_is_an_error(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="only_relu")],
        "relu_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    source = str(tmp_path / "relu.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    with pytest.raises(
        QuantizationError, match=r"no operator can be quantized in dynamic mode.*'Relu'"
    ):
        quantize_onnx(source, tmp_path / "q.onnx", "dynamic")


def test_static_quantization_needs_calibration_rows_of_the_right_shape(exported_models, tmp_path):
    exported = exported_models["jit_mlp"]
    with pytest.raises(QuantizationError, match="calibration_data"):
        export_onnx(exported.keras_path, tmp_path / "q.onnx", quantize="static")
    with pytest.raises(QuantizationError, match=r"shape \(9, 5\); the model expects \(batch, 12\)"):
        quantize_onnx(
            exported.onnx_path,
            tmp_path / "q.onnx",
            "static",
            calibration_data=exported.example[0][:, :5],
        )
    with pytest.raises(QuantizationError, match="quantize must be one of"):
        quantize_onnx(exported.onnx_path, tmp_path / "q.onnx", "int4")
    with pytest.raises(ExportError, match="not found"):
        quantize_onnx(tmp_path / "missing.onnx", tmp_path / "q.onnx")


def test_report_measures_accuracy_regret_size_and_latency(exported_models, tmp_path):
    exported = exported_models["jit_trainer"]
    quantized = quantize_onnx(exported.onnx_path, tmp_path / "q.onnx", "dynamic")
    rng = np.random.default_rng(5)
    features = (rng.normal(size=(200, 12)) * 3 + 2).astype("float32")
    labels = ((features[:, 0] > 2).astype(int) + 2 * (features[:, 1] > 2)).astype("int64")
    times = rng.uniform(1.0, 3.0, (200, 5))
    report = quantization_report(
        exported.onnx_path, quantized, features, labels, strategy_times=times, latency_iterations=20
    )
    assert isinstance(report, QuantizationReport)
    assert report.metric == "accuracy" and report.mode == "dynamic" and report.rows == 200
    float_probabilities = _predict(exported.onnx_path, [features])[0]
    assert report.float_metric == pytest.approx(np.mean(float_probabilities.argmax(-1) == labels))
    chosen = times[np.arange(200), float_probabilities.argmax(-1)].sum()
    assert report.float_regret == pytest.approx(chosen / times.min(1).sum())
    assert abs(report.quantized_metric - report.float_metric) <= 0.05
    assert report.quantized_bytes < report.float_bytes
    assert set(report.latency_us["quantized"]) == {"batch_1", "batch_1024"}
    assert "regret (x oracle)" in report.to_text()
