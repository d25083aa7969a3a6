"""Shared fixtures of the export tests.

Building every model family under the active backend and converting them all
in ONE TensorFlow subprocess (`export_onnx_many`) keeps these tests fast:
starting TensorFlow and tf2onnx costs seconds per subprocess.
"""

import concurrent.futures
import dataclasses
import os
import zipfile

import export_models
import keras
import numpy as np
import pytest

from keras_trainer.errors import ExportError
from keras_trainer.export import ExportRequest, export_onnx_many
from keras_trainer.tabular import ModelFactory

# Models passed as objects (their custom-layer modules are found from the
# layers); the others are saved to `.keras` first and exported from the path.
_EXPORT_AS_OBJECT = {"jit_mlp", "seq2seq_decoder_step"}


@dataclasses.dataclass
class ExportedModel:
    name: str
    model: keras.Model
    example: list
    keras_outputs: list
    keras_path: str
    onnx_path: str


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory):
    """Every family built (seeded) under the active backend and exported to ONNX."""
    keras.utils.set_random_seed(7)
    directory = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(7)
    built, requests = {}, []
    for name, builder in export_models.BUILDERS.items():
        model, example = builder(rng)
        keras_path = os.path.join(directory, f"{name}.keras")
        model.save(keras_path)
        onnx_path = os.path.join(directory, f"{name}.onnx")
        metadata = None
        if name == "jit_mlp":
            metadata = {
                "task": "jit_strategy",
                "feature_names": [f"f{i}" for i in range(12)],
                "class_names": ["O0", "O1", "O2", "O3", "O3_vectorize"],
            }
        source = model if name in _EXPORT_AS_OBJECT else keras_path
        if name == "factory_feed_forward":
            requests.append(ModelFactory().onnx_request(model, (1, 6), onnx_path))
        else:
            requests.append(ExportRequest(source, onnx_path, metadata=metadata))
        built[name] = ExportedModel(name, model, example, None, keras_path, onnx_path)
    # The library's own JIT model, trained and saved with metadata by core.
    keras_path = os.path.join(directory, "jit_trainer.keras")
    model, example = export_models.trained_jit_strategy_model(rng, keras_path)
    onnx_path = os.path.join(directory, "jit_trainer.onnx")
    requests.append(ExportRequest(keras_path, onnx_path))
    built["jit_trainer"] = ExportedModel("jit_trainer", model, example, None, keras_path, onnx_path)
    # The same MLP from a legacy .h5 file.
    h5_path = os.path.join(directory, "jit_mlp.h5")
    built["jit_mlp"].model.save(h5_path)
    requests.append(ExportRequest(h5_path, os.path.join(directory, "jit_mlp_h5.onnx")))
    built["jit_mlp_h5"] = ExportedModel(
        "jit_mlp_h5",
        built["jit_mlp"].model,
        built["jit_mlp"].example,
        None,
        h5_path,
        os.path.join(directory, "jit_mlp_h5.onnx"),
    )
    # The encoder with an explicit signature: sequences of exactly 7 tokens.
    requests.append(
        ExportRequest(
            built["seq2seq_encoder"].keras_path,
            os.path.join(directory, "encoder_fixed_length.onnx"),
            input_signature=[("source_tokens", (None, 7), "int32")],
        )
    )
    # Int8 models through export_onnx_many itself: dynamic for the MLP, static
    # for the trained JIT model, calibrated on rows like its training data.
    calibration = (rng.normal(size=(128, 12)) * 3 + 2).astype("float32")
    for name, mode, data in (("jit_mlp", "dynamic", None), ("jit_trainer", "static", calibration)):
        requests.append(
            ExportRequest(
                built[name].keras_path,
                os.path.join(directory, f"{name}_{mode}.onnx"),
                quantize=mode,
                calibration_data=data,
            )
        )
    # A request that must fail in the worker (a .keras zip whose config names
    # an unknown class); the others must be written regardless.
    corrupt = os.path.join(directory, "corrupt.keras")
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        archive.writestr("config.json", '{"class_name": "NoSuchModel", "config": {}}')
    requests.insert(1, ExportRequest(corrupt, os.path.join(directory, "bad.onnx")))
    # The conversion subprocess runs while this process computes the Keras
    # reference outputs (the thread mostly waits on the subprocess).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        export = pool.submit(export_onnx_many, requests)
        for exported in built.values():
            exported.keras_outputs = export_models.keras_outputs(exported.model, exported.example)
        with pytest.raises(ExportError) as failure:
            export.result()
    built["failed_export_error"] = str(failure.value)
    return built
