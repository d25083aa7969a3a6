"""Switches features off one at a time and checks that the tests naming them fail.

    python scripts/mutation_check.py [--only resume,fused_engine] [--baseline] [--list]

A test such as "a resumed run ends with the same weights as an uninterrupted one"
also passes when resume silently starts over, because seeded retraining reproduces
the weights. This script runs, for each feature of `MUTATIONS`, the tests that name
it with the feature switched off (a monkeypatch, applied in the pytest process by this
same module loaded as a plugin: `-p scripts.mutation_check`, the feature named in
`KERAS_TRAINER_MUTATION`), and fails if they all still pass. Child processes that
tests start run the real code, so the tests listed here run in-process.

Only the `KERAS_BACKEND` of the environment runs (one backend is enough: the switches
are backend-neutral). `--baseline` first runs the same tests unmutated, which must
pass (CI runs the suite before, so it leaves this out).

To add a feature: write a function that switches it off (`_replace_function` for a
module-level function imported by name elsewhere, `setattr` on a class for a method)
and add a `Mutation` naming it and its tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVIRONMENT_KEY = "KERAS_TRAINER_MUTATION"


def _replace_function(module_name: str, name: str, make: Callable[[Any], Any]) -> None:
    """Replaces `module.name` with `make(original)`, also where modules imported it by name."""
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    if getattr(original, "_mutated", False):
        original = original._original
    replacement = make(original)
    replacement._mutated, replacement._original = True, original
    for loaded in list(sys.modules.values()):
        ours = getattr(loaded, "__name__", "").startswith(("keras_trainer", "tests"))
        if ours and getattr(loaded, name, None) is original:
            setattr(loaded, name, replacement)


def _no_resume() -> None:
    # A resume that finds no checkpoint and silently starts over.
    from keras_trainer.core.saving.checkpoints import CheckpointManager

    CheckpointManager.restore_latest = lambda self, *args, **kwargs: None


def _one_step_per_execution() -> None:
    import keras

    compile_model = keras.Model.compile

    def compile_one_step(self, *args, **kwargs):
        kwargs["steps_per_execution"] = 1
        return compile_model(self, *args, **kwargs)

    keras.Model.compile = compile_one_step


def _no_fused_engine() -> None:
    _replace_function("keras_trainer.core.training.fused", "choose_engine", lambda _: _keras_engine)


def _keras_engine(*args: Any, **kwargs: Any) -> str:
    return "keras"


def _no_best_weight_restore() -> None:
    import keras

    early_stopping = keras.callbacks.EarlyStopping.__init__

    def without_restore(self, *args, **kwargs):
        early_stopping(self, *args, **kwargs)
        self.restore_best_weights = False

    keras.callbacks.EarlyStopping.__init__ = without_restore


def _no_normalization_in_saved_model() -> None:
    # The layer is there, with the identity's statistics instead of the data's.
    import numpy as np

    def identity_statistics(original):
        return lambda mean, variance: original(np.zeros_like(mean), np.ones_like(variance))

    _replace_function(
        "keras_trainer.core.inputs.normalization", "normalization_layer", identity_statistics
    )


def _no_untrusted_ir_check() -> None:
    _replace_function(
        "keras_trainer.jit.runtime.sandbox", "check_untrusted_ir", lambda _: _accept_ir
    )


def _accept_ir(*args: Any, **kwargs: Any) -> None:
    return None


def _no_store_checksums() -> None:
    from keras_trainer.export.store import ModelStore

    ModelStore.verify = lambda self, reference: self.get(reference)


@dataclasses.dataclass(frozen=True)
class Mutation:
    """A feature, how to switch it off, and the tests (paths, `-k` expression) naming it."""

    switch_off: Callable[[], None]
    tests: tuple[str, ...]
    keyword: str = ""


MUTATIONS: dict[str, Mutation] = {
    "resume": Mutation(
        _no_resume,
        ("tests/reliability/test_resume.py", "tests/core/test_streaming.py"),
        "resume",
    ),
    "steps_per_execution": Mutation(
        _one_step_per_execution, ("tests/core/test_fit.py",), "steps_per_execution"
    ),
    "fused_engine": Mutation(
        _no_fused_engine, ("tests/core/test_fused.py",), "matches or auto_picks"
    ),
    "early_stopping_best_weights": Mutation(
        _no_best_weight_restore,
        ("tests/core/test_fit.py", "tests/reliability/test_resume.py"),
        "best_weights",
    ),
    "normalization_in_saved_model": Mutation(
        _no_normalization_in_saved_model,
        ("tests/tabular/test_comparison_and_persistence.py",),
        "raw_features",
    ),
    "untrusted_ir_check": Mutation(
        _no_untrusted_ir_check, ("tests/reliability/test_jit_trust.py",), "refused"
    ),
    "store_checksums": Mutation(
        _no_store_checksums, ("tests/export/test_store.py",), "damaged or checksum"
    ),
}


# ---------------------------------------------------------------- the pytest plugin
def pytest_configure(config) -> None:
    name = os.environ.get(ENVIRONMENT_KEY)
    if name:
        MUTATIONS[name].switch_off()


def pytest_collection_finish(session) -> None:
    # Test modules are imported now, and with them the library modules that import
    # a switched-off function by name: switch it off there too.
    pytest_configure(session.config)


# ---------------------------------------------------------------- the script
def _pytest(mutation: Mutation, name: str | None) -> tuple[int, str]:
    env = dict(os.environ)
    env.pop(ENVIRONMENT_KEY, None)
    if name:
        env[ENVIRONMENT_KEY] = name
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf"]
    command += ["-p", "scripts.mutation_check", "-o", "addopts=", *mutation.tests]
    if name:
        command.append("-x")  # one failing test is enough
    if mutation.keyword:
        command += ["-k", mutation.keyword]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated features (default: all)")
    parser.add_argument("--baseline", action="store_true", help="first run the tests unmutated")
    parser.add_argument("--list", action="store_true", help="list the features and exit")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MUTATIONS)
    unknown = sorted(set(names) - set(MUTATIONS))
    if args.list or unknown:
        print("features:", ", ".join(MUTATIONS))
        return 2 if unknown else 0
    started = time.time()
    failures = []
    for name in names:
        mutation = MUTATIONS[name]
        if args.baseline:
            code, output = _pytest(mutation, None)
            if code != 0:
                failures.append(name)
                print(f"{name}: the tests fail with the feature on\n{output[-3000:]}")
                continue
        code, output = _pytest(mutation, name)
        caught = re.findall(r"^FAILED (\S+)", output, flags=re.MULTILINE)
        if code == 1 and caught:
            print(f"{name}: caught by {caught[0]}", flush=True)
        else:
            failures.append(name)
            verdict = "NOT caught: the tests pass" if code == 0 else f"pytest exit {code}"
            print(f"{name}: {verdict} with the feature off\n{output[-3000:]}", flush=True)
    seconds = time.time() - started
    backend = os.environ.get("KERAS_BACKEND", "tensorflow (Keras' default)")
    print(
        f"{len(names) - len(failures)}/{len(names)} features caught "
        f"({backend}, {seconds:.0f} s); not caught: {', '.join(failures) or 'none'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
