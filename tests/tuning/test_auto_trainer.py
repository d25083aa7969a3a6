"""AutoTrainer on real data (scikit-learn's breast_cancer) under the current backend.

Data sizes and batch sizes are chosen so every batch is full (320 training and
128 validation rows, batches of 32 or 64) and every test uses the same small
network: JAX then compiles one train step per shape and reuses it from the
session's compilation cache (see conftest.py) instead of compiling per trial.
"""

import dataclasses
import logging

import numpy as np
import pytest

from keras_trainer.core.saving import persistence
from keras_trainer.errors import ConfigError, DataError, TuningError
from keras_trainer.tabular import ModelConfig, load_table, load_tabular_model
from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace, OptimizerType

NET = ModelConfig(hidden_sizes=[16], task="classification", use_batch_norm=False)


def space(learning_rates=(1e-2,), batch_sizes=(32, 64), optimizers=(OptimizerType.ADAM,)):
    return HyperparameterSpace(
        learning_rates=list(learning_rates),
        batch_sizes=list(batch_sizes),
        optimizers=list(optimizers),
        dropout_rates=[0.0],
        weight_decay=[0.0],
    )


@pytest.fixture(scope="module")
def cancer():
    x, y, _ = load_table("breast_cancer")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:320], y[:320]), (x[320:448], y[320:448]), (x[448:], y[448:])


@pytest.fixture(scope="module")
def tuned(cancer, tmp_path_factory):
    """One grid search over two batch sizes, best retrained: shared by the tests below."""
    train, val, _ = cancer
    config = AutoTrainerConfig(
        search_method="grid",
        max_trials=2,
        metric="loss",
        max_epochs=20,
        early_stopping_patience=3,
        directory=str(tmp_path_factory.mktemp("grid")),
        hyperparameter_space=space(),
    )
    trainer = AutoTrainer(config)
    result = trainer.optimize(NET, train, val, symbol="BTC-USD")
    return config, trainer, result


def test_tuned_feed_forward_reaches_95_percent_test_accuracy(cancer, tuned):
    _, _, (x_test, y_test) = cancer
    result = tuned[2]
    # result.model takes raw features (standardization inside).
    probabilities = np.asarray(result.model.predict_on_batch(x_test)).reshape(-1)
    accuracy = float(np.mean((probabilities > 0.5) == y_test))
    assert accuracy >= 0.95, accuracy


def test_grid_search_retrains_the_best_and_saves_it_with_normalization(cancer, tuned, tmp_path):
    _, _, (x_test, _) = cancer
    config, trainer, result = tuned
    assert [r.status for r in trainer.trials_table()] == ["COMPLETED", "COMPLETED"]
    assert (
        result.history is not None
        and 1 <= len(result.history.history["val_loss"]) <= config.max_epochs
    )
    assert result.val_metric == min(result.history.history["val_loss"])
    path = result.save(tmp_path / "best.keras")
    model, metadata = load_tabular_model(path)
    assert metadata["tuning"]["hyperparameters"]["batch_size"] == result.batch_size
    assert (
        metadata["tuning"]["metric"] == "val_loss" and len(metadata["normalization"]["mean"]) == 30
    )
    np.testing.assert_allclose(
        model.predict_on_batch(x_test), result.model.predict_on_batch(x_test), rtol=1e-4, atol=1e-5
    )


def test_batch_size_is_really_used(tuned):
    trainer = tuned[1]
    steps = {r.hyperparameters["batch_size"]: r.steps_per_epoch for r in trainer.trials_table()}
    assert steps == {32: 10, 64: 5}  # 320 training rows / batch size


def test_search_resumes_without_rerunning_trials(cancer, tuned):
    train, val, _ = cancer
    config, trainer, _ = tuned
    assert trainer._project_dir and (trainer._project_dir.endswith("BTC-USD"))
    again = AutoTrainer(dataclasses.replace(config, retrain_best=False))
    again.optimize(NET, train, val, symbol="BTC-USD")
    assert [r.trial_id for r in again.trials_table()] == [
        r.trial_id for r in trainer.trials_table()
    ]
    assert [r.seconds for r in again.trials_table()] == [r.seconds for r in trainer.trials_table()]
    log = open(f"{config.directory}/BTC-USD/tuning.log", encoding="utf-8").read()
    assert log.count("COMPLETED") == 2  # each trial logged once, when it ran


