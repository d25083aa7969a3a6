"""InferenceBackend.TORCH: `torch.export` programs served under any KERAS_BACKEND."""

import os
import sys
import zipfile

import numpy as np
import pytest

from keras_trainer.errors import BackendNotSupportedError, ExportError, InferenceError
from keras_trainer.export import (
    CompiledInferenceLayer,
    ExportRequest,
    InferenceBackend,
    export_torch,
    export_torch_many,
    load_torch_program,
)

pytest.importorskip("torch")

from tests.conftest import BACKEND  # noqa: E402

SERVED = [
    "jit_mlp",
    "jit_trainer",
    "tabular_feed_forward",
    "tabular_lstm",
    "tabular_cnn_lstm",
    "seq2seq_decoder_step",
    "jit_ensemble",
]


@pytest.fixture(scope="module")
def torch_programs(exported_models, tmp_path_factory):
    """Every family exported to `.pt2` in one torch-backend process."""
    directory = tmp_path_factory.mktemp("torch")
    paths = {name: str(directory / f"{name}.pt2") for name in SERVED}
    requests = [
        ExportRequest(
            exported_models[name].model
            if name == "seq2seq_decoder_step"
            else exported_models[name].keras_path,
            paths[name],
        )
        for name in SERVED
    ]
    paths["encoder_fixed_length"] = str(directory / "encoder_fixed_length.pt2")
    requests.append(
        ExportRequest(
            exported_models["seq2seq_encoder"].keras_path,
            paths["encoder_fixed_length"],
            input_signature=[("source_tokens", (None, 7), "int32")],
        )
    )
    export_torch_many(requests)
    return paths


def _outputs(prediction):
    return list(prediction.values()) if isinstance(prediction, dict) else [prediction]


@pytest.mark.parametrize("name", SERVED)
def test_torch_backend_matches_keras_within_1e_5(exported_models, torch_programs, name):
    exported = exported_models[name]
    layer = CompiledInferenceLayer(backend=InferenceBackend.TORCH).load_model(torch_programs[name])
    example = exported.example
    features = (
        dict(zip(layer.input_names, example, strict=True)) if len(example) > 1 else example[0]
    )
    result = layer.predict(features)
    assert result.backend is InferenceBackend.TORCH
    for got, expected in zip(_outputs(result.prediction), exported.keras_outputs, strict=True):
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= 1e-5


def test_fixed_length_signature_serves_a_recurrent_encoder(exported_models, torch_programs):
    exported = exported_models["seq2seq_encoder"]
    layer = CompiledInferenceLayer("torch").load_model(torch_programs["encoder_fixed_length"])
    prediction = layer.predict(exported.example[0]).prediction
    for got, expected in zip(_outputs(prediction), exported.keras_outputs, strict=True):
        assert np.max(np.abs(got - expected)) <= 1e-5


@pytest.mark.skipif(
    BACKEND != "torch",
    reason="the capture runs in-process only under torch; elsewhere "
    "it is the same code in a subprocess (kept out to save CI minutes)",
)
def test_dynamic_sequence_length_that_cannot_be_captured_says_what_to_pass(
    exported_models, tmp_path
):
    with pytest.raises(
        ExportError, match=r"'source_tokens\[1\]'.*pass input_signature with fixed sizes"
    ):
        export_torch(exported_models["seq2seq_encoder"].keras_path, tmp_path / "encoder.pt2")
    assert not os.path.exists(tmp_path / "encoder.pt2")


def test_batch_predict_latency_stats_and_metadata(exported_models, torch_programs):
    exported = exported_models["jit_trainer"]
    layer = CompiledInferenceLayer("torch").load_model(torch_programs["jit_trainer"])
    layer.warm_up(num_iterations=3, batch_size=4)
    rows = list(exported.example[0])
    results = layer.batch_predict(rows, batch_size=4)
    assert len(results) == len(rows)
    stacked = np.concatenate([r.prediction for r in results])
    assert np.max(np.abs(stacked - exported.keras_outputs[0])) <= 1e-5
    stats = layer.get_latency_stats()
    assert stats["count"] == 3 and stats["p95_ms"] >= stats["median_ms"] > 0
    assert layer.metadata["task"] == "jit_strategy" and len(layer.metadata["class_names"]) == 5
    assert layer.metadata["normalization"]["mean"]


def test_keras_file_is_exported_on_load(exported_models):
    exported = exported_models["jit_mlp"]
    layer = CompiledInferenceLayer("torch").load_model(exported.keras_path)
    assert (
        np.max(np.abs(layer.predict(exported.example[0]).prediction - exported.keras_outputs[0]))
        <= 1e-5
    )


def test_torch_program_checks_inputs_like_every_backend(torch_programs):
    from keras_trainer.errors import DataError

    layer = CompiledInferenceLayer("torch").load_model(torch_programs["jit_mlp"])
    with pytest.raises(DataError, match="expects"):
        layer.predict(np.zeros((2, 7), "float32"))
    with pytest.raises(DataError, match="NaN"):
        layer.predict(np.full((1, 12), np.nan, "float32"))


def test_program_with_pickled_objects_is_refused(torch_programs, tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    crafted = tmp_path / "crafted.pt2"
    with (
        zipfile.ZipFile(torch_programs["jit_mlp"]) as source,
        zipfile.ZipFile(crafted, "w") as target,
    ):
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("sample_inputs/model.pt"):
                data = pickle.dumps(Payload(), protocol=2)
            target.writestr(item, data)
    with pytest.raises(InferenceError, match="pickled objects other than tensors"):
        load_torch_program(crafted)


def test_missing_torch_is_a_clear_library_error(monkeypatch, torch_programs):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendNotSupportedError, match=r"needs PyTorch.*keras-trainer\[torch\]"):
        CompiledInferenceLayer("torch").load_model(torch_programs["jit_mlp"])
