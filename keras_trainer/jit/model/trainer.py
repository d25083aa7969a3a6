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
import warnings
from collections.abc import Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import ConfigSource
from keras_trainer.core.building.models import build_model
from keras_trainer.core.inputs.data import (
    as_feature_matrix,
    check_feature_values,
    check_one_hot,
)
from keras_trainer.core.inputs.normalization import (
    feature_statistics,
    find_normalization,
    normalization_layer,
    with_normalization,
)
from keras_trainer.core.recording.history import TrainingHistory
from keras_trainer.core.saving import persistence
from keras_trainer.core.training import precision
from keras_trainer.core.training.class_weights import class_sample_weights
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import CheckpointError, ConfigError, DataError, ModelError
from keras_trainer.jit.config import FeatureConfig, JITConfig, load_jit_config

TASK = "jit_strategy"
COST_AWARE_LOSS = "expected_slowdown"


class PreparedData(tuple):
    """`(X, y)` as `prepare_training_data` returns it, plus the measured times.

    It unpacks as the seed's pair (`X, y = prepared`), and `train`,
    `evaluate` and `runtime_report` read `.times` (a `(n, k)` array of
    per-strategy times, or `None` when only class labels were given) when it
    is passed to them whole. Plain `(X, y)` and `(X, y, times)` tuples work
    too. `.groups` (each sample's program family, or `None`) makes the
    fallback rule count its evidence in groups (`choose_fallback_threshold`), and
    the validation rows whole groups. `.strategies` names the columns of `.times`.
    """

    def __new__(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        times: Optional[np.ndarray] = None,
        groups: Optional[np.ndarray] = None,
        strategies: Optional[Sequence[str]] = None,
    ):
        if groups is not None and len(groups) != len(X):
            raise DataError(f"groups has {len(groups)} entries but X has {len(X)} rows")
        data = super().__new__(cls, (X, y))
        data.times = times
        data.groups = None if groups is None else np.asarray(groups)
        data.strategies = None if strategies is None else list(strategies)
        return data

    @property
    def X(self) -> np.ndarray:
        return self[0]

    @property
    def y(self) -> np.ndarray:
        return self[1]

    def take(self, indices) -> PreparedData:
        """The rows `indices` (times and groups included)."""
        indices = np.asarray(indices)
        times = None if self.times is None else self.times[indices]
        groups = None if self.groups is None else self.groups[indices]
        return PreparedData(self[0][indices], self[1][indices], times, groups, self.strategies)


