"""sharpe and sortino: their definitions, and searches that optimize them."""

import numpy as np
import pytest

from keras_trainer.errors import TuningError
from keras_trainer.tabular import ModelConfig
from keras_trainer.tuning import (
    AutoTrainer,
    AutoTrainerConfig,
    HyperparameterSpace,
    resolve_objective,
)
from keras_trainer.tuning.metrics import positions, sharpe_ratio, sortino_ratio


def test_sortino_divides_by_the_downside_deviation():
    predictions = np.array([0.5, -1.0, 2.0, -0.1])  # positions +1, -1, +1, -1
    returns = np.array([0.02, 0.01, -0.03, -0.04])
    strategy = np.array([0.02, -0.01, -0.03, 0.04])
    downside = np.sqrt(np.mean(np.minimum(strategy, 0) ** 2))
    expected = strategy.mean() / downside * np.sqrt(252)
    assert sortino_ratio(predictions, returns) == pytest.approx(expected)
    assert sortino_ratio(predictions, returns, annualization_factor=12) == pytest.approx(
        expected * np.sqrt(12 / 252)
    )
    # Same data, standard deviation instead: the Sharpe ratio differs.
    assert sharpe_ratio(predictions, returns) == pytest.approx(
        strategy.mean() / strategy.std() * np.sqrt(252)
    )


def test_sortino_ignores_upside_volatility():
    returns = np.array([0.01, 0.05, -0.01, 0.10])
    calm = sortino_ratio(np.ones(4), returns)
    wilder = sortino_ratio(np.ones(4), returns * np.array([1, 3, 1, 3]))
    assert wilder > calm > 0


def test_sortino_is_zero_without_a_losing_period():
    assert sortino_ratio([1.0, 1.0, -1.0], [0.01, 0.02, -0.01]) == 0.0


def test_classifier_positions_for_sortino():
    # One sigmoid output is P(up); two softmax outputs use the second class.
    np.testing.assert_array_equal(positions([[0.9], [0.2]], classification=True), [1, -1])
    np.testing.assert_array_equal(positions([[0.3, 0.7], [0.8, 0.2]]), [1, -1])
    with pytest.raises(TuningError, match=r"shape \(2, 3\)"):
        sortino_ratio(np.ones((2, 3)), [0.1, 0.2])
    with pytest.raises(TuningError, match="3 predictions but 2 returns"):
        sortino_ratio([1, 1, 1], [0.1, 0.2])


def test_trading_metrics_are_maximized_even_if_asked_otherwise_by_default():
    assert resolve_objective("sortino").direction == "max"
    assert resolve_objective("val_sortino").name == "val_sortino"


@pytest.fixture(scope="module")
def returns_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 3)).astype("float32")
    returns = (0.01 * x[:, 0] + 0.002 * rng.normal(size=320)).astype("float32")
    return (x[:256], returns[:256]), (x[256:], returns[256:])


@pytest.mark.parametrize("metric, ratio", [("sharpe", sharpe_ratio), ("sortino", sortino_ratio)])
def test_trading_objective_is_the_returned_networks_ratio(metric, ratio, returns_data, tmp_path):
    train, (x_val, r_val) = returns_data
    config = AutoTrainerConfig(
        search_method="random",
        max_trials=1,
        metric=metric,
        max_epochs=2,
        directory=str(tmp_path),
        retrain_best=False,
        hyperparameter_space=HyperparameterSpace(
            learning_rates=[1e-2],
            batch_sizes=[64],
            optimizers=["adam"],
            dropout_rates=[0.0],
            weight_decay=[0.0],
        ),
    )
    result = AutoTrainer(config).optimize(
        ModelConfig(hidden_sizes=[4], use_batch_norm=False), train, (x_val, r_val)
    )
    assert result.metric == f"val_{metric}" and np.isfinite(result.val_metric)
    # Without retraining, the network is the best epoch's checkpoint: its ratio on the validation data is the score.
    predictions = np.asarray(result.model.predict_on_batch(x_val))
    assert ratio(predictions, r_val) == pytest.approx(result.val_metric, rel=1e-4, abs=1e-6)


def test_sortino_of_a_classifier_uses_the_given_returns(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(320, 3)).astype("float32")
    returns = (0.01 * x[:, 0] + 0.004 * rng.normal(size=320)).astype("float32")
    up = (returns > 0).astype("int64")
    config = AutoTrainerConfig(
        search_method="grid",
        max_trials=1,
        metric="sortino",
        max_epochs=10,
        directory=str(tmp_path),
        retrain_best=True,
        hyperparameter_space=HyperparameterSpace(
            learning_rates=[3e-2],
            batch_sizes=[32],
            optimizers=["adam"],
            dropout_rates=[0.0],
            weight_decay=[0.0],
        ),
    )
    result = AutoTrainer(config).optimize(
        ModelConfig(hidden_sizes=[4], task="classification", use_batch_norm=False),
        (x[:256], up[:256]),
        (x[256:], up[256:]),
        val_returns=returns[256:],
    )
    assert result.history is not None and result.metric == "val_sortino"
    assert result.val_metric == max(result.history.history["val_sortino"])
    # The first feature predicts the sign of the return: trading P(up) > 0.5 gains.
    assert result.val_metric > 0


def test_config_metric_names_match_the_installed_keras():
    from keras_trainer.config.tuning import KERAS_METRIC_NAMES
    from keras_trainer.tuning.metrics import keras_metric_names

    assert list(KERAS_METRIC_NAMES) == keras_metric_names()


def test_tuning_config_validates_without_importing_keras():
    import subprocess
    import sys

    code = (
        "import sys; from keras_trainer.config import TuningConfig; TuningConfig(metric='mae'); "
        "print('keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
