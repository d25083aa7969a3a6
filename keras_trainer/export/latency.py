"""Recording of inference latencies and their summary statistics."""

import threading

import numpy as np


class LatencyRecorder:
    """Keeps measured latencies (nanoseconds) and summarizes them in ms.

    Recording is thread-safe. Memory is bounded: only the most recent
    `max_samples` latencies are kept (a ring buffer), so a long-running server
    reports statistics of its recent traffic.

    Args:
        max_samples: how many of the latest latencies to keep. Default 100000.

    Example:

    >>> recorder = LatencyRecorder()
    >>> recorder.record(1_500_000)
    >>> recorder.stats()["mean_ms"]
    1.5
    """

    def __init__(self, max_samples: int = 100_000):
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1; got {max_samples}")
        self.max_samples = int(max_samples)
        self._buffer = np.zeros(self.max_samples, dtype=np.int64)
        self._size = 0
        self._next = 0
        self._lock = threading.Lock()

    def record(self, nanoseconds: int) -> None:
        """Records one latency measured with `time.perf_counter_ns`."""
        with self._lock:
            self._buffer[self._next] = nanoseconds
            self._next = (self._next + 1) % self.max_samples
            self._size = min(self._size + 1, self.max_samples)

    def reset(self) -> None:
        """Forgets every recorded latency."""
        with self._lock:
            self._size = 0
            self._next = 0

    def __len__(self) -> int:
        return self._size

    def stats(self) -> dict[str, float]:
        """Summary of the recorded latencies.

        Returns:
            dict with `count` and `mean_ms`, `median_ms`, `p95_ms`, `p99_ms`,
            `min_ms`, `max_ms` (milliseconds; 0.0 when nothing was recorded).
        """
        with self._lock:
            samples = self._buffer[: self._size].astype(np.float64) / 1e6
        if samples.size == 0:
            keys = ("mean_ms", "median_ms", "p95_ms", "p99_ms", "min_ms", "max_ms")
            return {"count": 0, **{key: 0.0 for key in keys}}
        p50, p95, p99 = np.percentile(samples, [50, 95, 99])
        return {
            "count": int(samples.size),
            "mean_ms": float(samples.mean()),
            "median_ms": float(p50),
            "p95_ms": float(p95),
            "p99_ms": float(p99),
            "min_ms": float(samples.min()),
            "max_ms": float(samples.max()),
        }
