"""Where a population search's time goes: `keras-trainer tune` timed by phase.

    KERAS_BACKEND=jax python benchmarks/search_waves.py [--config config/jit_tuned.json] \
        [--max-trials 1000] [--population-size auto] [--workers N] [--set KEY=VALUE ...]

Runs `keras-trainer tune CONFIG --max-trials N --set tuning.population_size=SIZE` in this
process, in a temporary folder, and prints its output with the seconds since the start,
then:

* the wall time of the whole command, up to the first wave's start (imports, data,
  the search space, sizing the wave), the waves, and after the search (the trial
  table, retraining or reloading the best model, its test metrics, saving);
* on JAX, XLA's work from `jax.monitoring`'s duration events, summed over the threads
  that compile side by side: tracing and lowering (they hold Python's GIL, so they add
  up on the wall clock), and backend compiles (they do not), with their counts.

`--workers` overrides `population_workers()` (threads training populations side by side).
Set `XLA_FLAGS` as usual to try XLA options (for example `--xla_gpu_autotune_level=0`).
As in the other benchmarks, `OMP_NUM_THREADS` defaults to 1 (`benchmarks/fit.py`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import tempfile
import time

STARTED = time.perf_counter()

from benchmarks.fit import compile_listener, device_name  # noqa: E402
from keras_trainer.cli import main as cli_main  # noqa: E402
from keras_trainer.core.training import population  # noqa: E402


class _StampedStream:
    """Prefixes each line written with the seconds since the benchmark started."""

    def __init__(self, stream):
        self.stream = stream
        self.line_start = True
        self.stamps: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.line_start:
                now = time.perf_counter() - STARTED
                self.stamps.append((now, piece.strip()))
                self.stream.write(f"[{now:7.2f}] ")
            self.stream.write(piece)
            self.line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/jit_tuned.json")
    parser.add_argument("--max-trials", type=int, default=1000)
    parser.add_argument("--population-size", default="auto")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--set", action="append", default=[], help="more KEY=VALUE overrides")
    args = parser.parse_args()
    import keras

    if args.workers is not None:
        population.population_workers = lambda: args.workers
    config = os.path.abspath(args.config)
    print(
        f"backend={keras.backend.backend()} device={device_name()} "
        f"workers={population.population_workers()} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    totals: collections.Counter = collections.Counter()
    programs: collections.Counter = collections.Counter()
    if keras.backend.backend() == "jax":
        import jax

        jax.monitoring.register_event_duration_secs_listener(compile_listener(totals, programs))
    stream = _StampedStream(sys.stdout)
    command = ["tune", config, "--max-trials", str(args.max_trials)]
    command += ["--set", f"tuning.population_size={args.population_size}"]
    for override in args.set:
        command += ["--set", override]
    here = os.getcwd()
    with (
        tempfile.TemporaryDirectory() as folder,
        contextlib.redirect_stdout(stream),
        contextlib.redirect_stderr(stream),
    ):
        os.chdir(folder)  # the run's folders; contextlib.chdir needs Python 3.11
        try:
            code = cli_main(command)
        finally:
            os.chdir(here)
    ended = time.perf_counter() - STARTED
    waves = [(at, line) for at, line in stream.stamps if line.startswith("wave ")]
    first_wave = waves[0][0] - float(waves[0][1].rsplit(",", 1)[1].split()[0]) if waves else 0
    last_wave = waves[-1][0] if waves else 0
    print(f"\nexit code {code}; whole command {ended:.1f} s")
    print(f"  before the first wave {first_wave:.1f} s; waves {last_wave - first_wave:.1f} s;")
    print(f"  after the search {ended - last_wave:.1f} s")
    for name in (
        "jaxpr_trace_duration",
        "jaxpr_to_mlir_module_duration",
        "backend_compile_duration",
    ):
        event = f"/jax/core/compile/{name}"
        if totals[event + " (count)"]:
            print(f"  {name}: {totals[event]:.1f} s over {totals[event + ' (count)']} calls")
    names = [name for name in programs if not name.endswith(" (count)")]
    for name in sorted(names, key=programs.get, reverse=True)[:12]:
        compiles = programs[name + " (count)"]
        print(f"    {name[:70]}: {compiles} compiles, {programs[name]:.1f} s")


if __name__ == "__main__":
    main()
