"""Running untrusted LLVM IR outside the caller's process, with a time limit.

`AdaptiveJIT` (unless `trusted=True`) and `keras-trainer jit` compile and run IR
that may come from anyone. Machine code from such IR can do whatever the
process can: call `system`, loop forever, crash. So it never runs in the
caller's process: an `IsolatedJIT` owns a worker subprocess (`python -m
keras_trainer.jit.runtime.sandbox`, its own session, no Keras) that compiles the IR,
runs the timing probes, builds the chosen strategy and serves the calls. Each
request has a wall-clock limit; a worker that runs past it, crashes or dies is
killed with its whole process group and the caller gets a `WorkerError`.

Before anything is compiled, `check_untrusted_ir` refuses IR that can reach
outside the module by name: calls or references to external functions other
than LLVM intrinsics and the C math library, external global variables,
inline assembly and calls to a computed address, read from the parsed module
(llvmlite), not the text. Trusted IR, compiled in the caller's process, gets
`check_compilable_ir` first (LLVM aborts the process on bad inline assembly).
The worker isolation and time limit still apply to what is left (e.g. a call
through a pointer loaded from memory).

The protocol is one JSON object per line: requests on the worker's stdin,
replies on a duplicate of its original stdout (the IR's own writes to stdout
go to stderr).

Example:

>>> with IsolatedJIT(timeout_s=10) as worker:
...     probe = worker.probe(ir_text, "entry", [1000], repeats=3)
...     worker.build("O2")
...     worker.call([1000])
499500
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Optional

from keras_trainer import errors
from keras_trainer.errors import DataError, WorkerError
from keras_trainer.jit.runtime.worker import worker_env

# External functions untrusted IR may call: pure C math (no I/O, no processes).
ALLOWED_EXTERNAL_FUNCTIONS = frozenset(
    name + suffix
    for name in (
        "sqrt",
        "cbrt",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log2",
        "log10",
        "log1p",
        "pow",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "fabs",
        "floor",
        "ceil",
        "round",
        "trunc",
        "fmod",
        "fmin",
        "fmax",
        "hypot",
        "copysign",
    )
    for suffix in ("", "f")
)
# Address space of the worker: generous for LLVM, but a runaway allocation fails there.
WORKER_MEMORY_BYTES = 4 * 1024**3
_CALLS = ("call", "invoke", "callbr")


def _line_of(ir_text: str, pattern: str) -> Optional[int]:
    match = re.search(pattern, ir_text, re.MULTILINE)
    return ir_text.count("\n", 0, match.start()) + 1 if match else None


def _short_instruction(instruction) -> str:
    text = " ".join(str(instruction).split())
    return text if len(text) <= 80 else text[:77] + "..."


def check_compilable_ir(ir_text: str, entry: Optional[str] = None, what: str = "IR"):
    """The structural check every IR gets before this process compiles it.

    Reads the parsed module (llvmlite), not the text, so comments, line breaks
    and spacing cannot hide anything: inline assembly (module-level or in a call)
    and calls to a computed address are refused, since LLVM aborts the whole
    process on assembly it cannot assemble, and a computed address jumps
    anywhere. Run before compiling trusted IR in the caller's process, and as
    part of `check_untrusted_ir`.

    Returns:
        The parsed module.

    Raises:
        IRParseError: the IR does not parse or verify, or has no `entry`.
        DataError: inline assembly or a call to a computed address, naming the
            function and the instruction.
    """
    import llvmlite.binding as llvm

    from keras_trainer.jit.ir import parse_ir

    module = parse_ir(ir_text, entry=entry)
    # LLVM's own printing of the parsed module: canonical, without comments.
    if any(line.startswith("module asm") for line in str(module).splitlines()):
        raise DataError(f"{what}: contains module-level inline assembly, which is not allowed")
    for function in module.functions:
        for block in function.blocks:
            for instruction in block.instructions:
                if instruction.opcode not in _CALLS:
                    continue
                callee = list(instruction.operands)[-1]
                kind = callee.value_kind
                if kind == llvm.ValueKind.inline_asm:
                    problem = "inline assembly"
                elif kind == llvm.ValueKind.constant_expr or (
                    # An operand prints as its defining instruction (LLVM's own printing).
                    kind == llvm.ValueKind.instruction and " = inttoptr " in str(callee)
                ):
                    problem = "a call to a computed address"
                else:
                    continue
                raise DataError(
                    f"{what}: @{function.name} contains {problem}, which is not allowed "
                    f"({_short_instruction(instruction)})"
                )
    return module


def check_untrusted_ir(ir_text: str, entry: Optional[str] = None) -> None:
    """Refuses IR that names code outside the module (see the module docstring).

    Reads the parsed module: `check_compilable_ir`'s rules, then every declared
    function and global variable.

    Raises:
        IRParseError: bad IR (from `parse_ir`).
        DataError: an external function other than LLVM intrinsics and C math,
            an external global variable, inline assembly or a call to a computed
            address; naming it (and its line where the text shows it).
    """
    module = check_compilable_ir(ir_text, entry, what="untrusted IR")
    for function in module.functions:
        name = function.name
        if (
            function.is_declaration
            and not name.startswith("llvm.")
            and name not in ALLOWED_EXTERNAL_FUNCTIONS
        ):
            line = _line_of(ir_text, rf"^\s*declare\b.*@\"?{re.escape(name)}\b")
            raise DataError(
                f"untrusted IR{f' line {line}' if line else ''}: declares the external function "
                f"@{name}; only LLVM intrinsics and C math functions may be called from untrusted IR "
                "(pass trusted=True, or --trusted, for IR you wrote)"
            )
    for variable in module.global_variables:
        if variable.is_declaration:
            line = _line_of(ir_text, rf"^\s*@\"?{re.escape(variable.name)}\b.*\bexternal\b")
            raise DataError(
                f"untrusted IR{f' line {line}' if line else ''}: refers to the external global "
                f"@{variable.name}; untrusted IR may only use its own globals"
            )


def _limit_worker() -> None:  # runs in the worker before it reads any IR
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > WORKER_MEMORY_BYTES:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, hard))


class IsolatedJIT:
    """A worker subprocess that compiles and runs one untrusted IR module.

    Args:
        timeout_s: wall-clock limit of each request (probe, build, call), > 0.

    Raises:
        WorkerError: from any request whose worker times out, crashes or dies.
    """

    def __init__(self, timeout_s: float = 60.0):
        if not timeout_s > 0:
            raise DataError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  lives as long as the worker
        self._process = subprocess.Popen(
            [sys.executable, "-m", "keras_trainer.jit.runtime.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=worker_env(),
            start_new_session=True,
        )
        self._buffer = b""

    # ----------------------------------------------------------------- protocol
    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def _read_line(self, deadline: float) -> Optional[bytes]:
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def request(self, op: str, what: str, **fields: Any) -> dict:
        """Sends one request; returns the reply, or raises the worker's error."""
        if self._process.poll() is not None:
            raise WorkerError(
                f"{what}: the JIT worker is no longer running (exit status {self._process.returncode})"
            )
        started = time.monotonic()
        try:
            self._process.stdin.write((json.dumps(dict(fields, op=op)) + "\n").encode())
            self._process.stdin.flush()
            line = self._read_line(started + self.timeout_s)
        except (BrokenPipeError, EOFError):
            line = b""
        if line is None:
            self.close()
            raise WorkerError(
                f"{what}: did not finish within {self.timeout_s:g} s (an endless loop?); "
                "the worker was killed"
            )
        try:
            reply = json.loads(line) if line else None
        except json.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            try:
                status = self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                status = None
            self.close()
            if status is not None and status < 0:
                try:
                    how = f"was killed by {signal.Signals(-status).name}"
                except ValueError:
                    how = f"was killed by signal {-status}"
            else:
                how = f"exited with status {status}"
            raise WorkerError(f"{what}: the JIT worker {how}{self._stderr_tail()}")
        if not reply.get("ok"):
            error_type = getattr(errors, str(reply.get("error")), None)
            if not (
                isinstance(error_type, type) and issubclass(error_type, errors.KerasTrainerError)
            ):
                error_type = WorkerError
            message = f"{what}: {reply.get('message')}"
            if error_type is errors.IRParseError:
                raise error_type(message, reply.get("line"))
            raise error_type(message)
        return reply

    # --------------------------------------------------------------------- ops
    def probe(self, ir_text: str, entry: str, args: Sequence, repeats: int) -> dict:
        """Compiles at O0 (measuring code size), runs once, then times `repeats` runs.

        Returns:
            `{"argtypes": [ctypes names], "compile_time_ms", "code_size_bytes",
            "times_ns": [...]}`.
        """
        return self.request(
            "probe",
            f"O0 probe of @{entry}",
            ir=ir_text,
            entry=entry,
            args=list(args),
            repeats=int(repeats),
        )

    def build(self, strategy: str) -> dict:
        """Builds the probed module with `strategy` (reusing the O0 build for O0)."""
        return self.request("build", f"{strategy} build", strategy=strategy)

    def run_tiered(
        self, args: Sequence, calls: int, policy: dict, background: bool = False
    ) -> dict:
        """Runs the probed module `calls` times on `args` under a tiering policy
        (`policy_spec`), builds and calls inside the worker, timed there
        (`keras_trainer.jit.runtime.tiering.timed_run`; `background`: later builds
        on the worker's background compile thread)."""
        return self.request(
            "run",
            f"tiered run of {calls} calls",
            args=list(args),
            calls=int(calls),
            policy=policy,
            background=bool(background),
        )

    def call(self, args: Sequence) -> Any:
        """Calls the last built function on `args`; returns its result."""
        return self.request("call", "call", args=list(args))["result"]

    def close(self) -> None:
        """Kills the worker and every process it started."""
        process = self._process
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        else:
            try:  # the worker is gone; a child the IR forked may live on in its group
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self._stderr.close()

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def __enter__(self) -> IsolatedJIT:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class IsolatedFunction:
    """A function of untrusted IR, built and called inside its `IsolatedJIT` worker.

    It has the attributes of `CompiledFunction` except `cfunc` (the machine
    code is not in this process). Each call has the worker's time limit.
    `close()` (or leaving a `with` block) stops the worker.
    """

    def __init__(
        self,
        worker: IsolatedJIT,
        strategy: str,
        entry: str,
        argtypes: list,
        compile_time_ms: float,
        code_size_bytes: Optional[int] = None,
    ):
        self._worker = worker
        self.strategy = strategy
        self.entry = entry
        self.argtypes = argtypes
        self.compile_time_ms = compile_time_ms
        self.code_size_bytes = code_size_bytes
        self.probabilities: Optional[dict] = None

    def __call__(self, *args):
        return self._worker.call(args)

    def close(self) -> None:
        self._worker.close()

    def __enter__(self) -> IsolatedFunction:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self):
        return f"IsolatedFunction(entry={self.entry!r}, strategy={self.strategy!r})"


