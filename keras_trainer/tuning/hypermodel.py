"""`TunableModel`: a KerasTuner `HyperModel` whose trials train through the core `fit`.

`build(hp)` declares the search space (learning_rate, batch_size, optimizer,
dropout_rate, weight_decay as `Choice`s) and calls the user's model factory
with the trial's `dropout_rate`. `fit(hp, model, ...)` overrides
`HyperModel.fit` so that the trial's batch size, optimizer, learning rate and
weight decay become a `TrainingConfig` for `keras_trainer.core.training.fit.fit`: the
batch size is really used, not just recorded.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Optional, Union

import keras
import keras_tuner
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.config.tuning import TuningConfig
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError, TuningError
from keras_trainer.tabular.config import TabularModelConfig
from keras_trainer.tabular.factory import ModelFactory
from keras_trainer.tuning.metrics import Objective, RegretCallback, TradingMetricCallback

ModelFactoryLike = Union[Callable[..., keras.Model], TabularModelConfig]
HYPERPARAMETERS = ("learning_rate", "batch_size", "optimizer", "dropout_rate", "weight_decay")


def final_activation(model: keras.Model) -> str:
    """Name of the activation of the model's last layer that has one ("linear" if none)."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            return final_activation(layer)
        activation = getattr(layer, "activation", None)
        if activation is not None:
            return getattr(activation, "__name__", str(activation))
    return "linear"


def infer_loss(model: keras.Model, y: np.ndarray) -> str:
    """softmax -> (sparse_)categorical_crossentropy, sigmoid -> binary_crossentropy, else mse."""
    activation = final_activation(model)
    if activation == "softmax":
        return (
            "categorical_crossentropy"
            if np.ndim(y) == 2 and np.shape(y)[1] > 1
            else "sparse_categorical_crossentropy"
        )
    if activation == "sigmoid":
        return "binary_crossentropy"
    return "mse"


def _accepts(function: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)


class _EpochCounter(keras.callbacks.Callback):
    """Counts epochs, and reads the training batches per epoch from the training loop.

    It has epoch hooks only: a batch-level hook would make every trial sync with
    the device after each step (and make `engine: "auto"` fall back to Keras).
    `params["steps"]` is set by the loop that feeds the batches (Keras' or the
    fused engine), so it proves the batch size really used.
    """

    def __init__(self):
        super().__init__()
        self.epochs = 0
        self.steps_first_epoch = 0

    def on_train_begin(self, logs=None):
        self.steps_first_epoch = int(self.params.get("steps") or 0)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


