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
| `keras_trainer.trainer.ModelTrainer` | `keras_trainer.jit.model.trainer.ModelTrainer` |
| `keras_trainer.config.FeatureConfig` (and `RuntimeMetricSpec`, `OutputConfig`) | |
|   | `keras_trainer.jit.config.FeatureConfig` (and the others) |
| `keras_trainer.ComparisonTable` (model comparison) | `core.evaluating.comparison.ModelComparison` |
| `tabular.ComparisonTable` (architecture comparison) | `tabular.ArchitectureComparison` (not aliased: the old name now means the model comparison) |
| `ModelFactory(...).test_architecture(...)`, `.compare_architectures(...)` | `tabular.test_architecture(...)`, `tabular.compare_architectures(...)` (the methods are gone: they made `tabular.factory` and `tabular.comparison` import each other) |
| `RunFolder.save_plots()`, `core.runs.add_run_arguments`, `start_run`, `finish_run` | `core.recording.plots.plot_run(run)`, `cli_args.add_run_arguments`, `start_run`, `finish_run` |

Modules that moved keep their old import path: `MOVED_MODULES` maps the old dotted
path to the current one, and `install_module_aliases` (run by `import
keras_trainer`) puts a finder on `sys.meta_path` that answers an old path with the
current module object itself, so `import keras_trainer.core.fit`, `from
keras_trainer.core.persistence import load_model`, a registry string
`"keras_trainer.jit.trainer:load_jit_model"` and `python -m keras_trainer.jit.worker`
all reach the module that lives at the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

ALIASES = {
    # old name: (module, current name)
    "ModelConfig": ("keras_trainer.tabular.config", "TabularModelConfig"),
    "KerasModelFactory": ("keras_trainer.tabular.factory", "ModelFactory"),
    "AutoTrainerConfig": ("keras_trainer.config.tuning", "TuningConfig"),
    "ModelTrainer": ("keras_trainer.jit.model.trainer", "ModelTrainer"),
    "FeatureConfig": ("keras_trainer.jit.config", "FeatureConfig"),
    "RuntimeMetricSpec": ("keras_trainer.jit.config", "RuntimeMetricSpec"),
    "OutputConfig": ("keras_trainer.jit.config", "OutputConfig"),
    "ComparisonTable": ("keras_trainer.core.evaluating.comparison", "ModelComparison"),
}

MOVED_MODULES = {
    # old module path: current module path (core and jit split into rooms, issue 29)
    "keras_trainer.core.atomic": "keras_trainer.core.saving.atomic",
    "keras_trainer.core.checkpoints": "keras_trainer.core.saving.checkpoints",
    "keras_trainer.core.comparison": "keras_trainer.core.evaluating.comparison",
    "keras_trainer.core.cross_validation": "keras_trainer.core.evaluating.cross_validation",
    "keras_trainer.core.data": "keras_trainer.core.inputs.data",
    "keras_trainer.core.determinism": "keras_trainer.core.training.determinism",
    "keras_trainer.core.distribution": "keras_trainer.core.training.distribution",
    "keras_trainer.core.ensemble": "keras_trainer.core.evaluating.ensemble",
    "keras_trainer.core.evaluation": "keras_trainer.core.evaluating.evaluation",
    "keras_trainer.core.fit": "keras_trainer.core.training.fit",
    "keras_trainer.core.fused": "keras_trainer.core.training.fused",
    "keras_trainer.core.history": "keras_trainer.core.recording.history",
    "keras_trainer.core.losses": "keras_trainer.core.building.losses",
    "keras_trainer.core.memory": "keras_trainer.core.training.memory",
    "keras_trainer.core.metrics": "keras_trainer.core.evaluating.metrics",
    "keras_trainer.core.models": "keras_trainer.core.building.models",
    "keras_trainer.core.normalization": "keras_trainer.core.inputs.normalization",
    "keras_trainer.core.optimizers": "keras_trainer.core.building.optimizers",
    "keras_trainer.core.persistence": "keras_trainer.core.saving.persistence",
    "keras_trainer.core.plots": "keras_trainer.core.recording.plots",
    "keras_trainer.core.population": "keras_trainer.core.training.population",
    "keras_trainer.core.precision": "keras_trainer.core.training.precision",
    "keras_trainer.core.predictions": "keras_trainer.core.evaluating.predictions",
    "keras_trainer.core.runs": "keras_trainer.core.recording.runs",
    "keras_trainer.core.schedules": "keras_trainer.core.building.schedules",
    "keras_trainer.core.scoring": "keras_trainer.core.evaluating.scoring",
    "keras_trainer.core.seeding": "keras_trainer.core.training.seeding",
    "keras_trainer.core.streaming": "keras_trainer.core.inputs.streaming",
    "keras_trainer.core.tables": "keras_trainer.core.evaluating.tables",
    "keras_trainer.core.tracking": "keras_trainer.core.recording.tracking",
    "keras_trainer.core.wandb_logging": "keras_trainer.core.recording.wandb_logging",
    "keras_trainer.jit.adaptive": "keras_trainer.jit.runtime.adaptive",
    "keras_trainer.jit.c_corpus": "keras_trainer.jit.data.c_corpus",
    "keras_trainer.jit.choices": "keras_trainer.jit.model.choices",
    "keras_trainer.jit.collect": "keras_trainer.jit.data.collect",
    "keras_trainer.jit.corpus": "keras_trainer.jit.data.corpus",
    "keras_trainer.jit.engine": "keras_trainer.jit.runtime.engine",
    "keras_trainer.jit.features": "keras_trainer.jit.llvm_ir.features",
    "keras_trainer.jit.ir": "keras_trainer.jit.llvm_ir.ir",
    "keras_trainer.jit.ir_analysis": "keras_trainer.jit.llvm_ir.ir_analysis",
    "keras_trainer.jit.ir_emitter": "keras_trainer.jit.llvm_ir.ir_emitter",
    "keras_trainer.jit.sandbox": "keras_trainer.jit.runtime.sandbox",
    "keras_trainer.jit.trainer": "keras_trainer.jit.model.trainer",
    "keras_trainer.jit.worker": "keras_trainer.jit.runtime.worker",
}

__all__ = sorted(ALIASES)


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module path of `MOVED_MODULES` with the module at its current path."""

    def __init__(self) -> None:
        self._own_specs: dict[str, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(MOVED_MODULES[spec.name])
        self._own_specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # The import system stamped the old path's spec onto the module; the
        # module keeps its own, so that it reports where it really lives.
        module.__spec__ = self._own_specs.pop(module.__name__)

    def get_code(self, fullname: str):
        """The current module's code, for `python -m <old path>`."""
        current = MOVED_MODULES[fullname]
        return importlib.util.find_spec(current).loader.get_code(current)


def install_module_aliases() -> None:
    """Lets every old module path of `MOVED_MODULES` import its current module (once)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> Any:
    if name not in ALIASES:
        raise AttributeError(f"module 'keras_trainer.compat' has no attribute {name!r}")
    module, current = ALIASES[name]
    return getattr(importlib.import_module(module), current)


def __dir__() -> list[str]:
    return __all__
