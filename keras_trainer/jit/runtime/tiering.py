"""Live tiering: a function that a policy recompiles while it runs.

`TieredFunction` is the live counterpart of `keras_trainer.jit.tiering.workload.replay`:
the same `Policy`/`Controller` decide, but on real calls. Each call is timed
(`time.perf_counter`); at the controller's checkpoints it may switch to another
build (`("compile", [strategy])`) or autotune (`("autotune", [strategies])`: build
each, run the next real calls on each build in turn, one to warm its code up and
`AUTOTUNE_TIMED_CALLS` timed, and keep the fastest by the median; replay charges one
timed call each).
`compile_tiered` makes one for IR you trust: the builds run in the caller's
process (live tiering inside the sandboxed worker is not built yet; untrusted IR
goes through `AdaptiveJIT.compile`).

With `background=True` (`AdaptiveJIT(background_compile=True)`), builds after the
first run on one background compile thread, as in HotSpot's and V8's tiered
compilers: the calls go on at the current build until the new one is ready, so
a recompile costs the caller no wall time when a core is free (llvmlite releases
the GIL while LLVM works). `replay(background=True)` replays the same.

Example:

>>> fn = compile_tiered(ir_text, "entry", "recommended", trusted=True)
>>> for _ in range(10000):
...     fn(1000)
>>> fn.strategy, fn.state.calls, fn.decisions[:2]
('O2', 10000, [(0, 'compile', 'O1'), (64, 'compile', 'O2')])
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional, Union

from keras_trainer.errors import ConfigError
from keras_trainer.jit.tiering.policies import Policy, shipped_policy
from keras_trainer.jit.tiering.workload import FunctionState

#: Live autotuning times each candidate build on this many real calls (the median), after
#: one warm-up call: one call of a few microseconds on a busy machine is mostly noise.
AUTOTUNE_TIMED_CALLS = 5
#: While a background build is compiling, the calls run in batches of about this many
#: seconds between looks at whether it is ready.
BACKGROUND_POLL_S = 0.0005
_COMPILER = None
_COMPILER_LOCK = threading.Lock()


def _compile_thread():
    """The one background compile thread of this process (builds run one at a time)."""
    global _COMPILER
    with _COMPILER_LOCK:
        if _COMPILER is None:
            from concurrent.futures import ThreadPoolExecutor

            _COMPILER = ThreadPoolExecutor(1, thread_name_prefix="keras-trainer-jit-compile")
        return _COMPILER


class TieredFunction:
    """A callable whose build follows its policy's controller.

    Args:
        build: `build(strategy) -> (callable, compile_seconds)`.
        controller: the policy's controller for this function.
        background: build after the first one on the background compile thread.

    The measured time per call of the running build is the mean of its calls but
    the first (cold code: page faults, cache misses), once it has more than one.

    Attributes:
        state: the `FunctionState` the controller sees (calls, time, builds).
        decisions: `(calls, action, strategy)` tuples, as `replay` logs them.
        observer: `None`, or called with `state` after each build and after an
            autotuning round (`AdaptiveJIT(record_to=)` records the measurements).
        probe: the O0 probe's runtime metrics, when one ran (`compile_tiered(args=)`).
    """

    def __init__(self, build: Callable[[str], tuple], controller, background: bool = False):
        self._build, self.controller = build, controller
        self.observer: Optional[Callable] = None
        self.probe: Optional[dict] = None
        self._builds: dict[str, Callable] = {}
        level = controller.first_level()
        self.state = FunctionState(level=level, background=bool(background))
        self.decisions: list = []
        self._pending = None  # (action, future) of a background build
        self._compile(level)
        self._level_s = self._first_s = 0.0
        self._tuning: list[str] = []
        self._samples: dict[str, list] = {}
        self._next = controller.next_checkpoint(self.state)

    @property
    def strategy(self) -> str:
        return self.state.level

    def _compile(self, name: str) -> None:
        if name not in self._builds:
            self._builds[name], self.state.compiled_s[name] = self._build(name)
            self.decisions.append((self.state.calls, "compile", name))

    def _switch(self, name: str) -> None:
        if name != self.state.level:
            if self.decisions[-1] != (self.state.calls, "compile", name):
                self.decisions.append((self.state.calls, "switch", name))
            self.state.level, self.state.level_calls, self._level_s = name, 0, 0.0

    def _checkpoint(self) -> None:
        action = self.controller.decide(self.state)
        if action is not None:
            missing = [name for name in action[1] if name not in self._builds]
            if self.state.background and missing:
                for name in missing:
                    self.decisions.append((self.state.calls, "compile", name))
                future = _compile_thread().submit(lambda: {n: self._build(n) for n in missing})
                self._pending = (action, future)
                return  # the calls go on; the next checkpoint comes after the builds
            self._apply(action)
        self._next = self.controller.next_checkpoint(self.state)

    def _apply(self, action: tuple) -> None:
        kind, levels = action
        for name in levels:
            self._compile(name)
        if kind == "autotune":  # each candidate: a warm-up call, then timed ones
            self._tuning = [name for name in levels for _ in range(1 + AUTOTUNE_TIMED_CALLS)]
            self.state.autotuned = True
        else:
            self._switch(levels[0])
        if self.observer is not None:
            self.observer(self.state)

    def _install(self, future) -> None:
        for name, (function, seconds) in future.result().items():
            self._builds[name], self.state.compiled_s[name] = function, seconds

    def _take_ready(self) -> None:
        """Applies the background builds' decision once they are compiled."""
        action, future = self._pending
        if not future.done():
            return
        self._pending = None
        self._install(future)
        self._apply(action)
        self._next = self.controller.next_checkpoint(self.state)

    def wait(self) -> None:
        """Waits for a background build still compiling and keeps its compile time
        (`state.compiled_s`); the next call switches to it as the policy decided."""
        if self._pending is not None:
            self._install(self._pending[1])

    def __call__(self, *args: Any) -> Any:
        state = self.state
        if self._pending is not None:
            self._take_ready()
        if not self._tuning and self._pending is None and state.calls >= self._next:
            self._checkpoint()
        name = self._tuning.pop(0) if self._tuning else state.level
        started = time.perf_counter()
        result = self._builds[name](*args)
        elapsed = time.perf_counter() - started
        state.calls += 1
        state.run_s += elapsed
        if name != state.level:  # an autotuning call of a candidate
            if name not in self._samples:  # its warm-up: a new build's first call runs cold
                self._samples[name] = []
            else:
                self._samples[name].append(elapsed)
            if self._tuning and self._tuning[0] == name:
                return result
            state.measured_call_s[name] = statistics.median(self._samples[name])
            self.decisions.append((state.calls, "time", name))
            if not self._tuning:
                self._switch(min(state.measured_call_s, key=state.measured_call_s.get))
                if self.observer is not None:
                    self.observer(state)
            return result
        state.level_calls += 1
        if state.level_calls == 1:  # a build's first call runs cold code: kept apart
            self._first_s = elapsed
        else:
            self._level_s += elapsed
        state.measured_call_s[name] = (
            self._level_s / (state.level_calls - 1) if state.level_calls > 1 else elapsed
        )
        return result

    def run(self, args: Sequence, calls: int) -> Any:
        """Calls the function `calls` times on the same `args`; returns the last result.

        The same decisions as `calls` single calls, with less overhead per call:
        between checkpoints the current build's machine code is called in a tight
        loop (`cfunc` on arguments converted once) timed as a whole, so the
        measured time per call is the batch's mean. A build's first call, each
        autotuning call and the last call go through `__call__`.
        """
        result, remaining = None, int(calls)
        state = self.state
        while remaining > 0:
            if self._pending is not None:
                self._take_ready()
            build = self._builds[state.level]
            cfunc = getattr(build, "cfunc", None)
            batch = remaining - 1
            if self._pending is not None:  # look at the background build every ~0.5 ms
                per_call = state.measured_call_s.get(state.level) or BACKGROUND_POLL_S
                batch = min(batch, max(1, int(BACKGROUND_POLL_S / max(per_call, 1e-9))))
            elif not self._tuning and math.isfinite(self._next):
                batch = min(batch, int(math.ceil(self._next)) - state.calls)
            if self._tuning or state.level_calls == 0 or cfunc is None or batch < 1:
                result = self(*args)
                remaining -= 1
                continue
            converted = build.convert(args)
            started = time.perf_counter()
            for _ in range(batch):
                cfunc(*converted)
            elapsed = time.perf_counter() - started
            state.calls += batch
            state.run_s += elapsed
            state.level_calls += batch
            self._level_s += elapsed
            state.measured_call_s[state.level] = self._level_s / (state.level_calls - 1)
            remaining -= batch
        return result


