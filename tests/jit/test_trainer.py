import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_trainer.errors import CheckpointError, ConfigError, DataError, IRParseError, ModelError
from keras_trainer.jit import SAMPLE_DATASET_PATH, STRATEGY_NAMES, load_dataset
from keras_trainer.jit.model.trainer import ModelTrainer
from tests.conftest import ROOT, subprocess_env

SEED_CONFIG = os.path.join(ROOT, "config", "model_config.json")
BACKENDS = ("tensorflow", "jax", "torch")


def _trainer(**training):
    trainer = ModelTrainer(SEED_CONFIG)
    trainer.config.training.epochs = training.pop("epochs", 3)
    trainer.config.training.verbose = 0
    for key, value in training.items():
        setattr(trainer.config.training, key, value)
    return trainer


@pytest.fixture(scope="module")
def sample():
    ir, runtime, labels = load_dataset(SAMPLE_DATASET_PATH)
    return ir[:60], runtime[:60], labels[:60]


def test_prepare_training_data_gives_normalized_features_and_one_hot_labels(sample):
    trainer = _trainer()
    X, y = trainer.prepare_training_data(*sample)
    assert X.shape == (60, 12) and X.dtype == np.float32
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-4)
    assert y.shape == (60, 5) and np.all(y.sum(axis=1) == 1)
    assert np.argmax(y, axis=1).tolist() == sample[2]


def test_feature_names_follow_the_config(sample):
    trainer = _trainer()
    trainer.prepare_training_data(*sample)
    trainer.create_model(12)
    assert len(trainer.feature_names) == 12 and trainer.feature_names[-1] == "code_size_bytes"


def test_seed_workflow_trains_evaluates_and_predicts(sample):
    trainer = _trainer(epochs=4)
    X, y = trainer.prepare_training_data(*sample)
    trainer.create_model(input_dim=X.shape[1])
    history = trainer.train(training_data=(X[:48], y[:48]), validation_data=(X[48:], y[48:]))
    assert len(history.history["val_loss"]) == 4
    metrics = trainer.evaluate((X, y))
    assert set(metrics) >= {"loss", "accuracy"}
    raw = trainer.extract_features(sample[0][:5], sample[1][:5])
    probabilities = trainer.predict(raw)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(trainer.predict_strategy(raw), probabilities.argmax(axis=1))
    np.testing.assert_allclose(
        trainer.predict_ir(sample[0][:5], sample[1][:5]), probabilities, atol=1e-6
    )


def test_train_accepts_ready_arrays_and_class_indices(toy_classification):
    x, labels = toy_classification
    trainer = _trainer(epochs=2)
    history = trainer.train((x, labels))
    assert trainer.model.input_shape == (None, 12)
    assert len(history.epochs) == 2


def test_mixed_float16_trains_with_loss_scaling(toy_classification):
    x, labels = toy_classification
    trainer = _trainer(epochs=1, mixed_precision="float16", validation_split=0.0)
    history = trainer.train((x[:64], labels[:64]))
    assert trainer.model.get_layer("dense_0").compute_dtype == "float16"
    assert isinstance(trainer.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(history.history["loss"]).all()


def test_create_model_rejects_an_input_dim_that_contradicts_the_config():
    with pytest.raises(
        ConfigError, match="model.input_dim: config says 12 but create_model got input_dim=7"
    ):
        _trainer().create_model(7)


def test_labels_out_of_range_name_the_index(sample):
    labels = list(sample[2])
    labels[3] = 9
    with pytest.raises(DataError, match=r"optimization_results\[3\]: class 9 is out of range"):
        _trainer().prepare_training_data(sample[0], sample[1], labels)


def test_mismatched_lengths_are_named(sample):
    with pytest.raises(
        DataError, match="optimization_results has 59 entries but ir_samples has 60"
    ):
        _trainer().prepare_training_data(sample[0], sample[1], sample[2][:-1])


def test_bad_ir_reports_the_sample(sample):
    with pytest.raises(IRParseError, match=r"^sample 1: LLVM IR does not parse: line 1: "):
        _trainer().prepare_training_data(
            [sample[0][0], "define i64 @entry( {"], sample[1][:2], [0, 0]
        )


def test_predict_checks_feature_width(toy_classification):
    x, labels = toy_classification
    trainer = _trainer(epochs=1)
    trainer.train((x, labels))
    with pytest.raises(DataError, match=r"expected 12 features per sample, got shape \(2, 3\)"):
        trainer.predict(np.ones((2, 3)))
    with pytest.raises(DataError, match="row 1 contains NaN"):
        trainer.predict(np.vstack([x[:1], np.full((1, 12), np.nan)]))


def test_predict_before_a_model_exists_is_a_model_error():
    with pytest.raises(ModelError, match="create_model"):
        _trainer().predict(np.ones((1, 12)))


LOAD_AND_PREDICT = """
import json, sys, numpy as np
from keras_trainer.jit.model.trainer import ModelTrainer
from keras_trainer.jit import SAMPLE_DATASET_PATH, load_dataset
ir, runtime, _ = load_dataset(SAMPLE_DATASET_PATH)
raw = np.load(sys.argv[1])
results = {}
for path in sys.argv[2:]:
    trainer = ModelTrainer({})
    trainer.load_model(path)
    results[path] = {"raw": trainer.predict(raw).tolist(), "ir": trainer.predict_ir(ir[:8], runtime[:8]).tolist(),
                     "classes": trainer.class_names}
print(json.dumps(results))
"""


def test_saved_model_reproduces_predictions_in_a_fresh_process_of_another_backend(tmp_path, sample):
    # Each backend's run loads its model under the next backend (tensorflow -> jax ->
    # torch -> tensorflow): across run_all_backends, every backend trains one model
    # and loads one, in a process that never saw the trainer. One child, not three:
    # each costs a backend start.
    trainer = _trainer(epochs=2)
    X, y = trainer.prepare_training_data(*sample)
    trainer.class_names = list(STRATEGY_NAMES)
    trainer.train((X, y))
    raw = trainer.extract_features(sample[0][:8], sample[1][:8])
    expected = trainer.predict(raw)
    paths = [trainer.save_model(str(tmp_path / f"model{suffix}")) for suffix in (".keras", ".h5")]
    np.save(tmp_path / "raw.npy", raw)
    loader = BACKENDS[(BACKENDS.index(keras.backend.backend()) + 1) % len(BACKENDS)]
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "raw.npy"), *paths],
        env=subprocess_env(KERAS_BACKEND=loader),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for path in paths:
        assert np.abs(np.asarray(loaded[path]["raw"]) - expected).max() <= 1e-5, (loader, path)
        assert np.abs(np.asarray(loaded[path]["ir"]) - expected).max() <= 1e-5, (loader, path)
        assert loaded[path]["classes"] == list(STRATEGY_NAMES)


