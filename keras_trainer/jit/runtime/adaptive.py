"""The adaptive JIT: a trained model picks the optimization strategy per module.

`AdaptiveJIT.compile` does what a tiered JIT does: it compiles the module at
O0 first (fast), runs it once on the given arguments to measure the runtime
metrics (`exec_time_ns`, `compile_time_ms`, `code_size_bytes`), extracts the
static IR features, asks the model for the best strategy, and recompiles with
it (the O0 build is reused when O0 wins).

Untrusted IR (the default) never runs in the caller's process: the O0 probe,
its timing runs, the chosen build and every call of the returned function run
in a worker subprocess (`keras_trainer.jit.runtime.sandbox`) with a time limit, and IR
that declares external functions other than C math, uses external globals or
inline assembly is refused. `trusted=True` compiles and runs in-process, for
IR you wrote (lowest call overhead). See docs/jit.md, "Trust model".

The model is a "serving model" saved by `ModelTrainer` (or
`keras_trainer.core.saving.persistence.save_model`): it takes RAW features and
outputs probabilities over the strategies; its metadata has "class_names"
(strategy names, in output order) and "feature_config".

Example:

>>> jit = AdaptiveJIT("models/jit_optimizer.keras")
>>> fn = jit.compile(ir_text, "entry", args=[1000])
>>> fn.strategy, fn(1000)
('O2', 499500)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

import numpy as np

from keras_trainer.errors import CheckpointError, DataError, ModelError
from keras_trainer.jit.llvm_ir.features import FeatureExtractor
from keras_trainer.jit.runtime.engine import CompiledFunction, compile_ir
from keras_trainer.jit.runtime.sandbox import (
    IsolatedFunction,
    IsolatedJIT,
    check_compilable_ir,
    check_untrusted_ir,
)
from keras_trainer.jit.runtime.worker import time_call
from keras_trainer.jit.strategies import STRATEGY_NAMES, get_strategy


def _load(path: str):
    """`(model, metadata)` through the library's one loader (safe mode, no pickle)."""
    from keras_trainer.core.saving.persistence import load_model

    return load_model(path)


