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

With `record_to=PATH` every measurement it makes is added to a JIT dataset
file (`keras_trainer.jit.runtime.recording`), and `update()` fine-tunes a cost
model on them; `run` times a whole tiered run (sandboxed: inside the worker).

Example:

>>> jit = AdaptiveJIT("models/jit_optimizer.keras")
>>> fn = jit.compile(ir_text, "entry", args=[1000])
>>> fn.strategy, fn(1000)
('O2', 499500)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from keras_trainer.core.training.host import usable_cpu_count
from keras_trainer.errors import CheckpointError, ConfigError, DataError, ModelError
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

#: The measured functions `update` fine-tunes on besides the records: the bundled corpus.
DEFAULT_BASE = "bundled"


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
            (the probe with its timing runs, the build, each call, a `run`).
        record_to: a JIT dataset file (`.json` or `.json.gz`) that every
            measurement this JIT makes is added to, one record per function
            (`keras_trainer.jit.runtime.recording.MeasurementLog`); `None`: none.
        update_every: call `update` after this many new functions were
            recorded (needs `record_to` and a cost model); `None`: only when asked.
        base_data: the measured functions `update` trains on besides the
            records: a dataset path or dict, `"bundled"` (the bundled C-kernel
            corpus, the default) or `None` (the records alone).
        store: a model store folder (`keras_trainer.export.store.ModelStore`)
            that each `update` adds its model to as a new version; `None`: none.
        update_epochs: epochs of each `update`'s fine-tune. Defaults to 5.
        update_targets: what `update` trains the strategies a record did not
            measure toward (`cost_model.measured_targets`): `"pooled"` (the
            default: moved by the errors the records measured, per strategy over
            all the records and per record over its strategies, each shrunk),
            `"prediction"` (the model's own: not pulled anywhere) or `"shifted"`
            (moved by the record's own mean error); see docs/benchmarks.md.
        explore_budget: bounded exploration by `cost_benefit+model` (the policy
            named `"cost_benefit+model"` in `compile_tiered`/`run`), so that its
            records measure every strategy of the functions that run long enough,
            not only the builds the model chose: once a function's past run time
            reaches `explore_budget` x the predicted compile cost of its untimed
            strategies, they are built and timed on real calls (paid like any build
            and call; the fastest is kept). `None` (default): `policies.EXPLORE_BUDGET`
            (50) when `record_to` is set, else no exploration; `math.inf`: never.
        background_compile: tiered functions (`compile_tiered`, `run`) compile
            every build after the first on a background thread while their calls
            go on at the current build (HotSpot's and V8's tiered compilers; the
            policies' cost-benefit rule then counts a recompile as free wall time
            that pays off only once it is ready). `None` (default): on when this
            process may use more than one CPU.

    Raises:
        CheckpointError: the model file is missing or unreadable.
        ModelError: its metadata lacks class names, names an unknown
            strategy, or its input size does not match the feature config.
    """

    def __init__(
        self,
        model_path: Optional[str],
        probe_repeats: int = 3,
        fallback=None,
        trusted: bool = False,
        timeout_s: float = 60.0,
        record_to: Optional[str] = None,
        update_every: Optional[int] = None,
        base_data: Any = DEFAULT_BASE,
        store: Optional[str] = None,
        update_epochs: int = 5,
        update_targets: str = "pooled",
        explore_budget: Optional[float] = None,
        background_compile: Optional[bool] = None,
    ):
        if not timeout_s > 0:
            raise DataError(f"timeout_s must be > 0, got {timeout_s}")
        if probe_repeats < 1:
            raise DataError(f"probe_repeats must be >= 1, got {probe_repeats}")
        self.trusted = bool(trusted)
        self.timeout_s = float(timeout_s)
        self.probe_repeats = probe_repeats
        self._setup_learning(record_to, update_every, base_data, store, update_epochs)
        from keras_trainer.jit.model.cost_model import UNMEASURED_TARGETS

        if update_targets not in UNMEASURED_TARGETS:
            raise ConfigError(
                f"update_targets: one of {', '.join(map(repr, UNMEASURED_TARGETS))}, "
                f"got {update_targets!r}"
            )
        self.update_targets = update_targets
        from keras_trainer.jit.tiering.policies import EXPLORE_BUDGET, check_explore

        if explore_budget is None and record_to is not None:
            explore_budget = EXPLORE_BUDGET
        #: The exploration budget of `cost_benefit+model` (`None`: no exploration).
        self.explore_budget = check_explore(explore_budget)
        if background_compile is None:
            background_compile = usable_cpu_count() > 1
        #: Whether recompiles run on a background thread (see `background_compile`).
        self.background_compile = bool(background_compile)
        if model_path is None:  # tiering policies only
            self.model, self.metadata, self.model_path, self.cost_model = None, {}, None, None
            self.class_names, self.fallback = list(STRATEGY_NAMES), None
            self.extractor = FeatureExtractor()
            return
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
        row, baseline, _ = self._probe(ir_text, entry, args)
        return row, baseline

    def _probe(self, ir_text: str, entry: str, args: Optional[Sequence]) -> tuple:
        """`(features, baseline, metrics)`: `features` plus the probe's runtime metrics."""
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
        row = np.concatenate([static, runtime])[None, :].astype(np.float32)
        return row, baseline, metrics

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
        row = np.concatenate([static, runtime])[None, :].astype(np.float32)
        return row, baseline, metrics

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Strategy probabilities `(n, n_classes)` for raw feature rows (a cost model:
        its predicted speed-ups over O0, as shares that sum to 1)."""
        if self.cost_model is not None:
            speedup, _ = self.cost_model.predict(features)
            return speedup / speedup.sum(axis=1, keepdims=True)
        if self.model is None:
            raise ConfigError(
                "this AdaptiveJIT has no model (model_path=None): pass a strategy model or a "
                "cost model to predict, or use compile_tiered/run with a tiering policy"
            )
        import keras

        return np.asarray(keras.ops.convert_to_numpy(self.model(features, training=False)))

    # ------------------------------------------------------------------ tiering
    def _policy(self, policy):
        """A policy by name (`shipped_policy`; `cost_benefit+model` with this JIT's cost
        model and `explore_budget`), or `policy` itself when it is a `Policy`."""
        from keras_trainer.jit.tiering.policies import ModelCostBenefitPolicy, shipped_policy

        if policy == "cost_benefit+model" and self.cost_model is not None:
            return ModelCostBenefitPolicy(self.cost_model, explore=self.explore_budget)
        if not isinstance(policy, str):
            return policy
        return shipped_policy(policy, model=self.cost_model, background=self.background_compile)

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
        probe run, for `cost_benefit+model` with this JIT's cost model, and for the
        record of its measurements when `record_to` is set (then required)."""
        from keras_trainer.jit.runtime.tiering import compile_tiered

        if self.log is not None and args is None:
            raise ConfigError(
                "record_to: a record needs the O0 probe's runtime metrics; pass args= for one "
                "probe run of the function"
            )
        function = compile_tiered(
            ir_text,
            entry,
            self._policy(policy),
            trusted=self.trusted,
            model=self.cost_model,
            args=args,
            background=self.background_compile,
        )
        if self.log is not None:
            runtime, state = function.probe, function.state
            self._record(ir_text, entry, runtime, state.measured_call_s, state.compiled_s, args)

            def observe(state):
                self._record(ir_text, entry, runtime, state.measured_call_s, state.compiled_s, args)

            function.observer = observe
        return function

    def run(
        self,
        ir_text: str,
        entry: str,
        args: Sequence,
        calls: int,
        policy="recommended",
    ) -> dict:
        """Calls `@entry(*args)` `calls` times, tiered by `policy`, and times it all.

        Untrusted (the default), the whole run, builds and calls, happens in a
        sandboxed worker (one IPC round trip, not one per call); trusted, in
        this process. The wall time counts every build (compile included) and
        every call, from before the first build to after the last call; not the
        O0 probe that `record_to` needs for the record's runtime metrics.

        Args:
            policy: a name (`shipped_policy`) or a fitted `Policy` without a model
                (`always:S`, `tiered`, `cost_benefit`, `autotune`, `recommended`);
                trusted runs also take `cost_benefit+model`.

        Returns:
            `{"wall_s", "strategy" (the last build), "decisions", "calls",
            "measured_call_s", "compiled_s", "result"}`.

        Raises:
            ConfigError: an unknown or unfitted policy, or (untrusted) one with a model.
            WorkerError: (untrusted) the IR hung past `timeout_s` or crashed.
        """
        return self.run_policies(ir_text, entry, args, calls, [policy])[0]

    def run_policies(
        self, ir_text: str, entry: str, args: Sequence, calls: int, policies: Sequence
    ) -> list[dict]:
        """`run` under each of `policies` in turn, each from fresh builds (one sandboxed
        worker serves them all); returns one outcome per policy."""
        from keras_trainer.jit.tiering.policies import policy_spec

        policies = [self._policy(p) for p in policies]
        if calls < 1:
            raise DataError(f"calls must be >= 1, got {calls}")
        args = list(args)
        runtime = None
        if self.log is not None or any(getattr(p, "model", None) is not None for p in policies):
            _, baseline, runtime = self._probe(ir_text, entry, args)
            if isinstance(baseline, IsolatedFunction):
                baseline.close()
        if self.trusted:
            from keras_trainer.jit.runtime.tiering import timed_run

            check_compilable_ir(ir_text, entry)
            outcomes = [
                timed_run(
                    ir_text,
                    entry,
                    p,
                    args,
                    calls,
                    self.cost_model,
                    runtime,
                    self.background_compile,
                )
                for p in policies
            ]
        else:
            specs = [policy_spec(p) for p in policies]  # a model policy is refused here
            check_untrusted_ir(ir_text, entry)
            with IsolatedJIT(self.timeout_s) as worker:
                # Warm the worker's LLVM up: its first build must not pay for the process.
                worker.probe(ir_text, entry, args, 1)
                outcomes = [
                    worker.run_tiered(args, int(calls), spec, self.background_compile)
                    for spec in specs
                ]
        if self.log is not None:
            for outcome in outcomes:
                self._record(
                    ir_text, entry, runtime, outcome["measured_call_s"], outcome["compiled_s"], args
                )
        return outcomes

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
        row, baseline, metrics = self._probe(ir_text, entry, args)
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
        except BaseException:
            if isinstance(baseline, IsolatedFunction):
                baseline.close()
            raise
        if not isinstance(baseline, IsolatedFunction):
            if choice == get_strategy(0).name:
                compiled = baseline
            else:
                compiled = compile_ir(ir_text, entry, choice)
        compiled.probabilities = {
            name: float(p) for name, p in zip(self.class_names, probabilities)
        }
        if self.log is not None:
            self._record(
                ir_text, entry, metrics, {}, {choice: compiled.compile_time_ms / 1e3}, args
            )
        return compiled

    # ----------------------------------------------------------------- learning
    def _setup_learning(self, record_to, update_every, base_data, store, update_epochs) -> None:
        from keras_trainer.jit.runtime.recording import MeasurementLog

        if update_every is not None and (not isinstance(update_every, int) or update_every < 1):
            raise ConfigError(f"update_every must be a whole number >= 1, got {update_every!r}")
        if update_every is not None and record_to is None:
            raise ConfigError("update_every learns from the records: pass record_to=PATH too")
        self.log = None if record_to is None else MeasurementLog(record_to)
        self.update_every, self.base_data = update_every, base_data
        self.store, self.update_epochs = store, int(update_epochs)
        self._new_records, self._base = 0, None
        #: Model store versions that `update` added, oldest first.
        self.versions: list = []

    def _record(self, ir_text, entry, runtime, call_s, compile_s, args) -> None:
        """Adds one function's measurements (seconds) to the log; may trigger `update`."""
        timings = {name: seconds * 1e9 for name, seconds in call_s.items()}
        compiles = {name: seconds * 1e3 for name, seconds in compile_s.items()}
        if runtime:  # the O0 probe (warm-up, then the median of timed calls) measures O0
            timings["O0"] = runtime["exec_time_ns"]
            compiles["O0"] = runtime["compile_time_ms"]
        _, new = self.log.record(ir_text, entry, runtime, timings, compiles, args)
        self._new_records += int(new)
        if self.update_every and self._new_records >= self.update_every and self.cost_model:
            self.update()

    def update(self):
        """Fine-tunes the cost model on the base data plus the recorded measurements
        (`keras_trainer.jit.model.cost_model.fine_tune`, `update_epochs` epochs from the
        current weights, through the library's fit) and swaps the new model in.

        With `store`, the new model is added to that model store as a new version.

        Returns:
            The new store `ModelVersion`, or `None` without a store.

        Raises:
            ConfigError: no cost model, or nothing recorded (`record_to`).
        """
        from keras_trainer.jit.model.cost_model import copy_cost_model, fine_tune

        if self.cost_model is None:
            raise ConfigError(
                "update() fine-tunes a cost model (keras_trainer.jit.model.cost_model); this "
                "AdaptiveJIT holds a strategy classifier or no model"
            )
        if self.log is None or not len(self.log):
            raise ConfigError("update() learns from recorded measurements: pass record_to=PATH")
        if self._base is None and self.base_data is not None:
            from keras_trainer.jit import C_KERNELS_PATH
            from keras_trainer.jit.tiering.workload import Workload

            data = C_KERNELS_PATH if self.base_data == DEFAULT_BASE else self.base_data
            base = Workload.from_dataset(data, "fixed:1")
            self._base = (base, self.cost_model.features(base.samples))
        model = copy_cost_model(self.cost_model)
        base, features = self._base if self._base is not None else (None, None)
        fine_tune(
            model,
            self.log.samples,
            base,
            features,
            epochs=self.update_epochs,
            unmeasured=self.update_targets,
        )
        self.cost_model, self._new_records = model, 0
        self.model = model.trainer.serving_model()
        if self.store is None:
            return None
        import tempfile

        from keras_trainer.export.store import ModelStore

        with tempfile.TemporaryDirectory() as folder:
            path = model.save(os.path.join(folder, "cost_model.keras"))
            version = ModelStore(self.store).add(
                path,
                data_path=self.log.path,
                notes=f"AdaptiveJIT.update: fine-tuned on {len(self.log)} recorded functions",
            )
        self.versions.append(version)
        return version
