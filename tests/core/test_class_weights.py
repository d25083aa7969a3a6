import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.class_weights import class_sample_weights, class_weight_table
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError

LABELS = np.array([0] * 12 + [1] * 3 + [2])


@pytest.mark.one_backend  # NumPy only
def test_balanced_weights_are_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    expected = compute_class_weight("balanced", classes=np.arange(3), y=LABELS)
    table = class_weight_table(LABELS, "balanced")
    np.testing.assert_allclose([table[c] for c in range(3)], expected)


@pytest.mark.one_backend  # NumPy only
def test_sqrt_weights_are_the_square_roots_averaging_one_per_sample():
    weights = class_sample_weights(np.eye(3)[LABELS], "sqrt")
    assert weights.mean() == pytest.approx(1.0)
    assert weights[-1] / weights[0] == pytest.approx(np.sqrt(12.0))


@pytest.mark.one_backend  # NumPy only
def test_a_mapping_weighs_named_classes_and_leaves_the_others_at_one():
    weights = class_sample_weights(LABELS, {"2": 4.0, 1: 2.0})
    assert sorted(set(weights.tolist())) == [1.0, 2.0, 4.0]
    assert weights[-1] == 4.0 and weights[0] == 1.0


@pytest.mark.one_backend  # NumPy only
def test_regression_targets_with_class_weights_are_a_config_error():
    with pytest.raises(
        ConfigError, match="training.class_weights: class weights need class labels"
    ):
        class_sample_weights(np.array([0.5, 1.7]), "balanced")


def _trained_weights(x, y, sample_weight=None, **training):
    set_seed(3)
    model = build_model(ModelConfig(output_dim=3, hidden_layers=[]), (4,))
    config = {"epochs": 1, "batch_size": 16, "verbose": 0, "shuffle": False}
    config.update(validation_split=0.0, early_stopping_patience=0, optimizer={"name": "sgd"})
    config = TrainingConfig.from_dict({**config, **training})
    fit(model, x, y, config=config, sample_weight=sample_weight)
    return model.get_weights()


def test_fit_weighs_each_row_by_its_class_weight():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[LABELS]
    balanced = _trained_weights(x, y, class_weights="balanced")
    explicit = _trained_weights(x, y, sample_weight=class_sample_weights(y, "balanced"))
    unweighted = _trained_weights(x, y)
    for a, b in zip(balanced, explicit):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(balanced, unweighted)) > 1e-4
