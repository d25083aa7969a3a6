import numpy as np

from keras_trainer.tabular import ModelConfig, load_table
from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace


def test_tuned_feed_forward_reaches_95_percent_test_accuracy(tmp_path):
    x, y, _ = load_table("breast_cancer")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    train, val, test = (x[:340], y[:340]), (x[340:455], y[340:455]), (x[455:], y[455:])
    config = AutoTrainerConfig(
        search_method="random", max_trials=2, metric="loss", max_epochs=30, early_stopping_patience=5,
        directory=str(tmp_path),
        hyperparameter_space=HyperparameterSpace(learning_rates=[1e-3, 3e-3], batch_sizes=[32], optimizers=["adam"],
                                                 dropout_rates=[0.0], weight_decay=[0.0]),
    )
    result = AutoTrainer(config).optimize(ModelConfig(hidden_sizes=[16], task="classification", use_batch_norm=False),
                                          train, val)
    # result.model takes raw features (standardization inside).
    probabilities = np.asarray(result.model.predict_on_batch(test[0])).reshape(-1)
    accuracy = float(np.mean((probabilities > 0.5) == test[1]))
    assert accuracy >= 0.95, accuracy
