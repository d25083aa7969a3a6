"""The JIT family's config: feature extraction, output path, and the JIT config file.

`JITConfig` is the general `TrainerConfig` (`model`, `training`, `data`, `tuning`)
plus the JIT sections `features` and `output`; `config/model_config.json` is one.

Example:

>>> config = load_jit_config({"features": {"static_features": "extended"}})
>>> config.output.model_path
'models/jit_optimizer.keras'
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal, Optional, Union

from keras_trainer.config import load_section
from keras_trainer.config.aliases import apply_aliases
from keras_trainer.config.fields import ConfigSection, option
from keras_trainer.config.schema import TrainerConfig, TrainingConfig, _at
from keras_trainer.errors import ConfigError


@dataclasses.dataclass
class RuntimeMetricSpec(ConfigSection):
    """One runtime metric used as a feature."""

    key: str = option(description="Key in each runtime-metrics dict.")
    transform: Literal["identity", "log1p"] = option(
        "identity", description="Applied before normalization; log1p suits times and counts."
    )


def _default_runtime_metrics() -> list[RuntimeMetricSpec]:
    return [
        RuntimeMetricSpec("exec_time_ns", "log1p"),
        RuntimeMetricSpec("compile_time_ms", "log1p"),
        RuntimeMetricSpec("code_size_bytes", "log1p"),
    ]


@dataclasses.dataclass
class FeatureConfig(ConfigSection):
    """Which features the JIT strategy model sees (static IR features + runtime metrics)."""

    static_features: Literal["default", "extended", "autophase"] = option(
        "default",
        description=(
            "Static IR feature set: 'default' (9 features, see docs/features.md), "
            "'extended' (24 instruction-kind and CFG counts) or "
            "'autophase' (the 56 Autophase features of CompilerGym)."
        ),
    )
    runtime_metrics: list[RuntimeMetricSpec] = option(
        default_factory=_default_runtime_metrics,
        description="Runtime metrics appended after the static features, in order.",
    )
    static_transform: Literal["counts", "log1p", "density"] = option(
        "density",
        description=(
            "How static counts enter the model: 'counts' (raw, the seed's), 'log1p' (log of "
            "every count) or 'density' (log1p of the size counts, every other count per "
            "instruction); see docs/features.md."
        ),
    )


#: The built-in strategies' names (`keras_trainer.jit.strategies.STRATEGIES`), cheapest first.
BUILT_IN_STRATEGY_NAMES = ("O0", "O1", "O2", "O3", "O3-scalar")

#: The fields that make a strategy's compiler pipeline.
PIPELINE_FIELDS = (
    "speed_level",
    "loop_vectorization",
    "slp_vectorization",
    "loop_unrolling",
    "codegen_level",
)


def check_pipeline(name: str, fields: dict, where: str) -> None:
    """Raises `ConfigError` when a strategy that is not built in gives part of its pipeline.

    Either every pipeline field or none (known by its measured times only)."""
    if name in BUILT_IN_STRATEGY_NAMES:
        return
    missing = [key for key in PIPELINE_FIELDS if fields.get(key) is None]
    if missing and len(missing) < len(PIPELINE_FIELDS):
        raise ConfigError(
            f"{where}: strategy {name!r} is not built in ({list(BUILT_IN_STRATEGY_NAMES)}) and "
            f"gives part of its pipeline: give {missing} too, or no pipeline field at all (a "
            "strategy known only by its measured times, enough for training)"
        )


@dataclasses.dataclass
class StrategySpec(ConfigSection):
    """One optimization strategy the JIT strategy model chooses between."""

    name: str = option(
        description=(
            "Class name of the strategy: a built-in one (O0, O1, O2, O3, O3-scalar), or your "
            "own, with every pipeline field or none (known only by its measured times: enough "
            "for training, not for compiling)."
        )
    )
    speed_level: Optional[int] = option(
        None,
        minimum=0,
        maximum=3,
        description="IR pipeline level 0-3; null takes the built-in strategy's of that name.",
    )
    loop_vectorization: Optional[bool] = option(None, description="Run the loop vectorizer.")
    slp_vectorization: Optional[bool] = option(None, description="Run the SLP vectorizer.")
    loop_unrolling: Optional[bool] = option(None, description="Allow loop unrolling.")
    codegen_level: Optional[int] = option(
        None, minimum=0, maximum=3, description="Code generation level 0-3."
    )
    compile_rank: Optional[int] = option(
        None,
        minimum=0,
        description=(
            "Place in the compile-cost order (0 = cheapest; ties between measured times go to "
            "the lowest); null: the built-in's. If any strategy has none, ties go by the "
            "order of jit.strategies instead (with a warning naming them)."
        ),
    )

    def validate(self, path: str) -> None:
        check_pipeline(self.name, self.to_dict(), path or "strategy")


def _default_strategies() -> list[StrategySpec]:
    return [StrategySpec(name) for name in BUILT_IN_STRATEGY_NAMES]


def is_default_strategies(specs: list[StrategySpec]) -> bool:
    """Whether `jit.strategies` is the built-in five by name only, as when a config omits it."""
    return [spec.to_dict() for spec in specs] == [s.to_dict() for s in _default_strategies()]


@dataclasses.dataclass
class FallbackConfig(ConfigSection):
    """Falling back to a fixed strategy when the model is not confident."""

    enabled: bool = option(
        False, description="Fall back when the top probability is below the threshold."
    )
    strategy: Optional[str] = option(
        None,
        description="Fixed strategy to fall back to; null: the best fixed strategy on the training data.",
    )
    threshold: Optional[float] = option(
        None,
        minimum=0.0,
        maximum=1.0,
        description="Probability threshold; null: chosen on the validation data (lowest total runtime).",
    )
    confidence: float = option(
        0.95,
        minimum=0.0,
        maximum=1.0,
        description=(
            "A chosen threshold that lets the model choose must save time against always "
            "falling back in at least this share of bootstrap resamples of the validation rows, "
            "or, when the samples carry groups (program families), pass a one-sided sign test "
            "over the groups at level 1 - confidence; 0 takes the lowest validation time as is."
        ),
    )


@dataclasses.dataclass
class StrategyChoiceConfig(ConfigSection):
    """The strategies, the labelling rule, class weighting and the fallback of the JIT model."""

    strategies: list[StrategySpec] = option(
        default_factory=_default_strategies,
        min_items=1,
        description="Strategies in class order (the model's class names).",
    )
    tie_tolerance: float = option(
        0.03,
        minimum=0.0,
        description=(
            "Labels from measured times: strategies within this relative margin of the fastest "
            "tie, and the cheapest to compile (lowest compile_rank) wins; without every "
            "compile_rank, the first in jit.strategies wins."
        ),
    )
    class_weighting: Literal["none", "balanced", "sqrt"] = option(
        "sqrt",
        description=(
            "Per-sample weights from class frequencies: none, balanced (1/freq) or sqrt "
            "(1/sqrt(freq)); training.class_weights, when set, takes its place."
        ),
    )
    fallback: FallbackConfig = option(
        default_factory=FallbackConfig, description="Fixed-strategy fallback for low confidence."
    )

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.strategies]

    def validate(self, path: str) -> None:
        names = self.names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{_at(path, 'strategies')}: duplicate strategy names {duplicates}")
        if self.fallback.strategy is not None and self.fallback.strategy not in names:
            raise ConfigError(
                f"{_at(path, 'fallback.strategy')}: {self.fallback.strategy!r} is not one of the "
                f"strategies {names}"
            )


@dataclasses.dataclass
class OutputConfig(ConfigSection):
    """Where results are written."""

    model_path: str = option(
        "models/jit_optimizer.keras", description="Saved model (.keras or .h5)."
    )
    overwrite: bool = option(
        False,
        description="train may replace an existing model_path file (as --overwrite); "
        "else it refuses before training.",
    )


#: The JIT family's learning-rate schedule where a config sets none: halve the rate
#: after 5 epochs without a better validation loss (the document's "learning rate
#: scheduling"; early stopping waits 10).
JIT_LR_SCHEDULE = {"name": "reduce_on_plateau", "factor": 0.5, "patience": 5}


@dataclasses.dataclass
class JITConfig(TrainerConfig):
    """A whole JIT config file: the shared sections plus `features` and `output`.

    Where the file sets no `training.lr_schedule`, the JIT family schedules the
    learning rate as the JIT design document's `train` does: `JIT_LR_SCHEDULE`.
    """

    @classmethod
    def upgrade(cls, data: Any) -> Any:
        """Fills in `training.lr_schedule` (`JIT_LR_SCHEDULE`) where the config has none."""
        if not isinstance(data, dict) or not isinstance(data.get("training", {}), dict):
            return data
        training = apply_aliases(TrainingConfig, data.get("training", {}), "training")
        if "lr_schedule" in training:
            return data
        return {**data, "training": {**training, "lr_schedule": dict(JIT_LR_SCHEDULE)}}

    features: FeatureConfig = option(
        default_factory=FeatureConfig, description="JIT feature extraction."
    )
    output: OutputConfig = option(default_factory=OutputConfig, description="Output paths.")
    jit: StrategyChoiceConfig = option(
        default_factory=StrategyChoiceConfig,
        description="JIT strategies, labelling tie rule, class weighting and fallback.",
    )

    def validate(self, path: str) -> None:
        # The model has one output per strategy unless the config says otherwise.
        if self.model.output_dim is None:
            self.model.output_dim = len(self.jit.strategies)


def load_jit_config(
    source: Union[str, os.PathLike, dict, TrainerConfig, None] = None,
) -> JITConfig:
    """Loads and validates a JIT config from a JSON file path, a dict or a config.

    Raises:
        ConfigError: naming the file, or the key path and bad value.
    """
    return load_section(JITConfig, source)


__all__ = [
    "FallbackConfig",
    "StrategyChoiceConfig",
    "StrategySpec",
    "FeatureConfig",
    "JITConfig",
    "OutputConfig",
    "RuntimeMetricSpec",
    "load_jit_config",
]
