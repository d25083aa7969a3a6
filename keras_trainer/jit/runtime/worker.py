"""The measuring worker: compiles one module under every strategy and times it.

`collect_dataset` runs this module as a subprocess (`python -m
keras_trainer.jit.runtime.worker`), one per IR module, sending a JSON job on stdin and
reading a JSON result from stdout; a kernel that crashes or hangs takes only
its worker down. `measure` is the same work in-process.

Example:

>>> measure({"ir": ir_text, "entry": "entry", "args": [1000]})["timings_ns"]["O2"]
8123
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import sys
import time

from keras_trainer.jit.runtime.engine import compile_ir
from keras_trainer.jit.strategies import STRATEGY_NAMES

# keras_trainer/jit/runtime/worker.py -> the folder that holds keras_trainer
_PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def worker_env() -> dict:
    """Environment of a worker subprocess that imports this copy of keras_trainer."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _same(a, b) -> bool:
    # Bitwise for floats, so that NaN results compare equal and -0.0 != 0.0.
    if isinstance(a, float) or isinstance(b, float):
        return struct.pack("<d", float(a)) == struct.pack("<d", float(b))
    return a == b


def time_call(cfunc, args, repeats: int, calls: int = 1) -> list:
    """Wall times in ns of `repeats` timed runs of `cfunc(*args)`.

    With `calls > 1`, each run makes `calls` back-to-back calls and the time
    per call (run time / calls) is recorded: short kernels are then timed
    over a span well above the clock's and the scheduler's jitter.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            cfunc(*args)
        times.append((time.perf_counter_ns() - start) / calls)
    return times


def measure(job: dict) -> dict:
    """Compiles, checks and times one module under each strategy.

    Args:
        job: `{"ir": str, "entry": str, "args": list, "strategies": [names]
            (default all), "warmup": int (default 1), "repeats": int
            (default 5), "min_sample_ns": int (default 0)}`. With
            `min_sample_ns`, each timed sample repeats the call enough times
            to last about that long on the first (slowest) strategy and
            records the time per call.

    Returns:
        `{"ok": True, "result", "timings_ns": {name: median ns},
        "compile_times_ms": {name: ms}, "runtime": {"exec_time_ns",
        "compile_time_ms", "code_size_bytes"}}` where `runtime` is measured
        under the first strategy (the O0 baseline), or `{"ok": False,
        "reason": str}` when the strategies disagree on the result.
    """
    strategies = job.get("strategies") or STRATEGY_NAMES
    # A strategy is a built-in name or a full `Strategy` dict (declared in a config).
    names = [s["name"] if isinstance(s, dict) else s for s in strategies]
    args = list(job.get("args", []))
    warmup = int(job.get("warmup", 1))
    repeats = int(job.get("repeats", 5))
    functions = {}
    for position, (name, strategy) in enumerate(zip(names, strategies)):
        functions[name] = compile_ir(
            job["ir"], job["entry"], strategy, measure_code_size=position == 0
        )
    args = functions[names[0]].convert(args)
    results = {}
    for name, function in functions.items():
        for _ in range(max(warmup, 1)):
            results[name] = function(*args)
    reference = results[names[0]]
    disagree = {n: r for n, r in results.items() if not _same(r, reference)}
    if disagree:
        return {
            "ok": False,
            "reason": f"strategies disagree on the result: {names[0]}={reference!r}, "
            + ", ".join(f"{n}={r!r}" for n, r in disagree.items()),
        }
    calls = 1
    min_sample_ns = float(job.get("min_sample_ns", 0))
    if min_sample_ns > 0:
        probe = min(time_call(functions[names[0]].cfunc, args, 3))
        calls = max(1, min(10_000, int(min_sample_ns // max(probe, 1.0))))
    samples = {name: [] for name in names}
    # Round-robin, rotating the order, so that drift (frequency, cache) hits
    # every strategy alike.
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            samples[name].extend(time_call(functions[name].cfunc, args, 1, calls))
    timings = {name: int(statistics.median(t)) for name, t in samples.items()}
    baseline = functions[names[0]]
    return {
        "ok": True,
        "result": reference,
        "timings_ns": timings,
        "compile_times_ms": {n: round(f.compile_time_ms, 4) for n, f in functions.items()},
        "calls_per_sample": calls,
        "runtime": {
            "exec_time_ns": timings[names[0]],
            "compile_time_ms": round(baseline.compile_time_ms, 4),
            "code_size_bytes": baseline.code_size_bytes,
        },
    }


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        result = measure(job)
    except Exception as error:  # reported to the parent, which records the module as failed
        result = {"ok": False, "reason": f"{type(error).__name__}: {error}"}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
