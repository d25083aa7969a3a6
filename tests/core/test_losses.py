"""Tests of keras_trainer.core.building.losses against numpy reference formulas."""

import os

import keras
import numpy as np
import pytest

from keras_trainer.config.schema import TrainingConfig
from keras_trainer.core.building.losses import (
    FocalLoss,
    WeightedMultiTaskLoss,
    available_losses,
    get_loss,
    register_loss,
)
from keras_trainer.errors import ConfigError, DataError

RNG = np.random.default_rng(0)
N, K = 16, 4
Y_IDX = RNG.integers(0, K, size=N)
Y_ONEHOT = np.eye(K, dtype="float32")[Y_IDX]
LOGITS = RNG.normal(size=(N, K)).astype("float32")
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)).astype("float32")
REG_TRUE = RNG.normal(size=(N, 3)).astype("float32")
REG_PRED = (REG_TRUE + RNG.normal(scale=2.0, size=(N, 3))).astype("float32")


def value(loss, y_true, y_pred):
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def smooth(onehot, eps):
    return onehot * (1.0 - eps) + eps / onehot.shape[-1]


def test_categorical_crossentropy_with_label_smoothing_matches_numpy():
    loss = get_loss("categorical_crossentropy", TrainingConfig(label_smoothing=0.1))
    expected = np.mean(-np.sum(smooth(Y_ONEHOT, 0.1) * np.log(PROBS), axis=1))
    assert value(loss, Y_ONEHOT, PROBS) == pytest.approx(expected, rel=1e-5)


def test_categorical_crossentropy_from_logits_matches_probabilities():
    loss = get_loss("categorical_crossentropy", from_logits=True)
    expected = np.mean(-np.sum(Y_ONEHOT * np.log(PROBS), axis=1))
    assert value(loss, Y_ONEHOT, LOGITS) == pytest.approx(expected, rel=1e-5)


def test_sparse_categorical_crossentropy_matches_numpy():
    loss = get_loss("sparse_categorical_crossentropy")
    expected = np.mean(-np.log(PROBS[np.arange(N), Y_IDX]))
    assert value(loss, Y_IDX, PROBS) == pytest.approx(expected, rel=1e-5)


def test_binary_crossentropy_with_label_smoothing_matches_numpy():
    p = RNG.uniform(0.05, 0.95, size=(N, 1)).astype("float32")
    y = RNG.integers(0, 2, size=(N, 1)).astype("float32")
    loss = get_loss("binary_crossentropy", TrainingConfig(label_smoothing=0.2))
    ys = y * 0.8 + 0.1
    expected = np.mean(-(ys * np.log(p) + (1 - ys) * np.log(1 - p)))
    assert value(loss, y, p) == pytest.approx(expected, rel=1e-5)


def test_focal_loss_matches_numpy_formula():
    loss = get_loss("focal", TrainingConfig(focal_gamma=2.0, label_smoothing=0.05))
    y = smooth(Y_ONEHOT, 0.05)
    expected = np.mean(np.sum(-y * (1 - PROBS) ** 2.0 * np.log(PROBS), axis=1))
    assert value(loss, Y_ONEHOT, PROBS) == pytest.approx(expected, rel=1e-5)


def test_focal_loss_has_configured_gamma_and_unit_alpha():
    loss = get_loss("focal", TrainingConfig(focal_gamma=1.5))
    assert isinstance(loss, FocalLoss)
    assert (loss.gamma, loss.alpha) == (1.5, 1.0)


def test_focal_loss_with_gamma_zero_equals_cross_entropy():
    focal = get_loss("focal", TrainingConfig(focal_gamma=0.0))
    cce = get_loss("categorical_crossentropy")
    assert value(focal, Y_ONEHOT, PROBS) == pytest.approx(value(cce, Y_ONEHOT, PROBS), rel=1e-6)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("mse", lambda e: np.mean(e**2)),
        ("mae", lambda e: np.mean(np.abs(e))),
        ("l1", lambda e: np.mean(np.abs(e))),
    ],
)
def test_regression_losses_match_numpy(name, reference):
    expected = reference(REG_PRED - REG_TRUE)
    assert value(get_loss(name), REG_TRUE, REG_PRED) == pytest.approx(expected, rel=1e-5)


def test_huber_uses_configured_delta():
    delta = 0.7
    e = np.abs(REG_PRED - REG_TRUE)
    expected = np.mean(np.where(e <= delta, 0.5 * e**2, delta * e - 0.5 * delta**2))
    loss = get_loss("huber", TrainingConfig(huber_delta=delta))
    assert value(loss, REG_TRUE, REG_PRED) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("base", ["mse", "mae", "huber"])
def test_weighted_multitask_loss_is_weighted_sum_of_per_output_losses(base):
    weights = [1.0, 0.5, 2.0]
    e = REG_PRED - REG_TRUE
    per_output = {
        "mse": np.mean(e**2, axis=0),
        "mae": np.mean(np.abs(e), axis=0),
        "huber": np.mean(np.where(np.abs(e) <= 1.0, 0.5 * e**2, np.abs(e) - 0.5), axis=0),
    }[base]
    loss = get_loss(f"weighted_{base}", TrainingConfig(loss_weights=weights))
    assert isinstance(loss, WeightedMultiTaskLoss)
    assert value(loss, REG_TRUE, REG_PRED) == pytest.approx(np.dot(weights, per_output), rel=1e-5)


