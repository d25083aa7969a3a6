"""Keeps the C++ log lines of TensorFlow, XLA and absl off a command-line user's stderr.

`TF_CPP_MIN_LOG_LEVEL` silences TensorFlow's own logger, but not every native
line: on CPUs where TensorFlow turns oneDNN on (AVX-512 hosts) its notice, and
the lines that XLA and tf.data write through absl before absl's logging is
initialized ("WARNING: All log messages before absl::InitializeLog() ...",
"E0000 ... use_unbounded_threadpool"), reach file descriptor 2 directly, where
no Python logging setting can see them. So the command line routes descriptor 2
through a pipe and forwards every line except those: Python's own warnings,
errors and tracebacks pass unchanged, and so do fatal native lines.

Only the CLI installs this (`keras-trainer -v` leaves stderr alone); the library
never touches the descriptors of a Python program that imports it.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import re
import sys
import threading

# Info, warning and error lines of absl/glog ("I0000 00:00:17.5 123 file.cc:12] ...")
# and of TensorFlow's logger ("2026-12-07 10:00:00.123: I tensorflow/...cc:153] ...");
# fatal ones (F) always pass. The continuation lines are the second lines of
# TensorFlow's known two-line notices.
NATIVE_NOISE = re.compile(
    rb"^("
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\]"
    rb"|To enable the following instructions: .*rebuild TensorFlow"
    rb"|oneDNN custom operations are on"
    rb")"
)


class NativeLogFilter:
    """Forwards descriptor 2 to the real stderr, less the lines `NATIVE_NOISE` matches."""

    def __init__(self) -> None:
        self._original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._reader = os.fdopen(read_end, "rb", buffering=0)
        # A crash report must reach the terminal even if this process dies before
        # the forwarding thread runs again.
        faulthandler.enable(file=self._original)
        self.dropped = 0
        self._thread = threading.Thread(target=self._forward, name="native-log-filter")
        self._thread.daemon = True
        self._thread.start()
        atexit.register(self.close)

    def _forward(self) -> None:
        pending = b""
        while True:
            chunk = self._reader.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._emit(line + b"\n")
        if pending:
            self._emit(pending)

    def _emit(self, line: bytes) -> None:
        if NATIVE_NOISE.match(line):
            self.dropped += 1
            return
        os.write(self._original, line)

    def close(self) -> None:
        """Puts the real stderr back on descriptor 2 and forwards what is still in the pipe."""
        if self._thread is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._original, 2)  # the pipe's last writer is gone: the thread reads EOF
        self._thread.join(timeout=5)
        self._thread = None


_active: NativeLogFilter | None = None


def filter_native_log_lines() -> NativeLogFilter | None:
    """Installs the filter once per process; returns it (None where stderr has no descriptor)."""
    global _active
    if _active is None:
        try:
            os.fstat(2)
        except OSError:
            return None
        _active = NativeLogFilter()
    return _active
