"""Workloads and their replay: what a JIT's decisions cost end to end.

A JIT pays for compiling as well as for running: a function called ten times
is not worth compiling at O3, one called ten million times is. A **workload**
is a measured dataset (each function's time per call and compile time under
every strategy, `keras_trainer.jit_dataset/1` records with `timings_ns` and
`compile_times_ms`) plus how many times each function is called: given, or
drawn with a seed from a call-count spec (`draw_calls`).

`replay(workload, policy)` runs a tiering policy (`keras_trainer.jit.tiering.policies`)
against the measured times, without running any code: every build the policy
asks for costs its measured compile time, every call costs the measured time
per call of the build it runs on. The **oracle** knows each function's call
count in advance and compiles once, with the strategy that minimizes compile
time + calls x time per call; no online policy can beat it, and on code that
runs a long time no online policy comes near it on cold functions, because
they must first find out that a function is cold.

Example:

>>> workload = Workload.from_dataset(C_KERNELS_PATH, calls="runtime:0.01:100", seed=0)
>>> result = replay(workload, get_policy("always:O3"))
>>> result.total_s / workload.oracle().total_s  # regret
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.errors import ConfigError, DataError

#: The call-count spec used when none is given: each function runs 10 ms..100 s at O0.
DEFAULT_CALLS = "runtime:0.01:100"
CALL_DISTRIBUTIONS = ("runtime", "loguniform", "zipf", "fixed")


def _spec_numbers(spec: str, kind: str, count: int) -> list[float]:
    parts = spec.split(":")[1:]
    if len(parts) != count:
        raise ConfigError(
            f"--calls {spec!r}: '{kind}' takes {count} number(s) separated by ':' "
            f"(e.g. {_EXAMPLES[kind]})"
        )
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--calls {spec!r}: {parts} are not all numbers") from None


_EXAMPLES = {
    "runtime": "runtime:0.01:100",
    "loguniform": "loguniform:1:10000",
    "zipf": "zipf:1.1:100000",
    "fixed": "fixed:1000",
}


def check_calls_spec(spec: str) -> tuple[str, list[float]]:
    """`(kind, numbers)` of a call-count spec, or `ConfigError` saying what is wrong."""
    if not isinstance(spec, str) or spec.split(":")[0] not in CALL_DISTRIBUTIONS:
        raise ConfigError(
            f"--calls {spec!r}: expected one of "
            + ", ".join(_EXAMPLES[k] for k in CALL_DISTRIBUTIONS)
        )
    kind = spec.split(":")[0]
    numbers = _spec_numbers(spec, kind, {"fixed": 1}.get(kind, 2))
    if kind in ("runtime", "loguniform") and not 0 < numbers[0] <= numbers[1]:
        raise ConfigError(f"--calls {spec!r}: needs 0 < LO <= HI")
    if kind == "loguniform" and numbers[0] < 1:
        raise ConfigError(f"--calls {spec!r}: a call count is at least 1")
    if kind == "zipf" and not (numbers[0] > 1 and numbers[1] >= 1):
        raise ConfigError(f"--calls {spec!r}: needs exponent S > 1 and MAX >= 1")
    if kind == "fixed" and not (numbers[0] >= 1 and numbers[0] == int(numbers[0])):
        raise ConfigError(f"--calls {spec!r}: N must be a whole number >= 1")
    return kind, numbers


def draw_calls(spec: str, o0_call_s: np.ndarray, seed: int = 0) -> np.ndarray:
    """Call counts `(n,)` int64 for functions whose O0 time per call is `o0_call_s`.

    Specs:
        `runtime:LO:HI`: each function's total O0 run time is log-uniform in
            [LO, HI] seconds; calls = ceil(that / its O0 time per call). Sizes
            workloads by how hot the code is, whatever the kernels' speed.
        `loguniform:LO:HI`: calls log-uniform in the integers LO..HI.
        `zipf:S:MAX`: calls k in 1..MAX with probability proportional to k^-S.
        `fixed:N`: every function is called N times.

    Raises:
        ConfigError: a malformed spec.
    """
    kind, numbers = check_calls_spec(spec)
    o0 = np.asarray(o0_call_s, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(o0)
    if kind == "runtime":
        total = np.exp(rng.uniform(math.log(numbers[0]), math.log(numbers[1]), n))
        calls = np.ceil(total / o0)
    elif kind == "loguniform":
        low, high = math.log(numbers[0]), math.log(numbers[1] + 1)
        calls = np.clip(np.floor(np.exp(rng.uniform(low, high, n))), numbers[0], numbers[1])
    elif kind == "zipf":
        ranks = np.arange(1, int(numbers[1]) + 1, dtype=np.float64)
        weights = ranks ** -numbers[0]
        calls = ranks[rng.choice(len(ranks), size=n, p=weights / weights.sum())]
    else:
        calls = np.full(n, numbers[0])
    return np.maximum(calls, 1).astype(np.int64)


@dataclasses.dataclass
class Workload:
    """Measured functions and how often each is called.

    Attributes:
        strategies: strategy names, the columns of the time arrays; the first
            is the baseline a tiered JIT starts from (O0).
        call_s: `(n, k)` seconds per call under each strategy.
        compile_s: `(n, k)` seconds to compile under each strategy.
        calls: `(n,)` call counts.
        samples: the dataset records (IR, runtime metrics, family), for
            policies that look at features.
        pass_call_s: `(n, passes, k)` the single measuring passes' times, when
            the dataset has them; a policy that times a build on a few calls
            sees one of these instead of the median (measurement noise).
    """

    strategies: list[str]
    call_s: np.ndarray
    compile_s: np.ndarray
    calls: np.ndarray
    samples: list[dict]
    pass_call_s: Optional[np.ndarray] = None

    def __post_init__(self):
        n, k = self.call_s.shape
        if self.compile_s.shape != (n, k) or self.calls.shape != (n,) or len(self.samples) != n:
            raise DataError(
                f"workload: call_s {self.call_s.shape}, compile_s {self.compile_s.shape}, "
                f"calls {self.calls.shape} and {len(self.samples)} samples do not agree"
            )
        if len(self.strategies) != k:
            raise DataError(f"workload: {len(self.strategies)} strategy names for {k} columns")
        if n and (self.calls < 1).any():
            raise DataError(f"workload: call counts must be >= 1 (function {self.calls.argmin()})")

    def __len__(self) -> int:
        return len(self.calls)

    @classmethod
    def from_dataset(
        cls,
        dataset: Union[str, os.PathLike, dict],
        calls: Union[str, Sequence[int], np.ndarray] = DEFAULT_CALLS,
        seed: int = 0,
    ) -> Workload:
        """A workload from a dataset (path or dict) and call counts (a spec or a list).

        Raises:
            DataError: a record without `timings_ns`/`compile_times_ms` for
                every strategy (naming the record and strategy), or a list of
                call counts of the wrong length.
            ConfigError: a malformed call-count spec.
        """
        if not isinstance(dataset, dict):
            from keras_trainer.jit.data.collect import read_dataset

            where, dataset = os.fspath(dataset), read_dataset(dataset)
        else:
            where = "dataset"
        strategies = list(dataset["strategies"])
        samples = list(dataset["samples"])
        call_s = _times(samples, strategies, "timings_ns", 1e-9, where)
        compile_s = _times(samples, strategies, "compile_times_ms", 1e-3, where)
        passes = _pass_times(samples, strategies)
        if isinstance(calls, str):
            counts = draw_calls(calls, call_s[:, 0], seed)
        else:
            counts = np.asarray(calls, dtype=np.int64).reshape(-1)
            if len(counts) != len(samples):
                raise DataError(f"{where}: {len(counts)} call counts for {len(samples)} functions")
        return cls(strategies, call_s, compile_s, counts, samples, passes)

    def take(self, indices: Sequence[int]) -> Workload:
        """The workload of the functions at `indices`."""
        idx = np.asarray(indices, dtype=int)
        return Workload(
            self.strategies,
            self.call_s[idx],
            self.compile_s[idx],
            self.calls[idx],
            [self.samples[i] for i in idx],
            None if self.pass_call_s is None else self.pass_call_s[idx],
        )

    def with_calls(self, calls: Union[str, np.ndarray], seed: int = 0) -> Workload:
        """The same functions with other call counts (a spec is drawn with `seed`)."""
        counts = draw_calls(calls, self.call_s[:, 0], seed) if isinstance(calls, str) else calls
        return dataclasses.replace(self, calls=np.asarray(counts, dtype=np.int64))

    @property
    def families(self) -> list:
        """Each function's program family (`None` where the record has none)."""
        return [s.get("family") for s in self.samples]

    def oracle(self) -> ReplayResult:
        """The hindsight optimum: each function compiled once with its best strategy."""
        costs = self.compile_s + self.calls[:, None] * self.call_s
        best = costs.argmin(axis=1)
        decisions = [[(0, "compile", self.strategies[b])] for b in best]
        return ReplayResult("oracle", costs.min(axis=1), decisions, 0.0)


