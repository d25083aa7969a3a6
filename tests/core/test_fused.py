"""The fused engine against the Keras engine: same losses, metrics, weights, logs."""

import json
import logging
import os

import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError
from tests.conftest import IN_CI
from tests.core.test_checkpoints import _run, _run_facts, _weights


@pytest.fixture(autouse=True)
def _trace_torch_steps_at_once(monkeypatch):
    """On torch, every fused test here runs traced steps (or proves why it cannot)."""
    if keras.backend.backend() == "torch":
        from keras_trainer.core.training.fused import _TorchLoop

        monkeypatch.setattr(_TorchLoop, "TRACE_AFTER_STEPS", 0)


def _data(rng, n=200):
    x = rng.normal(size=(n, 12)).astype("float32")
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)
    return x, np.eye(5, dtype="float32")[labels]


class _JitCompile(keras.callbacks.Callback):
    """Sets the model's `jit_compile` once `fit` has compiled it."""

    def on_train_begin(self, logs=None):
        self.model.jit_compile = True


def _train(engine, x, y, callbacks=(), model=None, jit_compile=False, **overrides):
    """Trains the test MLP; `model` overrides its `ModelConfig` (default: dropout and
    batch norm), `jit_compile` sets the model's flag after `fit` compiles it."""
    data = {
        "epochs": 5,
        "batch_size": 24,  # 160 training rows: 6 full batches and one of 16
        "verbose": 0,
        "engine": engine,
        "early_stopping_patience": 2,
        "learning_rate": 0.05,
        "gradient_clip_norm": 1.0,
        "lr_schedule": {"name": "warmup_cosine", "warmup_steps": 4},
        "metrics": ["accuracy", "mae"],
    }
    data.update(overrides)
    config = TrainingConfig.from_dict(data)
    set_seed(7)
    network = build_model(
        ModelConfig(**{"output_dim": 5, "dropout": 0.2, "batch_norm": True, **(model or {})}),
        (12,),
    )
    callbacks = [*callbacks, _JitCompile()] if jit_compile else list(callbacks)
    history = fit(network, x, y, config=config, callbacks=callbacks)
    if engine != "auto":  # the comparisons below are between the engines they name
        assert history.engine == engine
    return network, history


def test_auto_picks_the_fused_engine_when_it_can(rng):
    x, y = _data(rng)
    assert _train("auto", x, y, epochs=1)[1].engine == "fused"


def test_fused_engine_matches_the_keras_engine(rng, tmp_path):
    x, y = _data(rng)
    keras_model, keras_history = _train("keras", x, y)
    logs = {"checkpoint": {"directory": str(tmp_path)}}
    fused_model, fused_history = _train("fused", x, y, **logs)
    assert fused_history.epochs == keras_history.epochs
    # peak_* memory columns are measurements of the run, not results to compare.
    results = {
        name: values
        for name, values in keras_history.history.items()
        if not name.startswith("peak_")
    }
    assert {name for name in fused_history.history if not name.startswith("peak_")} == {
        "loss",
        "accuracy",
        "mae",
        "val_loss",
        "val_accuracy",
        "val_mae",
    }
    for name, values in results.items():
        np.testing.assert_allclose(fused_history.history[name], values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        fused_history.learning_rates, keras_history.learning_rates, rtol=1e-6
    )
    assert fused_history.best_epoch == keras_history.best_epoch
    assert fused_history.stopped_early == keras_history.stopped_early
    for a, b in zip(fused_model.get_weights(), keras_model.get_weights()):  # best weights restored
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The same callbacks and logs as the Keras engine.
    with open(os.path.join(tmp_path, "history.csv"), encoding="utf-8") as handle:
        rows = handle.read().strip().splitlines()
    assert len(rows) == len(fused_history.epochs) + 1 and "val_accuracy" in rows[0]
    with open(os.path.join(tmp_path, "history.json"), encoding="utf-8") as handle:
        saved = json.load(handle)
    assert saved["epochs"] == fused_history.epochs
    assert os.path.isfile(os.path.join(tmp_path, "best.keras"))


def test_gradient_accumulation_and_weight_decay_match(rng):
    x, y = _data(rng)
    options = {
        "gradient_accumulation_steps": 2,
        "optimizer": {"name": "adamw", "weight_decay": 0.01},
        "early_stopping_patience": 0,
        "epochs": 2,
        "lr_schedule": {"name": "none"},
    }
    keras_model, keras_history = _train("keras", x, y, **options)
    fused_model, fused_history = _train("fused", x, y, **options)
    np.testing.assert_allclose(fused_history.train_loss, keras_history.train_loss, rtol=1e-5)
    # On TensorFlow the fused epoch is compiled by XLA, which rounds otherwise than the
    # Keras engine: on an AMD EPYC host a weight differed by up to 6e-6 after 2 epochs.
    # Leaving out the weight decay would move weights by about 1e-3 (lr 0.05 x 0.01 x
    # |w| per update), leaving out the accumulation by far more.
    for a, b in zip(fused_model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)


