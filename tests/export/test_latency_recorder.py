"""LatencyRecorder statistics."""

import pytest

from keras_trainer.export import LatencyRecorder

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_stats_of_known_latencies():
    recorder = LatencyRecorder()
    for ms in range(1, 101):
        recorder.record(ms * 1_000_000)
    stats = recorder.stats()
    assert stats["count"] == 100
    assert stats["mean_ms"] == pytest.approx(50.5)
    assert stats["median_ms"] == pytest.approx(50.5)
    assert stats["p95_ms"] == pytest.approx(95.05)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert (stats["min_ms"], stats["max_ms"]) == (1.0, 100.0)


def test_empty_recorder_reports_zeros():
    assert LatencyRecorder().stats()["count"] == 0
    assert LatencyRecorder().stats()["p99_ms"] == 0.0


def test_only_the_latest_samples_are_kept():
    recorder = LatencyRecorder(max_samples=3)
    for ms in (100, 1, 2, 3):
        recorder.record(ms * 1_000_000)
    assert recorder.stats()["count"] == 3
    assert recorder.stats()["max_ms"] == 3.0


def test_reset_forgets_samples():
    recorder = LatencyRecorder()
    recorder.record(5)
    recorder.reset()
    assert len(recorder) == 0
