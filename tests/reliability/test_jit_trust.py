"""Untrusted IR never runs in the caller's process (issue 12, item 2)."""

import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("llvmlite")

from keras_trainer.errors import DataError, WorkerError  # noqa: E402
from keras_trainer.jit.runtime.adaptive import AdaptiveJIT  # noqa: E402

from ..conftest import subprocess_env  # noqa: E402
from ..jit.snippets import ONE_LOOP  # noqa: E402
from ..jit.test_adaptive import save_tiny_model  # noqa: E402
from .ir_snippets import CRASHES, HANGS, INLINE_ASM, USES_SQRT, calls_system  # noqa: E402,F401


@pytest.fixture(scope="module")
def o2_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("m") / "o2.keras", favourite=2)


def test_untrusted_ir_that_calls_system_is_refused_before_it_runs(o2_model, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(DataError, match=r"line 2: declares the external function @system"):
        AdaptiveJIT(o2_model).compile(calls_system(marker), "entry", args=[1])
    assert not marker.exists()


def test_untrusted_ir_with_inline_assembly_is_refused(o2_model):
    with pytest.raises(DataError, match="@entry contains inline assembly"):
        AdaptiveJIT(o2_model).compile(INLINE_ASM, "entry", args=[1])


def test_untrusted_ir_that_hangs_is_killed_after_the_time_limit(o2_model):
    jit = AdaptiveJIT(o2_model, timeout_s=3)
    start = time.monotonic()
    with pytest.raises(WorkerError, match="did not finish within 3 s"):
        jit.compile(HANGS, "entry", args=[1])
    assert time.monotonic() - start < 30


def test_untrusted_ir_that_crashes_leaves_the_caller_alive(o2_model):
    with pytest.raises(WorkerError, match="SIGSEGV"):
        AdaptiveJIT(o2_model).compile(CRASHES, "entry", args=[1])


def test_untrusted_build_and_calls_run_in_a_worker_process(o2_model):
    function = AdaptiveJIT(o2_model).compile(ONE_LOOP, "entry", args=[10])
    with function:
        assert function.strategy == "O2" and not hasattr(function, "cfunc")
        assert function(1000) == sum(range(1000))
        assert function._worker.running and function._worker._process.pid != os.getpid()
    assert not function._worker.running


def test_untrusted_ir_may_call_c_math(o2_model, tmp_path):
    from keras_trainer.jit.runtime.sandbox import IsolatedJIT, check_untrusted_ir

    check_untrusted_ir(USES_SQRT, "entry")
    with IsolatedJIT(timeout_s=30) as worker:
        worker.probe(USES_SQRT, "entry", [16.0], repeats=1)
        worker.build("O2")
        assert worker.call([16.0]) == 4.0


def test_trusted_runs_in_process(o2_model):
    function = AdaptiveJIT(o2_model, trusted=True).compile(ONE_LOOP, "entry", args=[10])
    assert function.strategy == "O2" and hasattr(function, "cfunc")
    assert function(100) == sum(range(100))


def _jit_cli(model, ir_path, *extra, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "keras_trainer", "jit", model, str(ir_path), "1", *extra],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=timeout,
    )


def test_cli_jit_times_out_on_a_hanging_module(o2_model, tmp_path):
    ir_path = tmp_path / "hang.ll"
    ir_path.write_text(HANGS)
    result = _jit_cli(o2_model, ir_path, "--timeout", "2")
    assert result.returncode == 2, result.stderr
    assert "did not finish within 2 s" in result.stderr and "Traceback" not in result.stderr


def test_cli_jit_refuses_a_module_that_calls_out(o2_model, tmp_path):
    marker = tmp_path / "ran"
    ir_path = tmp_path / "system.ll"
    ir_path.write_text(calls_system(marker))
    result = _jit_cli(o2_model, ir_path)
    assert result.returncode == 2 and "@system" in result.stderr, result.stderr
    assert not marker.exists()
