"""keras_trainer.jit: the JIT family, which picks LLVM optimization strategies from IR features.

Static IR features and runtime metrics (`FeatureExtractor`), five optimization
strategies (`STRATEGIES`), a kernel corpus (`generate_corpus`), measured
datasets (`collect_dataset`, `load_dataset`) and the adaptive JIT that uses a
trained model (`AdaptiveJIT`). Needs llvmlite (the `[llvm]` extra).

Names are imported on first use, so that the measuring worker subprocess
(`python -m keras_trainer.jit.worker`) starts without numpy or keras.
"""

import importlib
import os

SAMPLE_DATASET_PATH = os.path.join(os.path.dirname(__file__), "data", "sample_dataset.json")

_EXPORTS = {
    "AdaptiveJIT": "adaptive",
    "DATASET_FORMAT": "collect",
    "collect_dataset": "collect",
    "load_dataset": "collect",
    "read_dataset": "collect",
    "save_dataset": "collect",
    "FAMILIES": "corpus",
    "Kernel": "corpus",
    "generate_corpus": "corpus",
    "generate_kernel": "corpus",
    "CompiledFunction": "engine",
    "compile_ir": "engine",
    "FeatureExtractor": "features",
    "analyze_module": "ir",
    "parse_ir": "ir",
    "STRATEGIES": "strategies",
    "STRATEGY_NAMES": "strategies",
    "Strategy": "strategies",
    "get_strategy": "strategies",
    "optimize": "strategies",
}

__all__ = sorted(_EXPORTS) + ["SAMPLE_DATASET_PATH"]


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_trainer.jit.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_trainer.jit' has no attribute {name!r}")


def __dir__():
    return __all__
