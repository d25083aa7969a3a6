"""keras_trainer.tuning: hyperparameter search (AutoTrainer) for tabular nets, via KerasTuner.

Example:

>>> from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace, OptimizerType
>>> config = AutoTrainerConfig(search_method="grid", max_trials=8, metric="accuracy", max_epochs=20)
>>> config.hyperparameter_space = HyperparameterSpace(
...     learning_rates=[1e-3, 1e-2], batch_sizes=[32, 64], optimizers=[OptimizerType.ADAM],
...     dropout_rates=[0.0, 0.2], weight_decay=[0.0])
>>> result = AutoTrainer(config).optimize(create_model, (x_tr, y_tr), (x_va, y_va), symbol="BTC-USD")
"""

from keras_trainer.tuning.auto_trainer import AutoTrainer, TrialRecord, TrialTable, TuningResult
from keras_trainer.config.tuning import AutoTrainerConfig, HyperparameterSpace, OptimizerType, TuningConfig
from keras_trainer.tuning.hypermodel import TunableModel
from keras_trainer.tuning.metrics import Objective, resolve_objective, sharpe_ratio, sortino_ratio

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