def one_hot(
    labels: Sequence[int], num_classes: int, name: str = "optimization_results"
) -> np.ndarray:
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
        names = self.config.jit.names
        self.class_names: list[str] = (
            list(names)
            if len(names) == self.config.model.output_dim
            else [f"class_{i}" for i in range(self.config.model.output_dim)]
        )
        #: Fallback rule `{"strategy", "threshold"}` set by `train` (config `jit.fallback`).
        self.fallback: Optional[dict] = None
        #: Majority class and best fixed strategy of the training data.
        self.training_baselines: dict[str, Any] = {}
        #: Where the held-out rows are (the CLI's `train` records the test split here).
        self.split: Optional[dict] = None
        self._warned_ranks: set = set()

    # ----------------------------------------------------------------- features
    @property
    def feature_extractor(self):
        """The IR + runtime feature extractor (built on first use)."""
        if self._feature_extractor is None:
            from keras_trainer.jit.llvm_ir.features import FeatureExtractor

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

    def extract_features(
        self, ir_samples: Sequence[str], runtime_data: Sequence[dict]
    ) -> np.ndarray:
        """Raw (unnormalized) features of IR samples plus their runtime metrics."""
        if len(ir_samples) != len(runtime_data):
            raise DataError(
                f"ir_samples has {len(ir_samples)} entries but runtime_data has {len(runtime_data)}"
            )
        features = np.asarray(
            self.feature_extractor.extract(ir_samples, runtime_data), dtype="float64"
        )
        check_feature_values(
            features, "features", self.feature_extractor.feature_names, row_name="sample"
        )
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
        optimization_results: Sequence[Any],
        fit_normalizer: bool = True,
        groups: Optional[Sequence[Any]] = None,
    ) -> PreparedData:
        """Extracts, normalizes and labels a dataset.

        Args:
            ir_samples: LLVM IR text of each sample.
            runtime_data: Runtime-metrics dict of each sample.
            optimization_results: For each sample, either the index of the best
                strategy (the seed API) or a dict of measured times keyed by
                strategy name (`{"O0": 5120, "O1": 2300, ...}`, every name of
                `jit.strategies`). From times, the label is the first (cheapest
                to compile) strategy within `jit.tie_tolerance` of the fastest,
                and the times are kept for the cost-aware loss and the runtime
                report.
            fit_normalizer: Compute normalization statistics from these samples
                (training data); `False` reuses the stored ones (test data).
            groups: Optional, each sample's program family (any label): the
                fallback threshold must then save time in more families than
                it loses in (a sign test), as unseen code comes in whole
                programs.

        Returns:
            A `PreparedData` `(X, y)`: normalized float32 features
            `(n, input_dim)` and one-hot float32 labels `(n, output_dim)`, with
            `.times` (`(n, output_dim)` or `None`).

        Raises:
            DataError: mismatched lengths, bad IR, bad metrics, labels or times,
                naming the sample index.
        """
        if len(optimization_results) != len(ir_samples):
            raise DataError(
                f"optimization_results has {len(optimization_results)} entries but ir_samples "
                f"has {len(ir_samples)}"
            )
        if len(ir_samples) == 0:
            raise DataError("prepare_training_data needs at least one sample, got none")
        if groups is not None and len(groups) != len(ir_samples):
            raise DataError(
                f"groups has {len(groups)} entries but ir_samples has {len(ir_samples)}"
            )
        times = None
        if any(isinstance(result, dict) for result in optimization_results):
            from keras_trainer.jit.model.choices import labels_from_times, times_matrix

            if len(self.class_names) != self.config.model.output_dim:
                raise ConfigError(
                    f"jit.strategies lists {len(self.class_names)} strategies but "
                    f"model.output_dim is {self.config.model.output_dim}"
                )
            preference = self.tie_preference
            if preference != [n for n in preference if n in self.class_names]:
                raise ConfigError(
                    f"jit.strategies {self.config.jit.names} are not the model's class names "
                    f"{self.class_names}"
                )
            times = times_matrix(optimization_results, self.class_names)
            optimization_results = labels_from_times(
                times, self.class_names, self.config.jit.tie_tolerance, preference
            ).tolist()
        labels = one_hot(optimization_results, self.config.model.output_dim)
        features = self.extract_features(ir_samples, runtime_data)
        if fit_normalizer:
            self.fit_normalizer(features)
        return PreparedData(self.normalize(features), labels, times, groups, self.class_names)

    # -------------------------------------------------------------------- model
    def create_model(
        self, input_dim: Optional[int] = None, sequence_length: Optional[int] = None
    ) -> keras.Model:
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

    def _split(self, data: Any, name: str) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise DataError(
                f"{name}: must be a tuple (X, y) or (X, y, times), got {type(data).__name__}"
            )
        width = self.input_dim
        X = as_feature_matrix(data[0], width, f"{name}[0] (X)")
        y = self._labels(data[1], f"{name}[1] (y)")
        if len(X) != len(y):
            raise DataError(f"{name}: X has {len(X)} rows but y has {len(y)}")
        times, _ = self._named_times(data, name)
        if times is not None:
            times = np.asarray(times, dtype=np.float64)
            if times.shape != (len(X), self.config.model.output_dim) or not np.all(times > 0):
                raise DataError(
                    f"{name}: times must be positive with shape ({len(X)}, "
                    f"{self.config.model.output_dim}), got shape {times.shape}"
                )
        return X, y, times

    def _named_times(self, data: Any, name: str) -> tuple[Optional[np.ndarray], list[str]]:
        """The times of `(X, y, times)` or a `PreparedData`, and the strategy of each column.

        Times may be an array (columns in class order), a list of `{strategy: time}`
        dicts or a DataFrame. Named times with the model's class names are put in
        class order; other names are taken column by column and keep their own
        names (so a report says which strategy a speed-up is against).
        """
        times = data[2] if len(data) == 3 else getattr(data, "times", None)
        names = getattr(data, "strategies", None)
        if times is None:
            return None, list(self.class_names)
        if hasattr(times, "columns") and hasattr(times, "to_numpy"):
            names, times = [str(c) for c in times.columns], times.to_numpy(dtype="float64")
        elif isinstance(times, (list, tuple)) and times and isinstance(times[0], dict):
            from keras_trainer.jit.model.choices import times_matrix

            names = list(times[0])
            times = times_matrix(times, names, f"{name}[2] (times)")
        names = list(self.class_names) if names is None else list(names)
        if names != self.class_names and sorted(names) == sorted(self.class_names):
            times = np.asarray(times)[:, [names.index(n) for n in self.class_names]]
            names = list(self.class_names)
        return times, names

    @property
    def tie_preference(self) -> list[str]:
        """Strategy names in the order that wins a tie in the labels: cheapest to
        compile first, or the order of `jit.strategies` when a strategy has no
        `compile_rank` (warned once, naming them)."""
        from keras_trainer.jit.strategies import (
            missing_ranks,
            strategies_from_config,
            tie_preference,
        )

        strategies = strategies_from_config(self.config.jit.strategies)
        missing = missing_ranks(strategies)
        if missing and tuple(missing) not in self._warned_ranks:
            self._warned_ranks.add(tuple(missing))
            warnings.warn(
                f"jit.strategies: no compile_rank for {missing}, so ties between measured "
                f"times (within jit.tie_tolerance) go to the first in the config's order "
                f"{[s.name for s in strategies]}; give every strategy a compile_rank to prefer "
                "the cheapest to compile",
                stacklevel=3,
            )
        return tie_preference(strategies)

    @property
    def cost_aware(self) -> bool:
        """Whether `training.loss` is the cost-aware `expected_slowdown`."""
        return self.config.training.loss == COST_AWARE_LOSS

    def _loss(self):
        if not self.cost_aware:
            return None
        from keras_trainer.core.building.losses import ExpectedSlowdownLoss

        return ExpectedSlowdownLoss(
            cross_entropy_weight=self.config.training.cross_entropy_weight,
            tie_tolerance=self.config.jit.tie_tolerance,
        )

    def _targets(self, y: np.ndarray, times: Optional[np.ndarray], name: str) -> np.ndarray:
        if not self.cost_aware:
            return y
        if times is None:
            raise DataError(
                f"{name}: training.loss 'expected_slowdown' needs measured times: pass "
                "prepare_training_data's result whole, or (X, y, times)"
            )
        from keras_trainer.jit.model.choices import speeds

        return speeds(times)

    def _sample_weights(self, y: np.ndarray) -> Optional[np.ndarray]:
        """Class weights of the one-hot labels `y`: `training.class_weights` when set,
        else `jit.class_weighting` (both through the shared `class_sample_weights`)."""
        scheme = self.config.training.class_weights
        if scheme is None:
            scheme = self.config.jit.class_weighting
        if scheme == "none" or not self.is_classifier:
            return None
        path = (
            "training.class_weights"
            if self.config.training.class_weights
            else "jit.class_weighting"
        )
        return class_sample_weights(y, scheme, self.class_names, path)

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
                indices; `(X, y, times)` or a `PreparedData` also carries the
                measured times (needed by the `expected_slowdown` loss and for a
                fallback threshold chosen on runtime).
            validation_data: Optional, the same forms; without it the last
                `training.validation_split` of the training data is held out.
            callbacks: Extra Keras callbacks.

        With `jit.class_weighting`, samples are weighted by their class
        frequency; with `jit.fallback.enabled`, the fallback strategy and
        threshold are chosen afterwards on the validation data (`self.fallback`).

        Returns:
            The `TrainingHistory` (also kept as `self.history`).
        """
        from keras_trainer.core.inputs.streaming import is_stream

        if is_stream(training_data):
            # A stream of (features, labels) batches, e.g. from `prepare_stream`.
            if self.model is None:
                self.create_model(self.input_dim)
            validation = validation_data
            if validation is not None and not is_stream(validation):
                X_val, y_val, times_val = self._split(validation, "validation_data")
                validation = (X_val, self._targets(y_val, times_val, "validation_data"))
            self.history = fit(
                self.model,
                training_data,
                config=self.config.training,
                validation_data=validation,
                callbacks=callbacks,
                loss=self._loss(),
                save_model_fn=lambda _, path: self.save_model(path),
            )
            self.fallback = None
            return self.history
        X, y, times = self._split(training_data, "training_data")
        if self.model is None:
            self.create_model(X.shape[-1], sequence_length=X.shape[1] if X.ndim == 3 else None)
        (X, y, times), (X_val, y_val, times_val, groups_val) = self._hold_out(
            training_data, validation_data, X, y, times
        )
        labels = np.argmax(y, axis=-1) if self.is_classifier else None
        if labels is not None:
            self.training_baselines = {
                "majority_class": self.class_names[
                    int(np.bincount(labels, minlength=y.shape[1]).argmax())
                ]
            }
            if times is not None:
                from keras_trainer.jit.model.choices import best_fixed_strategy

                self.training_baselines["best_fixed"] = self.class_names[best_fixed_strategy(times)]
        validation = None
        if X_val is not None:
            validation = (X_val, self._targets(y_val, times_val, "validation_data"))
        # Class weights come from the labels here (the targets may be speeds).
        config = self.config.training.replace(validation_split=0.0, class_weights=None)
        self.history = fit(
            self.model,
            X,
            self._targets(y, times, "training_data"),
            config=config,
            validation_data=validation,
            sample_weight=self._sample_weights(y),
            callbacks=callbacks,
            loss=self._loss(),
            save_model_fn=lambda _, path: self.save_model(path),
        )
        self.fallback = None
        if self.config.jit.fallback.enabled and self.is_classifier:
            self.fallback = self._choose_fallback(X_val, y_val, times_val, groups_val)
        return self.history

    def _hold_out(self, training_data, validation_data, X, y, times) -> tuple:
        """`((X, y, times), (X_val, y_val, times_val, groups_val))`: the given
        validation data, or `training.validation_split` of the training rows."""
        fraction = self.config.training.validation_split
        if validation_data:
            X_val, y_val, times_val = self._split(validation_data, "validation_data")
            return (X, y, times), (
                X_val,
                y_val,
                times_val,
                getattr(validation_data, "groups", None),
            )
        if fraction > 0 and self.is_classifier:
            from keras_trainer.jit.model.choices import validation_rows

            # Whole groups (program families) or a shuffled stratified share: the
            # fallback's threshold is chosen on these rows, so they must look like
            # unseen code, not like the last rows of the file.
            groups = getattr(training_data, "groups", None)
            train_rows, val_rows = validation_rows(
                np.argmax(y, axis=-1), groups, fraction, self.config.training.seed or 0
            )

            def take(rows):
                return X[rows], y[rows], None if times is None else times[rows]

            held_groups = None if groups is None else groups[val_rows]
            return take(train_rows), take(val_rows) + (held_groups,)
        if fraction > 0:
            from keras_trainer.core.inputs.data import split_validation

            # Regression targets (the cost model, sequences) keep Keras' held-out tail.
            train, held = split_validation(X, y, times, fraction)
            return train, held + (None,)
        return (X, y, times), (None, None, None, None)

    def prepare_stream(self, stream: Any) -> Any:
        """Fits the normalization on a shard stream in one pass; returns it normalizing its batches.

        Args:
            stream: A `keras_trainer.core.inputs.streaming.ShardDataset` of raw
                features, with class indices (classifiers) or values as targets.

        Returns:
            The same stream with a transform that normalizes each batch's
            features and one-hot encodes class indices: pass it to `train`.

        Example:

        >>> stream = trainer.prepare_stream(ShardDataset("shards/", target_columns=["label"]))
        >>> trainer.train(stream)
        """
        from keras_trainer.core.inputs.streaming import stream_statistics

        mean, variance = stream_statistics(stream)
        self._normalizer = normalization_layer(mean, variance)
        scale = (1.0 / np.sqrt(variance)).astype("float32")
        shift, outputs, classifier = (
            mean.astype("float32"),
            self.config.model.output_dim,
            self.is_classifier,
        )

        def transform(x, y):
            x = (x - shift) * scale
            if classifier:
                y = np.eye(outputs, dtype="float32")[y.astype("int64")]
            return x, y

        return stream.with_transform(transform)

    def _choose_fallback(self, X_val, y_val, times_val, groups_val) -> dict:
        from keras_trainer.jit.model.choices import choose_fallback_threshold

        settings = self.config.jit.fallback
        strategy = settings.strategy or self.training_baselines.get(
            "best_fixed", self.training_baselines.get("majority_class")
        )
        threshold = settings.threshold
        if threshold is None:
            if X_val is None:
                raise ConfigError(
                    "jit.fallback.threshold is null (choose on validation data) but there is no "
                    "validation data: pass validation_data, set training.validation_split, or set "
                    "the threshold"
                )
            probabilities = np.asarray(
                keras.ops.convert_to_numpy(self.model(X_val, training=False))
            )
            threshold = choose_fallback_threshold(
                probabilities,
                times_val,
                np.argmax(y_val, axis=-1),
                self.class_names.index(strategy),
                confidence=settings.confidence,
                seed=self.config.training.seed or 0,
                groups=groups_val,
            )
        return {"strategy": strategy, "threshold": float(threshold)}

    def evaluate(self, test_data: tuple[Any, Any]) -> dict[str, float]:
        """Loss and metrics on `(X, y)` normalized features and labels.

        `accuracy` is the model's most likely strategy against the labels (as in
        `evaluation_report`); with a trained fallback rule, `accuracy_with_fallback`
        is the strategy the rule picks.

        When the times are known (`PreparedData` or `(X, y, times)`), the
        runtime figures are added (with the fallback applied; with a fallback,
        `regret_without_fallback` too): `regret` and `geomean_regret` against the
        per-sample oracle, `speedup_vs_<strategy>` for every fixed strategy (named
        by the times' strategies),
        `speedup_vs_best_fixed`, and the majority-class baseline's
        `majority_accuracy` and `majority_regret` (see `runtime_report`).
        """
        model = self._require_model()
        X, y, times = self._split(test_data, "test_data")
        results: dict[str, float] = {}
        if not self.cost_aware or times is not None:
            if getattr(model, "optimizer", None) is None or not model.compiled:
                from keras_trainer.core.training.fit import compile_model

                compile_model(model, self.config.training, loss=self._loss())
            results = model.evaluate(
                X,
                self._targets(y, times, "test_data"),
                batch_size=self.config.training.batch_size,
                verbose=0,
                return_dict=True,
            )
            results = {name: float(value) for name, value in results.items()}
        if self.is_classifier:
            # `accuracy` is the model's own most likely strategy, as in the classification
            # report; what the fallback rule changes is reported beside it, by name.
            labels = np.argmax(y, -1)
            results["accuracy"] = float(
                np.mean(self.predict_strategy_normalized(X, fallback=False) == labels)
            )
            if self.fallback:
                results["accuracy_with_fallback"] = float(
                    np.mean(self.predict_strategy_normalized(X) == labels)
                )
        if times is not None and self.is_classifier:
            report = self.runtime_report(test_data)
            if self.fallback:
                without = self.runtime_report(test_data, fallback=False)
                results["regret_without_fallback"] = without["regret"]
            results["regret"] = report["regret"]
            results["geomean_regret"] = report["geomean_regret"]
            for name, row in report["fixed"].items():
                results[f"speedup_vs_{name}"] = row["speedup"]
            results["speedup_vs_best_fixed"] = report["speedup_vs_best_fixed"]
            results["majority_accuracy"] = report["majority"]["accuracy"]
            results["majority_regret"] = report["majority"]["regret"]
        return results

    def runtime_report(
        self, test_data: tuple[Any, Any, Any], fallback: Any = None
    ) -> dict[str, Any]:
        """The model's choices on `(X, y, times)` in runtime terms
        (`keras_trainer.jit.model.choices.runtime_report`; the fallback rule applies as
        in `predict_strategy`)."""
        from keras_trainer.jit.model.choices import runtime_report

        X, y, times = self._split(test_data, "test_data")
        if times is None:
            raise DataError("runtime_report needs measured times: (X, y, times) or PreparedData")
        _, names = self._named_times(test_data, "test_data")
        majority = self.training_baselines.get("majority_class")
        report = runtime_report(
            self.predict_strategy_normalized(X, fallback),
            times,
            names,
            labels=np.argmax(y, axis=-1),
            majority_class=self.class_names.index(majority)
            if majority in self.class_names
            else None,
        )
        report["fallback"] = self._fallback_rule(fallback)
        return report

    def evaluation_report(self, test_data: tuple[Any, Any]):
        """A full evaluation report: for classes, precision, recall, F1, ROC-AUC and the
        confusion matrix; for real-valued targets, MSE, MAE, RMSE and R2.

        Args:
            test_data: `(X, y)` normalized features and labels, as for `evaluate`.

        Returns:
            A `keras_trainer.core.evaluating.evaluation.EvaluationReport` with class names.
        """
        from keras_trainer.core.evaluating.evaluation import ModelEvaluator

        model = self._require_model()
        X, y, _ = self._split(test_data, "test_data")
        if not self.is_classifier:
            evaluator = ModelEvaluator(model, task="regression")
            return evaluator.evaluate(X, y, batch_size=self.config.training.batch_size)
        evaluator = ModelEvaluator(model, task="classification", class_names=self.class_names)
        return evaluator.evaluate(
            X, np.argmax(y, axis=-1), batch_size=self.config.training.batch_size
        )

    # -------------------------------------------------------------- prediction
    def serving_model(self) -> keras.Model:
        """The model that is saved: raw features -> normalization -> network."""
        return with_normalization(self._require_model(), self.normalizer, "jit_strategy_model")

    def predict(self, features: Any) -> np.ndarray:
        """Class probabilities for RAW features `(n, input_dim)` (normalized inside)."""
        model = self._require_model()
        normalized = self.normalize(features)
        return np.asarray(keras.ops.convert_to_numpy(model(normalized, training=False)))

    def _fallback_rule(self, fallback: Any) -> Optional[dict]:
        if fallback is None:
            return self.fallback
        if fallback is False:
            return None
        if isinstance(fallback, dict) and {"strategy", "threshold"} <= set(fallback):
            return fallback
        raise DataError(
            f"fallback: expected None (the trained rule), False (off) or "
            f"{{'strategy': name, 'threshold': p}}, got {fallback!r}"
        )

    def predict_strategy(self, features: Any, fallback: Any = None) -> np.ndarray:
        """Index of the chosen strategy for each row of RAW features.

        Args:
            features: raw feature rows.
            fallback: `None` applies the trained fallback rule (`self.fallback`,
                set when `jit.fallback.enabled`), `False` always takes the most
                likely strategy, and `{"strategy": name, "threshold": p}` falls
                back to `name` wherever the top probability is below `p`.
        """
        from keras_trainer.jit.model.choices import apply_fallback

        return apply_fallback(
            self.predict(features), self._fallback_rule(fallback), self.class_names
        )

    def predict_strategy_normalized(self, X: Any, fallback: Any = None) -> np.ndarray:
        """`predict_strategy` for NORMALIZED features (as `prepare_training_data` returns)."""
        from keras_trainer.jit.model.choices import apply_fallback

        model = self._require_model()
        probabilities = np.asarray(
            keras.ops.convert_to_numpy(model(as_feature_matrix(X, self.input_dim), training=False))
        )
        return apply_fallback(probabilities, self._fallback_rule(fallback), self.class_names)

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
            "fallback": self.fallback,
            "training_baselines": dict(self.training_baselines),
            "split": self.split,
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
            saved = dict(metadata["config"])
            # Files from before `features.static_transform` fed raw counts.
            if isinstance(saved.get("features"), dict):
                saved["features"] = {"static_transform": "counts", **saved["features"]}
            self.config = load_jit_config(saved)
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
            self.config.features = FeatureConfig.from_dict(
                {"static_transform": "counts", **metadata["feature_config"]}, "features"
            )
        self.fallback = metadata.get("fallback")
        self.training_baselines = dict(metadata.get("training_baselines") or {})
        self.split = metadata.get("split")
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
