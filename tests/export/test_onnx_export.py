"""export_onnx: parity with Keras for every family under the active backend."""

import json
import os

import export_models
import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from keras_trainer.errors import ExportError
from keras_trainer.export import export_onnx, read_onnx_metadata

FAMILIES = [*export_models.BUILDERS, "jit_trainer", "jit_mlp_h5"]


def _session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _feed(session, arrays):
    return {i.name: a for i, a in zip(session.get_inputs(), arrays)}


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_runtime_matches_keras(exported_models, family):
    exported = exported_models[family]
    session = _session(exported.onnx_path)
    outputs = session.run(None, _feed(session, exported.example))
    assert len(outputs) == len(exported.keras_outputs)
    for onnx_out, keras_out in zip(outputs, exported.keras_outputs):
        assert onnx_out.shape == keras_out.shape
        assert np.max(np.abs(onnx_out - keras_out)) <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_dimension_is_dynamic(exported_models, family):
    exported = exported_models[family]
    session = _session(exported.onnx_path)
    for graph_input in session.get_inputs():
        assert graph_input.shape[0] == "batch"
    for rows in (1, 4):
        arrays = [a[:rows] for a in exported.example]
        outputs = session.run(None, _feed(session, arrays))
        # Rows are independent in inference mode, so Keras' outputs for the
        # first rows are the first rows of its outputs for the whole batch.
        for onnx_out, keras_out in zip(outputs, exported.keras_outputs):
            assert onnx_out.shape[0] == rows
            np.testing.assert_allclose(onnx_out, keras_out[:rows], atol=1e-5, rtol=0)


def test_sequence_length_of_encoder_is_dynamic(exported_models):
    exported = exported_models["seq2seq_encoder"]
    session = _session(exported.onnx_path)
    tokens = np.random.default_rng(1).integers(0, export_models.VOCAB, (3, 11)).astype("int32")
    outputs = session.run(None, {"source_tokens": tokens})
    expected = export_models.keras_outputs(exported.model, [tokens])
    assert outputs[0].shape == (3, 11, 2 * export_models.UNITS)
    for onnx_out, keras_out in zip(outputs, expected):
        np.testing.assert_allclose(onnx_out, keras_out, atol=1e-5, rtol=0)


def test_explicit_input_signature_fixes_the_sequence_length(exported_models):
    exported = exported_models["seq2seq_encoder"]
    path = os.path.join(os.path.dirname(exported.onnx_path), "encoder_fixed_length.onnx")
    session = _session(path)
    assert session.get_inputs()[0].shape == ["batch", 7]
    outputs = session.run(None, {"source_tokens": exported.example[0]})
    np.testing.assert_allclose(outputs[1], exported.keras_outputs[1], atol=1e-5, rtol=0)


def test_decoder_step_keeps_input_and_output_names_in_order(exported_models):
    session = _session(exported_models["seq2seq_decoder_step"].onnx_path)
    assert [i.name for i in session.get_inputs()] == [
        "previous_token",
        "state_h",
        "state_c",
        "encoder_outputs",
    ]
    assert [o.name for o in session.get_outputs()] == ["next_token", "new_state_h", "new_state_c"]


def test_jit_mlp_graph_takes_raw_features_with_normalization_inside(exported_models):
    exported = exported_models["jit_mlp"]
    proto = onnx.load(exported.onnx_path)
    assert [i.name for i in proto.graph.input] == ["features"]
    assert {n.op_type for n in proto.graph.node} >= {"Sub", "MatMul", "Softmax"}


def test_metadata_carries_names_stats_and_versions(exported_models):
    exported = exported_models["jit_mlp"]
    metadata = read_onnx_metadata(exported.onnx_path)
    normalization = exported.model.layers[1]
    assert metadata["feature_names"] == [f"f{i}" for i in range(12)]
    assert metadata["class_names"] == ["O0", "O1", "O2", "O3", "O3_vectorize"]
    assert metadata["task"] == "jit_strategy"
    np.testing.assert_allclose(
        metadata["normalization"]["mean"],
        keras.ops.convert_to_numpy(normalization.mean).reshape(-1),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        metadata["normalization"]["variance"],
        keras.ops.convert_to_numpy(normalization.variance).reshape(-1),
        rtol=1e-6,
    )
    assert metadata["library_version"]
    assert metadata["source_backend"] == keras.backend.backend()
    assert metadata["input_names"] == ["features"]
    assert metadata["output_names"] == ["probabilities"]
    assert metadata["opset"] == 17


def test_metadata_of_trained_jit_model_comes_from_its_keras_file(exported_models):
    exported = exported_models["jit_trainer"]
    metadata = read_onnx_metadata(exported.onnx_path)
    from keras_trainer.core.saving.persistence import read_metadata

    saved = read_metadata(exported.keras_path)
    assert metadata["task"] == "jit_strategy"
    assert metadata["feature_names"] == saved["feature_names"]
    assert len(metadata["feature_names"]) == 12
    assert metadata["class_names"] == saved["class_names"]
    assert metadata["normalization"] == saved["normalization"]
    assert metadata["source_backend"] == keras.backend.backend()
    assert metadata["library_version"] == saved["library_version"]


def test_metadata_props_are_plain_onnx_strings(exported_models):
    proto = onnx.load(exported_models["jit_mlp"].onnx_path)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"])[0] == "O0"


def test_export_leaves_no_temporary_files(exported_models):
    directory = os.path.dirname(exported_models["jit_mlp"].onnx_path)
    assert not [name for name in os.listdir(directory) if ".tmp" in name]


def test_failed_conversion_is_an_export_error_and_spares_the_others(exported_models):
    message = exported_models["failed_export_error"]
    assert "corrupt.keras" in message
    assert not os.path.exists(
        os.path.join(os.path.dirname(exported_models["jit_mlp"].onnx_path), "bad.onnx")
    )
    for family in FAMILIES:
        assert os.path.isfile(exported_models[family].onnx_path)


def test_missing_model_file_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        export_onnx(tmp_path / "absent.keras", tmp_path / "out.onnx")


def test_unsupported_model_file_suffix_is_an_export_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x00")
    with pytest.raises(ExportError, match=r"\.keras"):
        export_onnx(path, tmp_path / "out.onnx")


def test_missing_output_directory_is_an_export_error(exported_models, tmp_path):
    with pytest.raises(ExportError, match="directory"):
        export_onnx(exported_models["jit_mlp"].keras_path, tmp_path / "no" / "out.onnx")


def test_metadata_that_is_not_json_is_an_export_error(exported_models, tmp_path):
    with pytest.raises(ExportError, match="JSON"):
        export_onnx(
            exported_models["jit_mlp"].keras_path, tmp_path / "out.onnx", metadata={"x": object()}
        )


def test_object_that_is_not_a_model_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="Keras model"):
        export_onnx(np.zeros(3), tmp_path / "out.onnx")


def test_bad_input_signature_is_an_export_error(exported_models, tmp_path):
    with pytest.raises(ExportError, match=r"input_signature\[0\]"):
        export_onnx(
            exported_models["jit_mlp"].keras_path, tmp_path / "out.onnx", input_signature=["x"]
        )


def test_unreadable_model_file_is_an_export_error_before_conversion(tmp_path):
    path = tmp_path / "garbage.keras"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ExportError, match="garbage.keras"):
        export_onnx(path, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