# ------------------------------------------------------------------ the worker
def _handle(request: dict, state: dict) -> dict:
    from keras_trainer.jit.runtime.engine import compile_ir
    from keras_trainer.jit.runtime.worker import time_call

    op = request.get("op")
    if op == "probe":
        baseline = compile_ir(request["ir"], request["entry"], "O0", measure_code_size=True)
        args = list(request.get("args") or [])
        if len(args) != len(baseline.argtypes):
            raise DataError(
                f"'@{request['entry']}' takes {len(baseline.argtypes)} argument(s); pass them as args= "
                f"(got {len(args)}) so that the O0 probe run can measure it"
            )
        converted = baseline.convert(args)
        state.update(ir=request["ir"], entry=request["entry"], baseline=baseline, function=baseline)
        baseline.cfunc(*converted)  # warm-up
        times = time_call(baseline.cfunc, converted, max(int(request.get("repeats", 1)), 1))
        return {
            "argtypes": [getattr(t, "__name__", str(t)) for t in baseline.argtypes],
            "compile_time_ms": baseline.compile_time_ms,
            "code_size_bytes": baseline.code_size_bytes,
            "times_ns": times,
        }
    if op == "build":
        if "baseline" not in state:
            raise DataError("build before probe: nothing to build")
        strategy = request["strategy"]
        if strategy == state["baseline"].strategy:
            state["function"] = state["baseline"]
        else:
            state["function"] = compile_ir(state["ir"], state["entry"], strategy)
        return {"compile_time_ms": state["function"].compile_time_ms}
    if op == "run":
        if "baseline" not in state:
            raise DataError("run before probe: nothing to run")
        from keras_trainer.jit.runtime.tiering import timed_run
        from keras_trainer.jit.tiering.policies import policy_from_spec

        outcome = timed_run(
            state["ir"],
            state["entry"],
            policy_from_spec(request["policy"]),
            list(request.get("args") or []),
            int(request["calls"]),
            background=bool(request.get("background", False)),
        )
        return outcome
    if op == "call":
        if "function" not in state:
            raise DataError("call before build: nothing to call")
        return {"result": state["function"](*request.get("args", []))}
    raise DataError(f"unknown request {op!r}")


def main() -> int:
    """Serves requests on stdin until it closes (run as `python -m keras_trainer.jit.runtime.sandbox`)."""
    _limit_worker()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the IR's own writes to stdout must not corrupt the replies
    sys.stdout = sys.stderr
    state: dict = {}
    for line in sys.stdin:
        try:
            request = json.loads(line)
            reply = dict(_handle(request, state), ok=True)
        except errors.KerasTrainerError as error:
            reply = {
                "ok": False,
                "error": type(error).__name__,
                "message": str(error),
                "line": getattr(error, "line", None),
            }
        except Exception as error:  # reported to the parent as a WorkerError
            reply = {
                "ok": False,
                "error": "WorkerError",
                "message": f"{type(error).__name__}: {error}",
            }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
