"""Plausibility before work: absurd sizes refused with the estimate, odd values warned."""

import json

import pytest

from keras_trainer.config import ModelConfig, TrainerConfig
from keras_trainer.config.plausibility import (
    MAX_MODEL_BYTES_ENV,
    estimate_model_bytes,
    plausibility_warnings,
)
from keras_trainer.errors import ConfigError


def test_the_estimate_counts_weights_optimizer_state_and_a_batch_of_activations():
    config = ModelConfig(input_dim=12, hidden_layers=[64, 32], output_dim=5)
    parameters = 12 * 64 + 64 + 64 * 32 + 32 + 32 * 5 + 5
    assert estimate_model_bytes(config, (12,), 32) == 4 * (4 * parameters + 2 * 32 * (64 + 32 + 5))


@pytest.mark.parametrize(
    "model, training",
    [
        ({"input_dim": 12, "hidden_layers": [10**12], "output_dim": 5}, {}),
        ({"input_dim": 12, "output_dim": 10**12}, {}),
        ({"input_dim": 12, "output_dim": 5}, {"batch_size": 10**18}),
    ],
    ids=["hidden-layer", "output-dim", "batch-size"],
)
def test_a_model_beyond_the_machines_memory_is_refused_naming_the_estimate(model, training):
    config = TrainerConfig.from_dict({"model": model, "training": training})
    with pytest.raises(ConfigError, match=r"model: training this model needs about .* GB"):
        plausibility_warnings(config)


def test_build_model_refuses_before_building(monkeypatch):
    from keras_trainer.core.building.models import build_model

    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "1000000")
    config = ModelConfig(input_dim=12, hidden_layers=[1024, 1024], output_dim=5)
    with pytest.raises(ConfigError, match=r"more than the 0.001 GB limit"):
        build_model(config, (12,))


@pytest.mark.parametrize(
    "training, warning",
    [
        ({"epochs": 10**12}, "training.epochs: 1000000000000 would not finish"),
        ({"learning_rate": 1e308}, "training.learning_rate: 1e+308 makes training diverge"),
    ],
)
def test_validate_warns_of_absurd_values(tmp_path, capsys, training, warning):
    from keras_trainer.cli import main

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {"input_dim": 4}, "training": training}))
    assert main(["validate", str(path)]) == 0
    assert warning in capsys.readouterr().err


def test_validate_refuses_a_model_too_large_for_the_machine(tmp_path, capsys):
    from keras_trainer.cli import main

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {"input_dim": 4, "hidden_layers": [10**12]}}))
    assert main(["validate", str(path)]) == 2
    assert "training this model needs about" in capsys.readouterr().err
