"""AdaptiveJIT with tiny saved models whose choice is known."""

import json
import zipfile

import keras
import numpy as np
import pytest

from keras_trainer.errors import CheckpointError, DataError, IRParseError, ModelError
from keras_trainer.jit.llvm_ir.features import FeatureExtractor
from keras_trainer.jit.runtime.adaptive import AdaptiveJIT
from keras_trainer.jit.strategies import STRATEGY_NAMES

from .snippets import ONE_LOOP


def save_tiny_model(path, favourite: int, class_names=None, n_features=12):
    """A serving model (Normalization -> Dense softmax) that always prefers `favourite`."""
    inputs = keras.Input(shape=(n_features,))
    x = keras.layers.Normalization(mean=np.zeros(n_features), variance=np.ones(n_features))(inputs)
    dense = keras.layers.Dense(5, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    bias = np.zeros(5, dtype="float32")
    bias[favourite] = 10.0
    dense.set_weights([np.zeros((n_features, 5), dtype="float32"), bias])
    model.save(path)
    metadata = {
        "task": "jit_strategy",
        "class_names": class_names or STRATEGY_NAMES,
        "feature_names": FeatureExtractor().feature_names,
        "feature_config": FeatureExtractor().get_config()["feature_config"],
    }
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("keras_trainer.json", json.dumps(metadata))
    return str(path)


@pytest.fixture(scope="module")
def o2_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("m") / "o2.keras", favourite=2)


def test_compile_uses_the_predicted_strategy(o2_model):
    function = AdaptiveJIT(o2_model).compile(ONE_LOOP, "entry", args=[10])
    assert function.strategy == "O2"
    assert function(1000) == sum(range(1000))
    assert max(function.probabilities, key=function.probabilities.get) == "O2"


def test_o0_choice_reuses_the_probe_build(tmp_path):
    path = save_tiny_model(tmp_path / "o0.keras", favourite=0)
    function = AdaptiveJIT(path).compile(ONE_LOOP, "entry", args=[10])
    assert function.strategy == "O0" and function(10) == 45


def test_features_have_the_models_width(o2_model):
    row, baseline = AdaptiveJIT(o2_model).features(ONE_LOOP, "entry", args=[10])
    assert row.shape == (1, 12) and baseline.strategy == "O0"
    # one loop, as a per-instruction density (features.static_transform="density")
    assert row[0, 2] == pytest.approx(1 / FeatureExtractor().count_static(ONE_LOOP)[0])


def test_missing_probe_arguments_raise_dataerror(o2_model):
    with pytest.raises(DataError, match="takes 1 argument"):
        AdaptiveJIT(o2_model).compile(ONE_LOOP, "entry")


def test_bad_ir_raises_irparseerror(o2_model):
    with pytest.raises(IRParseError):
        AdaptiveJIT(o2_model).compile("define i64 @entry( {", "entry", args=[1])


def test_unknown_class_name_raises_modelerror(tmp_path):
    path = save_tiny_model(tmp_path / "bad.keras", 1, class_names=["O0", "O1", "O2", "O3", "Ofast"])
    with pytest.raises(ModelError, match="'Ofast' is not a strategy"):
        AdaptiveJIT(path)


def test_input_width_mismatch_raises_modelerror(tmp_path):
    path = save_tiny_model(tmp_path / "wide.keras", 1, n_features=10)
    with pytest.raises(ModelError, match="takes 10 features"):
        AdaptiveJIT(path)


def test_missing_model_file_raises_checkpointerror(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        AdaptiveJIT(str(tmp_path / "none.keras"))


def test_production_version_of_a_model_store_is_loaded_by_name(tmp_path, o2_model):
    from keras_trainer.export.store import ModelStore

    store = ModelStore(tmp_path / "store")
    store.add(save_tiny_model(tmp_path / "o3.keras", favourite=3))
    store.add(o2_model)
    store.promote(1)
    store.promote(2)
    production = AdaptiveJIT(f"{tmp_path / 'store'}@production")
    assert production.compile(ONE_LOOP, "entry", args=[10]).strategy == "O2"
    store.rollback()
    rolled_back = AdaptiveJIT(str(tmp_path / "store"))
    assert rolled_back.compile(ONE_LOOP, "entry", args=[10]).strategy == "O3"
