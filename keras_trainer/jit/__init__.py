"""keras_trainer.jit: the JIT family, which picks LLVM optimization strategies from IR features.

Static IR features and runtime metrics (`FeatureExtractor`), five optimization
strategies (`STRATEGIES`), a kernel corpus (`generate_corpus`), measured
datasets (`collect_dataset`, `load_dataset`) and the adaptive JIT that uses a
trained model (`AdaptiveJIT`). Needs llvmlite (the `[llvm]` extra).

Names are imported on first use, so that the measuring worker subprocess
(`python -m keras_trainer.jit.runtime.worker`) starts without numpy or keras.
"""

import importlib
import os

#: The bundled default dataset: C kernels compiled with clang (scripts/build_c_corpus.py).
C_KERNELS_PATH = os.path.join(os.path.dirname(__file__), "data", "c_kernels.json.gz")
#: The earlier dataset of llvmlite-generated kernels (scripts/make_sample_dataset.py).
SAMPLE_DATASET_PATH = os.path.join(os.path.dirname(__file__), "data", "sample_dataset.json")
DEFAULT_DATASET_PATH = C_KERNELS_PATH

_EXPORTS = {
    "AdaptiveJIT": "runtime.adaptive",
    "DATASET_FORMAT": "data.collect",
    "collect_dataset": "data.collect",
    "load_dataset": "data.collect",
    "merge_collections": "data.collect",
    "read_dataset": "data.collect",
    "save_dataset": "data.collect",
    "C_FAMILIES": "data.c_corpus",
    "ClangNotFoundError": "data.c_corpus",
    "compile_c": "data.c_corpus",
    "generate_c_corpus": "data.c_corpus",
    "generate_c_kernel": "data.c_corpus",
    "apply_fallback": "model.choices",
    "choose_fallback_threshold": "model.choices",
    "format_runtime_report": "model.choices",
    "labels_from_times": "model.choices",
    "runtime_report": "model.choices",
    "times_matrix": "model.choices",
    "dataset_fingerprint": "data.collect",
    "dataset_outcomes": "data.collect",
    "strategies_from_config": "strategies",
    "FAMILIES": "data.corpus",
    "Kernel": "data.corpus",
    "generate_corpus": "data.corpus",
    "generate_kernel": "data.corpus",
    "CompiledFunction": "runtime.engine",
    "compile_ir": "runtime.engine",
    "FeatureExtractor": "llvm_ir.features",
    "analyze_module": "llvm_ir.ir",
    "parse_ir": "llvm_ir.ir",
    "STRATEGIES": "strategies",
    "STRATEGY_NAMES": "strategies",
    "Strategy": "strategies",
    "get_strategy": "strategies",
    "optimize": "strategies",
    "Workload": "tiering.workload",
    "draw_calls": "tiering.workload",
    "replay": "tiering.workload",
    "Policy": "tiering.policies",
    "get_policy": "tiering.policies",
    "compare_policies": "tiering.policy_eval",
    "CostModel": "model.cost_model",
    "train_cost_model": "model.cost_model",
    "TieredFunction": "runtime.tiering",
    "compile_tiered": "runtime.tiering",
}

__all__ = sorted(_EXPORTS) + ["C_KERNELS_PATH", "DEFAULT_DATASET_PATH", "SAMPLE_DATASET_PATH"]


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_trainer.jit.{_EXPORTS[name]}")
        return getattr(module, "FAMILIES" if name == "C_FAMILIES" else name)
    raise AttributeError(f"module 'keras_trainer.jit' has no attribute {name!r}")


def __dir__():
    return __all__