def test_loading_a_file_that_is_not_a_jit_model_says_so(tmp_path):
    import keras

    from keras_trainer.core.saving.persistence import save_model

    inputs = keras.Input((3,))
    save_model(keras.Model(inputs, keras.layers.Dense(2)(inputs)), tmp_path / "other.keras")
    with pytest.raises(CheckpointError, match="not a JIT strategy model"):
        _trainer().load_model(str(tmp_path / "other.keras"))


def test_config_driven_lstm_regression_trains_saves_and_reloads(tmp_path, rng):
    config = {
        "model": {
            "type": "lstm",
            "input_dim": 3,
            "sequence_length": 8,
            "output_dim": 1,
            "output_activation": "linear",
            "hidden_layers": [8],
            "lstm_hidden_size": 8,
            "lstm_num_layers": 1,
        },
        "training": {
            "epochs": 2,
            "verbose": 0,
            "loss": "mse",
            "metrics": ["mae"],
            "batch_size": 16,
        },
    }
    x = (rng.normal(size=(64, 8, 3)) * 4 + 10).astype("float32")
    y = x[:, -1, :1] * 0.5
    trainer = ModelTrainer(config)
    trainer.fit_normalizer(x)
    history = trainer.train((trainer.normalize(x), y))
    assert "val_mae" in history.history
    report = trainer.evaluation_report((trainer.normalize(x), y))
    assert report.task == "regression" and "r2" in report.metrics
    path = trainer.save_model(str(tmp_path / "lstm.keras"))
    reloaded = ModelTrainer(config)
    reloaded.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x[:4]), trainer.predict(x[:4]), atol=1e-5)


SEED_EXAMPLE = """
from keras_trainer import ModelTrainer

# Initialize trainer
trainer = ModelTrainer('config/model_config.json')

# Prepare training data
X_train, y_train = trainer.prepare_training_data(
    ir_samples=ir_code_samples,
    runtime_data=performance_metrics,
    optimization_results=optimization_choices
)

# Create and train model
trainer.create_model(input_dim=X_train.shape[1])
trainer.train(
    training_data=(X_train, y_train),
    validation_data=(X_val, y_val)
)

# Save trained model
trainer.save_model('models/jit_optimizer.h5')
"""


def test_seed_000_usage_example_runs_as_written(tmp_path, monkeypatch, sample):
    ir, runtime, labels = sample
    (tmp_path / "config").mkdir()
    with open(SEED_CONFIG) as handle:
        config = json.load(handle)
    config["training"]["epochs"] = 2  # the seed's 100 epochs, cut for test time
    (tmp_path / "config" / "model_config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    validation = ModelTrainer(SEED_CONFIG)
    validation.prepare_training_data(ir[:40], runtime[:40], labels[:40])
    X_val, y_val = validation.prepare_training_data(
        ir[40:], runtime[40:], labels[40:], fit_normalizer=False
    )
    namespace = {
        "ir_code_samples": ir[:40],
        "performance_metrics": runtime[:40],
        "optimization_choices": labels[:40],
        "X_val": X_val,
        "y_val": y_val,
    }
    exec(SEED_EXAMPLE, namespace)
    assert (tmp_path / "models" / "jit_optimizer.h5").is_file()
    reloaded = ModelTrainer("config/model_config.json")
    reloaded.load_model("models/jit_optimizer.h5")
    raw = reloaded.extract_features(ir[:3], runtime[:3])
    np.testing.assert_allclose(reloaded.predict(raw), namespace["trainer"].predict(raw), atol=1e-5)


def test_train_streams_shards_normalized_in_one_pass(toy_classification, tmp_path):
    from keras_trainer.core.inputs.streaming import ShardDataset

    x, labels = toy_classification
    for part in range(3):
        rows = slice(part * 100, (part + 1) * 100)
        np.save(
            tmp_path / f"part-{part}.npy",
            np.column_stack([x[rows], labels[rows]]).astype("float32"),
        )
    trainer = _trainer(epochs=2, validation_split=0.2)
    stream = trainer.prepare_stream(ShardDataset(tmp_path, batch_size=32))
    np.testing.assert_allclose(
        np.asarray(trainer.normalizer.input_mean).ravel(), x.mean(axis=0), rtol=1e-4
    )
    features, one_hot = stream[0]
    assert one_hot.shape == (32, 5) and abs(float(features.mean())) < 0.5
    history = trainer.train(stream)
    assert len(history.history["val_loss"]) == 2
