"""Ensembles: several trained models of a family saved and served as one."""

import keras
import numpy as np
import pytest

from keras_trainer.core.evaluating.ensemble import EnsembleAverage, build_ensemble, save_ensemble
from keras_trainer.core.saving.persistence import load_model, save_model
from keras_trainer.errors import ModelError

CLASSES = ["O0", "O1", "O2", "O3", "O3-scalar"]


def classifier(seed, width=12, classes=5):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((width,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(hidden)
    return keras.Model(inputs, outputs, name="jit_strategy_model")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    directory = tmp_path_factory.mktemp("members")
    models, paths = [], []
    for seed in range(3):
        model = classifier(seed)
        metadata = {
            "task": "jit_strategy",
            "class_names": CLASSES,
            "feature_names": [f"f{i}" for i in range(12)],
        }
        paths.append(save_model(model, directory / f"member_{seed}.keras", metadata))
        models.append(model)
    return models, paths


def test_ensemble_file_round_trips_and_averages_probabilities(members, tmp_path):
    models, paths = members
    path = save_ensemble(paths, tmp_path / "ensemble.keras", member_weights=[1, 2, 1])
    loaded, metadata = load_model(path)  # safe_mode=True, registered EnsembleAverage
    x = np.random.default_rng(0).normal(size=(6, 12)).astype("float32")
    outputs = [np.asarray(keras.ops.convert_to_numpy(m(x))) for m in models]
    expected = (outputs[0] + 2 * outputs[1] + outputs[2]) / 4
    got = np.asarray(keras.ops.convert_to_numpy(loaded(x)))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    assert metadata["class_names"] == CLASSES and metadata["task"] == "jit_strategy"
    assert metadata["ensemble"]["members"] == 3 and metadata["ensemble"]["member_weights"] == [
        1,
        2,
        1,
    ]
    assert loaded.output_names == ["probabilities"] and loaded.inputs[0].name == "features"


def test_members_with_other_inputs_or_outputs_are_refused():
    with pytest.raises(ModelError, match=r"member 1 takes inputs"):
        build_ensemble([classifier(0), classifier(1, width=7)])
    with pytest.raises(ModelError, match=r"member 1 has outputs of shapes \[\(3,\)\]"):
        build_ensemble([classifier(0), classifier(1, classes=3)])
    with pytest.raises(ModelError, match="at least two members"):
        build_ensemble([classifier(0)])
    model = classifier(0)
    with pytest.raises(ModelError, match="given twice"):
        build_ensemble([model, model])


def test_members_with_different_class_names_are_refused(members, tmp_path):
    _, paths = members
    other = save_model(classifier(9), tmp_path / "other.keras", {"class_names": list("abcde")})
    with pytest.raises(ModelError, match=r"member 1 \(other.keras\) has class_names"):
        save_ensemble([paths[0], other], tmp_path / "bad.keras")
    assert not (tmp_path / "bad.keras").exists()


def test_average_layer_weights_are_validated_and_serialized():
    layer = EnsembleAverage([3.0, 1.0])
    assert EnsembleAverage.from_config(layer.get_config()).member_weights == [3.0, 1.0]
    result = layer([keras.ops.ones((1, 2)), keras.ops.zeros((1, 2))])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(result), 0.75)
    with pytest.raises(ModelError, match="non-negative"):
        EnsembleAverage([-1.0, 2.0])


@pytest.mark.parametrize(
    "weights, message",
    [
        ([float("nan"), 1], "member_weights must be finite"),
        ([float("inf"), 1], "member_weights must be finite"),
        (["1", 1], "member_weights must be numbers, got '1'"),
        ([True, 1], "member_weights must be numbers, got True"),
    ],
)
def test_member_weights_that_are_not_finite_numbers_are_model_errors(weights, message):
    with pytest.raises(ModelError, match=message):
        EnsembleAverage(member_weights=weights)