class TunableModel(keras_tuner.HyperModel):
    """The hypermodel `AutoTrainer` searches.

    Args:
        model_factory: `fn(dropout_rate=..., [hp=...], **kwargs) -> keras.Model`, or a
            `TabularModelConfig` (built by `ModelFactory` with the trial's dropout).
            A factory that takes `hp` (or `**kwargs`) gets the trial's
            `keras_tuner.HyperParameters` to declare its own hyperparameters.
        config: The tuning settings.
        objective: The resolved objective.
        loss: Loss name or object; `None` infers it from the model's output.
        metrics: Keras metrics to compile; `None` picks accuracy or mae.
        val_returns: Realized returns of the validation samples (sharpe/sortino).
        val_times: Measured times `(n, k)` of the validation samples under each
            strategy (regret/geomean_regret).
    """

    def __init__(
        self,
        model_factory: ModelFactoryLike,
        config: TuningConfig,
        objective: Objective,
        loss: Any = None,
        metrics: Optional[list] = None,
        val_returns: Optional[np.ndarray] = None,
        val_times: Optional[np.ndarray] = None,
    ):
        super().__init__(name="keras_trainer_tunable_model", tunable=True)
        self.model_factory = model_factory
        self.config = config
        self.objective = objective
        self.loss = loss
        self.metrics = metrics
        self.val_returns = val_returns
        self.val_times = val_times
        self.last_fit: Optional[dict] = None
        choices = config.hyperparameter_space.choices()
        if not isinstance(model_factory, TabularModelConfig) and not _accepts(
            model_factory, "dropout_rate"
        ):
            if len(choices["dropout_rate"]) > 1:
                raise ConfigError(
                    "tuning.hyperparameter_space.dropout_rates: the model_factory takes no dropout_rate "
                    f"argument, so {choices['dropout_rate']} cannot be tuned; give one value or add the argument"
                )
            self._pass_dropout = False
        else:
            self._pass_dropout = True

    def declare(self, hp: keras_tuner.HyperParameters) -> dict:
        """Declares the five searched hyperparameters; returns this trial's values."""
        return {
            name: hp.Choice(name, values)
            for name, values in self.config.hyperparameter_space.choices().items()
        }

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        values = self.declare(hp)
        if self.config.seed is not None:
            # The initial weights depend on the seed and the trial's values only, not on
            # how many models this process built before (a resumed search, the retraining).
            set_seed(self.config.seed)
        factory = self.model_factory
        if isinstance(factory, TabularModelConfig):
            return ModelFactory(seed=self.config.seed).create_model(
                factory.replace(dropout_rate=values["dropout_rate"])
            )
        kwargs = {"dropout_rate": values["dropout_rate"]} if self._pass_dropout else {}
        if _accepts(factory, "hp"):
            kwargs["hp"] = hp
        model = factory(**kwargs)
        if not isinstance(model, keras.Model):
            raise TuningError(f"model_factory returned {type(model).__name__}, not a keras.Model")
        return model

    def training_config(self, values: dict, epochs: int) -> TrainingConfig:
        """The `TrainingConfig` of a trial with hyperparameter `values`."""
        return TrainingConfig.from_dict(
            {
                "batch_size": int(values["batch_size"]),
                "epochs": int(epochs),
                "learning_rate": float(values["learning_rate"]),
                "optimizer": {
                    "name": values["optimizer"],
                    "weight_decay": float(values["weight_decay"]),
                },
                # Early stopping on the objective is added after the trading-metric callback.
                "early_stopping_patience": 0,
                "validation_split": 0.0,
                "seed": self.config.seed,
                "verbose": self.config.verbose,
            },
            "training",
        )

    def compile_arguments(self, model: keras.Model, y: Any) -> tuple[Any, list]:
        """Loss and metrics of every trial (inferred once from the first model)."""
        loss = self.loss or self.config.loss or infer_loss(model, y)
        if self.metrics is not None:
            metrics = list(self.metrics)
        else:
            classification = isinstance(loss, str) and "crossentropy" in loss
            metrics = ["accuracy"] if classification else ["mae"]
        if self.objective.kind == "keras" and self.objective.metric not in metrics:
            metrics.append(self.objective.metric)
        return loss, metrics

    def fit(
        self,
        hp,
        model,
        x,
        y=None,
        validation_data=None,
        callbacks=(),
        epochs=None,
        initial_epoch=0,
        **kwargs,
    ):
        """Trains one trial; returns `{objective: score}`.

        With `tuning.cv_folds` > 1 the trial trains a fresh model on each of
        that many contiguous folds of `(x, y)` (the fold held out is the
        validation data; `validation_data` is not used) and its score is the
        mean of the folds' best objective values; `last_fit["fold_scores"]`
        keeps them. Otherwise it trains once on `(x, y)`, scored on
        `validation_data`.
        """
        folds = self.config.cv_folds
        if folds <= 1:
            return self.fit_fold(hp, model, x, y, validation_data, callbacks, epochs, initial_epoch)
        if self.objective.kind in ("trading", "runtime"):
            raise ConfigError(
                f"tuning.cv_folds={folds}: the {self.objective.kind} metric {self.objective.metric!r} needs the realized "
                "returns or times of the validation rows, which the folds of the training data do "
                "not have; "
                "set cv_folds to 1 or tune a Keras metric"
            )
        from keras_trainer.core.evaluating.cross_validation import fold_indices

        scores = []
        for fold, (train_rows, val_rows) in enumerate(fold_indices(len(x), folds, shuffle=False)):
            network = model if fold == 0 else self.build(hp)
            result = self.fit_fold(
                hp,
                network,
                x[train_rows],
                y[train_rows],
                (x[val_rows], y[val_rows]),
                callbacks,
                epochs,
                initial_epoch,
            )
            scores.append(result[self.objective.name])
        self.last_fit["fold_scores"] = scores
        return {self.objective.name: float(np.mean(scores))}

    def fit_fold(
        self, hp, model, x, y=None, validation_data=None, callbacks=(), epochs=None, initial_epoch=0
    ):
        """Trains one model through `keras_trainer.core.training.fit.fit`; returns `{objective: best value}`.

        `epochs`/`initial_epoch` come from Hyperband (which resumes a model of an
        earlier round): the trial then trains `epochs - initial_epoch` epochs.
        """
        values = {name: hp.get(name) for name in HYPERPARAMETERS}
        total = (epochs or self.config.max_epochs) - (initial_epoch or 0)
        config = self.training_config(values, max(total, 1))
        loss, metrics = self.compile_arguments(model, y)
        extra: list[keras.callbacks.Callback] = []
        trading = None
        if self.objective.kind == "trading":
            classification = isinstance(loss, str) and "crossentropy" in loss
            trading = TradingMetricCallback(
                self.objective.metric,
                validation_data[0],
                self.val_returns,
                classification,
                self.config.annualization_factor,
                batch_size=max(int(values["batch_size"]), 256),
            )
            extra.append(trading)
        elif self.objective.kind == "runtime":
            trading = RegretCallback(
                self.objective.metric,
                validation_data[0],
                self.val_times,
                batch_size=max(int(values["batch_size"]), 256),
            )
            extra.append(trading)
        if self.config.early_stopping_patience > 0:
            extra.append(
                keras.callbacks.EarlyStopping(
                    monitor=self.objective.name,
                    mode=self.objective.direction,
                    patience=self.config.early_stopping_patience,
                    start_from_epoch=max(self.config.min_epochs - 1 - (initial_epoch or 0), 0),
                    restore_best_weights=True,
                )
            )
        counter = _EpochCounter()
        history = fit(
            model,
            x,
            y,
            config=config,
            validation_data=validation_data,
            callbacks=[*extra, counter, *callbacks],
            loss=loss,
            metrics=metrics,
        )
        # The core's history recorder runs before our callbacks, so trading and runtime
        # values come from theirs.
        if trading is not None:
            history.history[self.objective.name] = list(trading.values)
        if self.objective.name not in history.history:
            raise TuningError(
                f"the objective {self.objective.name!r} is not in the training logs "
                f"({', '.join(sorted(history.history))}); pick a metric the model reports"
            )
        best = self.objective.better(history.history[self.objective.name])
        if math.isnan(best):
            raise TuningError(f"{self.objective.name} was NaN in every epoch")
        self.last_fit = {
            "epochs": counter.epochs,
            "steps_per_epoch": counter.steps_first_epoch,
            "batch_size": int(values["batch_size"]),
            "history": history,
        }
        return {self.objective.name: best}
