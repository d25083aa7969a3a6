"""Typed tables end to end on the active backend: `train` on a CSV with text, blanks, an id
and a many-valued category, then `predict`, `evaluate`, `serve` and the Python API on raw
rows with strings, blanks and an unseen category; the file carries it all, without pickle."""

import csv
import json
import zipfile

import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.core.saving import persistence
from keras_trainer.errors import ColumnTypeError

PLANS = ["basic", "pro", "team"]


def _write_table(path, rows=90):
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "plan", "city", "tenure", "active", "churn"])
        for i in range(rows):
            plan = PLANS[i % 3]
            tenure = int(rng.integers(1, 40))
            churn = "leave" if (plan == "basic" and tenure < 20) else "stay"
            writer.writerow(
                [
                    f"c{i:03d}",
                    "" if i % 17 == 0 else plan,  # blanks in a category
                    f"city{i % 20}",  # 20 values: embedded
                    "" if i % 13 == 0 else tenure,  # blanks in a number
                    "yes" if i % 4 else "no",
                    churn,
                ]
            )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("typed")
    table = tmp / "customers.csv"
    _write_table(table)
    config = {
        "model": {
            "type": "feed_forward",
            "hidden_layers": [16],
            "output_activation": "softmax",
            "batch_norm": False,
        },
        "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "seed": 1},
        "data": {
            "test_split": 0.2,
            "columns": {"tenure": {"type": "number", "missing_indicator": True}},
        },
    }
    (tmp / "churn.json").write_text(json.dumps(config))
    model = tmp / "churn.keras"
    code = main(
        ["train", str(tmp / "churn.json"), "--data", str(table), "--target", "churn",
         "--output", str(model), "--runs-dir", str(tmp / "runs"), "--quiet"]
    )  # fmt: skip
    assert code == 0
    rows = tmp / "new.csv"
    rows.write_text(
        "customer_id,plan,city,tenure,active\n"
        "n1,basic,city3,5,yes\n"
        "n2,gold,city99,,no\n"  # unseen plan and city, blank tenure
        "n3,,city1,30,yes\n"
    )
    return tmp, str(model), rows


def test_the_file_holds_the_preprocessing_as_json_without_pickle(trained):
    _, model_path, _ = trained
    with zipfile.ZipFile(model_path) as archive:
        assert not [n for n in archive.namelist() if n.endswith((".pkl", ".pickle"))]
    model, metadata = persistence.load_model(model_path)  # safe_mode: no code from the file
    assert metadata["class_names"] == ["leave", "stay"] and metadata["target"] == "churn"
    columns = {c["name"]: c for c in metadata["preprocessing"]["columns"]}
    assert columns["customer_id"]["type"] == "id"
    assert columns["city"]["encoding"] == "embedding"
    assert model.get_layer("category_embedding") is not None


