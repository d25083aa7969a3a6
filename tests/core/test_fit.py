import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.recording.history import TrainingHistory
from keras_trainer.core.training import precision
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import BackendNotSupportedError, ConfigError, DataError
from tests.conftest import BACKEND, BatchCounter


def _config(**overrides):
    data = {"epochs": 3, "verbose": 0, "early_stopping_patience": 0}
    data.update(overrides)
    return TrainingConfig.from_dict(data)


def _data(rng, n=160):
    x = rng.normal(size=(n, 12)).astype("float32")
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)
    return x, np.eye(5, dtype="float32")[labels]


def _model(seed=42, **model):
    set_seed(seed)
    model.setdefault("output_dim", 5)
    return build_model(ModelConfig(**model), (12,))


def test_returns_a_history_with_losses_learning_rates_and_times(rng):
    x, y = _data(rng)
    history = fit(_model(), x, y, config=_config())
    assert isinstance(history, TrainingHistory)
    assert history.epochs == [0, 1, 2]
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 3
    assert len(history.learning_rates) == len(history.epoch_times) == 3
    assert history.best_epoch is not None and history.monitor == "val_loss"


def test_same_seed_gives_identical_weights(rng):
    x, y = _data(rng)
    first = _model()
    fit(first, x, y, config=_config(optimizer={"name": "sgd", "momentum": 0.9}))
    second = _model()
    fit(second, x, y, config=_config(optimizer={"name": "sgd", "momentum": 0.9}))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_stops_and_restores_the_best_weights(rng):
    x, y = _data(rng)
    noisy_y = np.eye(5, dtype="float32")[rng.integers(0, 5, len(x))]
    model = _model()
    history = fit(
        model, x, noisy_y, config=_config(epochs=60, early_stopping_patience=2, learning_rate=0.05)
    )
    assert history.stopped_early and len(history.epochs) < 60
    x_val, y_val = x[-32:], noisy_y[-32:]
    val_loss = model.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(history.best_value, rel=1e-4)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_each_optimizer_trains(rng, name):
    x, y = _data(rng)
    model = _model()
    history = fit(model, x, y, config=_config(optimizer={"name": name}, learning_rate=0.01))
    assert type(model.optimizer).__name__.lower() == name
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "schedule, check",
    [
        ({"name": "cosine"}, lambda lr: lr[0] > lr[1] > lr[2]),
        (
            {"name": "exponential", "decay_steps": 2, "decay_rate": 0.5},
            lambda lr: lr[0] > lr[1] > lr[2],
        ),
        ({"name": "step", "decay_steps": 10, "decay_rate": 0.5}, lambda lr: lr[0] > lr[1] == lr[2]),
        ({"name": "warmup_cosine", "warmup_steps": 10}, lambda lr: lr[0] < lr[1] and lr[1] > lr[2]),
    ],
)
def test_step_schedules_change_the_learning_rate(rng, schedule, check):
    x, y = _data(rng, n=200)  # 160 training rows: 5 steps per epoch
    history = fit(
        _model(), x, y, config=_config(lr_schedule=schedule, learning_rate=1e-3, batch_size=32)
    )
    assert check(history.learning_rates), history.learning_rates


def test_reduce_on_plateau_lowers_the_learning_rate(rng):
    x, y = _data(rng)
    noisy_y = np.eye(5, dtype="float32")[rng.integers(0, 5, len(x))]
    history = fit(
        _model(),
        x,
        noisy_y,
        config=_config(
            epochs=8,
            learning_rate=0.05,
            lr_schedule={"name": "reduce_on_plateau", "patience": 1, "factor": 0.5},
        ),
    )
    assert min(history.learning_rates) < 0.05


def test_gradient_clip_norm_bounds_each_update(rng):
    x, y = _data(rng, n=40)
    model = _model()
    before = [np.array(w) for w in model.trainable_weights]
    config = _config(
        epochs=1,
        batch_size=32,
        validation_split=0.2,
        learning_rate=1.0,
        optimizer={"name": "sgd"},
        gradient_clip_norm=0.01,
        shuffle=False,
    )
    fit(model, x, y, config=config)
    for old, new in zip(before, model.trainable_weights):
        assert np.linalg.norm(np.asarray(new) - old) <= 0.01 + 1e-6


