"""Which rows a tabular `train` tests on and `evaluate` scores: stratified shuffled
splits, time order on request, a separate test file, k-fold cross-validation.

The rows chosen are NumPy's work, the same on every backend: one backend runs these.
"""

import csv
import json

import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.core.saving.persistence import read_metadata

pytestmark = pytest.mark.one_backend


def _table(path, rows_per_class=30, seed=0):
    """Three classes, rows sorted by class (as many public tables are)."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "label"])
        for label in range(3):
            for _ in range(rows_per_class):
                writer.writerow([label + rng.normal(scale=0.1), rng.normal(), label])
    return str(path)


def _config(tmp_path):
    config = {
        "model": {"type": "feed_forward", "hidden_layers": [4], "output_activation": "softmax"},
        "training": {"epochs": 1, "batch_size": 32, "validation_split": 0.2, "seed": 3},
        "data": {"test_split": 0.2},
    }
    path = tmp_path / "table.json"
    path.write_text(json.dumps(config))
    return str(path)


def _train(tmp_path, *arguments):
    runs = tmp_path / "runs"
    assert main(["train", _config(tmp_path), "--runs-dir", str(runs), "--quiet", *arguments]) == 0
    return str(sorted(runs.glob("table/version_*"))[-1] / "model.keras")


def test_sorted_classes_are_split_shuffled_and_stratified_and_evaluate_scores_the_test_rows(
    tmp_path, capsys
):
    data = _table(tmp_path / "sorted.csv")
    model = _train(tmp_path, "--data", data)
    split = read_metadata(model)["split"]
    test = np.asarray(split["test_indices"])
    # 18 test rows of 90: 6 of each class (rows 0-29 are class 0, 30-59 class 1, ...),
    # drawn from all over the file rather than its last rows.
    assert np.bincount(test // 30, minlength=3).tolist() == [6, 6, 6]
    assert sorted(test.tolist()) != list(range(72, 90))
    capsys.readouterr()

    assert main(["evaluate", model]) == 0  # no --data: the model's own test rows
    assert f"scoring the model's held-out split: 18 of 90 rows of {data}" in capsys.readouterr().out
    assert main(["evaluate", model, "--data", data, "--all"]) == 0
    captured = capsys.readouterr()
    assert "72 of these 90 rows were used to train the model" in captured.err
    assert "metrics on 90 rows" in captured.out


def test_a_time_series_keeps_its_order_the_last_rows_are_the_test(tmp_path):
    data = _table(tmp_path / "series.csv")
    model = _train(tmp_path, "--data", data, "--set", "data.time_series=true")
    assert read_metadata(model)["split"]["test_indices"] == list(range(72, 90))


def test_a_test_file_is_scored_by_train_and_evaluate_and_cv_reports_each_fold(tmp_path, capsys):
    data, held_out = _table(tmp_path / "train.csv"), _table(tmp_path / "test.csv", 5, seed=1)
    model = _train(tmp_path, "--data", data, "--test-data", held_out, "--cv", "2")
    out = capsys.readouterr().out
    # The whole file trains or validates; the 15 test-file rows are the test.
    assert "72 train, 18 validation, 15 test rows" in out
    assert "2-fold cross-validation on the training rows" in out
    assert "val_accuracy:" in out and "(folds: " in out

    assert main(["evaluate", model]) == 0
    assert f"scoring the model's held-out split: 15 of 15 rows of {held_out}" in (
        capsys.readouterr().out
    )
    assert main(["evaluate", model, "--data", data]) == 0
    assert f"warning: {data} holds the rows the model was trained on" in capsys.readouterr().err