def test_predict_names_classes_and_rows_and_counts_unseen_categories(trained, capsys):
    tmp, model_path, rows = trained
    capsys.readouterr()
    output = tmp / "predictions.csv"
    assert main(["predict", model_path, "--data", str(rows), "--output", str(output)]) == 0
    err = capsys.readouterr().err
    assert "column 'plan': 1 of 3 rows hold values unseen in training" in err and "'gold'" in err
    assert "column 'tenure': 1 of 3 missing cells filled" in err
    with open(output, newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [r["id"] for r in predicted] == ["n1", "n2", "n3"]  # the id column names the rows
    assert {r["label"] for r in predicted} <= {"leave", "stay"}
    for r in predicted:
        assert abs(float(r["p_leave"]) + float(r["p_stay"]) - 1) < 1e-5


def test_python_api_and_serving_match_predict_on_raw_rows(trained):
    from keras_trainer.serving.model import ServedModel
    from keras_trainer.tabular import TableModel

    _, model_path, rows = trained
    table = TableModel.load(model_path)
    from_file = table.predict(str(rows))
    assert table.last_report.unseen["city"] == {"city99": 1}
    served = ServedModel(model_path)
    request = [
        {"customer_id": "n1", "plan": "basic", "city": "city3", "tenure": 5, "active": "yes"},
        {"customer_id": "n2", "plan": "gold", "city": "city99", "tenure": None, "active": "no"},
        {"customer_id": "n3", "plan": "", "city": "city1", "tenure": "30", "active": "yes"},
    ]
    answered = served.predict({"inputs": request})
    assert answered["unseen"] == {"plan": {"gold": 1}, "city": {"city99": 1}}
    answer = answered["predictions"]
    for got, want in zip(answer, from_file):
        assert got["label"] == want["label"]
        assert got["probabilities"]["stay"] == pytest.approx(
            want["probabilities"]["stay"], abs=1e-5
        )
    one = served.predict({"inputs": request[1]})["prediction"]
    assert one["label"] == answer[1]["label"]
    assert "unseen" not in served.predict({"inputs": request[0]})  # said only when it happens
    with pytest.raises(ColumnTypeError, match="column 'tenure' is a number column"):
        served.predict({"inputs": {**request[0], "tenure": "long"}})


@pytest.mark.one_backend
def test_serve_answers_and_counts_unseen_categories_per_column_over_http(trained):
    import http.client

    pytest.importorskip("fastapi")
    from keras_trainer.serving.model import ServedModel
    from tests.serving.conftest import RunningServer, request

    server = RunningServer(ServedModel(trained[1]))
    try:
        row = {"plan": "gold", "city": "city99", "tenure": "", "active": "no"}
        status, answer = request(server.url, "/predict", {"inputs": [row, row]})
        assert status == 200 and len(answer["predictions"]) == 2
        assert answer["unseen"] == {"plan": {"gold": 2}, "city": {"city99": 2}}
        status, answer = request(server.url, "/predict", {"inputs": {**row, "plan": "atlas"}})
        assert answer["unseen"]["plan"] == {"atlas": 1}
        status, refused = request(server.url, "/predict", {"inputs": {**row, "plan": 3}})
        assert status == 422 and refused["error"] == "ColumnTypeError"
        connection = http.client.HTTPConnection("127.0.0.1", server.port)
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        connection.close()
    finally:
        server.stop()
    assert 'keras_trainer_unseen_values_total{column="plan"} 3.0' in metrics
    assert 'keras_trainer_unseen_values_total{column="city"} 3.0' in metrics


def test_evaluate_reads_class_names_from_the_target_column(trained, capsys):
    tmp, model_path, _ = trained
    capsys.readouterr()
    report = tmp / "report.json"
    assert main(["evaluate", model_path, "--report", str(report)]) == 0
    # Without --data: the model's own table, its held-out 20 % only.
    assert "held-out split: 18 of 90 rows" in capsys.readouterr().out
    saved = json.loads(report.read_text())
    assert saved["class_names"] == ["leave", "stay"] and saved["n_samples"] == 18
    assert any(
        "column 'plan'" in note and "missing cells filled" in note for note in saved["notes"]
    )


# The typed-table hook of tune is NumPy; tune itself is tested on every backend.
@pytest.mark.one_backend
def test_tune_searches_a_typed_table_and_its_model_reads_raw_rows(trained, capsys):
    pytest.importorskip("keras_tuner")
    tmp, _, rows = trained
    config = {
        "model": {"type": "feed_forward", "hidden_layers": [8], "output_activation": "softmax"},
        "training": {"validation_split": 0.2},
        "data": {"test_split": 0.2},
        "tuning": {
            "search_method": "random",
            "max_trials": 1,
            "max_epochs": 2,
            "seed": 3,
            "hyperparameter_space": {"learning_rates": [0.01], "batch_sizes": [16]},
        },
    }
    (tmp / "tune.json").write_text(json.dumps(config))
    output = tmp / "tuned.keras"
    code = main(
        ["tune", str(tmp / "tune.json"), "--data", str(tmp / "customers.csv"), "--target", "churn",
         "--directory", str(tmp / "tuning"), "--output", str(output), "--runs-dir", str(tmp / "tr")]
    )  # fmt: skip
    assert code == 0 and "test metrics: accuracy=" in capsys.readouterr().out
    from keras_trainer.tabular import TableModel

    records = TableModel.load(output).predict(str(rows))
    assert [r["id"] for r in records] == ["n1", "n2", "n3"]
    assert {r["label"] for r in records} <= {"leave", "stay"}


# compare_architectures is tested on every backend; the typed part is NumPy.
@pytest.mark.one_backend
def test_compare_architectures_takes_an_encoded_typed_table(trained):
    from keras_trainer.config import load_config
    from keras_trainer.tabular import ModelConfig, compare_architectures, prepare_typed_table

    tmp, _, _ = trained
    config = load_config({"model": {"type": "feed_forward", "output_activation": "softmax"}})
    table = prepare_typed_table(str(tmp / "customers.csv"), "churn", config, seed=0)
    (x, y), validation = table.parts["train"], table.parts["validation"]
    configs = [
        ModelConfig(input_size=table.width, hidden_sizes=size, output_size=2, task="classification")
        for size in ([8], [16, 8])
    ]
    result = compare_architectures(configs, (x, y), validation, epochs=1)
    assert len(result.results) == 2 and 0 <= result.best().value <= 1


# Export reads the saved file in its TensorFlow worker, whatever the training backend.
@pytest.mark.one_backend
def test_onnx_export_carries_the_preprocessing_and_reads_its_exact_pre_step(trained):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    import onnxruntime as ort

    from keras_trainer.export import export_onnx, read_onnx_metadata
    from keras_trainer.serving.model import ServedModel
    from keras_trainer.tabular import TableModel, TablePreprocessor

    tmp, model_path, rows = trained
    onnx_path = export_onnx(model_path, tmp / "churn.onnx")
    metadata = read_onnx_metadata(onnx_path)
    # The pre-step: the preprocessor rebuilt from the ONNX file's own metadata.
    pre = TablePreprocessor.from_config(metadata["preprocessing"])
    table = TableModel.load(model_path)
    x, _ = pre.transform(table.frame(str(rows)))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    keras_out = np.asarray(table.model.predict(table.encode(str(rows))[0], verbose=0))
    np.testing.assert_allclose(onnx_out, keras_out, atol=1e-5)
    # Serving the ONNX file takes the same raw rows.
    served = ServedModel(onnx_path)
    answer = served.predict({"inputs": {"plan": "gold", "city": "x", "tenure": "", "active": "no"}})
    assert answer["prediction"]["label"] in ("leave", "stay")


def test_regression_predictions_are_named_after_the_target_column():
    import pandas

    from keras_trainer.config import load_config
    from keras_trainer.tabular import TableModel, TablePreprocessor
    from keras_trainer.tabular.typed_training import build_typed_model

    frame = pandas.DataFrame({"rooms": [2, 3, 4], "area": ["north", "south", "west"]})
    pre = TablePreprocessor.fit(frame, {}, target="price")
    model = {
        "type": "feed_forward",
        "hidden_layers": [4],
        "output_dim": 1,
        "output_activation": "linear",
    }
    config = load_config({"model": model})
    network = build_typed_model(config.model, pre, len(pre.feature_names))
    metadata = {"preprocessing": pre.get_config(), "target": "price", "class_names": None}
    records = TableModel(network, metadata).predict([{"rooms": 5, "area": "east"}])
    assert list(records[0]) == ["price"] and isinstance(records[0]["price"], float)


def test_category_embedding_is_a_lookup_of_the_one_hot_block():
    import keras

    from keras_trainer.tabular import CategoryEmbedding

    layer = CategoryEmbedding([[1, 3, 2]])
    x = np.array([[5.0, 0, 1, 0, 7.0], [6.0, 1, 0, 0, 8.0]], dtype="float32")
    out = keras.ops.convert_to_numpy(layer(x))
    table = keras.ops.convert_to_numpy(layer.kernels[0])
    np.testing.assert_allclose(out[:, [0, 3]], x[:, [0, 4]])  # other features pass through
    np.testing.assert_allclose(out[:, 1:3], table[[1, 0]], rtol=1e-6)  # row of the hot slot
    assert layer.compute_output_shape((None, 5)) == (None, 4)
