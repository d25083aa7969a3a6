"""The host machine as this process sees it (no Keras import: the JIT runtime uses it)."""

from __future__ import annotations

import os


def usable_cpu_count() -> int:
    """CPU cores this process may run on: its affinity mask where the OS has one (Linux;
    a container's or `taskset`'s limit), else every core."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(usable) if usable else os.cpu_count() or 1
