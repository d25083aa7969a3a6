"""`predict` on a JIT model reads raw feature rows: CSV (columns by the model's feature
names, any order), JSON (lists or objects by name) and NumPy files."""

import csv
import json

import keras
import numpy as np
import pytest

from keras_trainer.cli import main

pytest.importorskip("llvmlite")  # the model's feature names come from the IR feature extractor

from keras_trainer import ModelTrainer  # noqa: E402

CONFIG = {
    "model": {"input_dim": 12, "hidden_layers": [4], "output_dim": 5, "dropout": 0.0},
    "training": {"verbose": 0},
}


@pytest.fixture(scope="module")
def loops_model(tmp_path_factory):
    """A JIT model (untrained, weights set by hand) that picks O3 when `loops` is large, else O1."""
    trainer = ModelTrainer(CONFIG)
    trainer.create_model(12)
    trainer.fit_normalizer(np.array([[-1.0] * 12, [1.0] * 12]))  # mean 0, variance 1
    names, strategies = trainer.feature_names, list(trainer.class_names)
    dense = [layer for layer in trainer.model.layers if isinstance(layer, keras.layers.Dense)]
    first, last = dense[0], dense[-1]
    kernel, bias = (np.zeros_like(w) for w in first.get_weights())
    kernel[names.index("loops"), 0] = 1.0
    first.set_weights([kernel, bias])
    kernel, bias = (np.zeros_like(w) for w in last.get_weights())
    kernel[0, strategies.index("O3")] = 1.0
    bias[strategies.index("O1")] = 5.0
    last.set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("m") / "jit.keras"
    trainer.save_model(path)
    return str(path), names


def _predicted(path):
    with open(path, newline="") as handle:
        return [(row["id"], row["label"]) for row in csv.DictReader(handle)]


def test_predict_reads_csv_rows_by_feature_name(loops_model, tmp_path):
    model, names = loops_model
    header = ["kernel", "note", *reversed(names)]  # another order, an id and an extra column
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for kernel, loops in (("few", 0), ("many", 10)):
            writer.writerow([kernel, "x", *(loops if n == "loops" else 1 for n in reversed(names))])
    output = tmp_path / "p.csv"
    argv = ["predict", model, "--data", str(rows), "--id-column", "kernel"]
    assert main([*argv, "--output", str(output)]) == 0
    assert _predicted(output) == [("few", "O1"), ("many", "O3")]


@pytest.mark.parametrize("kind", ["json_lists", "json_objects", "npy"])
def test_predict_reads_json_and_numpy_rows(loops_model, tmp_path, kind):
    model, names = loops_model
    values = [[10.0 if n == "loops" else 1.0 for n in names] for _ in range(2)]
    values[0][names.index("loops")] = 0.0
    if kind == "npy":
        rows = tmp_path / "rows.npy"
        np.save(rows, np.asarray(values, dtype="float32"))
    else:
        rows = tmp_path / "rows.json"
        if kind == "json_objects":
            values = [dict(zip(names, row)) for row in values]
        rows.write_text(json.dumps(values))
    output = tmp_path / "p.csv"
    assert main(["predict", model, "--data", str(rows), "--output", str(output)]) == 0
    assert _predicted(output) == [("0", "O1"), ("1", "O3")]
