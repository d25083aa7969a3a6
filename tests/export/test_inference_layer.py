"""CompiledInferenceLayer: ONNX Runtime and compiled-Keras serving."""

import logging
import time

import numpy as np
import onnxruntime as ort
import pytest

from keras_trainer.errors import ConfigError, DataError, InferenceError
from keras_trainer.export import CompiledInferenceLayer, InferenceBackend, InferenceResult
from tests.export.export_models import DotAttention, ScaledResidual

STAT_KEYS = {"count", "mean_ms", "median_ms", "p95_ms", "p99_ms", "min_ms", "max_ms"}


@pytest.fixture(scope="module")
def onnx_mlp(exported_models):
    layer = CompiledInferenceLayer(backend=InferenceBackend.ONNX, device="cpu")
    return layer.load_model(exported_models["jit_mlp"].onnx_path)


@pytest.fixture(scope="module")
def keras_mlp(exported_models):
    layer = CompiledInferenceLayer(backend=InferenceBackend.KERAS, device="cpu")
    return layer.load_model(exported_models["jit_mlp"].keras_path)


@pytest.fixture(params=["onnx", "keras"])
def mlp_layer(request, onnx_mlp, keras_mlp):
    layer = onnx_mlp if request.param == "onnx" else keras_mlp
    layer.reset_stats()
    return layer


def test_onnx_predict_matches_keras(exported_models, onnx_mlp):
    exported = exported_models["jit_mlp"]
    result = onnx_mlp.predict(exported.example[0])
    assert isinstance(result, InferenceResult)
    assert result.backend is InferenceBackend.ONNX
    assert np.max(np.abs(result.prediction - exported.keras_outputs[0])) <= 1e-5


def test_compiled_keras_predict_matches_eager_keras(exported_models, keras_mlp):
    exported = exported_models["jit_mlp"]
    result = keras_mlp.predict(exported.example[0])
    assert result.backend is InferenceBackend.KERAS
    assert np.max(np.abs(result.prediction - exported.keras_outputs[0])) <= 1e-5


@pytest.mark.parametrize("backend", ["onnx", "keras"])
def test_multi_output_model_returns_dict_by_output_name(exported_models, backend):
    exported = exported_models["seq2seq_decoder_step"]
    path = exported.onnx_path if backend == "onnx" else exported.keras_path
    # The Keras file names the test's own layers, allowed by the caller.
    layer = CompiledInferenceLayer(backend=backend).load_model(
        path, custom_objects={"DotAttention": DotAttention, "ScaledResidual": ScaledResidual}
    )
    features = dict(zip(layer.input_names, exported.example))
    prediction = layer.predict(features).prediction
    assert list(prediction) == ["next_token", "new_state_h", "new_state_c"]
    for got, expected in zip(prediction.values(), exported.keras_outputs):
        assert np.max(np.abs(got - expected)) <= 1e-5


def test_keras_file_naming_an_unallowed_class_is_refused(exported_models):
    path = exported_models["seq2seq_decoder_step"].keras_path
    with pytest.raises(InferenceError, match="keras_trainer_tests>ScaledResidual"):
        CompiledInferenceLayer(backend="keras").load_model(
            path, custom_objects={"DotAttention": DotAttention}
        )


def test_onnx_layer_exposes_exported_metadata(onnx_mlp):
    assert onnx_mlp.metadata["class_names"][4] == "O3_vectorize"
    assert onnx_mlp.input_names == ["features"]
    assert onnx_mlp.output_names == ["probabilities"]


def test_single_row_without_batch_axis_is_a_batch_of_one(exported_models, mlp_layer):
    row = exported_models["jit_mlp"].example[0][0]
    assert mlp_layer.predict(row).prediction.shape == (1, 5)


def test_float64_features_are_cast_to_float32(exported_models, mlp_layer):
    features = exported_models["jit_mlp"].example[0].astype("float64")
    prediction = mlp_layer.predict(features).prediction
    assert prediction.dtype == np.float32
    np.testing.assert_allclose(prediction, exported_models["jit_mlp"].keras_outputs[0], atol=1e-5)


def test_batch_predict_returns_one_result_per_input_in_order(exported_models, mlp_layer):
    rows = exported_models["jit_mlp"].example[0]
    features_list = [rows[i : i + 1] for i in range(len(rows))]
    results = mlp_layer.batch_predict(features_list, batch_size=4)
    assert len(results) == len(rows)
    stacked = np.concatenate([r.prediction for r in results])
    np.testing.assert_allclose(stacked, exported_models["jit_mlp"].keras_outputs[0], atol=1e-5)
    # 9 inputs in batches of 4: three model calls, three latencies.
    assert mlp_layer.get_latency_stats()["count"] == 3
    assert results[0].latency_ms == results[3].latency_ms


def test_latency_stats_come_from_real_timings(exported_models, mlp_layer):
    features = exported_models["jit_mlp"].example[0][:1]
    start = time.perf_counter_ns()
    results = [mlp_layer.predict(features) for _ in range(20)]
    outer_ms = (time.perf_counter_ns() - start) / 1e6
    stats = mlp_layer.get_latency_stats()
    assert set(stats) == STAT_KEYS
    assert stats["count"] == 20
    latencies = np.array([r.latency_ms for r in results])
    assert stats["min_ms"] == pytest.approx(latencies.min())
    assert stats["max_ms"] == pytest.approx(latencies.max())
    assert stats["mean_ms"] == pytest.approx(latencies.mean())
    assert stats["median_ms"] == pytest.approx(np.median(latencies))
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
    assert latencies.sum() <= outer_ms