def test_gradient_accumulation_matches_one_big_batch(rng):
    x, y = _data(rng, n=64)
    common = dict(
        epochs=1, validation_split=0.0, optimizer={"name": "sgd"}, learning_rate=0.1, shuffle=False
    )
    accumulated = _model()
    fit(accumulated, x, y, config=_config(batch_size=16, gradient_accumulation_steps=4, **common))
    big_batch = _model()
    fit(big_batch, x, y, config=_config(batch_size=64, **common))
    for a, b in zip(accumulated.get_weights(), big_batch.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("mode", ["float16", "bfloat16"])
def test_mixed_precision_builds_and_trains(rng, mode):
    x, y = _data(rng)
    set_seed(1)
    model = build_model(ModelConfig(output_dim=5), (12,), precision.policy_name(mode))
    history = fit(model, x, y, config=_config(mixed_precision=mode))
    assert np.isfinite(history.history["loss"]).all()
    assert model.output.dtype == "float32"
    if mode == "float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_a_registered_builder_that_sets_no_dtype_builds_in_the_scoped_policy(rng):
    from keras_trainer.core.building.models import register_model_builder

    @register_model_builder("test_builder_without_dtype")
    def build(config, input_shape, dtype_policy):
        inputs = keras.Input(input_shape)
        hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
        return keras.Model(
            inputs, keras.layers.Dense(config.output_dim, activation="softmax")(hidden)
        )

    with precision.policy_scope("bfloat16"):
        model = build_model(ModelConfig(type="test_builder_without_dtype", output_dim=5), (12,))
    assert keras.config.dtype_policy().name == "float32"  # the scope leaves it as it was
    assert model.get_layer("hidden").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"  # cast for the loss
    x, y = _data(rng, n=32)
    history = fit(model, x, y, config=_config(mixed_precision="bfloat16", epochs=1))
    assert np.isfinite(history.history["loss"]).all()
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_mixed_precision_with_a_float32_model_is_a_config_error(rng):
    x, y = _data(rng)
    with pytest.raises(
        ConfigError, match="mixed_precision is 'float16' but the model computes in float32"
    ):
        fit(_model(), x, y, config=_config(mixed_precision="float16"))


def test_mismatched_lengths_name_both(rng):
    x, y = _data(rng)
    with pytest.raises(DataError, match="x has 160 samples but y has 159"):
        fit(_model(), x, y[:-1], config=_config())


def test_validation_split_that_leaves_nothing_is_an_error(rng):
    x, y = _data(rng, n=3)
    with pytest.raises(DataError, match="validation_split"):
        fit(_model(), x, y, config=_config(validation_split=0.2))


def test_tensorboard_logs_are_written(tmp_path, rng):
    x, y = _data(rng)
    fit(
        _model(),
        x,
        y,
        config=_config(epochs=1, logging={"directory": str(tmp_path), "tensorboard": True}),
    )
    events = [f for _, _, files in __import__("os").walk(tmp_path / "tensorboard") for f in files]
    assert any(name.startswith("events.out.tfevents") for name in events)


@pytest.mark.skipif(BACKEND == "torch", reason="torch runs one step per call; see the test below")
def test_steps_per_execution_trains_to_the_same_weights(rng):
    x, y = _data(rng, n=128)
    common = dict(
        epochs=2, validation_split=0.0, optimizer={"name": "sgd"}, learning_rate=0.1, batch_size=16
    )
    # The Keras engine (the fused one runs a whole epoch per call whatever the setting);
    # Keras calls batch hooks once per compiled call, so they count the calls.
    common.update(engine="keras")
    one_step, one_step_calls = _model(), BatchCounter()
    fit(one_step, x, y, config=_config(**common), callbacks=[one_step_calls])
    four_steps, four_steps_calls = _model(), BatchCounter()
    config = _config(steps_per_execution=4, **common)
    fit(four_steps, x, y, config=config, callbacks=[four_steps_calls])
    assert four_steps.steps_per_execution == 4
    assert (one_step_calls.count, four_steps_calls.count) == (2 * 8, 2 * 8 // 4)  # 8 batches/epoch
    for a, b in zip(one_step.get_weights(), four_steps.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="only the torch backend lacks steps_per_execution")
def test_steps_per_execution_on_torch_says_it_is_not_supported(rng):
    x, y = _data(rng)
    with pytest.raises(BackendNotSupportedError, match="torch backend runs one batch per call"):
        fit(_model(), x, y, config=_config(steps_per_execution=4))
