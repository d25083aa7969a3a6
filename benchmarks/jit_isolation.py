"""What running untrusted IR in a worker costs: `AdaptiveJIT.compile` and one call,
isolated (default) against in-process (`trusted=True`), measured in the same run.

    PYTHONPATH=. python benchmarks/jit_isolation.py [--repeats 5]

Prints the median seconds of each and the isolated/in-process ratio. The model is
a tiny serving model (its prediction costs the same on both paths); the IR is a
corpus kernel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import keras

    from keras_trainer.jit.data.corpus import generate_corpus
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT
    from tests.jit.test_adaptive import save_tiny_model

    kernel = generate_corpus(1, seed=0)[0]
    ir, entry, call_args = kernel.ir, kernel.entry, list(kernel.args)
    with tempfile.TemporaryDirectory() as folder:
        model = save_tiny_model(os.path.join(folder, "o2.keras"), favourite=2)
        rows = {}
        for label, trusted in (("in-process (trusted=True)", True), ("worker (default)", False)):
            jit = AdaptiveJIT(model, trusted=trusted)
            jit.compile(ir, entry, args=call_args)  # warm-up: imports, model tracing
            compile_s, call_s = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                function = jit.compile(ir, entry, args=call_args)
                compile_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                function(*call_args)
                call_s.append(time.perf_counter() - start)
                if hasattr(function, "close"):
                    function.close()
            rows[label] = (statistics.median(compile_s), statistics.median(call_s))
    print(
        f"backend {keras.backend.backend()}, kernel {kernel.name}, {args.repeats} repeats (median)"
    )
    print(f"{'path':<28}{'compile s':>12}{'one call s':>14}")
    for label, (compile_time, call_time) in rows.items():
        print(f"{label:<28}{compile_time:>12.4f}{call_time:>14.6f}")
    (trusted_compile, trusted_call), (isolated_compile, isolated_call) = rows.values()
    print(
        f"worker / in-process: compile {isolated_compile / trusted_compile:.2f}x, "
        f"call {isolated_call / trusted_call:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