def compile_tiered(
    ir_text: str,
    entry: str = "entry",
    policy: Union[str, Policy] = "recommended",
    trusted: bool = False,
    model: Optional[Any] = None,
    args: Optional[Sequence] = None,
    runtime: Optional[dict] = None,
    background: bool = False,
) -> TieredFunction:
    """A `TieredFunction` for `@entry` of `ir_text`, decided by `policy`.

    Args:
        ir_text: textual LLVM IR.
        entry: the function to compile.
        policy: a fitted `Policy` or a name (`get_policy`; `recommended` uses the
            parameters fitted on the bundled corpus).
        trusted: must be `True`: the builds run in this process, so only IR you
            wrote (live tiering in the sandboxed worker is not built yet).
        model: the cost model `cost_benefit+model` needs.
        args: arguments of one O0 probe run that measures the runtime metrics a
            cost model predicts from (needed by `cost_benefit+model`).
        runtime: those runtime metrics, when the probe already ran (instead of `args`).
        background: compile the builds after the first on the background thread.

    Raises:
        ConfigError: `trusted` is not `True`, or an unknown or unfitted policy.
        IRParseError, DataError: bad IR or entry.
    """
    if isinstance(policy, str):
        policy = shipped_policy(policy, model=model, background=background)
    from keras_trainer.jit.strategies import STRATEGY_NAMES

    if not trusted:
        raise ConfigError(
            "compile_tiered builds and runs the IR in this process: pass trusted=True only for "
            "IR you wrote; for untrusted IR use AdaptiveJIT.compile, which runs it in a sandboxed "
            "worker"
        )
    from keras_trainer.jit.runtime.engine import compile_ir

    def build(name: str) -> tuple:
        compiled = compile_ir(ir_text, entry, name)
        return compiled, compiled.compile_time_ms / 1e3

    sample = {"ir": ir_text, "entry": entry, "runtime": runtime or {}}
    if runtime is None and args is not None:
        sample["runtime"] = probe_metrics(ir_text, entry, list(args))
    elif runtime is None and getattr(policy, "model", None) is not None:
        raise ConfigError(
            f"policy {policy.name!r} predicts from the O0 probe's runtime metrics: pass args= "
            "for one probe run of the function"
        )
    function = TieredFunction(
        build, policy.controller(sample, list(STRATEGY_NAMES)), background=background
    )
    function.probe = sample["runtime"] or None
    return function


