"""Feature vectors for the JIT strategy model: static IR features plus runtime metrics.

The layout is fixed by a `keras_trainer.jit.config.FeatureConfig`: first the
static features of the chosen set ("default": 9, "extended": 24, "autophase":
the 56 Autophase features of CompilerGym), then one column per runtime
metric spec, in order. docs/features.md documents every feature by name.

Example:

>>> extractor = FeatureExtractor()
>>> len(extractor.feature_names)
12
>>> x = extractor.extract([ir_text], [{"exec_time_ns": 1200, "compile_time_ms": 3.1,
...                                    "code_size_bytes": 96}])
>>> x.shape
(1, 12)
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from keras_trainer.errors import ConfigError, DataError, IRParseError
from keras_trainer.jit.config import FeatureConfig
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.llvm_ir.ir_analysis import OPERAND_KEYS, analyze_module

# name -> key of `analyze_module`'s result.
DEFAULT_STATIC_FEATURES = [
    "instructions",
    "basic_blocks",
    "loops",
    "max_loop_depth",
    "int_arith",
    "float_arith",
    "memory_ops",
    "calls",
    "cond_branches",
]

EXTENDED_STATIC_FEATURES = [
    "functions",
    "basic_blocks",
    "instructions",
    "cfg_edges",
    "loops",
    "max_loop_depth",
    "int_arith",
    "float_arith",
    "loads",
    "stores",
    "allocas",
    "geps",
    "compares",
    "casts",
    "calls",
    "phis",
    "selects",
    "cond_branches",
    "uncond_branches",
    "switches",
    "returns",
    "mean_block_size",
    "max_block_size",
    "memory_ops",
]

# Autophase name -> how it is read from `analyze_module`'s result:
# a stats key, or ("op", opcode) for a per-opcode count.
AUTOPHASE_FEATURES = [
    ("BBNumArgsHi", "blocks_phi_args_gt5"),
    ("BBNumArgsLo", "blocks_phi_args_1_5"),
    ("onePred", "blocks_one_pred"),
    ("onePredOneSuc", "blocks_one_pred_one_succ"),
    ("onePredTwoSuc", "blocks_one_pred_two_succ"),
    ("oneSuccessor", "blocks_one_succ"),
    ("twoPred", "blocks_two_pred"),
    ("twoPredOneSuc", "blocks_two_pred_one_succ"),
    ("twoEach", "blocks_two_pred_two_succ"),
    ("twoSuccessor", "blocks_two_succ"),
    ("morePreds", "blocks_more_preds"),
    ("BB03Phi", "blocks_phi_1_3"),
    ("BBHiPhi", "blocks_phi_gt3"),
    ("BBNoPhi", "blocks_no_phi"),
    ("BeginPhi", "phis"),
    ("BranchCount", "multiway_branches"),
    ("returnInt", "calls_returning_int"),
    ("CriticalCount", "critical_edges"),
    ("NumEdges", "cfg_edges"),
    ("const32Bit", "const_32bit"),
    ("const64Bit", "const_64bit"),
    ("numConstZeroes", "const_zeros"),
    ("numConstOnes", "const_ones"),
    ("UncondBranches", "uncond_branches"),
    ("binaryConstArg", "binary_const_arg"),
    ("NumAShrInst", ("op", "ashr")),
    ("NumAddInst", ("op", "add")),
    ("NumAllocaInst", ("op", "alloca")),
    ("NumAndInst", ("op", "and")),
    ("BlockMid", "blocks_size_15_500"),
    ("BlockLow", "blocks_size_lt15"),
    ("NumBitCastInst", ("op", "bitcast")),
    ("NumBrInst", ("op", "br")),
    ("NumCallInst", ("op", "call")),
    ("NumGetElementPtrInst", ("op", "getelementptr")),
    ("NumICmpInst", ("op", "icmp")),
    ("NumLShrInst", ("op", "lshr")),
    ("NumLoadInst", ("op", "load")),
    ("NumMulInst", ("op", "mul")),
    ("NumOrInst", ("op", "or")),
    ("NumPHIInst", ("op", "phi")),
    ("NumRetInst", ("op", "ret")),
    ("NumSExtInst", ("op", "sext")),
    ("NumSelectInst", ("op", "select")),
    ("NumShlInst", ("op", "shl")),
    ("NumStoreInst", ("op", "store")),
    ("NumSubInst", ("op", "sub")),
    ("NumTruncInst", ("op", "trunc")),
    ("NumXorInst", ("op", "xor")),
    ("NumZExtInst", ("op", "zext")),
    ("TotalBlocks", "basic_blocks"),
    ("TotalInsts", "instructions"),
    ("TotalMemInst", "memory_accesses"),
    ("TotalFuncs", "functions"),
    ("ArgsPhi", "phi_args"),
    ("testUnary", "unary"),
]

# Under `static_transform="density"`: size counts are log1p'd, nesting depths
# stay as they are, every other count is divided by the instruction count.
SIZE_FEATURES = {
    "instructions",
    "basic_blocks",
    "functions",
    "cfg_edges",
    "mean_block_size",
    "max_block_size",
    "TotalInsts",
    "TotalBlocks",
    "TotalFuncs",
    "NumEdges",
}
LEVEL_FEATURES = {"max_loop_depth"}
INSTRUCTION_COUNT = {
    "default": "instructions",
    "extended": "instructions",
    "autophase": "TotalInsts",
}

STATIC_FEATURE_SETS = {
    "default": [(name, name) for name in DEFAULT_STATIC_FEATURES],
    "extended": [(name, name) for name in EXTENDED_STATIC_FEATURES],
    "autophase": AUTOPHASE_FEATURES,
}


def _read(stats: dict, key) -> float:
    if isinstance(key, tuple):
        return float(stats["opcodes"].get(key[1], 0))
    if key == "memory_ops":
        return float(stats["loads"] + stats["stores"])
    if key == "multiway_branches":
        return float(stats["cond_branches"] + stats["switches"])
    return float(stats[key])


class FeatureExtractor:
    """Turns LLVM IR and runtime metrics into the JIT strategy model's feature rows.

    Args:
        feature_config: a `FeatureConfig` (or its dict form); `None` uses the
            defaults: the 9 "default" static features, then
            `exec_time_ns`, `compile_time_ms` and `code_size_bytes`, each
            `log1p`-transformed (12 features in all).

    Example:

    >>> extractor = FeatureExtractor()
    >>> extractor.feature_names[:3]
    ['instructions', 'basic_blocks', 'loops']
    >>> extractor.extract_static(ir_text).shape
    (9,)
    """

    def __init__(self, feature_config: FeatureConfig | dict | None = None):
        if feature_config is None:
            feature_config = FeatureConfig()
        elif isinstance(feature_config, dict):
            feature_config = FeatureConfig.from_dict(feature_config, "features")
        elif not isinstance(feature_config, FeatureConfig):
            raise ConfigError(
                f"features: expected a FeatureConfig or a dict, got {type(feature_config).__name__}"
            )
        if feature_config.static_features not in STATIC_FEATURE_SETS:
            raise ConfigError(
                f"features.static_features: unknown set {feature_config.static_features!r}; "
                f"choose one of {sorted(STATIC_FEATURE_SETS)}"
            )
        self.feature_config = feature_config
        self._static = STATIC_FEATURE_SETS[feature_config.static_features]
        # Only the Autophase constant/phi-argument counts need every operand
        # of every instruction; the other sets skip that (costly) walk.
        self._needs_operands = any(key in OPERAND_KEYS for _, key in self._static)

    @property
    def static_feature_names(self) -> list[str]:
        """Names of the static IR features, in column order."""
        return [name for name, _ in self._static]

    @property
    def runtime_feature_names(self) -> list[str]:
        """Names of the runtime features (the metric keys), in column order."""
        return [spec.key for spec in self.feature_config.runtime_metrics]

    @property
    def feature_names(self) -> list[str]:
        """All feature names: static first, then runtime."""
        return self.static_feature_names + self.runtime_feature_names

    def extract_static(self, ir_text: str, entry: Optional[str] = None) -> np.ndarray:
        """Static features of one IR module.

        Args:
            ir_text: textual LLVM IR.
            entry: if given, a function the module must define.

        Returns:
            float32 array of shape `(len(static_feature_names),)`.

        Raises:
            IRParseError: the IR is empty, does not parse or does not verify.
            DataError: `ir_text` is not a string, or `entry` is missing.
        """
        return self.transform_static(self.count_static(ir_text, entry=entry))

    def count_static(self, ir_text: str, entry: Optional[str] = None) -> np.ndarray:
        """The raw static counts of one IR module (before `static_transform`)."""
        stats = analyze_module(parse_ir(ir_text, entry=entry), operands=self._needs_operands)
        return np.array([_read(stats, key) for _, key in self._static], dtype=np.float32)

    def transform_static(self, counts: np.ndarray) -> np.ndarray:
        """Applies `feature_config.static_transform` to raw static counts.

        "counts" keeps them; "log1p" takes `log(1 + c)` of each; "density"
        takes `log(1 + c)` of the size counts (`SIZE_FEATURES`), keeps nesting
        depths (`LEVEL_FEATURES`) and divides every other count by the
        module's instruction count (a per-instruction density).
        """
        counts = np.asarray(counts, dtype=np.float32)
        transform = self.feature_config.static_transform
        if transform == "counts":
            return counts
        if transform == "log1p":
            return np.log1p(counts).astype(np.float32)
        names = self.static_feature_names
        total = max(
            1.0, float(counts[names.index(INSTRUCTION_COUNT[self.feature_config.static_features])])
        )
        out = np.empty_like(counts)
        for i, name in enumerate(names):
            if name in SIZE_FEATURES:
                out[i] = np.log1p(counts[i])
            elif name in LEVEL_FEATURES:
                out[i] = counts[i]
            else:
                out[i] = counts[i] / total
        return out

    def extract_runtime(self, metrics: dict, index: int = 0) -> np.ndarray:
        """Runtime features of one sample, transformed by the metric specs.

        Args:
            metrics: dict of metric key -> number.
            index: the sample's index, named in errors.

        Returns:
            float32 array of shape `(len(runtime_feature_names),)`.

        Raises:
            DataError: `metrics` is not a dict, or a key is missing, not a
                finite number, or negative under `log1p`.
        """
        if not isinstance(metrics, dict):
            raise DataError(
                f"runtime_data[{index}]: expected a dict of metrics, got {type(metrics).__name__}"
            )
        values = []
        for spec in self.feature_config.runtime_metrics:
            if spec.key not in metrics:
                raise DataError(
                    f"runtime_data[{index}]: missing metric '{spec.key}' "
                    f"(present: {sorted(metrics)})"
                )
            value = metrics[spec.key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise DataError(
                    f"runtime_data[{index}]['{spec.key}']: expected a number, got {value!r}"
                )
            value = float(value)
            if not math.isfinite(value):
                raise DataError(f"runtime_data[{index}]['{spec.key}']: not finite ({value})")
            if spec.transform == "log1p":
                if value < 0:
                    raise DataError(
                        f"runtime_data[{index}]['{spec.key}']: log1p needs a value >= 0, "
                        f"got {value}"
                    )
                value = math.log1p(value)
            values.append(value)
        return np.array(values, dtype=np.float32)

    def extract(self, ir_samples: list, runtime_data: list) -> np.ndarray:
        """Feature matrix of many samples.

        Args:
            ir_samples: IR texts, one per sample.
            runtime_data: runtime-metric dicts, one per sample.

        Returns:
            float32 array of shape `(len(ir_samples), len(feature_names))`.

        Raises:
            DataError: the lists differ in length, or a sample is bad (the
                message starts with `sample i`).
            IRParseError: a sample's IR is bad (`line` is kept).
        """
        if len(ir_samples) != len(runtime_data):
            raise DataError(
                f"ir_samples has {len(ir_samples)} entries but runtime_data has "
                f"{len(runtime_data)}; they must match one to one"
            )
        rows = np.zeros((len(ir_samples), len(self.feature_names)), dtype=np.float32)
        n_static = len(self._static)
        for i, (ir_text, metrics) in enumerate(zip(ir_samples, runtime_data)):
            try:
                rows[i, :n_static] = self.extract_static(ir_text)
            except IRParseError as error:
                raise IRParseError(f"sample {i}: {error}", line=error.line) from None
            except DataError as error:
                raise DataError(f"sample {i}: {error}") from None
            rows[i, n_static:] = self.extract_runtime(metrics, index=i)
        return rows

    def get_config(self) -> dict:
        """The extractor's config: `{"feature_config": {...}}` (JSON-ready)."""
        return {"feature_config": self.feature_config.to_dict()}

    @classmethod
    def from_config(cls, config: dict) -> FeatureExtractor:
        """Rebuilds an extractor from `get_config()`'s output."""
        return cls(config.get("feature_config"))
