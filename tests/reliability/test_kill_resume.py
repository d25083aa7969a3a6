"""A kill -9 at every write of `train`, then `--resume`: the final model is the
uninterrupted run's best, and every file left is complete (issue 12, items 3-5).

The kills are chained to keep the test quick: the run killed at write w is
resumed by a run that is killed at write w + 1 (counted in the uninterrupted
run's order of writes), until a last resume finishes; so every write is
interrupted once and every resume starts from what a kill left.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_trainer.core.saving.atomic import is_temporary
from keras_trainer.core.saving.checkpoints import CheckpointManager
from keras_trainer.core.saving.persistence import load_model
from keras_trainer.jit.data.collect import read_dataset, save_dataset

from ..conftest import ROOT, subprocess_env

pytest.importorskip("llvmlite")
pytestmark = pytest.mark.slow

CONFIG = {
    "model": {"input_dim": 12, "hidden_layers": [8], "output_dim": 5},
    "training": {
        "batch_size": 16,
        "epochs": 2,
        "validation_split": 0.25,
        "learning_rate": 0.05,
        "early_stopping_patience": 3,
        "seed": 3,
        "verbose": 0,
    },
    "data": {"test_split": 0.0},
}


def _run(kill_at, log, workdir, *extra, scope="training"):
    args = [
        "train",
        "config.json",
        "--data",
        "data.json",
        "--output",
        "out/model.keras",
        "--overwrite",  # the same workdir is trained again and again
        "--checkpoint-dir",
        "ckpt",
        "--quiet",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.kill_driver", str(kill_at), str(log), *args],
        cwd=workdir,
        env=subprocess_env(PYTHONPATH=ROOT, KILL_DRIVER_SCOPE=scope),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _workdir(path):
    path.mkdir()
    from keras_trainer.jit import SAMPLE_DATASET_PATH

    dataset = read_dataset(SAMPLE_DATASET_PATH)
    dataset["samples"] = dataset["samples"][:64]
    save_dataset(dataset, str(path / "data.json"))
    (path / "config.json").write_text(json.dumps(CONFIG))
    return path


def _weights(path):
    model, _ = load_model(path)
    return [np.asarray(w) for w in model.get_weights()]


def _check_complete(workdir):
    """Every file that is not a marked temporary is a complete, loadable artifact."""
    for folder in ("ckpt", "out"):
        root = workdir / folder
        if not root.exists():
            continue
        for name in os.listdir(root):
            path = root / name
            if is_temporary(name):
                continue
            if name.endswith(".keras"):
                load_model(path)
            elif name.endswith(".json"):
                json.loads(path.read_text())
            elif name.startswith("epoch-"):
                manager = CheckpointManager(str(root))
                from keras_trainer.core.saving.checkpoints import _load_npz, _read_state

                _read_state(str(path))
                _load_npz(str(path / "variables.npz"))
                _load_npz(str(path / "extra.npz"))
                assert manager.latest() is not None


def test_kill_at_every_write_then_resume_gives_the_uninterrupted_best(tmp_path):
    reference = _workdir(tmp_path / "reference")
    result = _run(0, tmp_path / "reference.log", reference)
    assert result.returncode == 0, result.stderr[-2000:]
    writes = (tmp_path / "reference.log").read_text().split()
    assert writes[-1] == "model.keras" and any(w.startswith("epoch-") for w in writes)
    expected = _weights(reference / "out" / "model.keras")

    workdir = _workdir(tmp_path / "killed")
    start = 0  # index in `writes` where the next (resumed) run's writes begin
    for target in range(len(writes)):
        log = tmp_path / f"kill{target}.log"
        result = _run(target - start + 1, log, workdir, "--resume")
        assert result.returncode == -9, (target, writes[target], result.stderr[-2000:])
        assert log.read_text().split() == writes[start : target + 1]
        _check_complete(workdir)
        checkpoints = [i for i in range(target) if writes[i].startswith("epoch-")]
        start = checkpoints[-1] + 1 if checkpoints else 0
    result = _run(0, tmp_path / "final.log", workdir, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    _check_complete(workdir)
    for folder in ("ckpt", "out"):
        assert not [n for n in os.listdir(workdir / folder) if is_temporary(n)], folder
    for got, want in zip(_weights(workdir / "out" / "model.keras"), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.one_backend(
    backend="torch"
)  # the run folder's files are written the same way on every backend
def test_kill_at_every_run_folder_write_leaves_only_complete_files(tmp_path):
    workdir = _workdir(tmp_path / "run")
    reference = _run(0, tmp_path / "reference.log", workdir, scope="run_folder")
    assert reference.returncode == 0, reference.stderr[-2000:]
    writes = (tmp_path / "reference.log").read_text().split()
    assert {"model.keras", "summary.json", "config.json"} <= set(writes)
    # One kill at the first write of each file (the others repeat it, e.g. history.json).
    for target in sorted(
        {name: index + 1 for index, name in reversed(list(enumerate(writes)))}.values()
    ):
        result = _run(target, tmp_path / f"kill{target}.log", workdir, scope="run_folder")
        assert result.returncode == -9, (target, result.stderr[-2000:])
    for folder in (workdir / "runs").rglob("version_*"):
        for path in folder.iterdir():
            if is_temporary(path.name) or path.is_dir():
                continue
            if path.suffix == ".keras":
                load_model(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".png":
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 100
