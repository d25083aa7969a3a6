"""`keras-trainer tune`: the config's tuning section on its model, from the command line."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.core.saving import persistence
from tests.conftest import ROOT, subprocess_env

CONFIG = f"{ROOT}/config/tabular_tuning_config.json"


def test_tune_runs_the_search_and_saves_the_best_model(tmp_path):
    output = tmp_path / "bc.keras"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_trainer",
            "tune",
            CONFIG,
            "--data",
            "builtin:breast_cancer",
            "--directory",
            str(tmp_path / "runs"),
            "--symbol",
            "bc",
            "--max-trials",
            "1",
            "--max-epochs",
            "2",
            "--output",
            str(output),
            "--runs-dir",
            str(tmp_path / "experiments"),
        ],
        cwd=tmp_path,
        env=subprocess_env(OMP_NUM_THREADS=1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "| trial_id | status | learning_rate | batch_size |" in out and "| COMPLETED |" in out
    assert "search: best trial's val_loss = " in out and "retrained model: val_loss = " in out
    assert "test metrics: accuracy=" in out and f"saved model: {output}" in out
    assert "trial 0 COMPLETED in " in out  # one line per trial while the search runs
    score = re.search(r"trial 0 COMPLETED in [0-9.]+s: val_loss=([0-9.e-]+) ", out).group(1)
    assert float(score) == float(f"{float(score):.4g}")  # 0.2342, not 0.23415678739547729
    run = tmp_path / "experiments" / "bc" / "version_0"
    assert f"run folder: {run}" in out
    for name in (
        "config.json",
        "history.json",
        "history.csv",
        "evaluation.json",
        "model.keras",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    metadata = persistence.read_metadata(output)
    assert metadata["task"] == "tabular" and len(metadata["normalization"]["mean"]) == 30
    # The test rows travel with the model: evaluate scores them by default.
    assert metadata["split"]["dataset"] == "builtin:breast_cancer"
    assert len(metadata["split"]["test_indices"]) == round(569 * 0.2)
    assert (
        metadata["tuning"]["symbol"] == "bc"
        and metadata["config"]["model"]["type"] == "feed_forward"
    )
    assert (tmp_path / "runs" / "bc" / "tuning.log").exists()


def write_config(tmp_path, **model):
    config = json.load(open(CONFIG, encoding="utf-8"))
    config["model"].update(model)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--data", "builtin:iris"],
            "unknown builtin dataset 'iris' (valid: breast_cancer, wine, diabetes)",
        ),
        (
            ["--data", "builtin:wine"],
            "a sigmoid head needs output_dim 1 and 0/1 labels; got output_dim=1 and labels from 0 to 2",
        ),
        (["--data", "missing.csv"], "data file not found: missing.csv"),
        (["--max-trials", "0"], "tuning.max_trials: must be a positive integer, got 0"),
    ],
)
def test_tune_reports_bad_input_before_training(arguments, message, tmp_path, capsys):
    code = main(["tune", CONFIG, "--directory", str(tmp_path), *arguments])
    assert code == 2 and message in capsys.readouterr().err


def test_tune_checks_the_classes_against_the_softmax_head(tmp_path, capsys):
    config = write_config(tmp_path, output_activation="softmax", output_dim=5)
    assert main(["tune", config, "--data", "builtin:wine", "--directory", str(tmp_path)]) == 2
    assert "model.output_dim: is 5 but builtin:wine has 3 classes" in capsys.readouterr().err


def test_tune_refuses_class_heads_on_real_valued_targets(tmp_path, capsys):
    data = tmp_path / "returns.csv"
    data.write_text("a,b,ret\n" + "".join(f"{i},{i % 3},{i * 0.01 - 0.02}\n" for i in range(20)))
    config = write_config(tmp_path, output_activation="softmax", output_dim=3)
    assert (
        main(["tune", config, "--data", str(data), "--target", "ret", "--directory", str(tmp_path)])
        == 2
    )
    assert "needs class labels 0, 1, 2, ... as targets" in capsys.readouterr().err


def test_tune_on_a_csv_regression_target(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    data = tmp_path / "table.csv"
    data.write_text(
        "a,b,c,y\n"
        + "".join(",".join(f"{v:.5f}" for v in (*row, row[0] - row[1])) + "\n" for row in x)
    )
    config = write_config(tmp_path, output_activation="linear", hidden_layers=[4])
    code = main(
        [
            "tune",
            config,
            "--data",
            str(data),
            "--directory",
            str(tmp_path),
            "--max-trials",
            "1",
            "--max-epochs",
            "1",
            "--output",
            str(tmp_path / "r.keras"),
            "--runs-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert (
        code == 0
        and "test metrics: mae=" in out
        and "(48 train, 16 validation, 16 test rows, 3 features)" in out
    )
    assert persistence.read_metadata(tmp_path / "r.keras")["feature_names"] == ["a", "b", "c"]


def test_the_same_tune_command_in_the_same_folder_gives_the_same_model(tmp_path, capsys):
    """Reproducible tuning: a rerun resumes the finished search and retrains the same model."""
    config = write_config(tmp_path, hidden_layers=[8])
    command = [
        "tune",
        config,
        "--data",
        "builtin:breast_cancer",
        "--directory",
        str(tmp_path / "search"),
        "--max-trials",
        "2",
        "--max-epochs",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    outputs, predictions = [], []
    x = np.random.default_rng(0).normal(size=(8, 30)).astype("float32") * 10 + 20
    for attempt in range(2):
        path = tmp_path / f"model{attempt}.keras"
        assert main([*command, "--output", str(path)]) == 0
        out = capsys.readouterr().out
        outputs.append(
            [
                line
                for line in out.splitlines()
                if line.startswith(("best trial", "search: best", "retrained"))
            ]
        )
        model, _ = persistence.load_model(path)
        predictions.append(np.asarray(model.predict(x, verbose=0)))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    np.testing.assert_allclose(predictions[0], predictions[1], atol=1e-5)
    assert (
        tmp_path / "runs" / "config" / "version_1"
    ).is_dir()  # a second run folder, not overwritten
