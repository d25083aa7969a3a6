"""The `tuning` config section: search method, budget, metric and search space.

`TuningConfig` (also exported under its older name `AutoTrainerConfig`) and
`HyperparameterSpace` are declared with `keras_trainer.config.option`, so a JSON
`tuning` section validates into them with errors naming the key path, and their
JSON Schema is generated. Constructing them in Python validates too.

Example (JSON):

    "tuning": {
      "search_method": "bayesian", "max_trials": 20, "metric": "accuracy",
      "max_epochs": 30, "early_stopping_patience": 5,
      "hyperparameter_space": {"learning_rates": [1e-3, 3e-3], "batch_sizes": [32, 64],
                               "optimizers": ["adam", "adamw"], "dropout_rates": [0.0, 0.2],
                               "weight_decay": [0.0, 1e-4]}
    }
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from typing import Literal, Optional, Union

from keras_trainer.config.fields import ConfigSection, option
from keras_trainer.errors import ConfigError


class OptimizerType(str, enum.Enum):
    """Optimizers the search can pick (Keras optimizers of the same names)."""

    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"
    RMSPROP = "rmsprop"


OPTIMIZERS = tuple(member.value for member in OptimizerType)
SEARCH_METHODS = ("grid", "random", "bayesian", "hyperband")


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unique(values: list) -> list:
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


# Metric names `keras.metrics.get` accepts in the pinned Keras (3.15), so the config can
# check `tuning.metric` without importing Keras; tests/tuning checks the list is current.
KERAS_METRIC_NAMES = (
    "accuracy",
    "auc",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "concordance_correlation",
    "cosine_similarity",
    "f1_score",
    "f_beta_score",
    "false_negatives",
    "false_positives",
    "hinge",
    "kl_divergence",
    "log_cosh_error",
    "mae",
    "mape",
    "mean",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "pearson_correlation",
    "poisson",
    "precision",
    "r2_score",
    "recall",
    "root_mean_squared_error",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "sum",
    "top_k_categorical_accuracy",
    "true_negatives",
    "true_positives",
)
TRADING_METRICS = ("sharpe", "sortino")
#: Runtime objectives of the JIT strategy model (`keras_trainer.jit.model.choices`), minimized.
RUNTIME_METRICS = ("regret", "geomean_regret")


@dataclasses.dataclass
class HyperparameterSpace(ConfigSection):
    """The values tried for each hyperparameter (each list is one `Choice`)."""

    section_path = "tuning.hyperparameter_space"

    learning_rates: list[float] = option(
        default_factory=lambda: [1e-4, 5e-4, 1e-3, 5e-3, 1e-2],
        exclusive_minimum=0.0,
        min_items=1,
        description="Initial learning rates.",
    )
    batch_sizes: list[int] = option(
        default_factory=lambda: [16, 32, 64, 128, 256],
        exclusive_minimum=0,
        min_items=1,
        description="Training batch sizes (each trial really trains with its batch size).",
    )
    optimizers: list[str] = option(
        default_factory=lambda: ["adam", "adamw", "sgd"],
        min_items=1,
        description="Optimizer names: adam, adamw, sgd, rmsprop.",
    )
    dropout_rates: list[float] = option(
        default_factory=lambda: [0.0, 0.1, 0.2, 0.3],
        minimum=0.0,
        exclusive_maximum=1.0,
        min_items=1,
        description="Dropout rates passed to the model factory as dropout_rate.",
    )
    weight_decay: list[float] = option(
        default_factory=lambda: [0.0, 1e-5, 1e-4],
        minimum=0.0,
        min_items=1,
        description="Decoupled weight decay of the optimizer.",
    )

    def __post_init__(self):
        self.optimizers = [o.value if isinstance(o, OptimizerType) else o for o in self.optimizers]
        self.validate("tuning.hyperparameter_space")

    def validate(self, path: str) -> None:
        for field in dataclasses.fields(self):
            values = getattr(self, field.name)
            if not isinstance(values, (list, tuple)) or len(values) == 0:
                raise ConfigError(
                    f"{_at(path, field.name)}: the search space is empty; give at least one value, "
                    f"got {values!r}"
                )
        for index, name in enumerate(self.optimizers):
            if name not in OPTIMIZERS:
                raise ConfigError(
                    f"{_at(path, 'optimizers')}[{index}]: unknown optimizer {name!r} "
                    f"(valid: {', '.join(OPTIMIZERS)})"
                )
        for name, low, inclusive in (
            ("learning_rates", 0.0, False),
            ("batch_sizes", 0, False),
            ("dropout_rates", 0.0, True),
            ("weight_decay", 0.0, True),
        ):
            for index, value in enumerate(getattr(self, name)):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or (value < low if inclusive else value <= low)
                ):
                    raise ConfigError(
                        f"{_at(path, name)}[{index}]: must be a number {'>=' if inclusive else '>'} {low}, got {value!r}"
                    )
        for index, value in enumerate(self.dropout_rates):
            if value >= 1.0:
                raise ConfigError(
                    f"{_at(path, 'dropout_rates')}[{index}]: must be below 1, got {value!r}"
                )
        for index, value in enumerate(self.batch_sizes):
            if not isinstance(value, int):
                raise ConfigError(
                    f"{_at(path, 'batch_sizes')}[{index}]: must be an integer, got {value!r}"
                )

    def choices(self) -> dict[str, list]:
        """Hyperparameter name -> distinct values, as the tuner declares them."""
        return {
            "learning_rate": _unique([float(v) for v in self.learning_rates]),
            "batch_size": _unique([int(v) for v in self.batch_sizes]),
            "optimizer": _unique([str(v) for v in self.optimizers]),
            "dropout_rate": _unique([float(v) for v in self.dropout_rates]),
            "weight_decay": _unique([float(v) for v in self.weight_decay]),
        }

    def size(self) -> int:
        """Number of combinations (what a grid search runs at most)."""
        total = 1
        for values in self.choices().values():
            total *= len(values)
        return total


@dataclasses.dataclass
class TuningConfig(ConfigSection):
    """How `AutoTrainer` searches: method, budget, objective, epochs, where results go."""

    section_path = "tuning"

    search_method: Literal["grid", "random", "bayesian", "hyperband"] = option(
        "random",
        description=(
            "KerasTuner search: grid (every combination, up to max_trials), random, bayesian "
            "(Gaussian-process optimization) or hyperband (successive halving of epochs)."
        ),
    )
    max_trials: int = option(
        10,
        exclusive_minimum=0,
        description="Most trials (hyperparameter combinations) to run; also caps hyperband.",
    )
    metric: str = option(
        "loss",
        description=(
            "Objective on the validation data: sharpe, sortino, regret, geomean_regret (the "
            "JIT strategy model's runtime regret, minimized), accuracy, loss, or a Keras "
            "metric name (mae, auc, ...); 'val_' is added as Keras logs it."
        ),
    )
    maximize_metric: Optional[bool] = option(
        None,
        description="Whether higher is better; null infers it (loss and error metrics are minimized).",
    )
    early_stopping_patience: int = option(
        5,
        minimum=0,
        description="Epochs without improvement of the metric before a trial stops; 0 turns it off.",
    )
    min_epochs: int = option(
        1,
        exclusive_minimum=0,
        description="Epochs every trial trains before early stopping may watch it.",
    )
    max_epochs: int = option(20, exclusive_minimum=0, description="Most epochs of a trial.")
    directory: str = option(
        "runs/tuning",
        description="Results folder; each symbol gets a sub-folder, and rerunning resumes there.",
    )
    seed: Optional[int] = option(
        42, minimum=0, description="Seeds the search and every trial's training."
    )
    annualization_factor: float = option(
        252.0,
        exclusive_minimum=0.0,
        description="Periods per year for sharpe/sortino (252 trading days); ratios scale by its square root.",
    )
    hyperband_factor: int = option(3, minimum=2, description="Hyperband's reduction factor.")
    max_consecutive_failures: int = option(
        3, exclusive_minimum=0, description="Consecutive failed trials that abort the search."
    )
    normalize: bool = option(
        True,
        description="Standardize features with statistics of the training data (stored in the model).",
    )
    retrain_best: bool = option(
        True, description="Retrain the best hyperparameters from scratch for the returned model."
    )
    loss: Optional[str] = option(
        None, description="Loss name; null infers it from the model's output activation."
    )
    verbose: Literal[0, 1, 2] = option(0, description="Keras/KerasTuner verbosity.")
    cv_folds: int = option(
        1,
        minimum=1,
        description=(
            "Cross-validation folds per trial: above 1, a trial's score is the mean over "
            "contiguous folds of the training data (val_data is then unused by the search)."
        ),
    )
    population_size: Union[int, Literal["auto"]] = option(
        1,
        minimum=1,
        description=(
            "Trials asked of the oracle at once (a wave) and trained as populations: those "
            "sharing batch size, optimizer (adam and adamw take the same step) and whether "
            "dropout is on train together through "
            "fit_population (one compiled program on JAX, one batched step per batch on torch "
            "without dropout, otherwise one after another). 1 trains trials one by one. "
            "'auto' sizes waves on JAX and torch: as many members as fit in half the free "
            "device (or host) memory, measured from one member's weights, optimizer state and "
            "batch of activations, at most max_trials and 4096; on TensorFlow it is 1. Not "
            "with hyperband, cv_folds, "
            "min_epochs above 1, trading metrics or workers."
        ),
    )
    hyperparameter_space: HyperparameterSpace = option(
        default_factory=HyperparameterSpace, description="The values to try."
    )

    def __post_init__(self):
        if isinstance(self.hyperparameter_space, dict):
            self.hyperparameter_space = HyperparameterSpace.from_dict(self.hyperparameter_space)
        self.validate("tuning")

    def validate(self, path: str = "tuning") -> None:
        """Checks the whole section (run again by `AutoTrainer.optimize`).

        Raises:
            ConfigError: naming the key path of the first problem.
        """
        if self.search_method not in SEARCH_METHODS:
            raise ConfigError(
                f"{_at(path, 'search_method')}: must be one of {', '.join(SEARCH_METHODS)}, got {self.search_method!r}"
            )
        for name in ("max_trials", "min_epochs", "max_epochs", "max_consecutive_failures"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{_at(path, name)}: must be an integer >= 1, got {value!r}")
        if not isinstance(self.early_stopping_patience, int) or self.early_stopping_patience < 0:
            raise ConfigError(
                f"{_at(path, 'early_stopping_patience')}: must be an integer >= 0, got {self.early_stopping_patience!r}"
            )
        if self.min_epochs > self.max_epochs:
            raise ConfigError(
                f"{_at(path, 'min_epochs')}: {self.min_epochs} is more than max_epochs={self.max_epochs}"
            )
        if not isinstance(self.hyperparameter_space, HyperparameterSpace):
            raise ConfigError(
                f"{_at(path, 'hyperparameter_space')}: must be a HyperparameterSpace, got "
                f"{type(self.hyperparameter_space).__name__}"
            )
        self.hyperparameter_space.validate(_at(path, "hyperparameter_space"))
        check_metric_name(self.metric, _at(path, "metric"))
        size = self.population_size
        if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(
                f"{_at(path, 'population_size')}: must be an integer >= 1 or 'auto', got {size!r}"
            )
        if size != 1:  # "auto" asks for populations too, whatever the backend turns it into
            conflict = {
                "search_method": self.search_method == "hyperband"
                and "hyperband resumes trials with more epochs, one at a time",
                "cv_folds": self.cv_folds > 1 and "a population trains on one split",
                "min_epochs": self.min_epochs > 1
                and "a population's early stopping watches every epoch",
                "metric": self.metric.removeprefix("val_") in (*TRADING_METRICS, *RUNTIME_METRICS)
                and "trading and runtime metrics need a callback per trial",
            }
            for key, reason in conflict.items():
                if reason:
                    raise ConfigError(
                        f"{_at(path, 'population_size')}: {size} does not go with "
                        f"{key}={getattr(self, key)!r} ({reason}); set population_size to 1"
                    )


def check_metric_name(metric: object, path: str = "tuning.metric") -> str:
    """Checks a search metric name ("loss", "sharpe", "accuracy", "val_mae"); returns it.

    Raises:
        ConfigError: not a string, or an unknown name (the message lists the valid ones).
    """
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{path}: must be a metric name, got {metric!r}")
    base = metric[4:] if metric.startswith("val_") else metric
    builtin = (*TRADING_METRICS, *RUNTIME_METRICS, "accuracy", "loss")
    if base in builtin or base in KERAS_METRIC_NAMES:
        return metric
    valid = list(builtin) + [n for n in KERAS_METRIC_NAMES if n not in builtin]
    close = difflib.get_close_matches(base, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{path}: unknown metric {metric!r}{hint}. Valid: {', '.join(builtin)}, or a Keras "
        f"metric name: {', '.join(n for n in valid if n not in builtin)}"
    )


# The older name for the same settings (see keras_trainer.compat).
AutoTrainerConfig = TuningConfig
