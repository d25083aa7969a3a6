"""`keras-trainer train/evaluate/predict` for tables and windows (feed_forward, mlp, lstm, cnn_lstm)."""

import csv
import json

import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.core.saving import persistence


def _config(tmp_path, **model):
    config = {
        "model": {
            "type": "feed_forward",
            "hidden_layers": [8],
            "output_dim": 1,
            "output_activation": "sigmoid",
            "batch_norm": False,
            **model,
        },
        "training": {"epochs": 2, "batch_size": 32, "validation_split": 0.2, "learning_rate": 0.01},
        "data": {"test_split": 0.2},
    }
    path = tmp_path / "tabular.json"
    path.write_text(json.dumps(config))
    return str(path)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_binary_table_trains_evaluates_and_predicts_with_sigmoid_labels(tmp_path, capsys):
    config = _config(tmp_path)
    runs = tmp_path / "runs"
    assert (
        main(
            ["train", config, "--data", "builtin:breast_cancer", "--runs-dir", str(runs), "--quiet"]
        )
        == 0
    )
    out = capsys.readouterr().out
    run = runs / "tabular" / "version_0"
    assert f"run folder: {run}" in out and "accuracy" in out
    for name in (
        "config.json",
        "history.json",
        "history.csv",
        "evaluation.json",
        "model.keras",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    model_path = str(run / "model.keras")
    assert main(["evaluate", model_path, "--data", "builtin:breast_cancer"]) == 0
    assert "accuracy" in capsys.readouterr().out

    from keras_trainer.tabular.datasets import load_table

    x, y, names = load_table("breast_cancer")
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient", *names])
        for i in range(6):
            writer.writerow([f"p{i}", *x[i]])
    output = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                model_path,
                "--data",
                str(rows),
                "--id-column",
                "patient",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    predicted = _read_csv(output)
    model, _ = persistence.load_model(model_path)
    p = np.asarray(model.predict(x[:6], verbose=0)).reshape(-1)
    assert [r["id"] for r in predicted] == [f"p{i}" for i in range(6)]
    for row, probability in zip(predicted, p):
        # The bundled table's class names; class 1 (benign) when p > 0.5, not argmax.
        assert row["label"] == ("benign" if probability > 0.5 else "malignant")
        assert (
            abs(float(row["p_benign"]) - probability) < 1e-5
            and abs(float(row["p_malignant"]) - (1 - probability)) < 1e-5
        )


def test_regression_on_a_parquet_or_numpy_table_predicts_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype("float32")
    table = np.column_stack([x, x[:, 0] - 2 * x[:, 1]])
    np.save(tmp_path / "table.npy", table)
    config = _config(tmp_path, type="mlp", output_activation="linear", input_dim=3)
    assert (
        main(
            [
                "train",
                config,
                "--data",
                str(tmp_path / "table.npy"),
                "--runs-dir",
                str(tmp_path / "r"),
                "--output",
                str(tmp_path / "reg.keras"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "r2" in capsys.readouterr().out
    (tmp_path / "rows.json").write_text(json.dumps(x[:4].tolist()))
    assert (
        main(
            [
                "predict",
                str(tmp_path / "reg.keras"),
                "--data",
                str(tmp_path / "rows.json"),
                "--output",
                str(tmp_path / "out.json"),
            ]
        )
        == 0
    )
    records = json.loads((tmp_path / "out.json").read_text())
    assert [set(r) for r in records] == [{"id", "value"}] * 4  # values, no labels or probabilities
    pytest.importorskip("pyarrow")
    import pandas as pd

    pd.DataFrame(table, columns=["a", "b", "c", "y"]).to_parquet(tmp_path / "table.parquet")
    assert (
        main(
            [
                "train",
                config,
                "--data",
                str(tmp_path / "table.parquet"),
                "--target",
                "y",
                "--runs-dir",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 0
    )


def test_sequence_model_trains_on_windows_of_a_csv(tmp_path, capsys):
    t = np.arange(200, dtype="float32")
    series = np.column_stack([np.sin(t / 5), np.cos(t / 7), np.sin(t / 5 + 0.3)])
    path = tmp_path / "series.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "target"])
        writer.writerows(series.tolist())
    config = _config(
        tmp_path, type="lstm", output_activation="linear", lstm_hidden_size=4, hidden_layers=[4]
    )
    assert (
        main(
            [
                "train",
                config,
                "--data",
                str(path),
                "--window",
                "8",
                "--runs-dir",
                str(tmp_path / "r"),
                "--output",
                str(tmp_path / "lstm.keras"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "windows" in capsys.readouterr().out
    assert persistence.read_metadata(tmp_path / "lstm.keras")["window"] == 8
    assert main(["predict", str(tmp_path / "lstm.keras"), "--data", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "id,target" and len(lines) == 1 + 200 - 8 + 1  # named after the target
    assert main(["train", config, "--data", str(path), "--runs-dir", str(tmp_path / "r")]) == 2
    assert "pass --window N" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--data", "missing.csv"], "data file not found: missing.csv"),
        (["--data", "builtin:wine"], "a sigmoid head needs output_dim 1 and 0/1 labels"),
    ],
)
def test_bad_tabular_input_is_reported_before_training(tmp_path, capsys, arguments, message):
    assert main(["train", _config(tmp_path), *arguments, "--runs-dir", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # no run folder for a run that never started


def test_predict_names_the_missing_columns(tmp_path, capsys):
    config = _config(tmp_path)
    assert (
        main(
            [
                "train",
                config,
                "--data",
                "builtin:breast_cancer",
                "--runs-dir",
                str(tmp_path / "r"),
                "--output",
                str(tmp_path / "m.keras"),
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    (tmp_path / "rows.csv").write_text("mean radius,mean texture\n1,2\n")
    assert main(["predict", str(tmp_path / "m.keras"), "--data", str(tmp_path / "rows.csv")]) == 2
    assert "missing feature column(s) ['mean perimeter'" in capsys.readouterr().err


def _shards(folder, parts=3, rows=120, seed=0):
    """`.npy` shards of 5 features and a 0/1 label (last column) that depends on them."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for part in range(parts):
        x = rng.normal(size=(rows, 5)).astype("float32")
        label = (x[:, 0] - x[:, 1] > 0).astype("float32")
        np.save(folder / f"part-{part}.npy", np.column_stack([x, label]))
    return folder


def test_a_folder_of_shards_is_streamed_through_train_and_evaluate(tmp_path, capsys):
    from keras_trainer.core.evaluating.evaluation import ModelEvaluator
    from keras_trainer.tabular.normalization import load_tabular_model

    shards = _shards(tmp_path / "shards")
    config = _config(tmp_path)
    runs = tmp_path / "runs"
    arguments = ["--data", str(shards), "--runs-dir", str(runs), "--epochs", "15", "--quiet"]
    assert main(["train", config, *arguments]) == 0
    out = capsys.readouterr().out
    # 360 rows: the last 72 (file order) are the test rows, the 57 before them validation.
    assert "231 train, 57 validation, 72 test rows, 5 features" in out
    model_path = runs / "tabular" / "version_0" / "model.keras"
    report = json.loads((runs / "tabular" / "version_0" / "evaluation.json").read_text())
    assert report["metrics"]["accuracy"] > 0.8  # the label is linear in two features

    # The streamed test score equals scoring the same rows read whole.
    model, _ = load_tabular_model(str(model_path))
    rows = np.concatenate([np.load(shards / f"part-{p}.npy") for p in range(3)])[-72:]
    whole = ModelEvaluator(model, class_names=["0", "1"]).evaluate(rows[:, :5], rows[:, 5])
    assert report["metrics"]["accuracy"] == pytest.approx(whole.metrics["accuracy"])

    assert main(["evaluate", str(model_path), "--data", str(shards / "part-*.npy")]) == 0
    assert f"metrics on 360 rows of {shards / 'part-*.npy'}" in capsys.readouterr().out


def test_shards_with_a_sequence_model_name_the_problem(tmp_path, capsys):
    shards = _shards(tmp_path / "shards")
    config = _config(tmp_path, type="lstm")
    assert main(["train", config, "--data", str(shards), "--runs-dir", str(tmp_path)]) != 0
    assert "not cut across shards" in capsys.readouterr().err


@pytest.mark.one_backend
def test_declared_columns_on_npy_shards_are_refused_naming_the_shards_that_can_be_typed(
    tmp_path, capsys
):
    shards = _shards(tmp_path / "shards", parts=2)
    config = json.loads(open(_config(tmp_path)).read())
    config["data"]["columns"] = {"0": {"type": "category"}}
    (tmp_path / "typed.json").write_text(json.dumps(config))
    arguments = ["--data", str(shards), "--runs-dir", str(tmp_path / "runs")]
    assert main(["train", str(tmp_path / "typed.json"), *arguments]) != 0
    assert "are read from .csv or .parquet shards" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_data_shards_in_the_config_route_an_mlp_to_the_tabular_trainer(tmp_path, capsys):
    shards = _shards(tmp_path / "shards", parts=2)
    config = json.loads(open(_config(tmp_path, type="mlp")).read())
    config["data"]["shards"] = str(shards)
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(config))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    assert "model.type=mlp" in capsys.readouterr().out


@pytest.mark.parametrize("output, message", [("out.csv", "is a folder"), ("p.txt", "must end in")])
def test_predict_names_a_bad_output_before_predicting(tmp_path, capsys, output, message):
    import keras

    from keras_trainer.core.saving.persistence import save_model

    inputs = keras.Input((2,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    save_model(model, tmp_path / "m.keras", {"task": "tabular", "feature_names": ["a", "b"]})
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    (tmp_path / "out.csv").mkdir()
    arguments = ["predict", str(tmp_path / "m.keras"), "--data", str(tmp_path / "rows.csv")]
    assert main([*arguments, "--output", str(tmp_path / output)]) == 2
    assert f"--output: {str(tmp_path / output)!r} {message}" in capsys.readouterr().err


def test_the_same_command_twice_gives_identical_weights(tmp_path):
    config, runs = _config(tmp_path), tmp_path / "runs"
    command = ["train", config, "--data", "builtin:breast_cancer", "--runs-dir", str(runs)]
    assert main([*command, "--seed", "3", "--quiet"]) == 0
    assert main([*command, "--seed", "3", "--quiet"]) == 0
    first, second = (
        persistence.load_model(str(runs / "tabular" / f"version_{n}" / "model.keras"))[0]
        for n in (0, 1)
    )
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_refuses_to_overwrite_an_output_file_unless_told(tmp_path, capsys):
    output = tmp_path / "model.keras"
    output.write_bytes(b"an earlier model")
    command = [
        "train",
        _config(tmp_path),
        "--data",
        "builtin:breast_cancer",
        "--output",
        str(output),
    ]
    command += ["--runs-dir", str(tmp_path / "runs")]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"--output: {output} already exists; pass --overwrite" in err
    assert output.read_bytes() == b"an earlier model" and not (tmp_path / "runs").exists()
    assert main([*command, "--epochs", "1", "--overwrite", "--quiet"]) == 0
    persistence.load_model(str(output))  # the new model replaced the old file