def test_weighted_multitask_loss_round_trips_through_config():
    loss = WeightedMultiTaskLoss(base="huber", weights=[0.3, 0.7], delta=2.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, WeightedMultiTaskLoss)
    assert (restored.base, restored.weights, restored.delta) == ("huber", [0.3, 0.7], 2.0)


def test_weighted_multitask_loss_rejects_wrong_number_of_outputs():
    loss = WeightedMultiTaskLoss(weights=[1.0, 1.0])
    with pytest.raises(DataError, match="3 output columns"):
        loss(REG_TRUE, REG_PRED)


def test_weighted_loss_without_loss_weights_is_a_config_error():
    with pytest.raises(ConfigError, match="training.loss_weights"):
        get_loss("weighted_mse")


def test_weighted_multitask_loss_rejects_unknown_base():
    with pytest.raises(ConfigError, match="unknown 'hinge'"):
        WeightedMultiTaskLoss(base="hinge", weights=[1.0])


def test_unknown_loss_name_lists_valid_names_and_closest():
    with pytest.raises(ConfigError) as info:
        get_loss("categorical_crossentropyy")
    message = str(info.value)
    assert "Did you mean 'categorical_crossentropy'" in message
    for name in ("focal", "huber", "weighted_mse"):
        assert name in message


def test_builtin_names_are_case_insensitive():
    assert isinstance(get_loss("MSE"), keras.losses.MeanSquaredError)


def test_label_smoothing_with_loss_that_ignores_it_is_a_config_error():
    with pytest.raises(ConfigError, match="training.label_smoothing"):
        get_loss("mse", TrainingConfig(label_smoothing=0.1))


def test_loss_weights_with_an_unweighted_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="training.loss_weights: .*no effect on loss 'mse'"):
        get_loss("mse", TrainingConfig(loss_weights=[1.0, 2.0]))


def test_loss_objects_pass_through():
    loss = keras.losses.Huber()
    assert get_loss(loss) is loss


@pytest.mark.parametrize("name", ["mse", "Focal"])
def test_register_loss_rejects_builtin_name(name):
    with pytest.raises(ConfigError, match="built-in"):
        register_loss(name)


def test_register_loss_rejects_lambdas():
    with pytest.raises(ConfigError, match="lambda"):
        register_loss("test_lambda_loss")(lambda y_true, y_pred: y_pred)


def test_register_loss_rejects_names_of_library_objects():
    with pytest.raises(ConfigError, match="already a registered keras_trainer object"):
        register_loss("WeightedMultiTaskLoss")(lambda y_true, y_pred: y_pred)
    assert keras.saving.get_registered_object("keras_trainer>WeightedMultiTaskLoss") is (
        WeightedMultiTaskLoss
    )


def test_register_loss_rejects_non_loss_class():
    with pytest.raises(ConfigError, match="keras.losses.Loss"):
        register_loss("not_a_loss")(dict)


@register_loss("test_double_mse")
def double_mse(y_true, y_pred):
    return 2.0 * keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)


@register_loss("test_scaled_mae")
class ScaledMAE(keras.losses.Loss):
    def __init__(self, scale=3.0, name="scaled_mae", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def test_registered_losses_are_available_by_name():
    assert get_loss("test_double_mse") is double_mse
    assert isinstance(get_loss("test_scaled_mae"), ScaledMAE)
    assert {"test_double_mse", "test_scaled_mae"} <= set(available_losses())
    e = REG_PRED - REG_TRUE
    assert value(get_loss("test_scaled_mae"), REG_TRUE, REG_PRED) == pytest.approx(
        3.0 * np.mean(np.abs(e)), rel=1e-5
    )


def _tiny_model():
    inputs = keras.Input(shape=(3,))
    # A seeded initializer rather than keras.utils.set_random_seed, which imports TensorFlow.
    dense = keras.layers.Dense(
        3, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed=0)
    )
    return keras.Model(inputs, dense(inputs))


