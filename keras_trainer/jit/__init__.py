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

#: The bundled default dataset: C kernels compiled with clang (scripts/build_c_corpus.py).
C_KERNELS_PATH = os.path.join(os.path.dirname(__file__), "data", "c_kernels.json.gz")
#: The earlier dataset of llvmlite-generated kernels (scripts/make_sample_dataset.py).
SAMPLE_DATASET_PATH = os.path.join(os.path.dirname(__file__), "data", "sample_dataset.json")
DEFAULT_DATASET_PATH = C_KERNELS_PATH

_EXPORTS = {
    "AdaptiveJIT": "adaptive",
    "DATASET_FORMAT": "collect",
    "collect_dataset": "collect",
    "load_dataset": "collect",
    "merge_collections": "collect",
    "read_dataset": "collect",
    "save_dataset": "collect",
    "C_FAMILIES": "c_corpus",
    "ClangNotFoundError": "c_corpus",
    "compile_c": "c_corpus",
    "generate_c_corpus": "c_corpus",
    "generate_c_kernel": "c_corpus",
    "apply_fallback": "choices",
    "choose_fallback_threshold": "choices",
    "format_runtime_report": "choices",
    "labels_from_times": "choices",
    "runtime_report": "choices",
    "times_matrix": "choices",
    "dataset_fingerprint": "collect",
    "dataset_outcomes": "collect",
    "strategies_from_config": "strategies",
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
    "Workload": "workload",
    "draw_calls": "workload",
    "replay": "workload",
    "Policy": "policies",
    "get_policy": "policies",
    "compare_policies": "policy_eval",
    "CostModel": "cost_model",
    "train_cost_model": "cost_model",
    "TieredFunction": "tiering",
    "compile_tiered": "tiering",
}

__all__ = sorted(_EXPORTS) + ["C_KERNELS_PATH", "DEFAULT_DATASET_PATH", "SAMPLE_DATASET_PATH"]


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_trainer.jit.{_EXPORTS[name]}")
        return getattr(module, "FAMILIES" if name == "C_FAMILIES" else name)
    raise AttributeError(f"module 'keras_trainer.jit' has no attribute {name!r}")


def __dir__():
    return __all__