def _times(samples: list, strategies: list, key: str, scale: float, where: str) -> np.ndarray:
    out = np.empty((len(samples), len(strategies)))
    for i, record in enumerate(samples):
        values = record.get(key)
        for j, name in enumerate(strategies):
            value = values.get(name) if isinstance(values, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise DataError(
                    f"{where}: samples[{i}]['{key}'] has no positive time for strategy "
                    f"{name!r}; a workload needs every strategy's time per call and compile time"
                )
            out[i, j] = value * scale
    return out


def _pass_times(samples: list, strategies: list) -> Optional[np.ndarray]:
    passes = [s.get("pass_timings_ns") for s in samples]
    if not samples or not all(isinstance(p, list) and p for p in passes):
        return None
    count = min(len(p) for p in passes)
    try:
        return (
            np.array([[[p[i][name] for name in strategies] for i in range(count)] for p in passes])
            * 1e-9
        )
    except (KeyError, TypeError):
        return None


@dataclasses.dataclass
class FunctionState:
    """What a tiering controller knows about one function at a checkpoint.

    Attributes:
        calls: calls run so far.
        level: the strategy the function runs on now.
        run_s: seconds spent in its calls so far (all builds).
        level_calls: calls run on the current build.
        measured_call_s: strategy -> measured seconds per call (builds that ran).
        compiled_s: strategy -> measured compile seconds (builds made).
        autotuned: whether the function has been autotuned (its checkpoints stop).
        background: whether builds after the first run on a background compile
            thread while the calls go on at the current build (see `replay`).
    """

    calls: int = 0
    level: str = ""
    run_s: float = 0.0
    level_calls: int = 0
    measured_call_s: dict = dataclasses.field(default_factory=dict)
    compiled_s: dict = dataclasses.field(default_factory=dict)
    autotuned: bool = False
    background: bool = False


@dataclasses.dataclass
class ReplayResult:
    """What a policy cost on a workload.

    Attributes:
        policy: the policy's name.
        totals_s: `(n,)` per function, seconds of compiling + calls.
        decisions: per function, `(calls_so_far, action, strategy)` tuples:
            "compile" (a build, and switching to it), "switch" (to an existing
            build), "time" (a build timed on one real call while autotuning).
        decide_s: wall seconds the policy itself spent deciding (its Python
            code and any model it consults), not part of `totals_s`.
        states: per function, the final `FunctionState`: what the policy
            measured (`measured_call_s`, `compiled_s`), as a live JIT would have.
        background_s: with `replay(background=True)`, the compile seconds spent
            on the background thread (CPU time, not part of `totals_s`).
    """

    policy: str
    totals_s: np.ndarray
    decisions: list
    decide_s: float
    states: list = dataclasses.field(default_factory=list)
    background_s: float = 0.0

    @property
    def total_s(self) -> float:
        return float(self.totals_s.sum())


def replay(
    workload: Workload, policy: Any, seed: int = 0, background: bool = False
) -> ReplayResult:
    """Replays `policy` on `workload` against the measured times.

    Args:
        workload: the functions and their call counts.
        policy: a `keras_trainer.jit.tiering.policies.Policy` (by name: `get_policy("always:O3")`).
        seed: chooses which measuring pass a build timed on one call reports
            (autotuning), when the dataset has the passes.
        background: replay a JIT with a background compile thread (HotSpot's and
            V8's tiered compilers, `AdaptiveJIT(background_compile=True)`): the
            first build is compiled before the first call, as always; a later
            build is compiled on the other thread while the calls go on at the
            current build, and is used once its compile time has passed. Totals are
            then the caller's wall time given a spare core; the compile time on the
            other thread is `ReplayResult.background_s`.

    Returns:
        A `ReplayResult`; its `total_s` over the oracle's is the regret.
    """
    rng = np.random.default_rng(seed)
    index = {name: j for j, name in enumerate(workload.strategies)}
    totals = np.empty(len(workload))
    started = time.perf_counter()
    policy.prepare(workload)  # batched model predictions count as deciding
    decisions, states, decide_s = [], [], time.perf_counter() - started
    background_s = 0.0
    for i in range(len(workload)):
        total, log, spent, state, off_thread = _replay_function(
            workload, i, policy, index, rng, background
        )
        totals[i] = total
        decisions.append(log)
        states.append(state)
        decide_s += spent
        background_s += off_thread
    return ReplayResult(policy.name, totals, decisions, decide_s, states, background_s)


def _run_calls(state: FunctionState, calls: int, call_s: float) -> None:
    state.run_s += calls * call_s
    state.calls, state.level_calls = state.calls + calls, state.level_calls + calls
    state.measured_call_s[state.level] = call_s


def _replay_function(
    workload: Workload, i: int, policy, index: dict, rng, background: bool = False
) -> tuple:
    # Python floats: the controllers' arithmetic on numpy scalars is several times slower.
    call_s, compile_s = workload.call_s[i].tolist(), workload.compile_s[i].tolist()
    n = int(workload.calls[i])
    started = time.perf_counter()
    controller = policy.controller(workload.samples[i], workload.strategies)
    level = controller.first_level()
    spent = time.perf_counter() - started
    state = FunctionState(
        level=level, compiled_s={level: compile_s[index[level]]}, background=background
    )
    total, log, off_thread = compile_s[index[level]], [(0, "compile", level)], 0.0
    while state.calls < n:
        checkpoint = controller.next_checkpoint(state)
        target = n if checkpoint >= n else max(int(checkpoint), state.calls + 1)
        _run_calls(state, target - state.calls, call_s[index[state.level]])
        if state.calls >= n:
            break
        started = time.perf_counter()
        action = controller.decide(state)
        spent += time.perf_counter() - started
        if action is None:
            continue
        kind, levels = action
        compiling = 0.0
        for name in levels:
            if name not in state.compiled_s:
                state.compiled_s[name] = compile_s[index[name]]
                compiling += compile_s[index[name]]
                log.append((state.calls, "compile", name))
        if background:
            # The calls go on at the current build until the new builds are ready.
            current = call_s[index[state.level]]
            _run_calls(state, min(n - state.calls, math.ceil(compiling / current)), current)
            off_thread += compiling
            if state.calls >= n:
                break
        else:
            total += compiling
        if kind == "autotune":
            _autotune(workload, i, levels, state, index, rng, n, log)
        elif levels[0] != state.level:
            if log[-1] != (state.calls, "compile", levels[0]):
                log.append((state.calls, "switch", levels[0]))
            state.level, state.level_calls = levels[0], 0
    return total + state.run_s, log, spent, state, off_thread


def measured_records(workload: Workload, result: ReplayResult) -> list[dict]:
    """The dataset records a live JIT would have written (`AdaptiveJIT(record_to=)`)
    while deciding as `result` replayed: per function its IR and O0 probe (runtime
    metrics, O0 time per call and compile time), the compile time of every build the
    policy made and the time per call of every build it ran or timed."""
    records = []
    for sample, state in zip(workload.samples, result.states):
        timings = {name: seconds * 1e9 for name, seconds in state.measured_call_s.items()}
        compiles = {name: seconds * 1e3 for name, seconds in state.compiled_s.items()}
        runtime = sample["runtime"]
        timings[workload.strategies[0]] = runtime["exec_time_ns"]
        compiles[workload.strategies[0]] = runtime["compile_time_ms"]
        record = {
            "ir": sample["ir"],
            "entry": sample.get("entry", "entry"),
            "runtime": runtime,
            "timings_ns": timings,
            "compile_times_ms": compiles,
        }
        if sample.get("family") is not None:
            record["family"] = sample["family"]
        records.append(record)
    return records


def _autotune(workload, i, levels, state, index, rng, n, log) -> None:
    """Times each build on one real call (one measuring pass's time) and keeps the fastest."""
    call_s, passes = workload.call_s[i].tolist(), workload.pass_call_s
    seen = {}
    for name in levels:
        if state.calls >= n:
            break
        state.run_s += call_s[index[name]]
        state.calls += 1
        if passes is not None:
            seen[name] = float(passes[i, rng.integers(passes.shape[1]), index[name]])
        else:
            seen[name] = call_s[index[name]]
        log.append((state.calls, "time", name))
    if state.level in state.measured_call_s:
        seen.setdefault(state.level, state.measured_call_s[state.level])
    best = min(seen, key=seen.get)
    state.measured_call_s.update(seen)
    state.autotuned = True
    if best != state.level:
        log.append((state.calls, "switch", best))
        state.level, state.level_calls = best, 0