@pytest.mark.parametrize(
    "loss_name", ["test_double_mse", "test_scaled_mae", "weighted_mae", "focal"]
)
def test_model_compiled_with_registered_loss_survives_save_and_safe_load(tmp_path, loss_name):
    model = _tiny_model()
    weights = [1.0, 2.0, 0.5] if loss_name.startswith("weighted_") else None
    loss = get_loss(loss_name, TrainingConfig(loss_weights=weights))
    targets = np.eye(3, dtype="float32")[Y_IDX % 3] if loss_name == "focal" else REG_PRED
    model.compile(optimizer="sgd", loss=loss)
    expected = model.evaluate(REG_TRUE, targets, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.evaluate(REG_TRUE, targets, verbose=0) == pytest.approx(expected, rel=1e-6)
    restored_loss = restored.loss
    if loss_name == "test_double_mse":
        assert restored_loss is double_mse
    else:
        assert type(restored_loss) is type(loss)
        assert restored_loss.get_config() == loss.get_config()


def test_registered_loss_survives_keras_trainer_persistence(tmp_path):
    from keras_trainer.core.saving import persistence

    model = _tiny_model()
    model.compile(optimizer="sgd", loss=get_loss("test_scaled_mae"))
    expected = model.evaluate(REG_TRUE, REG_PRED, verbose=0)
    path = persistence.save_model(model, os.path.join(tmp_path, "model.keras"), metadata={"k": 1})
    restored, metadata = persistence.load_model(path, compile=True)
    assert metadata["k"] == 1
    assert isinstance(restored.loss, ScaledMAE)
    assert restored.evaluate(REG_TRUE, REG_PRED, verbose=0) == pytest.approx(expected, rel=1e-6)


def test_training_config_may_be_given_as_a_dict():
    loss = get_loss("huber", {"huber_delta": 0.25})
    assert isinstance(loss, keras.losses.Huber)
    assert value(loss, [[0.0]], [[1.0]]) == pytest.approx(0.25 * 1.0 - 0.5 * 0.25**2)
    with pytest.raises(ConfigError, match="training.huber_delta"):
        get_loss("huber", {"huber_delta": -1.0})


@pytest.mark.parametrize(
    "loss_name, targets",
    [
        ("focal", np.eye(3, dtype="float32")[Y_IDX % 3]),
        ("weighted_huber", REG_PRED),
        ("test_double_mse", REG_PRED),
    ],
)
def test_losses_train_a_model(loss_name, targets):
    model = _tiny_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=get_loss(
            loss_name,
            TrainingConfig(
                loss_weights=[1.0, 1.0, 1.0] if loss_name.startswith("weighted_") else None
            ),
        ),
    )
    history = model.fit(REG_TRUE, targets, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0]


def test_fit_selects_the_configured_loss_by_name():
    from keras_trainer.core.training.fit import fit

    model = _tiny_model()
    config = TrainingConfig(
        epochs=2,
        batch_size=8,
        verbose=0,
        loss="test_scaled_mae",
        metrics=[],
        validation_split=0.0,
        early_stopping_patience=0,
    )
    history = fit(model, REG_TRUE, REG_PRED, config=config)
    assert isinstance(model.loss, ScaledMAE)
    assert len(history.history["loss"]) == 2


def test_expected_slowdown_loss_matches_a_hand_computed_example():
    # Speeds t_min / t_k: times (1, 2, 4) -> (1, 0.5, 0.25); times (3, 3, 1) -> (1/3, 1/3, 1).
    speeds = np.array([[1.0, 0.5, 0.25], [1 / 3, 1 / 3, 1.0]], dtype="float32")
    probs = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], dtype="float32")
    # Expected slowdowns: 0.5*1 + 0.25*2 + 0.25*4 = 2.0 and 0.2*3 + 0.2*3 + 0.6*1 = 1.8.
    loss = get_loss("expected_slowdown")
    assert value(loss, speeds, probs) == pytest.approx(1.9, rel=1e-5)
    # Mixed with cross-entropy against the cheapest tied label (class 0, then class 2).
    mixed = get_loss("expected_slowdown", TrainingConfig(cross_entropy_weight=0.5))
    ce = -(np.log(0.5) + np.log(0.6)) / 2
    assert value(mixed, speeds, probs) == pytest.approx(1.9 + 0.5 * ce, rel=1e-5)


def test_expected_slowdown_tie_rule_picks_the_first_alternative_within_tolerance():
    from keras_trainer.core.building.losses import ExpectedSlowdownLoss

    speeds = np.array([[0.98, 1.0]], dtype="float32")  # class 0 is 2 % slower: a tie at 3 %
    probs = np.array([[0.25, 0.75]], dtype="float32")
    loss = ExpectedSlowdownLoss(cross_entropy_weight=1.0, tie_tolerance=0.03)
    assert value(loss, speeds, probs) == pytest.approx(0.25 / 0.98 + 0.75 - np.log(0.25), rel=1e-5)
    strict = ExpectedSlowdownLoss(cross_entropy_weight=1.0, tie_tolerance=0.0)
    assert value(strict, speeds, probs) == pytest.approx(
        0.25 / 0.98 + 0.75 - np.log(0.75), rel=1e-5
    )


def test_expected_slowdown_loss_round_trips_through_keras_serialization():
    from keras_trainer.core.building.losses import ExpectedSlowdownLoss

    loss = ExpectedSlowdownLoss(cross_entropy_weight=0.2, tie_tolerance=0.05)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, ExpectedSlowdownLoss)
    assert (restored.cross_entropy_weight, restored.tie_tolerance) == (0.2, 0.05)
    with pytest.raises(ConfigError, match="cross_entropy_weight"):
        ExpectedSlowdownLoss(cross_entropy_weight=-1)
