import logging

import numpy as np
import pytest

from keras_trainer.core import persistence
from keras_trainer.errors import ConfigError, DataError, TuningError
from keras_trainer.tabular import ModelConfig, load_table, load_tabular_model
from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace, OptimizerType


@pytest.fixture(scope="module")
def cancer():
    x, y, _ = load_table("breast_cancer")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:340], y[:340]), (x[340:455], y[340:455]), (x[455:], y[455:])


def tiny_space():
    return HyperparameterSpace(learning_rates=[1e-2, 1e-3], batch_sizes=[32, 128], optimizers=[OptimizerType.ADAM],
                               dropout_rates=[0.0], weight_decay=[0.0])


NET = ModelConfig(hidden_sizes=[8], task="classification", use_batch_norm=False)


@pytest.mark.parametrize("method", ["grid", "random", "bayesian", "hyperband"])
def test_every_search_method_completes_and_saves_the_best(method, cancer, tmp_path):
    train, val, (x_test, y_test) = cancer
    config = AutoTrainerConfig(search_method=method, max_trials=2, metric="accuracy", max_epochs=2,
                               directory=str(tmp_path), hyperparameter_space=tiny_space(),
                               retrain_best=method == "grid")
    trainer = AutoTrainer(config)
    result = trainer.optimize(NET, train, val, symbol="BC")
    table = trainer.trials_table()
    assert 1 <= len(table) <= 2 and all(r.status == "COMPLETED" for r in table)
    assert result.val_metric > 0.5 and result.batch_size in (32, 128) and result.optimizer == "adam"
    path = result.save(tmp_path / "best.keras")
    model, metadata = load_tabular_model(path)
    assert metadata["tuning"]["hyperparameters"]["learning_rate"] == result.learning_rate
    assert len(metadata["normalization"]["mean"]) == 30
    # The saved model standardizes raw features itself.
    np.testing.assert_allclose(model.predict_on_batch(x_test[:4]), result.model.predict_on_batch(x_test[:4]),
                               rtol=1e-4, atol=1e-5)


def test_batch_size_is_really_used_and_search_resumes(cancer, tmp_path):
    train, val, _ = cancer
    config = AutoTrainerConfig(search_method="grid", max_trials=2, metric="loss", max_epochs=1,
                               directory=str(tmp_path), retrain_best=False,
                               hyperparameter_space=HyperparameterSpace(learning_rates=[1e-2], batch_sizes=[32, 128],
                                                                        optimizers=["sgd"], dropout_rates=[0.0],
                                                                        weight_decay=[0.0]))
    trainer = AutoTrainer(config)
    trainer.optimize(NET, train, val, symbol="BTC-USD")
    steps = {r.hyperparameters["batch_size"]: r.steps_per_epoch for r in trainer.trials_table()}
    assert steps == {32: 11, 128: 3}  # ceil(340 / batch size)
    assert (tmp_path / "BTC-USD" / "tuning.log").exists()
    again = AutoTrainer(config)
    again.optimize(NET, train, val, symbol="BTC-USD")
    assert [r.trial_id for r in again.trials_table()] == [r.trial_id for r in trainer.trials_table()]
    assert [r.seconds for r in again.trials_table()] == [r.seconds for r in trainer.trials_table()]


def test_failed_trial_is_reported_not_swallowed(cancer, tmp_path, caplog):
    import keras

    train, val, _ = cancer

    def factory(dropout_rate, hp):
        # With lr 0.01 the model has 3 outputs: binary cross-entropy on (n,) labels fails inside fit.
        units = 3 if hp.get("learning_rate") > 0.005 else 1
        inputs = keras.Input((30,))
        return keras.Model(inputs, keras.layers.Dense(units, activation="sigmoid")(inputs))

    config = AutoTrainerConfig(search_method="grid", max_trials=2, metric="accuracy", max_epochs=1,
                               directory=str(tmp_path), retrain_best=False, hyperparameter_space=tiny_space().__class__(
                                   learning_rates=[1e-2, 1e-3], batch_sizes=[64], optimizers=["adam"],
                                   dropout_rates=[0.0], weight_decay=[0.0]))
    trainer = AutoTrainer(config)
    with caplog.at_level(logging.ERROR, logger="keras_trainer.tuning"):
        result = trainer.optimize(factory, train, val, loss="binary_crossentropy")
    failed = trainer.trials_table().failed
    assert len(failed) == 1 and failed[0].hyperparameters["learning_rate"] == 1e-2
    assert "shape" in failed[0].error.lower() and failed[0].traceback
    assert failed[0].error in caplog.text
    assert failed[0].error in (tmp_path / "default" / "tuning.log").read_text()
    assert result.learning_rate == 1e-3


def test_all_trials_failing_raises_with_the_errors(cancer, tmp_path):
    train, val, _ = cancer

    def factory(dropout_rate):
        raise ValueError("no model today")

    config = AutoTrainerConfig(search_method="random", max_trials=2, max_epochs=1, directory=str(tmp_path),
                               hyperparameter_space=tiny_space(), max_consecutive_failures=5)
    with pytest.raises(TuningError, match="no model today"):
        AutoTrainer(config).optimize(factory, train, val)


def test_sharpe_objective_on_returns(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype("float32")
    returns = (0.01 * x[:, 0] + 0.002 * rng.normal(size=300)).astype("float32")
    config = AutoTrainerConfig(search_method="random", max_trials=1, metric="sharpe", max_epochs=2,
                               directory=str(tmp_path), hyperparameter_space=tiny_space(), retrain_best=False)
    result = AutoTrainer(config).optimize(ModelConfig(hidden_sizes=[4], use_batch_norm=False),
                                          (x[:200], returns[:200]), (x[200:], returns[200:]))
    assert result.metric == "val_sharpe" and np.isfinite(result.val_metric)


def test_sharpe_on_class_labels_needs_returns(cancer, tmp_path):
    train, val, _ = cancer
    config = AutoTrainerConfig(metric="sharpe", max_trials=1, max_epochs=1, directory=str(tmp_path),
                               hyperparameter_space=tiny_space())
    with pytest.raises(TuningError, match="pass val_returns"):
        AutoTrainer(config).optimize(NET, train, val)


def test_bad_inputs_get_clear_errors(cancer, tmp_path):
    train, val, _ = cancer
    with pytest.raises(ConfigError, match="tuning.max_trials: must be an integer >= 1, got 0"):
        AutoTrainerConfig(max_trials=0)
    with pytest.raises(ConfigError, match=r"hyperparameter_space.learning_rates: the search space is empty"):
        HyperparameterSpace(learning_rates=[])
    with pytest.raises(ConfigError, match=r"unknown metric 'sharp'; did you mean 'sharpe'\?.*sortino.*auc"):
        AutoTrainerConfig(metric="sharp")
    with pytest.raises(ConfigError, match=r"tuning.hyperparameter_space.batch_sizes: must have at least 1"):
        AutoTrainerConfig.from_dict({"hyperparameter_space": {"batch_sizes": []}})
    with pytest.raises(ConfigError, match="unknown optimizer 'adagrad'"):
        HyperparameterSpace(optimizers=["adagrad"])
    trainer = AutoTrainer(AutoTrainerConfig(directory=str(tmp_path), hyperparameter_space=tiny_space()))
    with pytest.raises(DataError, match="X has 340 samples but y has 10"):
        trainer.optimize(NET, (train[0], train[1][:10]), val)
