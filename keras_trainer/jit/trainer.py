"""`ModelTrainer`: the config-driven trainer of the JIT strategy model.

The trainer reads a JSON config, turns LLVM IR samples and runtime metrics into
normalized features and one-hot labels, trains through the shared `fit`,
evaluates, predicts, and saves one file that holds everything a fresh process
needs: the network, the normalization statistics (as a Keras `Normalization`
layer in front of the network, so the saved model takes raw features), the
feature-extraction config and the class names.

Example:

>>> trainer = ModelTrainer("config/model_config.json")
>>> X, y = trainer.prepare_training_data(ir_samples, runtime_data, labels)
>>> trainer.create_model(input_dim=X.shape[1])
>>> history = trainer.train((X, y))
>>> trainer.save_model("models/jit_optimizer.keras")
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import keras
import numpy as np

from keras_trainer.config import ConfigSource
from keras_trainer.core import persistence, precision
from keras_trainer.core.data import as_feature_matrix, check_feature_values, check_one_hot, check_pair
from keras_trainer.core.fit import fit
from keras_trainer.core.history import TrainingHistory
from keras_trainer.core.models import build_model
from keras_trainer.core.normalization import (
    feature_statistics,
    find_normalization,
    normalization_layer,
    with_normalization,
)
from keras_trainer.core.seeding import set_seed
from keras_trainer.errors import CheckpointError, ConfigError, DataError, ModelError
from keras_trainer.jit.config import FeatureConfig, JITConfig, load_jit_config

TASK = "jit_strategy"


def one_hot(labels: Sequence[int], num_classes: int, name: str = "optimization_results") -> np.ndarray:
    """One-hot encodes integer class labels, checking each one.

    Raises:
        DataError: naming the index of a label that is not an integer in range.
    """
    encoded = np.zeros((len(labels), num_classes), dtype="float32")
    for index, label in enumerate(labels):
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
            raise DataError(f"{name}[{index}]: must be an integer class index, got {label!r}")
        if not 0 <= label < num_classes:
            raise DataError(
                f"{name}[{index}]: class {label} is out of range for model.output_dim={num_classes}"
            )
        encoded[index, label] = 1.0
    return encoded


class ModelTrainer:
    """Trains, evaluates, saves and loads the JIT optimization-strategy model.

    Args:
        config_path: Path to a JSON config, a dict, or a `JITConfig` (a general
            `TrainerConfig` is accepted too).
        feature_extractor: Turns IR text and runtime metrics into features;
            defaults to `keras_trainer.jit.FeatureExtractor(config.features)`.

    Attributes:
        config: The validated `JITConfig`.
        model: The network (it takes normalized features), or `None`.
        history: The `TrainingHistory` of the last `train` call.
        class_names: Names of the output classes (the optimization strategies).
    """

    def __init__(self, config_path: ConfigSource, feature_extractor: Any = None):
        self.config: JITConfig = load_jit_config(config_path)
        self.model: Optional[keras.Model] = None
        self.history: Optional[TrainingHistory] = None
        self._normalizer: Optional[keras.layers.Normalization] = None
        self._feature_extractor = feature_extractor
        self.class_names: list[str] = [f"class_{i}" for i in range(self.config.model.output_dim)]

    # ----------------------------------------------------------------- features
    @property
    def feature_extractor(self):
        """The IR + runtime feature extractor (built on first use)."""
        if self._feature_extractor is None:
            from keras_trainer.jit.features import FeatureExtractor

            self._feature_extractor = FeatureExtractor(self.config.features)
        return self._feature_extractor

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input features, in column order."""
        width = self.input_dim or 0
        try:
            names = list(self.feature_extractor.feature_names)
        except ImportError:  # the [llvm] extra is not installed
            names = []
        return names if len(names) == width else [f"feature_{i}" for i in range(width)]

    @property
    def input_dim(self) -> Optional[int]:
        if self.model is not None:
            return int(self.model.input_shape[-1])
        return self.config.model.input_dim

    def extract_features(self, ir_samples: Sequence[str], runtime_data: Sequence[dict]) -> np.ndarray:
        """Raw (unnormalized) features of IR samples plus their runtime metrics."""
        if len(ir_samples) != len(runtime_data):
            raise DataError(
                f"ir_samples has {len(ir_samples)} entries but runtime_data has {len(runtime_data)}"
            )
        features = np.asarray(self.feature_extractor.extract(ir_samples, runtime_data), dtype="float64")
        check_feature_values(features, "features", self.feature_extractor.feature_names, row_name="sample")
        features = features.astype("float32")
        expected = self.config.model.input_dim
        if expected is not None and features.shape[1] != expected:
            raise ConfigError(
                f"model.input_dim is {expected} but the feature set "
                f"(features.static_features={self.config.features.static_features!r} plus "
                f"{len(self.config.features.runtime_metrics)} runtime metrics) gives "
                f"{features.shape[1]} features"
            )
        return features

    def fit_normalizer(self, features: np.ndarray) -> None:
        """Computes per-feature mean and variance of raw `features` for normalization.

        Constant features get variance 1, so they map to 0 instead of blowing up.
        """
        features = as_feature_matrix(features, self.input_dim, "features")
        self._normalizer = normalization_layer(*feature_statistics(features, "features"))

    @property
    def normalizer(self) -> keras.layers.Normalization:
        """The normalization layer (identity until `fit_normalizer` or `prepare_training_data`)."""
        if self._normalizer is None:
            width = self.input_dim
            if width is None:
                raise ModelError("no model and no model.input_dim: cannot tell the feature count")
            self._normalizer = normalization_layer(np.zeros(width), np.ones(width))
        return self._normalizer

    def normalize(self, features: Any) -> np.ndarray:
        """Applies the stored normalization to raw `features`."""
        matrix = as_feature_matrix(features, self.input_dim, "features")
        return np.asarray(keras.ops.convert_to_numpy(self.normalizer(matrix)), dtype="float32")

    def prepare_training_data(
        self,
        ir_samples: Sequence[str],
        runtime_data: Sequence[dict],
        optimization_results: Sequence[int],
        fit_normalizer: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Extracts, normalizes and labels a dataset.

        Args:
            ir_samples: LLVM IR text of each sample.
            runtime_data: Runtime-metrics dict of each sample.
            optimization_results: Index of the best strategy for each sample.
            fit_normalizer: Compute normalization statistics from these samples
                (training data); `False` reuses the stored ones (test data).

        Returns:
            `(X, y)`: normalized float32 features `(n, input_dim)` and one-hot
            float32 labels `(n, output_dim)`.

        Raises:
            DataError: mismatched lengths, bad IR, bad metrics or labels, naming
                the sample index.
        """
        if len(optimization_results) != len(ir_samples):
            raise DataError(
                f"optimization_results has {len(optimization_results)} entries but ir_samples "
                f"has {len(ir_samples)}"
            )
        if len(ir_samples) == 0:
            raise DataError("prepare_training_data needs at least one sample, got none")
        labels = one_hot(optimization_results, self.config.model.output_dim)
        features = self.extract_features(ir_samples, runtime_data)
        from keras_trainer.jit.strategies import STRATEGY_NAMES

        if len(STRATEGY_NAMES) == self.config.model.output_dim:
            self.class_names = list(STRATEGY_NAMES)
        if fit_normalizer:
            self.fit_normalizer(features)
        return self.normalize(features), labels

    # -------------------------------------------------------------------- model
    def create_model(self, input_dim: Optional[int] = None, sequence_length: Optional[int] = None) -> keras.Model:
        """Builds the network of `config.model` for `input_dim` features.

        Sequence models (`lstm`, `cnn_lstm`) take `(sequence_length, input_dim)`
        windows; `sequence_length` defaults to `model.sequence_length`.

        Raises:
            ConfigError: `input_dim` contradicts `model.input_dim`.
        """
        configured = self.config.model.input_dim
        if input_dim is None:
            input_dim = configured
        if input_dim is None:
            raise ConfigError("model.input_dim is null and create_model() got no input_dim")
        if configured is not None and input_dim != configured:
            raise ConfigError(
                f"model.input_dim: config says {configured} but create_model got input_dim={input_dim}"
            )
        # `Normalization.mean` is only set when the layer is built; `input_mean` holds the stats.
        fitted = None if self._normalizer is None else np.shape(self._normalizer.input_mean)[-1]
        if fitted is not None and fitted != input_dim:
            raise ConfigError(
                f"create_model(input_dim={input_dim}) does not match the {fitted} "
                "features the normalizer was fitted on"
            )
        set_seed(self.config.training.seed)
        policy = precision.policy_name(self.config.training.mixed_precision)
        if sequence_length is None and self.config.model.type in ("lstm", "cnn_lstm"):
            sequence_length = self.config.model.sequence_length
        shape = (input_dim,) if sequence_length is None else (sequence_length, input_dim)
        self.model = build_model(self.config.model, shape, policy)
        return self.model

    def _require_model(self) -> keras.Model:
        if self.model is None:
            raise ModelError("no model yet: call create_model() or load_model() first")
        return self.model

    @property
    def is_classifier(self) -> bool:
        """Whether targets are classes (a softmax head) rather than real values."""
        return self.config.model.output_activation == "softmax"

    def _labels(self, y: Any, name: str) -> np.ndarray:
        y = np.asarray(y)
        outputs = self.config.model.output_dim
        if not self.is_classifier:
            targets = as_feature_matrix(y.reshape(-1, 1) if y.ndim == 1 else y, outputs, name)
            return targets
        if y.ndim == 1:
            return one_hot(y.tolist(), outputs, name)
        if y.ndim != 2 or y.shape[1] != self.config.model.output_dim:
            raise DataError(
                f"{name}: expected one-hot labels of shape (n, {self.config.model.output_dim}) or "
                f"class indices of shape (n,), got {y.shape}"
            )
        check_one_hot(y, name)
        return y.astype("float32")

    def _split(self, data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
        X, y = check_pair(data, name, self.input_dim)
        return X, self._labels(y, f"{name}[1] (y)")

    def train(
        self,
        training_data: tuple[Any, Any],
        validation_data: Optional[tuple[Any, Any]] = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
    ) -> TrainingHistory:
        """Trains the model through the shared `fit`.

        Args:
            training_data: `(X, y)`: normalized features (as `prepare_training_data`
                returns them, or your own ready arrays) and one-hot labels or class
                indices.
            validation_data: Optional `(X_val, y_val)`; without it
                `training.validation_split` of the training data is held out.
            callbacks: Extra Keras callbacks.

        Returns:
            The `TrainingHistory` (also kept as `self.history`).
        """
        X, y = self._split(training_data, "training_data")
        if self.model is None:
            self.create_model(X.shape[-1], sequence_length=X.shape[1] if X.ndim == 3 else None)
        validation = self._split(validation_data, "validation_data") if validation_data else None
        self.history = fit(
            self.model,
            X,
            y,
            config=self.config.training,
            validation_data=validation,
            callbacks=callbacks,
            save_model_fn=lambda _, path: self.save_model(path),
        )
        return self.history

    def evaluate(self, test_data: tuple[Any, Any]) -> dict[str, float]:
        """Loss and metrics on `(X, y)` normalized features and labels."""
        model = self._require_model()
        X, y = self._split(test_data, "test_data")
        if model.optimizer is None or not model.compiled:
            from keras_trainer.core.fit import compile_model

            compile_model(model, self.config.training)
        results = model.evaluate(X, y, batch_size=self.config.training.batch_size, verbose=0, return_dict=True)
        return {name: float(value) for name, value in results.items()}

    def evaluation_report(self, test_data: tuple[Any, Any]):
        """A full evaluation report: for classes, precision, recall, F1, ROC-AUC and the
        confusion matrix; for real-valued targets, MSE, MAE, RMSE and R2.

        Args:
            test_data: `(X, y)` normalized features and labels, as for `evaluate`.

        Returns:
            A `keras_trainer.core.evaluation.EvaluationReport` with class names.
        """
        from keras_trainer.core.evaluation import ModelEvaluator

        model = self._require_model()
        X, y = self._split(test_data, "test_data")
        if not self.is_classifier:
            evaluator = ModelEvaluator(model, task="regression")
            return evaluator.evaluate(X, y, batch_size=self.config.training.batch_size)
        evaluator = ModelEvaluator(model, task="classification", class_names=self.class_names)
        return evaluator.evaluate(X, np.argmax(y, axis=-1), batch_size=self.config.training.batch_size)

    # -------------------------------------------------------------- prediction
    def serving_model(self) -> keras.Model:
        """The model that is saved: raw features -> normalization -> network."""
        return with_normalization(self._require_model(), self.normalizer, "jit_strategy_model")

    def predict(self, features: Any) -> np.ndarray:
        """Class probabilities for RAW features `(n, input_dim)` (normalized inside)."""
        model = self._require_model()
        normalized = self.normalize(features)
        return np.asarray(keras.ops.convert_to_numpy(model(normalized, training=False)))

    def predict_strategy(self, features: Any) -> np.ndarray:
        """Index of the most likely strategy for each row of RAW features."""
        return np.argmax(self.predict(features), axis=-1)

    def predict_ir(self, ir_samples: Sequence[str], runtime_data: Sequence[dict]) -> np.ndarray:
        """Class probabilities straight from IR text and runtime metrics."""
        return self.predict(self.extract_features(ir_samples, runtime_data))

    # ------------------------------------------------------------- persistence
    def metadata(self) -> dict[str, Any]:
        """What travels inside the saved file besides the network."""
        normalizer = self.normalizer
        return {
            "task": TASK,
            "feature_names": self.feature_names,
            "class_names": list(self.class_names),
            "normalization": {
                "mean": np.asarray(normalizer.mean).reshape(-1).tolist(),
                "variance": np.asarray(normalizer.variance).reshape(-1).tolist(),
            },
            "feature_config": self.config.features.to_dict(),
            "config": self.config.to_dict(),
        }

    def save_model(self, model_path: str | os.PathLike) -> str:
        """Saves the serving model with its metadata to `.keras` or `.h5`, atomically."""
        return persistence.save_model(self.serving_model(), model_path, self.metadata())

    def load_model(self, model_path: str | os.PathLike) -> keras.Model:
        """Loads a file saved by `save_model` (any backend); restores stats and config.

        Returns:
            The network (also `self.model`).

        Raises:
            CheckpointError: missing or corrupt file, or not a JIT strategy model.
        """
        serving, metadata = persistence.load_model(model_path)
        networks = [layer for layer in serving.layers if isinstance(layer, keras.Model)]
        normalizer = find_normalization(serving)
        if normalizer is None or len(networks) != 1:
            raise CheckpointError(
                f"{os.fspath(model_path)}: not a JIT strategy model saved by ModelTrainer "
                f"(task={metadata.get('task')!r})"
            )
        if "config" in metadata:
            self.config = load_jit_config(metadata["config"])
        self.model, self._normalizer = networks[0], normalizer
        class_names = metadata.get("class_names", self.class_names)
        outputs = int(self.model.output_shape[-1])
        if not (
            isinstance(class_names, list)
            and len(class_names) == outputs
            and all(isinstance(name, str) for name in class_names)
        ):
            raise CheckpointError(
                f"{os.fspath(model_path)}: metadata 'class_names' must be a list of {outputs} "
                f"strings, got {class_names!r:.200}"
            )
        self.class_names = class_names
        if "feature_config" in metadata and self._feature_extractor is None:
            self.config.features = FeatureConfig.from_dict(metadata["feature_config"], "features")
        self.history = None
        return self.model


def load_jit_model(path: str | os.PathLike) -> ModelTrainer:
    """Loads a JIT strategy model saved by `ModelTrainer.save_model` (the `jit_strategy` task).

    Raises:
        CheckpointError: missing or corrupt file, or not a JIT strategy model.
    """
    trainer = ModelTrainer({})
    trainer.load_model(path)
    return trainer
