import json
import os
import subprocess
import sys

import pytest

from keras_trainer.jit import SAMPLE_DATASET_PATH, read_dataset
from tests.conftest import ROOT, subprocess_env

SEED_CONFIG = os.path.join(ROOT, "config", "model_config.json")


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "keras_trainer", *map(str, args)],
        env=subprocess_env(), capture_output=True, text=True, cwd=cwd,
    )


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    data = read_dataset(SAMPLE_DATASET_PATH)
    data["samples"] = data["samples"][:80]
    path = tmp_path_factory.mktemp("data") / "small.json"
    path.write_text(json.dumps(data))
    return path


def test_train_evaluate_and_predict_from_the_command_line(tmp_path, small_dataset):
    model = tmp_path / "jit.keras"
    trained = _cli("train", SEED_CONFIG, "--data", small_dataset, "--epochs", 3, "--output", model, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "test metrics:" in trained.stdout and "accuracy" in trained.stdout
    assert model.exists()
    evaluated = _cli("evaluate", model, "--data", small_dataset, "--report", tmp_path / "report.json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "f1_macro" in evaluated.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_samples"] == 80 and report["class_names"][3] == "O3"
    predicted = _cli("predict", model, "--data", small_dataset)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.count("sample ") == 80


def test_a_bad_config_prints_one_clear_line(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"model": {"hidden_layers": [64, -3]}}))
    result = _cli("validate", config)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("model.hidden_layers[1]: must be a positive integer, got -3")
    assert "Traceback" not in result.stderr


def test_schema_command_prints_json_schema():
    result = _cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["properties"]["model"]["type"] == "object"


def test_train_cross_validates_with_the_cv_flag(tmp_path, small_dataset):
    trained = _cli("train", SEED_CONFIG, "--data", small_dataset, "--epochs", 1, "--cv", 2,
                   "--output", tmp_path / "jit.keras", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "2-fold cross-validation" in trained.stdout
    assert "val_accuracy:" in trained.stdout and "(folds: " in trained.stdout
