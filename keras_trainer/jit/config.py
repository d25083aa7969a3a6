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
from typing import Literal, Union

from keras_trainer.config import load_section
from keras_trainer.config.fields import ConfigSection, option
from keras_trainer.config.schema import TrainerConfig


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


@dataclasses.dataclass
class OutputConfig(ConfigSection):
    """Where results are written."""

    model_path: str = option(
        "models/jit_optimizer.keras", description="Saved model (.keras or .h5)."
    )


@dataclasses.dataclass
class JITConfig(TrainerConfig):
    """A whole JIT config file: the shared sections plus `features` and `output`."""

    features: FeatureConfig = option(
        default_factory=FeatureConfig, description="JIT feature extraction."
    )
    output: OutputConfig = option(default_factory=OutputConfig, description="Output paths.")


def load_jit_config(
    source: Union[str, os.PathLike, dict, TrainerConfig, None] = None,
) -> JITConfig:
    """Loads and validates a JIT config from a JSON file path, a dict or a config.

    Raises:
        ConfigError: naming the file, or the key path and bad value.
    """
    return load_section(JITConfig, source)


__all__ = [
    "FeatureConfig",
    "JITConfig",
    "OutputConfig",
    "RuntimeMetricSpec",
    "load_jit_config",
]