def test_warm_up_is_not_counted_and_reset_clears_stats(mlp_layer):
    mlp_layer.warm_up(num_iterations=5, batch_size=3)
    assert mlp_layer.get_latency_stats()["count"] == 0
    mlp_layer.predict(np.zeros((1, 12), np.float32))
    assert mlp_layer.get_latency_stats()["count"] == 1
    mlp_layer.reset_stats()
    assert mlp_layer.get_latency_stats() == {key: 0 for key in STAT_KEYS}


def test_warm_up_handles_dynamic_sequence_length_and_int_inputs(exported_models):
    layer = CompiledInferenceLayer().load_model(exported_models["seq2seq_encoder"].onnx_path)
    layer.warm_up(num_iterations=2, batch_size=2)
    assert layer.get_latency_stats()["count"] == 0


# Bad input.


def test_wrong_width_is_a_data_error_naming_shapes(mlp_layer):
    with pytest.raises(DataError, match=r"shape \(2, 11\).*\(batch, 12\)"):
        mlp_layer.predict(np.zeros((2, 11), np.float32))


def test_wrong_dtype_is_a_data_error(mlp_layer):
    with pytest.raises(DataError, match="dtype"):
        mlp_layer.predict(np.full((1, 12), "x"))


def test_float_token_ids_are_a_data_error(exported_models):
    layer = CompiledInferenceLayer().load_model(exported_models["seq2seq_encoder"].onnx_path)
    with pytest.raises(DataError, match="integers"):
        layer.predict(np.zeros((1, 5), np.float32))


def test_nan_is_a_data_error_naming_the_row(mlp_layer):
    features = np.zeros((3, 12), np.float32)
    features[2, 4] = np.nan
    with pytest.raises(DataError, match="NaN.*row 2"):
        mlp_layer.predict(features)


def test_zero_rows_is_a_data_error(mlp_layer):
    with pytest.raises(DataError, match="no rows"):
        mlp_layer.predict(np.zeros((0, 12), np.float32))


def test_bad_item_in_batch_predict_is_a_data_error_naming_its_index(mlp_layer):
    items = [np.zeros((1, 12), np.float32), np.zeros((1, 3), np.float32)]
    with pytest.raises(DataError, match=r"features_list\[1\]"):
        mlp_layer.batch_predict(items, batch_size=2)


def test_missing_input_of_multi_input_model_is_a_data_error(exported_models):
    layer = CompiledInferenceLayer().load_model(exported_models["seq2seq_decoder_step"].onnx_path)
    with pytest.raises(DataError, match="missing"):
        layer.predict({"previous_token": np.zeros((1, 1), np.int32)})


def test_missing_onnx_file_is_an_inference_error(tmp_path):
    with pytest.raises(InferenceError, match="not found"):
        CompiledInferenceLayer().load_model(tmp_path / "absent.onnx")


def test_corrupt_onnx_file_is_an_inference_error(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07garbage that is not a model")
    with pytest.raises(InferenceError, match="corrupt"):
        CompiledInferenceLayer().load_model(path)


def test_wrong_file_kind_for_backend_is_an_inference_error(exported_models):
    with pytest.raises(InferenceError, match=r"\.onnx"):
        CompiledInferenceLayer(backend="onnx").load_model(exported_models["jit_mlp"].keras_path)


def test_predict_before_load_is_an_inference_error():
    with pytest.raises(InferenceError, match="load_model"):
        CompiledInferenceLayer().predict(np.zeros((1, 12), np.float32))


def test_unknown_backend_or_device_is_a_config_error():
    with pytest.raises(ConfigError, match="backend"):
        CompiledInferenceLayer(backend="tensorrt")
    with pytest.raises(ConfigError, match="device"):
        CompiledInferenceLayer(device="tpu")


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_cuda_request_without_cuda_warns_and_falls_back_to_cpu(exported_models, caplog):
    layer = CompiledInferenceLayer(backend="onnx", device="cuda")
    with caplog.at_level(logging.WARNING, logger="keras_trainer.export.inference"):
        layer.load_model(exported_models["jit_mlp"].onnx_path)
    assert layer.active_device == "cpu"
    assert "falling back to CPU" in caplog.text
    assert layer.predict(np.zeros((1, 12), np.float32)).prediction.shape == (1, 5)


def test_config_round_trips():
    layer = CompiledInferenceLayer(backend="keras", device="auto", intra_op_num_threads=2)
    clone = CompiledInferenceLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.backend is InferenceBackend.KERAS


@pytest.mark.parametrize(
    "family",
    [
        "jit_trainer",
        "jit_mlp_h5",
        "tabular_feed_forward",
        "tabular_lstm",
        "tabular_cnn_lstm",
        "seq2seq_encoder",
    ],
)
def test_both_backends_match_keras_for_family(exported_models, family):
    exported = exported_models[family]
    features = exported.example if len(exported.example) > 1 else exported.example[0]
    for backend, path in (("onnx", exported.onnx_path), ("keras", exported.keras_path)):
        prediction = (
            CompiledInferenceLayer(backend=backend).load_model(path).predict(features).prediction
        )
        outputs = list(prediction.values()) if isinstance(prediction, dict) else [prediction]
        for got, expected in zip(outputs, exported.keras_outputs, strict=True):
            assert np.max(np.abs(got - expected)) <= 1e-5, backend
