"""Data-parallel training (`training.distribution`) on two CPU devices.

The runs happen in one child process (`data_parallel_run.py`) because the device
count is fixed when the backend starts: XLA's host platform device count on JAX,
logical CPU devices on TensorFlow.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.saving.persistence import load_model
from keras_trainer.core.training.distribution import plan_distribution
from keras_trainer.core.training.fit import fit
from keras_trainer.errors import BackendNotSupportedError, ConfigError
from tests.conftest import BACKEND, subprocess_env

SCRIPT = os.path.join(os.path.dirname(__file__), "data_parallel_run.py")
distributed_backends = pytest.mark.skipif(
    BACKEND == "torch", reason="Keras 3.15 has no distribution API on torch (tested below)"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this module, in order, in one child process with two devices."""
    if BACKEND == "torch":
        pytest.skip("no distribution on torch")
    tmp = tmp_path_factory.mktemp("data_parallel")
    checkpoint = str(tmp / "ckpt")
    specs = {
        "single": {"devices": 1, "epochs": 4},
        "parallel": {"devices": 2, "epochs": 4, "save": str(tmp / "model.keras")},
        "first_half": {"devices": 2, "epochs": 2, "checkpoint": checkpoint},
        "resumed": {"devices": 2, "epochs": 4, "checkpoint": checkpoint, "resume": True},
        "bf16": {"devices": 2, "epochs": 1, "precision": "bfloat16"},
        "uneven": {"devices": 2, "batch_size": 15},
    }
    (tmp / "runs.json").write_text(json.dumps(specs))
    out = tmp / "results.json"
    done = subprocess.run(
        [sys.executable, SCRIPT, str(out), str(tmp / "runs.json")],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(out.read_text()), "model_path": tmp / "model.keras"}


def _max_weight_difference(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a, b))


@distributed_backends
def test_each_batch_is_split_over_both_devices(runs):
    parallel = runs["parallel"]
    assert parallel["devices_per_batch"] == [2]
    # batch_size 16 is the global batch: 8 rows on each device.
    assert parallel["batch_rows_per_device"] == [8]


@distributed_backends
def test_variables_are_replicated_on_both_devices(runs):
    assert runs["parallel"]["variable_copies"] == [2]
    assert runs["single"]["variable_copies"] == [1]


@distributed_backends
def test_data_parallel_training_matches_a_single_device_run(runs):
    single, parallel = runs["single"], runs["parallel"]
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=1e-5)
    np.testing.assert_allclose(parallel["val_loss"], single["val_loss"], rtol=1e-5)
    assert _max_weight_difference(parallel["weights"], single["weights"]) < 1e-5


@distributed_backends
def test_resumed_data_parallel_run_matches_an_uninterrupted_one(runs):
    assert runs["first_half"]["epochs"] == [0, 1]
    resumed, whole = runs["resumed"], runs["parallel"]
    # It started after epoch 1's checkpoint and trained the other half only.
    assert resumed["resumed_from"] == [2, 0] and resumed["epochs_trained"] == 2
    assert whole["epochs_trained"] == 4 and resumed["epochs"] == whole["epochs"]
    np.testing.assert_allclose(resumed["loss"], whole["loss"], rtol=1e-5)
    assert _max_weight_difference(resumed["weights"], whole["weights"]) < 1e-5


@distributed_backends
def test_model_trained_on_two_devices_loads_on_one(runs):
    model, _ = load_model(str(runs["model_path"]))
    assert _max_weight_difference(model.get_weights(), runs["parallel"]["weights"]) < 1e-6
    assert model.predict(np.zeros((3, 6), "float32"), verbose=0).shape == (3, 3)


@distributed_backends
def test_data_parallel_runs_in_mixed_precision(runs):
    result = runs["bf16"]
    assert result["devices_per_batch"] == [2]
    assert np.isfinite(result["loss"]).all()


@distributed_backends
def test_batch_that_does_not_split_evenly_is_a_config_error(runs):
    result = runs["uneven"]
    assert result["error"] == "ConfigError"
    assert "batch_size=15" in result["message"]


@distributed_backends
def test_more_devices_than_visible_is_a_config_error():
    config = TrainingConfig.from_dict(
        {"distribution": {"strategy": "data_parallel", "devices": 64}}
    )
    model = build_model(ModelConfig(input_dim=4, output_dim=2), (4,))
    with pytest.raises(ConfigError, match="distribution.devices=64"):
        fit(model, np.zeros((32, 4), "float32"), np.zeros((32, 2), "float32"), config=config)


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend's refusal")
def test_torch_backend_names_the_backends_that_can_distribute():
    config = TrainingConfig.from_dict({"distribution": {"strategy": "data_parallel"}})
    model = build_model(ModelConfig(input_dim=4, output_dim=2), (4,))
    with pytest.raises(BackendNotSupportedError, match="jax.*tensorflow"):
        fit(model, np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32"), config=config)


def test_distribution_devices_must_be_all_or_positive():
    with pytest.raises(ConfigError, match="distribution.devices"):
        TrainingConfig.from_dict({"distribution": {"strategy": "data_parallel", "devices": 0}})
    with pytest.raises(ConfigError, match="distribution.devices"):
        TrainingConfig.from_dict({"distribution": {"devices": "most"}})


def test_default_training_is_single_device():
    assert TrainingConfig().distribution.strategy == "none"
    assert plan_distribution(TrainingConfig().distribution) is None  # no replica, no scope
