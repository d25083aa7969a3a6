"""`ModelFactory`: builds the tabular and time-series networks from a `TabularModelConfig`."""

from __future__ import annotations

from typing import Any, Optional

import keras

from keras_trainer.core.building.models import build_model
from keras_trainer.core.training import precision
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.tabular.config import TabularModelConfig
from keras_trainer.tabular.normalization import FeatureScaler, serving_model


def default_loss(config: TabularModelConfig, y: Any = None) -> str:
    """The loss that fits the config's head (and, for softmax, the label format).

    regression -> "mse"; one sigmoid output -> "binary_crossentropy"; softmax ->
    "sparse_categorical_crossentropy" for integer labels `(n,)`, else
    "categorical_crossentropy".
    """
    if config.task == "regression":
        return "mse"
    if config.output_size == 1:
        return "binary_crossentropy"
    if y is not None and getattr(y, "ndim", 1) == 2 and y.shape[-1] == config.output_size:
        return "categorical_crossentropy"
    return "sparse_categorical_crossentropy"


def default_metrics(config: TabularModelConfig) -> list[str]:
    """ "accuracy" for classification, "mae" for regression."""
    return ["accuracy"] if config.task == "classification" else ["mae"]


class ModelFactory:
    """Builds feed-forward, LSTM and CNN+LSTM Keras models (the factory API of the original PyTorch project).

    Args:
        seed: Seeds weight initialization for reproducible models; `None` leaves
            the RNGs as they are.
        mixed_precision: "off", "float16" or "bfloat16": the compute dtype of the
            models it builds (as `training.mixed_precision`, which `fit` then needs
            to match). Defaults to the dtype policy in force when a model is built
            (`keras_trainer.core.training.precision.policy_scope`, else float32).

    Example:

    >>> factory = ModelFactory(seed=0)
    >>> model = factory.create_model(TabularModelConfig(input_size=30, hidden_sizes=[16]))
    >>> model.output_shape
    (None, 1)
    """

    def __init__(self, seed: Optional[int] = None, mixed_precision: Optional[str] = None):
        self.seed = seed
        self.mixed_precision = None
        if mixed_precision is not None:
            self.mixed_precision = precision.policy_name(mixed_precision)  # checks it

    def create_model(
        self, config: TabularModelConfig, scaler: Optional[FeatureScaler] = None
    ) -> keras.Model:
        """Builds the (uncompiled) network `config` describes.

        Args:
            config: The architecture.
            scaler: If given, the model starts with a `Normalization` layer
                holding its statistics, so it takes raw features.

        Raises:
            ConfigError: bad options (naming them) or a missing `input_size`.
        """
        if self.seed is not None:
            set_seed(self.seed)
        network = build_model(config.to_model_config(), config.input_shape, self.mixed_precision)
        if scaler is not None:
            return serving_model(network, scaler, name=f"{config.display_name}_model")
        return network


KerasModelFactory = ModelFactory