def test_without_retraining_the_best_trial_checkpoint_is_returned(cancer, tuned):
    train, val, _ = cancer
    config, trainer, _ = tuned
    result = AutoTrainer(dataclasses.replace(config, retrain_best=False)).optimize(
        NET, train, val, symbol="BTC-USD"
    )
    best = min(trainer.trials_table().completed, key=lambda r: r.value)
    assert result.history is None and result.trial_id == best.trial_id
    assert result.val_metric == result.search_val_metric == best.value
    # The network holds the best epoch's weights: its validation loss is the recorded score.
    p = np.clip(
        np.asarray(result.model.predict_on_batch(val[0]), "float64").reshape(-1), 1e-7, 1 - 1e-7
    )
    loss = -np.mean(val[1] * np.log(p) + (1 - val[1]) * np.log(1 - p))
    np.testing.assert_allclose(loss, best.value, rtol=1e-3)


@pytest.mark.parametrize("method", ["random", "bayesian", "hyperband"])
def test_search_method_completes_and_its_best_is_saved(method, cancer, tmp_path):
    train, val, _ = cancer
    config = AutoTrainerConfig(
        search_method=method,
        max_trials=2,
        metric="accuracy",
        max_epochs=2,
        directory=str(tmp_path),
        hyperparameter_space=space(),
        retrain_best=False,
    )
    trainer = AutoTrainer(config)
    result = trainer.optimize(NET, train, val, symbol="BC")
    table = trainer.trials_table()
    assert 1 <= len(table) <= 2 and all(r.status == "COMPLETED" for r in table)
    # Well above always answering the majority class (0.65 of this split; runs reach ~0.96).
    majority = max(np.mean(val[1]), 1 - np.mean(val[1]))
    print(f"{method}: validation accuracy {result.val_metric:.3f}, majority rate {majority:.3f}")
    assert result.val_metric > majority + 0.1
    assert result.batch_size in (32, 64) and result.optimizer == "adam"
    metadata = persistence.read_metadata(result.save(tmp_path / "best.keras"))
    assert (
        metadata["tuning"]["trial_id"] == result.trial_id
        and len(metadata["normalization"]["variance"]) == 30
    )


def test_failed_trial_is_reported_not_swallowed(cancer, tmp_path, caplog):
    import keras

    train, val, _ = cancer

    def factory(dropout_rate, hp):
        # With lr 0.01 the model has 3 outputs: binary cross-entropy on (n,) labels fails inside fit.
        units = 3 if hp.get("learning_rate") > 0.005 else 1
        inputs = keras.Input((30,))
        return keras.Model(inputs, keras.layers.Dense(units, activation="sigmoid")(inputs))

    config = AutoTrainerConfig(
        search_method="grid",
        max_trials=2,
        metric="accuracy",
        max_epochs=1,
        directory=str(tmp_path),
        retrain_best=False,
        hyperparameter_space=space(learning_rates=[1e-2, 1e-3], batch_sizes=[64]),
    )
    trainer = AutoTrainer(config)
    with caplog.at_level(logging.ERROR, logger="keras_trainer.tuning"):
        result = trainer.optimize(factory, train, val, loss="binary_crossentropy")
    failed = trainer.trials_table().failed
    assert len(failed) == 1 and failed[0].hyperparameters["learning_rate"] == 1e-2
    assert "shape" in failed[0].error.lower() and failed[0].traceback
    assert failed[0].error in caplog.text
    assert failed[0].error in (tmp_path / "default" / "tuning.log").read_text()
    assert f"| {failed[0].error} |" in trainer.trials_table().to_markdown()
    assert result.learning_rate == 1e-3


