"""keras_trainer.tuning: hyperparameter search (AutoTrainer) for tabular nets, via KerasTuner.

Example:

>>> from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace, OptimizerType
>>> config = AutoTrainerConfig(search_method="grid", max_trials=8, metric="accuracy", max_epochs=20)
>>> config.hyperparameter_space = HyperparameterSpace(
...     learning_rates=[1e-3, 1e-2], batch_sizes=[32, 64], optimizers=[OptimizerType.ADAM],
...     dropout_rates=[0.0, 0.2], weight_decay=[0.0])
>>> result = AutoTrainer(config).optimize(create_model, (x_tr, y_tr), (x_va, y_va), symbol="BTC-USD")
"""

from keras_trainer.registry import lazy_exports

# Names are imported on first use: `keras-trainer --help` imports this package's
# `cli` module, which must not pull in Keras and KerasTuner.
_EXPORTS = {
    "AutoTrainer": "keras_trainer.tuning.auto_trainer",
    "TrialRecord": "keras_trainer.tuning.auto_trainer",
    "TrialTable": "keras_trainer.tuning.auto_trainer",
    "TuningResult": "keras_trainer.tuning.auto_trainer",
    "AutoTrainerConfig": "keras_trainer.config.tuning",
    "HyperparameterSpace": "keras_trainer.config.tuning",
    "OptimizerType": "keras_trainer.config.tuning",
    "TuningConfig": "keras_trainer.config.tuning",
    "TunableModel": "keras_trainer.tuning.hypermodel",
    "Objective": "keras_trainer.tuning.metrics",
    "resolve_objective": "keras_trainer.tuning.metrics",
    "sharpe_ratio": "keras_trainer.tuning.metrics",
    "sortino_ratio": "keras_trainer.tuning.metrics",
}

__all__ = [
    "AutoTrainer",
    "AutoTrainerConfig",
    "HyperparameterSpace",
    "Objective",
    "OptimizerType",
    "TrialRecord",
    "TrialTable",
    "TunableModel",
    "TuningConfig",
    "TuningResult",
    "resolve_objective",
    "sharpe_ratio",
    "sortino_ratio",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