def probe_metrics(ir_text: str, entry: str, args: list, repeats: int = 3) -> dict:
    """The runtime metrics of an O0 build (`exec_time_ns`: median of `repeats` timed
    calls after one warm-up; `compile_time_ms`; `code_size_bytes`), run in this process."""
    import statistics

    from keras_trainer.jit.runtime.engine import compile_ir
    from keras_trainer.jit.runtime.worker import time_call

    baseline = compile_ir(ir_text, entry, "O0", measure_code_size=True)
    baseline(*args)  # warm-up
    times = time_call(baseline.cfunc, baseline.convert(args), repeats)
    return {
        "exec_time_ns": float(statistics.median(times)),
        "compile_time_ms": baseline.compile_time_ms,
        "code_size_bytes": baseline.code_size_bytes,
    }


def timed_run(
    ir_text: str,
    entry: str,
    policy: Union[str, Policy],
    args: Sequence,
    calls: int,
    model: Optional[Any] = None,
    runtime: Optional[dict] = None,
    background: bool = False,
) -> dict:
    """Builds `@entry` under `policy` and calls it `calls` times on `args`, in this
    process, timing it all (every build and call; `time.perf_counter`).

    Only for trusted IR, or inside the sandboxed worker (`AdaptiveJIT.run`). With
    `background`, a build still compiling after the last call is not waited for in
    `wall_s` (the program would not wait for it either), but before returning, so
    that it does not run beside what the caller does next.

    Returns:
        `{"wall_s", "strategy", "decisions", "calls", "measured_call_s",
        "compiled_s", "result"}` (the last call's result).
    """
    started = time.perf_counter()
    function = compile_tiered(
        ir_text, entry, policy, trusted=True, model=model, runtime=runtime, background=background
    )
    result = function.run(args, calls)
    wall_s = time.perf_counter() - started
    strategy = function.strategy
    function.wait()
    state = function.state
    return {
        "wall_s": wall_s,
        "strategy": strategy,
        "decisions": [list(d) for d in function.decisions],
        "calls": state.calls,
        "measured_call_s": dict(state.measured_call_s),
        "compiled_s": dict(state.compiled_s),
        "result": result,
    }