class AdaptiveJIT:
    """Compiles LLVM IR with the strategy a trained model predicts.

    Args:
        model_path: a `.keras`/`.h5` file saved with keras_trainer metadata
            ("class_names", "feature_config"), or a model store reference
            such as `"models/store@production"` (see
            `keras_trainer.export.store`); or a cost model
            (`keras_trainer.jit.model.cost_model`): `compile` then takes the strategy
            with the highest predicted speed-up.
        probe_repeats: timed O0 runs for `exec_time_ns` (median).
        fallback: `None` uses the fallback rule saved with the model (when it
            was trained with `jit.fallback.enabled`), `False` always takes the
            most likely strategy, `{"strategy": name, "threshold": p}` falls
            back to `name` when the top probability is below `p`.
        trusted: `False` (default) runs the IR's machine code only in a worker
            subprocess with a time limit and refuses IR that calls outside the
            module; `True` compiles and runs it in this process. Pass `True`
            only for IR you wrote.
        timeout_s: wall-clock limit, in seconds, of each step in the worker
            (the probe with its timing runs, the build, each call).

    Raises:
        CheckpointError: the model file is missing or unreadable.
        ModelError: its metadata lacks class names, names an unknown
            strategy, or its input size does not match the feature config.
    """

    def __init__(
        self,
        model_path: str,
        probe_repeats: int = 3,
        fallback=None,
        trusted: bool = False,
        timeout_s: float = 60.0,
    ):
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path) and ("@" in model_path or os.path.isdir(model_path)):
            from keras_trainer.export.store import resolve_model_path

            model_path = resolve_model_path(model_path)
        if not os.path.exists(model_path):
            raise CheckpointError(f"model file not found: {model_path}")
        self.model, self.metadata = _load(model_path)
        self.model_path = model_path
        # A cost model (keras_trainer.jit.model.cost_model) predicts speed-ups, not classes.
        self.cost_model = None
        if isinstance(self.metadata.get("cost_model"), dict):
            from keras_trainer.jit.model.cost_model import CostModel

            self.cost_model = CostModel.load(model_path)
            self.metadata = {**self.metadata, "class_names": self.cost_model.strategies}
        class_names = self.metadata.get("class_names")
        if not isinstance(class_names, list) or not class_names:
            raise ModelError(f"{model_path}: metadata has no 'class_names' list of strategies")
        for name in class_names:
            if name not in STRATEGY_NAMES:
                raise ModelError(
                    f"{model_path}: class name {name!r} is not a strategy; known: {STRATEGY_NAMES}"
                )
        self.class_names = list(class_names)
        # Files saved before `static_transform` existed fed raw counts.
        feature_config = self.metadata.get("feature_config")
        if isinstance(feature_config, dict):
            feature_config = {"static_transform": "counts", **feature_config}
        self.extractor = FeatureExtractor(feature_config)
        expected = len(self.extractor.feature_names)
        input_shape = self.model.inputs[0].shape if self.model.inputs else None
        if input_shape is not None and input_shape[-1] not in (None, expected):
            raise ModelError(
                f"{model_path}: model takes {input_shape[-1]} features but its feature_config "
                f"gives {expected} ({self.extractor.feature_names})"
            )
        if probe_repeats < 1:
            raise DataError(f"probe_repeats must be >= 1, got {probe_repeats}")
        self.probe_repeats = probe_repeats
        if fallback is None:
            fallback = self.metadata.get("fallback")
        if fallback and (
            not isinstance(fallback, dict)
            or fallback.get("strategy") not in self.class_names
            or not isinstance(fallback.get("threshold"), (int, float))
        ):
            raise DataError(
                f"fallback: expected {{'strategy': one of {self.class_names}, 'threshold': p}}, "
                f"got {fallback!r}"
            )
        self.fallback = fallback or None
        if not timeout_s > 0:
            raise DataError(f"timeout_s must be > 0, got {timeout_s}")
        self.trusted = bool(trusted)
        self.timeout_s = float(timeout_s)

    def features(
        self, ir_text: str, entry: str = "entry", args: Optional[Sequence] = None
    ) -> tuple:
        """Feature row of a module, plus its O0 build.

        Returns:
            `(features, baseline)`: float32 array `(1, n_features)` and the O0
            build that was run to measure the runtime metrics: a
            `CompiledFunction` when trusted, else an `IsolatedFunction` (its
            worker stays up for the chosen build; `close()` it if unused).

        Raises:
            WorkerError: untrusted IR that hung past `timeout_s` or crashed.
        """
        module_args = list(args or [])
        static = self.extractor.extract_static(ir_text, entry=entry)
        if not self.trusted:
            return self._isolated_features(ir_text, entry, module_args, static)
        check_compilable_ir(ir_text, entry)  # refused by name, not an abort of this process
        baseline = compile_ir(ir_text, entry, "O0", measure_code_size=True)
        if len(module_args) != len(baseline.argtypes):
            raise DataError(
                f"'@{entry}' takes {len(baseline.argtypes)} argument(s); pass them as args= "
                f"(got {len(module_args)}) so that the O0 probe run can measure it"
            )
        baseline(*module_args)  # warm-up
        times = time_call(baseline.cfunc, baseline.convert(module_args), self.probe_repeats)
        metrics = {
            "exec_time_ns": float(np.median(times)),
            "compile_time_ms": baseline.compile_time_ms,
            "code_size_bytes": baseline.code_size_bytes,
        }
        runtime = self.extractor.extract_runtime(metrics, index=0)
        return np.concatenate([static, runtime])[None, :].astype(np.float32), baseline

    def _isolated_features(self, ir_text: str, entry: str, module_args: list, static: np.ndarray):
        check_untrusted_ir(ir_text, entry)
        worker = IsolatedJIT(self.timeout_s)
        try:
            probe = worker.probe(ir_text, entry, module_args, self.probe_repeats)
        except BaseException:
            worker.close()
            raise
        baseline = IsolatedFunction(
            worker,
            get_strategy(0).name,
            entry,
            probe["argtypes"],
            probe["compile_time_ms"],
            probe["code_size_bytes"],
        )
        metrics = {
            "exec_time_ns": float(np.median(probe["times_ns"])),
            "compile_time_ms": baseline.compile_time_ms,
            "code_size_bytes": baseline.code_size_bytes,
        }
        runtime = self.extractor.extract_runtime(metrics, index=0)
        return np.concatenate([static, runtime])[None, :].astype(np.float32), baseline

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Strategy probabilities `(n, n_classes)` for raw feature rows (a cost model:
        its predicted speed-ups over O0, as shares that sum to 1)."""
        if self.cost_model is not None:
            speedup, _ = self.cost_model.predict(features)
            return speedup / speedup.sum(axis=1, keepdims=True)
        import keras

        return np.asarray(keras.ops.convert_to_numpy(self.model(features, training=False)))

    def compile_tiered(
        self,
        ir_text: str,
        entry: str = "entry",
        policy="recommended",
        args: Optional[Sequence] = None,
    ):
        """`@entry` as a `TieredFunction` that a tiering policy recompiles while it runs
        (`keras_trainer.jit.runtime.tiering`; default `recommended`, the shipped parameters).
        Only for a `trusted` JIT: the builds run in this process. `args`: one O0
        probe run, for `cost_benefit+model` with this JIT's cost model."""
        from keras_trainer.jit.runtime.tiering import compile_tiered

        return compile_tiered(
            ir_text, entry, policy, trusted=self.trusted, model=self.cost_model, args=args
        )

    def compile(
        self, ir_text: str, entry: str = "entry", args: Optional[Sequence] = None
    ) -> CompiledFunction:
        """Chooses a strategy for `ir_text` and JIT-compiles `@entry` with it.

        Args:
            ir_text: textual LLVM IR.
            entry: the function to compile and return.
            args: arguments for the O0 probe run (required when `@entry` has
                parameters).

        Returns:
            A `CompiledFunction` (trusted) or `IsolatedFunction` (untrusted,
            each call runs in the worker; `close()` it when done) with
            `.strategy` (the chosen name) and `.probabilities` (dict strategy
            -> probability).

        Raises:
            IRParseError, DataError: bad IR, missing entry, wrong arguments,
                or (untrusted) IR that calls outside the module.
            WorkerError: (untrusted) the IR hung past `timeout_s` or crashed.
        """
        row, baseline = self.features(ir_text, entry, args)
        try:
            probabilities = self.predict(row)[0]
            choice = self.class_names[int(np.argmax(probabilities))]
            if self.fallback and probabilities.max() < self.fallback["threshold"]:
                choice = self.fallback["strategy"]
            if isinstance(baseline, IsolatedFunction):
                built = baseline._worker.build(choice)
                compiled = IsolatedFunction(
                    baseline._worker,
                    choice,
                    entry,
                    baseline.argtypes,
                    built["compile_time_ms"],
                    baseline.code_size_bytes if choice == baseline.strategy else None,
                )
                compiled.probabilities = {
                    name: float(p) for name, p in zip(self.class_names, probabilities)
                }
                return compiled
        except BaseException:
            if isinstance(baseline, IsolatedFunction):
                baseline.close()
            raise
        if choice == get_strategy(0).name:
            compiled = baseline
        else:
            compiled = compile_ir(ir_text, entry, choice)
        compiled.probabilities = {
            name: float(p) for name, p in zip(self.class_names, probabilities)
        }
        return compiled