class _EveryBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_auto_falls_back_to_keras_for_a_batch_callback_and_logs_why(rng, caplog):
    x, y = _data(rng)
    counter = _EveryBatch()
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        _, history = _train("auto", x, y, callbacks=[counter], epochs=2, early_stopping_patience=0)
    assert history.engine == "keras"
    assert "using the Keras engine because callback _EveryBatch.on_train_batch_end" in caplog.text
    assert counter.batches == 2 * 7  # every batch of both epochs
    caplog.clear()
    counter = _EveryBatch()
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        _train("fused", x, y, callbacks=[counter], epochs=2, early_stopping_patience=0)
    assert counter.batches == 2 and "Keras engine" not in caplog.text  # once per epoch


def test_fused_refuses_what_it_cannot_run(rng):
    x, y = _data(rng)
    model = build_model(ModelConfig(output_dim=5), (12,))
    model.compile("adam", "categorical_crossentropy", run_eagerly=True)
    config = TrainingConfig(epochs=1, verbose=0, engine="fused")
    with pytest.raises(ConfigError, match="training.engine='fused'.*run_eagerly"):
        fit(model, x, y, config=config, compile=False)


@pytest.mark.slow
def test_sigkill_then_resume_on_the_fused_engine_matches_an_uninterrupted_run(tmp_path):
    whole = _run(tmp_path / "whole", tmp_path / "whole.npz", "--engine", "fused")
    assert whole.returncode == 0, whole.stderr
    killed = _run(
        tmp_path / "ckpt", tmp_path / "never.npz", "--kill-at-epoch", 3, "--engine", "fused"
    )
    assert killed.returncode == -9, killed.stderr
    resumed = _run(tmp_path / "ckpt", tmp_path / "resumed.npz", "--resume", "--engine", "fused")
    assert resumed.returncode == 0, resumed.stderr
    expected, expected_epochs = _weights(tmp_path / "whole.npz")
    actual, actual_epochs = _weights(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(actual_epochs, expected_epochs)
    assert max(np.abs(a - b).max() for a, b in zip(actual, expected)) <= 1e-5
    # Both runs on the fused engine; the resumed one from after epoch 2's checkpoint.
    assert _run_facts(tmp_path / "whole.npz")[2] == "fused"
    facts = _run_facts(tmp_path / "resumed.npz")
    assert facts == ([3, 0], len(expected_epochs) - 3, "fused")


def test_models_of_one_structure_share_compiled_programs_and_train_as_if_alone(rng):
    from keras_trainer.core.training import fused

    x, y = _data(rng)

    def train(learning_rate):
        plain = {"lr_schedule": {"name": "none"}, "gradient_clip_norm": None}
        return _train("fused", x, y, learning_rate=learning_rate, **plain)[0]

    fused._SHARED_PROGRAMS.clear()
    alone = train(0.05)  # compiles its own programs
    fused._SHARED_PROGRAMS.clear()
    train(0.01)
    shared = train(0.05)  # another learning rate only: runs the programs compiled above
    for a, b in zip(alone.get_weights(), shared.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if keras.backend.backend() == "jax":
        assert len(fused._SHARED_PROGRAMS) == 1
        assert fused.sharing_key(shared) is not None


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow loop's XLA")
def test_tensorflow_epochs_use_xla_where_it_compiles_and_fall_back_where_not(rng, caplog):
    import tensorflow as tf

    from keras_trainer.core.training.fused import _tensorflow_xla

    set_seed(3)
    assert _tensorflow_xla(build_model(ModelConfig(output_dim=5), (12,)))
    # Dropout draws other random numbers under XLA: the engines would part.
    assert not _tensorflow_xla(build_model(ModelConfig(output_dim=5, dropout=0.2), (12,)))

    class HostCopy(keras.layers.Layer):  # a host function: XLA has no kernel for it
        def call(self, x):
            y = tf.numpy_function(lambda a: a.copy(), [x], x.dtype)
            y.set_shape(x.shape)
            return y

    inputs = keras.Input((12,))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(HostCopy()(inputs)))
    x, y = _data(rng)
    config = TrainingConfig(epochs=2, batch_size=32, verbose=0, engine="fused")
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        history = fit(model, x, y, config=config)
    assert "XLA cannot compile this model's epoch" in caplog.text
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


class _HalveLearningRate(keras.callbacks.Callback):
    """Assigns to the optimizer after epochs 1 and 3, as ReduceLROnPlateau would."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch in (1, 3):
            rate = self.model.optimizer.learning_rate
            rate.assign(rate * 0.5)


class _SetLearningRateEveryEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate.assign(0.05 / (1 + epoch))


@pytest.mark.parametrize(
    "callback, jax_calls",
    [
        # Each epoch after the first starts before the previous one's callbacks;
        # those started before a learning-rate change (epochs 2 and 4) run again.
        (_HalveLearningRate, 6 + 2),
        # Epochs 1 and 2 start early for nothing; after that, none starts early.
        (_SetLearningRateEveryEpoch, 6 + 2),
    ],
)
def test_a_callback_that_changes_the_learning_rate_between_epochs_takes_effect(
    rng, monkeypatch, callback, jax_calls
):
    from keras_trainer.core.training import fused

    calls = []
    build_programs = fused._programs

    def counting_programs(model, build, share=False):
        programs = build_programs(model, build, share)
        if not isinstance(programs, tuple):
            return programs

        def train(*args):
            calls.append(1)
            return programs[0](*args)

        return (train, *programs[1:])

    monkeypatch.setattr(fused, "_programs", counting_programs)
    x, y = _data(rng)
    options = {
        "model": {"dropout": 0.0, "batch_norm": False},
        "lr_schedule": {"name": "none"},
        "early_stopping_patience": 0,
        "epochs": 6,
    }
    keras_model, keras_history = _train("keras", x, y, [callback()], **options)
    model, history = _train("fused", x, y, [callback()], **options)
    np.testing.assert_allclose(history.learning_rates, keras_history.learning_rates, rtol=1e-6)
    np.testing.assert_allclose(history.train_loss, keras_history.train_loss, rtol=1e-5)
    for a, b in zip(model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if keras.backend.backend() == "jax":
        assert len(calls) == jax_calls


def _traced_entries(model) -> list:
    from keras_trainer.core.training.fused import _PROGRAMS

    return list(_PROGRAMS[model][1].values())


torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch loop")


@torch_only
def test_torch_traced_steps_give_the_eager_steps_numbers(rng, caplog):
    x, y = _data(rng)
    # No dropout: a seeded dropout reads its seed in Python (see the next test).
    options = {"model": {"dropout": 0.0}, "early_stopping_patience": 0}
    keras_model, keras_history = _train("keras", x, y, **options)
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        fused_model, fused_history = _train("fused", x, y, **options)
    assert "cannot trace" not in caplog.text
    entries = _traced_entries(fused_model)
    assert {entry["graph"] is not None for entry in entries} == {True}
    assert len(entries) == 2  # the full batches and the last, smaller one
    np.testing.assert_array_equal(fused_history.train_loss, keras_history.train_loss)
    for a, b in zip(fused_model.get_weights(), keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)


@torch_only
@pytest.mark.parametrize(
    "options, reason",
    [
        (
            {"model": {"dropout": 0.0}, "gradient_accumulation_steps": 2},
            "a branch of ops.cond writes to a tensor",
        ),
        ({"model": {"dropout": 0.2}}, "reads a tensor's value in Python"),
    ],
)
def test_torch_steps_that_read_tensors_in_python_run_eagerly_and_say_so(
    rng, caplog, options, reason
):
    x, y = _data(rng)
    options = {**options, "epochs": 2, "early_stopping_patience": 0}
    keras_model, _ = _train("keras", x, y, **options)
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        fused_model, _ = _train("fused", x, y, **options)
    assert "cannot trace the training step" in caplog.text and reason in caplog.text
    assert {entry["graph"] for entry in _traced_entries(fused_model)} == {None}
    for a, b in zip(fused_model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@torch_only
@pytest.mark.slow
def test_torch_compiles_the_traced_step_for_jit_compile_models(rng, caplog):
    import shutil

    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")) and not IN_CI:
        pytest.skip("torch.compile on a CPU needs a C++ compiler")
    x, y = _data(rng)
    options = {"model": {"dropout": 0.0}, "early_stopping_patience": 0, "epochs": 3}
    keras_model, keras_history = _train("keras", x, y, **options)
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        model, history = _train("fused", x, y, jit_compile=True, **options)
    assert "torch.compile failed" not in caplog.text and "cannot trace" not in caplog.text
    assert {entry["compiled"] is not None for entry in _traced_entries(model)} == {True}
    np.testing.assert_allclose(history.train_loss, keras_history.train_loss, rtol=1e-5)
    for a, b in zip(model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