def test_all_trials_failing_raises_with_the_errors(cancer, tmp_path):
    train, val, _ = cancer

    def factory(dropout_rate):
        raise ValueError("no model today")

    config = AutoTrainerConfig(
        search_method="random",
        max_trials=2,
        max_epochs=1,
        directory=str(tmp_path),
        hyperparameter_space=space(),
        max_consecutive_failures=5,
    )
    with pytest.raises(TuningError, match="no model today"):
        AutoTrainer(config).optimize(factory, train, val)


def test_sharpe_on_class_labels_needs_returns(cancer, tmp_path):
    train, val, _ = cancer
    config = AutoTrainerConfig(
        metric="sharpe",
        max_trials=1,
        max_epochs=1,
        directory=str(tmp_path),
        hyperparameter_space=space(),
    )
    with pytest.raises(TuningError, match="pass val_returns"):
        AutoTrainer(config).optimize(NET, train, val)


def test_bad_inputs_get_clear_errors(cancer, tmp_path):
    train, val, _ = cancer
    with pytest.raises(ConfigError, match="tuning.max_trials: must be an integer >= 1, got 0"):
        AutoTrainerConfig(max_trials=0)
    with pytest.raises(
        ConfigError, match=r"hyperparameter_space.learning_rates: the search space is empty"
    ):
        HyperparameterSpace(learning_rates=[])
    with pytest.raises(
        ConfigError, match=r"unknown metric 'sharp'; did you mean 'sharpe'\?.*sortino.*auc"
    ):
        AutoTrainerConfig(metric="sharp")
    with pytest.raises(
        ConfigError, match=r"tuning.hyperparameter_space.batch_sizes: must have at least 1"
    ):
        AutoTrainerConfig.from_dict({"hyperparameter_space": {"batch_sizes": []}})
    with pytest.raises(ConfigError, match="unknown optimizer 'adagrad'"):
        HyperparameterSpace(optimizers=["adagrad"])
    trainer = AutoTrainer(AutoTrainerConfig(directory=str(tmp_path), hyperparameter_space=space()))
    with pytest.raises(DataError, match="X has 320 samples but y has 10"):
        trainer.optimize(NET, (train[0], train[1][:10]), val)


def test_cv_folds_make_a_trials_score_the_mean_over_folds(cancer, tmp_path):
    train, val, _ = cancer
    config = AutoTrainerConfig(
        search_method="grid",
        max_trials=1,
        metric="loss",
        max_epochs=2,
        cv_folds=2,
        directory=str(tmp_path),
        hyperparameter_space=space(batch_sizes=(32,)),
        retrain_best=False,
    )
    trainer = AutoTrainer(config)
    result = trainer.optimize(NET, train, val, symbol="CV")
    fold_scores = trainer.tuner.hypermodel.last_fit["fold_scores"]
    assert len(fold_scores) == 2 and fold_scores[0] != fold_scores[1]
    assert result.search_val_metric == pytest.approx(np.mean(fold_scores))


def test_top_trials_combine_into_one_ensemble_model(cancer, tuned, tmp_path):
    from keras_trainer.core.evaluating.ensemble import EnsembleAverage
    from keras_trainer.core.saving.persistence import load_model, save_model

    train, val, (x_test, y_test) = cancer
    _, trainer, _ = tuned
    ensemble = trainer.ensemble(top_k=2)
    networks = [trainer.tuner.load_model(t) for t in trainer.tuner.oracle.get_best_trials(2)]
    standardized = trainer.result.scaler.transform(x_test)
    expected = np.mean([np.asarray(n.predict_on_batch(standardized)) for n in networks], axis=0)
    got = np.asarray(ensemble.predict_on_batch(x_test))  # raw features in
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert float(np.mean((got.reshape(-1) > 0.5) == y_test)) >= 0.9
    path = save_model(ensemble, tmp_path / "ensemble.keras")
    loaded, _ = load_model(path)
    network = loaded.get_layer("tuning_ensemble_network")
    assert any(isinstance(layer, EnsembleAverage) for layer in network.layers)
    np.testing.assert_allclose(loaded.predict_on_batch(x_test), got, rtol=1e-5, atol=1e-6)
    with pytest.raises(TuningError, match="top_k >= 2"):
        trainer.ensemble(top_k=1)
