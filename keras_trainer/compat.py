"""Older names of keras_trainer's public API, in one place.

Each name here is an alias of the current one (same object); new code uses the
current name. The modules that used to hold these names re-export them from here
only where existing user code imports them.

| old name | current name |
| --- | --- |
| `tabular.ModelConfig` | `tabular.TabularModelConfig` |
| `tabular.KerasModelFactory` | `tabular.ModelFactory` |
| `ArchitectureType.HYBRID` | `ArchitectureType.CNN_LSTM` (an enum alias, kept on the enum) |
| `tuning.AutoTrainerConfig` | `config.TuningConfig` |
| `keras_trainer.trainer.ModelTrainer` | `keras_trainer.jit.trainer.ModelTrainer` |
| `keras_trainer.config.FeatureConfig` (and `RuntimeMetricSpec`, `OutputConfig`) | |
|   | `keras_trainer.jit.config.FeatureConfig` (and the others) |
| `keras_trainer.ComparisonTable` (model comparison) | `core.evaluation.ModelComparison` |
| `tabular.ComparisonTable` (architecture comparison) | `tabular.ArchitectureComparison` (not aliased: the old name now means the model comparison) |
"""

from __future__ import annotations

import importlib
from typing import Any

ALIASES = {
    # old name: (module, current name)
    "ModelConfig": ("keras_trainer.tabular.config", "TabularModelConfig"),
    "KerasModelFactory": ("keras_trainer.tabular.factory", "ModelFactory"),
    "AutoTrainerConfig": ("keras_trainer.config.tuning", "TuningConfig"),
    "ModelTrainer": ("keras_trainer.jit.trainer", "ModelTrainer"),
    "FeatureConfig": ("keras_trainer.jit.config", "FeatureConfig"),
    "RuntimeMetricSpec": ("keras_trainer.jit.config", "RuntimeMetricSpec"),
    "OutputConfig": ("keras_trainer.jit.config", "OutputConfig"),
    "ComparisonTable": ("keras_trainer.core.comparison", "ModelComparison"),
}

__all__ = sorted(ALIASES)


def __getattr__(name: str) -> Any:
    if name not in ALIASES:
        raise AttributeError(f"module 'keras_trainer.compat' has no attribute {name!r}")
    module, current = ALIASES[name]
    return getattr(importlib.import_module(module), current)


def __dir__() -> list[str]:
    return __all__
