import csv
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_trainer.jit import SAMPLE_DATASET_PATH, read_dataset
from tests.conftest import ROOT, subprocess_env

SEED_CONFIG = os.path.join(ROOT, "config", "model_config.json")


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "keras_trainer", *map(str, args)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        cwd=cwd,
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
    trained = _cli(
        "train",
        SEED_CONFIG,
        "--data",
        small_dataset,
        "--epochs",
        3,
        "--output",
        model,
        "--quiet",
        "--runs-dir",
        tmp_path / "runs",
        "--tensorboard",
        *(["--mlflow"] if importlib.util.find_spec("mlflow") else []),
    )
    assert trained.returncode == 0, trained.stderr
    assert "test metrics:" in trained.stdout and "accuracy" in trained.stdout
    run = tmp_path / "runs" / "model_config" / "version_0"
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    if importlib.util.find_spec("mlflow"):
        assert any((tmp_path / "runs" / "mlruns").rglob("meta.yaml"))
        # The line that opens the store, with the variable MLflow 3 asks for.
        assert "MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri " in trained.stdout
    # Runtime terms on the held-out split, next to the baselines.
    assert "regret" in trained.stdout and "speed-up vs the best fixed strategy" in trained.stdout
    assert "majority (" in trained.stdout
    assert model.exists()
    evaluated = _cli(
        "evaluate", model, "--data", small_dataset, "--report", tmp_path / "report.json"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert (
        "f1_macro" in evaluated.stdout and "scoring the model's held-out split" in evaluated.stdout
    )
    report = json.loads((tmp_path / "report.json").read_text())
    # evaluate defaults to the split stored in the model file (20 % of 80 rows, stratified)
    assert 10 <= report["n_samples"] <= 22 and report["class_names"][3] == "O3"
    assert report["runtime"]["regret"] >= 1.0 and "best_fixed" in report["runtime"]
    everything = _cli("evaluate", model, "--data", small_dataset, "--all")
    assert everything.returncode == 0, everything.stderr
    assert "were used to train the model" in everything.stderr
    assert "metrics on 80 samples" in everything.stdout
    assert (tmp_path / "runs" / "model_config" / "version_0" / "model.keras").is_file()
    predicted = _cli(
        "predict", model, "--data", small_dataset, "--output", tmp_path / "predictions.csv"
    )
    assert predicted.returncode == 0, predicted.stderr
    with open(tmp_path / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [sample["name"] for sample in json.loads(small_dataset.read_text())["samples"]]
    assert [row["id"] for row in rows] == names  # each kernel by name
    strategies = report["class_names"]
    assert list(rows[0]) == ["id", "label", *(f"p_{name}" for name in strategies)]
    for row in rows:
        probabilities = [float(row[f"p_{name}"]) for name in strategies]
        assert abs(sum(probabilities) - 1) < 1e-4
        assert row["label"] == strategies[probabilities.index(max(probabilities))]


def test_a_bad_config_prints_one_clear_line(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"model": {"hidden_layers": [64, -3]}}))
    result = _cli("validate", config)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "model.hidden_layers[1]: must be a positive integer, got -3"
    )
    assert "Traceback" not in result.stderr


def test_schema_command_prints_json_schema():
    result = _cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["properties"]["model"]["type"] == "object"


def test_train_cross_validates_with_the_cv_flag_and_tests_on_a_test_file(tmp_path, small_dataset):
    data = read_dataset(SAMPLE_DATASET_PATH)
    data["samples"] = data["samples"][80:110]
    held_out = tmp_path / "held_out.json"
    held_out.write_text(json.dumps(data))
    model = tmp_path / "jit.keras"
    trained = _cli(
        "train",
        SEED_CONFIG,
        "--data",
        small_dataset,
        "--test-data",
        held_out,
        "--epochs",
        1,
        "--cv",
        2,
        "--output",
        model,
        "--quiet",
    )
    assert trained.returncode == 0, trained.stderr
    assert "2-fold cross-validation" in trained.stdout
    assert "val_accuracy:" in trained.stdout and "(folds: " in trained.stdout
    # Every sample of --data trains; the test file's 30 are the test.
    assert "(80 train, 30 test samples)" in trained.stdout and "test metrics:" in trained.stdout
    evaluated = _cli("evaluate", model)  # by default: the model's test file
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"held-out split: 30 of 30 samples of {held_out}" in evaluated.stdout


def _tiny_jit_config(folder) -> str:
    config = {
        "model": {"input_dim": 12, "hidden_layers": [8], "output_dim": 5},
        "training": {"epochs": 1, "batch_size": 64, "validation_split": 0.2},
    }
    path = folder / "jit_tiny.json"
    path.write_text(json.dumps(config))
    return str(path)


def _tiny_assistant_config(folder) -> str:
    pairs = [{"query": f"what is item {i}?", "response": f"item {i} is a thing"} for i in range(12)]
    (folder / "qa.json").write_text(json.dumps(pairs))
    config = {
        "embedding_dim": 8,
        "hidden_dim": 8,
        "max_length": 12,
        "data_path": str(folder / "qa.json"),
        "training": {"epochs": 1, "batch_size": 8, "validation_split": 0.0},
    }
    path = folder / "assistant_tiny.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("family", ["jit", "assistant"])
def test_the_same_train_command_twice_gives_identical_weights(family, tmp_path):
    # The tabular family's twin: tests/tabular/test_tabular_cli.py.
    from keras_trainer.cli import main

    if family == "jit":
        dataset = read_dataset(SAMPLE_DATASET_PATH)
        dataset["samples"] = dataset["samples"][:120]  # features of 120 kernels, not 1,000
        (tmp_path / "kernels.json").write_text(json.dumps(dataset))
        config, data = _tiny_jit_config(tmp_path), ["--data", str(tmp_path / "kernels.json")]
    else:
        config, data = _tiny_assistant_config(tmp_path), []
    runs = tmp_path / "runs"
    command = ["train", config, *data, "--runs-dir", str(runs), "--seed", "3", "--quiet"]
    command += ["--output", str(tmp_path / "model.keras"), "--overwrite"]
    assert main(command) == 0 and main(command) == 0
    folders = sorted((runs / os.path.basename(config)[: -len(".json")]).iterdir())
    assert [f.name for f in folders] == ["version_0", "version_1"]
    if family == "jit":
        from keras_trainer.core.saving.persistence import load_model

        first, second = (load_model(str(f / "model.keras"))[0] for f in folders)
    else:
        from keras_trainer.assistant import load_assistant

        first, second = (load_assistant(f / "model.keras").model for f in folders)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
