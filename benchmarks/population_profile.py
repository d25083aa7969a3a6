"""Where a JAX population's time goes: compile, each epoch's host work, device work.

    KERAS_BACKEND=jax python benchmarks/population_profile.py [--sizes 64 1024] \
        [--samples 4096] [--epochs 5] [--trace-dir DIR]

For each population size P it trains P seed-MLP members with `fit_population`
(the workload of `benchmarks/population.py`) twice in one process and prints:

* the wall time of the run and of each epoch (the first epoch includes tracing
  and compiling: `fit_population` builds its programs per run);
* XLA compile seconds and compile count, from `jax.monitoring`'s duration events;
* the seconds spent inside each program (`train` epoch halves, `test` batches,
  `results`, best-weight `select`) and between them on the host, by wrapping
  the run's compiled functions with a timer that waits for their results
  (`block_until_ready`), so the device work of each call is counted where it
  happens;
* with `--trace-dir`, a `jax.profiler` trace of the second run (open the
  `.xplane.pb` with TensorBoard's profile plugin or the `perfetto_trace.json.gz`
  in ui.perfetto.dev), and the device operations that took longest in it.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


from benchmarks.fit import compile_listener  # noqa: E402
from benchmarks.population import _builder, _configs, workload  # noqa: E402
from keras_trainer.core.training import population  # noqa: E402
from keras_trainer.core.training.population import fit_population  # noqa: E402

PROGRAMS = ("_train", "_test", "_results", "_select")


class ProgramTimer:
    """Wraps a run's compiled programs: seconds and calls per program, waiting for results."""

    def __init__(self):
        self.seconds = collections.Counter()
        self.calls = collections.Counter()

    def install(self, run) -> None:
        import jax

        for name in PROGRAMS:
            function = getattr(run, name, None)
            if function is None:
                continue

            def timed(*args, _function=function, _name=name):
                started = time.perf_counter()
                out = jax.block_until_ready(_function(*args))
                self.seconds[_name] += time.perf_counter() - started
                self.calls[_name] += 1
                return out

            setattr(run, name, timed)


def _device_ops(trace_dir: str, top: int = 12) -> list[tuple[str, float, int]]:
    """The `top` device operations by total microseconds in a perfetto trace."""
    paths = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    if not paths:
        return []
    with gzip.open(max(paths, key=os.path.getmtime), "rt") as handle:
        trace = json.load(handle)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {
        e["pid"]: e["args"].get("name", "")
        for e in events
        if e.get("ph") == "M" and e.get("name") == "process_name"
    }
    totals, counts = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") != "X" or "GPU" not in names.get(event.get("pid"), "").upper():
            continue
        totals[event["name"]] += event.get("dur", 0)
        counts[event["name"]] += 1
    return [(name, us, counts[name]) for name, us in totals.most_common(top)]


def main() -> None:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trace-dir", help="write a jax.profiler trace of each second run here")
    args = parser.parse_args()
    x, y = workload(args.samples, args.epochs)
    compiles = collections.Counter()
    jax.monitoring.register_event_duration_secs_listener(compile_listener(compiles))
    original_run = population._PopulationRun.run
    for count in args.sizes:
        configs = _configs(count, args.epochs)
        for attempt in ("first", "second"):
            timer = ProgramTimer()

            def run(self, _timer=timer):
                _timer.install(self)
                return original_run(self)

            population._PopulationRun.run = run
            compiles.clear()
            tracing = bool(args.trace_dir) and attempt == "second"
            trace_dir = os.path.join(args.trace_dir or ".", f"population_{count}")
            if tracing:
                jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
            started = time.perf_counter()
            members = fit_population(_builder, x, y, configs)
            wall = time.perf_counter() - started
            if tracing:
                jax.profiler.stop_trace()
            population._PopulationRun.run = original_run
            epochs = members[0].history.epoch_times
            inside = sum(timer.seconds.values())
            compile_s = sum(v for k, v in compiles.items() if not k.endswith("(count)"))
            print(f"\nP={count} ({attempt} run): wall {wall:.2f} s")
            print("  epoch seconds: " + ", ".join(f"{s:.3f}" for s in epochs))
            print(
                f"  inside compiled programs (compiling included on first calls): {inside:.2f} s;"
                f" the rest of the run (host work, building, stacking): {wall - inside:.2f} s"
            )
            for name in PROGRAMS:
                if timer.calls[name]:
                    print(
                        f"    {name.strip('_'):8s} {timer.calls[name]:5d} calls "
                        f"{timer.seconds[name]:8.3f} s"
                    )
            print(f"  compile/trace events: {compile_s:.2f} s")
            for key, value in sorted(compiles.items()):
                if not key.endswith("(count)"):
                    print(f"    {key}: {value:.2f} s over {compiles[key + ' (count)']} events")
            if tracing:
                for name, us, calls in _device_ops(trace_dir):
                    print(f"    device op {name[:70]:70s} {us / 1e3:9.2f} ms in {calls} runs")


if __name__ == "__main__":
    main()
