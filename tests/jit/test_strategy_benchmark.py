"""benchmarks/jit_strategy.py runs end to end on a small slice of the bundled corpus."""

import os
import subprocess
import sys

import pytest

from keras_trainer.jit import C_KERNELS_PATH, read_dataset
from keras_trainer.jit.data.collect import save_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [pytest.mark.one_backend(backend="torch"), pytest.mark.slow]


def test_the_strategy_benchmark_reports_every_chooser_and_the_checks(tmp_path):
    dataset = read_dataset(C_KERNELS_PATH)
    dataset["samples"] = dataset["samples"][:150]
    path = str(tmp_path / "slice.json.gz")
    save_dataset(dataset, path)
    process = subprocess.run(
        [sys.executable, "benchmarks/jit_strategy.py", "--dataset", path, "--folds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert process.returncode == 0, process.stderr[-2000:]
    out = process.stdout
    for row in (
        "seed config (labels)",
        "cost-aware + fallback",
        "RandomForest (same features)",
        "oracle",
    ):
        assert out.count(row) == 2, row  # once per cross-validation scheme
    assert "<- best fixed" in out
    assert out.count("PASS") + out.count("FAIL") == 3
