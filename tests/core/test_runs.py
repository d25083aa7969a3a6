"""Run folders: new versions, never overwritten; histories read back and plotted."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from keras_trainer.core.recording.runs import RunFolder, load_history
from keras_trainer.errors import DataError
from tests.conftest import ROOT, subprocess_env


def test_each_run_gets_the_next_version(tmp_path):
    first = RunFolder.create("breast cancer/v1", root=tmp_path)
    second = RunFolder.create("breast cancer/v1", root=tmp_path)
    assert first.path == str(tmp_path / "breast_cancer_v1" / "version_0")
    assert second.version == 1 and os.path.isdir(second.path)
    assert RunFolder.resolve(tmp_path / "breast_cancer_v1").path == second.path
    assert RunFolder.resolve(first.path).path == first.path


def test_runs_started_at_once_get_different_versions(tmp_path):
    made = []
    threads = [
        threading.Thread(target=lambda: made.append(RunFolder.create("x", tmp_path).version))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == list(range(8))


def test_resolving_something_that_is_not_a_run_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such run folder"):
        RunFolder.resolve(tmp_path / "missing")
    with pytest.raises(DataError, match="has no version_N folders"):
        RunFolder.resolve(tmp_path)


def test_history_written_by_fit_is_read_back_and_plotted(tmp_path):
    """The issue's case: plot_training_curves on our own history.json."""
    pytest.importorskip("matplotlib")
    import keras

    from keras_trainer.config import TrainingConfig
    from keras_trainer.core.recording.plots import plot_training_curves
    from keras_trainer.core.training.fit import fit

    run = RunFolder.create("tiny", root=tmp_path)
    config = TrainingConfig.from_dict(
        {
            "epochs": 3,
            "batch_size": 16,
            "verbose": 0,
            "validation_split": 0.25,
            "logging": {"directory": run.path},
        },
        "training",
    )
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    history = fit(
        model,
        x,
        (x[:, 0] > 0).astype("int64"),
        config=config,
        loss="sparse_categorical_crossentropy",
    )
    from_json = load_history(run.file("history.json"))
    from_csv = load_history(run.file("history.csv"))
    assert from_json["history"]["loss"] == history.history["loss"]
    np.testing.assert_allclose(
        from_csv["history"]["val_loss"], history.history["val_loss"], rtol=1e-6
    )
    assert from_csv["learning_rates"] and from_json["epochs"] == [0, 1, 2]
    for source in (
        run.file("history.json"),
        run.file("history.csv"),
        run.path,
        history.to_dict(),
    ):
        path = plot_training_curves(source, str(tmp_path / "curves.png"))
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_keras_history_dict_file_is_read_too(tmp_path):
    path = tmp_path / "keras_history.json"
    path.write_text(json.dumps({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}))
    assert load_history(path)["history"]["val_loss"] == [1.1, 0.7]
    (tmp_path / "bad.csv").write_text("epoch,loss\n0,abc\n")
    with pytest.raises(DataError, match=r"bad.csv:2: column 'loss' is not a number"):
        load_history(tmp_path / "bad.csv")


def test_plot_command_draws_a_run(tmp_path):
    pytest.importorskip("matplotlib")
    run = RunFolder.create("done", root=tmp_path)
    run.save_history({"loss": [1.0, 0.6, 0.4], "val_loss": [1.2, 0.8, 0.7]})
    (tmp_path / "report.json").write_text("{}")
    with open(run.file("evaluation.json"), "w") as handle:
        json.dump(
            {
                "task": "classification",
                "class_names": ["a", "b"],
                "confusion_matrix": [[5, 1], [2, 7]],
            },
            handle,
        )
    result = subprocess.run(  # noqa: PLW1510
        [sys.executable, "-m", "keras_trainer", "plot", str(tmp_path / "done")],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(run.file("training_curves.png")) and os.path.isfile(
        run.file("confusion_matrix.png")
    )
    assert result.stdout.count("wrote ") == 2


def test_mlflow_logs_params_every_epoch_and_the_folder(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from keras_trainer.core.recording.tracking import default_tracking_uri, track_run, ui_command

    run = RunFolder.create("tracked", root=tmp_path / "runs")
    run.save_history({"loss": [1.0, 0.6, 0.4], "val_loss": [1.2, 0.8, 0.7]})
    run.save_config(
        {
            "training": {"epochs": 3, "optimizer": {"name": "adam"}},
            "model": {"hidden_layers": [8, 4]},
        }
    )
    run_id = track_run(
        run,
        "demo",
        params={"training": {"epochs": 3}, "model": {"hidden_layers": [8, 4]}},
        metrics={"test_accuracy": 0.9},
    )
    uri = default_tracking_uri(run)
    assert uri == "file:" + str(tmp_path / "runs" / "mlruns")
    store = os.path.relpath(tmp_path / "runs" / "mlruns")
    assert ui_command(uri) == f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {store}"
    logged = MlflowClient(uri).get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params == {
        "training.epochs": "3",
        "model.hidden_layers": "[8, 4]",
    }
    assert logged.data.metrics["test_accuracy"] == 0.9
    steps = MlflowClient(uri).get_metric_history(run_id, "val_loss")
    assert [(m.step, m.value) for m in steps] == [(0, 1.2), (1, 0.8), (2, 0.7)]
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(run_id)}
    assert {"config.json", "history.json", "history.csv"} <= artifacts
