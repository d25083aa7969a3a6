"""Runs the test suite once under each Keras backend; fails if any run fails.

    python tests/run_all_backends.py [--backends tensorflow,jax,torch] [--jobs 2] [pytest args]

Each backend runs pytest in its own process with `KERAS_BACKEND` set (a backend
cannot change inside a process). Runs go `--jobs` at a time; each one's output
is printed when it ends, and a summary line closes the run. Tests marked
`one_backend` (no Keras code runs in them, or they run the documentation's
examples) run under one backend only: the one they name (`one_backend(backend=
"torch")`) if it is listed, else `--one-backend` (default the first listed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")


def run_backend(
    backend: str, backends: list[str], pytest_args: list[str], one_backend: str
) -> tuple[str, int, str, float]:
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND=backend,
        # Tests marked `one_backend` run under this backend only.
        KERAS_TRAINER_ONE_BACKEND=one_backend,
        # ... or under the one they name, `one_backend(backend=...)`, if it is run.
        KERAS_TRAINER_BACKENDS=",".join(backends),
        # One thread per process: with several processes on few cores, OpenMP
        # threads spin against each other and the torch backend slows ~40x.
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONHASHSEED="0",
    )
    started = time.time()
    with tempfile.TemporaryFile(mode="w+") as log:
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.seek(0)
        return backend, code, log.read(), time.time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--one-backend",
        default=None,
        help="backend that runs the tests marked one_backend (default: the first)",
    )
    args, pytest_args = parser.parse_known_args()
    backends = [b for b in args.backends.split(",") if b]
    one_backend = args.one_backend or backends[0]
    totals = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    failed_backends = []
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        for backend, code, output, seconds in pool.map(
            lambda b: run_backend(b, backends, pytest_args, one_backend), backends
        ):
            print(f"\n===== KERAS_BACKEND={backend} (exit {code}, {seconds:.0f} s) =====")
            print(output, flush=True)
            for count, word in re.findall(
                r"(\d+) (passed|failed|skipped|errors?)\b",
                output.splitlines()[-1] if output else "",
            ):
                totals["errors" if word.startswith("error") else word] += int(count)
            if code != 0:
                failed_backends.append(backend)
    print(f"\nbackends: {', '.join(backends)}; failed: {', '.join(failed_backends) or 'none'}")
    failed = (
        totals["failed"]
        + totals["errors"]
        + (len(failed_backends) if not totals["failed"] + totals["errors"] else 0)
    )
    print(f"{totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if failed_backends else 0


if __name__ == "__main__":
    sys.exit(main())
