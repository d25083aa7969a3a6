"""`keras-trainer train --cv K` for tables: one fresh network per fold through the shared fit.

`TableTrainer` is what `keras_trainer.core.evaluating.cross_validation.cross_validate`
asks of a trainer: a `config`, `train`, `evaluate` and `evaluation_report`, and
for numeric tables `fit_normalizer`/`normalize`, so that each fold standardizes
its features with its own training rows only. Each fold's network is built
after the seed is set, as `train` builds its own.

Example:

>>> trainer = TableTrainer(config, input_shape=(13,), loss="sparse_categorical_crossentropy",
...                        classification=True)
>>> result = cross_validate(trainer, x, y, folds=3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np


class TableTrainer:
    """Trains and scores one network on a table's rows, as `train` does.

    Args:
        config: The whole config (`TrainerConfig`): its `model` and `training` sections.
        input_shape: Shape of one input row (or window).
        loss: The loss `train` compiles with.
        classification: Whether the head predicts classes.
        build: Builds the network from the model config; defaults to `build_model`
            for `input_shape` (a typed table passes its embedding builder).
        standardize: Fit a `FeatureScaler` on each fold's training rows (numeric
            tables; a typed table's rows are encoded already).
    """

    def __init__(
        self,
        config: Any,
        input_shape: tuple,
        loss: Any,
        classification: bool,
        build: Optional[Callable[[Any], Any]] = None,
        standardize: bool = True,
    ) -> None:
        self.config = config
        self.input_shape = tuple(input_shape)
        self.loss = loss
        self.is_classifier = classification
        self.build = build
        self.standardize = standardize
        self.scaler = None
        self.model = None

    def with_config(self, config: Any) -> TableTrainer:
        """A fresh trainer for one fold's config, with everything else kept."""
        return TableTrainer(
            config, self.input_shape, self.loss, self.is_classifier, self.build, self.standardize
        )

    def fit_normalizer(self, x: np.ndarray) -> None:
        if self.standardize:
            from keras_trainer.tabular.normalization import FeatureScaler

            self.scaler = FeatureScaler().fit(x)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return self.scaler.transform(x) if self.scaler is not None else x

    def train(self, train_data: tuple, validation_data: Optional[tuple] = None):
        """Builds a network (seeded) and fits it on `(x, y)`; returns the history."""
        from keras_trainer.core.building.models import build_model
        from keras_trainer.core.training.fit import fit
        from keras_trainer.core.training.seeding import set_seed

        set_seed(self.config.training.seed)
        model_config = self.config.model
        if self.build is not None:
            self.model = self.build(model_config)
        else:
            self.model = build_model(
                model_config.replace(input_dim=self.input_shape[-1]), self.input_shape
            )
        return fit(
            self.model,
            train_data[0],
            train_data[1],
            config=self.config.training,
            loss=self.loss,
            metrics=["accuracy"] if self.is_classifier else ["mae"],
            validation_data=validation_data,
        )

    def evaluate(self, data: tuple) -> dict[str, float]:
        """The compiled loss and metrics on `(x, y)`."""
        scores = self.model.evaluate(data[0], data[1], verbose=0, return_dict=True)
        return {name: float(value) for name, value in scores.items()}

    def evaluation_report(self, data: tuple):
        """The `EvaluationReport` on `(x, y)` (F1, ROC-AUC, ... or R2, ...)."""
        from keras_trainer.core.evaluating.evaluation import ModelEvaluator

        evaluator = ModelEvaluator(
            self.model, task="classification" if self.is_classifier else "regression"
        )
        return evaluator.evaluate(data[0], data[1])
