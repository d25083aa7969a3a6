"""Tests of keras_trainer.core.evaluating.evaluation: every score is checked against scikit-learn."""

import json
import os

import keras
import numpy as np
import pytest
from sklearn import metrics as skm

from keras_trainer.core.evaluating.comparison import ModelComparison, compare_models
from keras_trainer.core.evaluating.evaluation import EvaluationReport, ModelEvaluator
from keras_trainer.core.recording.plots import plot_confusion_matrix, plot_training_curves
from keras_trainer.errors import ConfigError, DataError, ModelError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def multiclass_case(seed=0, n=60, k=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    # Class 3 is never the argmax: a class absent from the predictions.
    logits[:, 3] -= 10.0
    return y, softmax(logits)


def assert_classification_matches_sklearn(report, y, labels, k):
    kw = dict(labels=np.arange(k), zero_division=0)
    m = report.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    for avg in ("macro", "weighted"):
        assert m[f"precision_{avg}"] == pytest.approx(
            skm.precision_score(y, labels, average=avg, **kw)
        )
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, labels, average=avg, **kw))
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, labels, average=avg, **kw))
    np.testing.assert_array_equal(
        report.confusion_matrix, skm.confusion_matrix(y, labels, labels=np.arange(k))
    )
    p, r, f, s = skm.precision_recall_fscore_support(y, labels, **kw)
    for i, row in enumerate(report.per_class.values()):
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]


def test_multiclass_scores_match_sklearn_with_a_class_never_predicted():
    y, probs = multiclass_case()
    report = ModelEvaluator().evaluate_predictions(y, probs)
    labels = probs.argmax(axis=1)
    assert 3 not in labels
    assert_classification_matches_sklearn(report, y, labels, 4)
    assert report.per_class["3"]["precision"] == 0.0


def test_one_vs_rest_roc_auc_matches_sklearn():
    y, probs = multiclass_case(seed=1)
    report = ModelEvaluator().evaluate_predictions(y, probs)
    for avg in ("macro", "weighted"):
        expected = skm.roc_auc_score(y, probs, multi_class="ovr", average=avg)
        assert report.metrics[f"roc_auc_ovr_{avg}"] == pytest.approx(expected, abs=1e-12)


def test_one_hot_targets_give_the_same_report_as_indices():
    y, probs = multiclass_case(seed=2)
    evaluator = ModelEvaluator()
    one_hot = np.eye(4)[y]
    assert evaluator.evaluate_predictions(one_hot, probs) == evaluator.evaluate_predictions(
        y, probs
    )


def test_binary_roc_auc_with_tied_scores_matches_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=80)
    # Rounded to one decimal: many ties within and across classes.
    p1 = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, size=80), 0, 1), 1)
    report = ModelEvaluator().evaluate_predictions(y, np.stack([1 - p1, p1], axis=1))
    assert len(np.unique(p1)) < 15
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1), abs=1e-12)


def test_single_sigmoid_column_is_read_as_positive_class_probability():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=50)
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, size=50), 0.01, 0.99)
    report = ModelEvaluator().evaluate_predictions(y, p[:, None])
    labels = (p > 0.5).astype(int)
    assert_classification_matches_sklearn(report, y, labels, 2)
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_integer_label_predictions_have_no_roc_auc():
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    pred = np.array([0, 2, 2, 2, 1, 1, 0])
    report = ModelEvaluator().evaluate_predictions(y, pred)
    assert_classification_matches_sklearn(report, y, pred, 3)
    assert not any(key.startswith("roc_auc") for key in report.metrics)


def test_one_vs_rest_skips_classes_absent_from_y_true():
    y, probs = multiclass_case(seed=5)
    keep = y != 2
    y, probs = y[keep], probs[keep]
    report = ModelEvaluator().evaluate_predictions(y, probs)
    per_class = {c: skm.roc_auc_score(y == c, probs[:, c]) for c in (0, 1, 3)}
    support = {c: np.sum(y == c) for c in per_class}
    assert report.metrics["roc_auc_ovr_macro"] == pytest.approx(np.mean(list(per_class.values())))
    weighted = sum(per_class[c] * support[c] for c in per_class) / sum(support.values())
    assert report.metrics["roc_auc_ovr_weighted"] == pytest.approx(weighted)
    assert any("absent from y_true: 2" in note for note in report.notes)


def test_binary_roc_auc_is_none_when_y_true_has_one_class():
    report = ModelEvaluator().evaluate_predictions([1, 1, 1], [0.2, 0.7, 0.9])
    assert report.metrics["roc_auc"] is None
    assert report.notes and "only one class" in report.notes[0]
    assert json.loads(report.to_json())["metrics"]["roc_auc"] is None


def test_class_names_label_the_report():
    y, probs = multiclass_case(seed=6)
    names = ["hold", "buy", "sell", "wait"]
    report = ModelEvaluator(class_names=names).evaluate_predictions(y, probs)
    assert list(report.per_class) == names
    assert report.class_names == names


def test_regression_scores_match_sklearn_single_output():
    rng = np.random.default_rng(7)
    y = rng.normal(size=40)
    pred = y + rng.normal(scale=0.5, size=40)
    m = ModelEvaluator(task="regression").evaluate_predictions(y, pred[:, None]).metrics
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_regression_scores_match_sklearn_multi_output_with_constant_column():
    rng = np.random.default_rng(8)
    y = rng.normal(size=(40, 3))
    y[:, 2] = 5.0  # constant target: R2 falls back like sklearn's force_finite
    pred = y + rng.normal(scale=[0.3, 1.0, 0.2], size=(40, 3))
    report = ModelEvaluator(task="regression").evaluate_predictions(y, pred)
    m = report.metrics
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    raw = {
        "mse": skm.mean_squared_error(y, pred, multioutput="raw_values"),
        "mae": skm.mean_absolute_error(y, pred, multioutput="raw_values"),
        "rmse": skm.root_mean_squared_error(y, pred, multioutput="raw_values"),
        "r2": skm.r2_score(y, pred, multioutput="raw_values"),
    }
    for i, row in enumerate(report.per_output):
        for key, values in raw.items():
            assert row[key] == pytest.approx(values[i])


def test_r2_of_exact_prediction_of_constant_target_is_one():
    y = np.full(5, 2.0)
    m = ModelEvaluator(task="regression").evaluate_predictions(y, y).metrics
    assert m["r2"] == 1.0 == skm.r2_score(y, y)


@pytest.mark.parametrize(
    "task, y_true, y_pred, match",
    [
        ("classification", [0, 1, 1], [0, 1], "3 samples .* predictions have 2"),
        ("classification", [0, 1], [[0.5, np.nan], [0.1, 0.9]], "NaN"),
        ("regression", [1.0, 2.0], [1.0, np.inf], "NaN or infinite"),
        ("classification", [0, 1], np.zeros((2, 2, 2)), "shape"),
        (
            "regression",
            np.zeros((4, 2)),
            np.zeros((4, 3)),
            r"shape \(4, 2\) but y_pred has shape \(4, 3\)",
        ),
        ("classification", [0, 3], [[0.5, 0.5], [0.1, 0.9]], "class index 3 out of range"),
        ("classification", [0, 1], [0.4, 1.7], r"\[0, 1\]"),
        ("classification", [0, -1], [0, 1], "non-negative"),
        ("classification", [], [], "empty"),
        ("classification", [[0.5, 2.0], [1.0, 0.0]], [0, 1], "one-hot rows"),
    ],
)
def test_bad_input_raises_data_error_naming_the_problem(task, y_true, y_pred, match):
    with pytest.raises(DataError, match=match):
        ModelEvaluator(task=task).evaluate_predictions(y_true, y_pred)


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="'ranking'"):
        ModelEvaluator(task="ranking")


def test_class_names_must_match_probability_columns():
    y, probs = multiclass_case()
    with pytest.raises(DataError, match="4 class columns but 3 class_names"):
        ModelEvaluator(class_names=["a", "b", "c"]).evaluate_predictions(y, probs)


def test_report_to_text_lists_metrics_classes_and_matrix():
    y, probs = multiclass_case()
    text = (
        ModelEvaluator(class_names=["hold", "buy", "sell", "wait"])
        .evaluate_predictions(y, probs)
        .to_text()
    )
    for word in (
        "accuracy",
        "f1_macro",
        "roc_auc_ovr_weighted",
        "hold",
        "wait",
        "confusion matrix",
    ):
        assert word in text


def test_report_round_trips_through_json_file_written_atomically(tmp_path):
    y, probs = multiclass_case()
    report = ModelEvaluator().evaluate_predictions(y, probs)
    path = tmp_path / "out" / "report.json"
    path.parent.mkdir()
    path.write_text("old content")
    written = report.save_json(str(path))
    assert written == str(path)
    assert EvaluationReport.from_dict(json.loads(path.read_text())) == report
    assert os.listdir(path.parent) == ["report.json"]  # no temporary file left behind


def seeded(seed):
    # Seeded initializers, not keras.utils.set_random_seed: that one imports
    # TensorFlow when it is installed, costing seconds under jax and torch.
    return keras.initializers.GlorotUniform(seed=seed)


def tiny_classifier(hidden, seed):
    inputs = keras.Input(shape=(5,))
    h = keras.layers.Dense(hidden, activation="relu", kernel_initializer=seeded(seed))(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=seeded(seed + 1))(h)
    return keras.Model(inputs, outputs)


DATA_X = np.random.default_rng(9).normal(size=(30, 5)).astype("float32")
DATA_Y = np.random.default_rng(10).integers(0, 3, size=30)


def test_evaluate_runs_the_model_and_scores_its_predictions():
    model = tiny_classifier(4, seed=1)
    evaluator = ModelEvaluator(model)
    report = evaluator.evaluate(DATA_X, DATA_Y)
    probs = keras.ops.convert_to_numpy(model(DATA_X))
    assert report.metrics["accuracy"] == pytest.approx(skm.accuracy_score(DATA_Y, probs.argmax(1)))
    assert report.metrics["roc_auc_ovr_macro"] == pytest.approx(
        skm.roc_auc_score(DATA_Y, probs / probs.sum(1, keepdims=True), multi_class="ovr"), abs=1e-6
    )


def test_evaluate_without_model_is_a_model_error():
    with pytest.raises(ModelError, match="no model"):
        ModelEvaluator().evaluate(DATA_X, DATA_Y)


def test_evaluate_rejects_inputs_and_targets_of_different_length():
    with pytest.raises(DataError, match="x has 30 samples but y_true has 29"):
        ModelEvaluator(tiny_classifier(4, seed=1)).evaluate(DATA_X, DATA_Y[:29])


def test_compare_models_tabulates_scores_size_and_speed():
    models = {"small": tiny_classifier(2, seed=1), "large": tiny_classifier(16, seed=2)}
    table = compare_models(models, DATA_X, DATA_Y)
    assert isinstance(table, ModelComparison)
    assert [row.name for row in table.rows] == ["small", "large"]
    accuracies = {}
    for row in table.rows:
        model = models[row.name]
        assert row.n_params == model.count_params()
        assert row.inference_seconds > 0
        probs = keras.ops.convert_to_numpy(model(DATA_X))
        accuracies[row.name] = skm.accuracy_score(DATA_Y, probs.argmax(1))
        assert row.metrics["accuracy"] == pytest.approx(accuracies[row.name])
    assert table.best("n_params") == "small"
    expected_best = max(accuracies, key=lambda n: (accuracies[n], n == "small"))
    assert table.best("accuracy") == expected_best
    text = table.to_text()
    assert "small" in text and "large" in text and "f1_macro" in text
    assert "precision_weighted" not in text
    assert "precision_weighted" in table.to_text(columns=["precision_weighted"])
    with pytest.raises(ConfigError, match="unknown \\['speed'\\]"):
        table.to_text(columns=["speed"])
    json.dumps(table.to_dict())


def test_comparison_best_prefers_lower_errors_for_regression():
    x = DATA_X
    y = x[:, :1] * 2.0
    inputs = keras.Input(shape=(5,))
    exact = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    exact.layers[-1].set_weights([np.array([[2.0], [0], [0], [0], [0]], dtype="float32")])
    zero = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="zeros")(inputs))
    table = compare_models({"zero": zero, "exact": exact}, x, y, task="regression")
    assert table.best("mse") == "exact"
    assert table.best("r2") == "exact"


def test_comparison_best_with_unknown_metric_lists_columns():
    table = compare_models({"m": tiny_classifier(2, seed=1)}, DATA_X, DATA_Y)
    with pytest.raises(ConfigError, match="unknown 'auc'.*accuracy"):
        table.best("auc")


def read_png_shape(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    from matplotlib import image

    return image.imread(path).shape


def resumed_training_history():
    from keras_trainer.core.recording.history import TrainingHistory

    return TrainingHistory(
        history={"loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.4, 0.6, 0.7]},
        epochs=[4, 5, 6],
        learning_rates=[1e-3, 5e-4, 2.5e-4],
    )


def test_plot_training_curves_writes_a_png(tmp_path):
    path = plot_training_curves(
        {
            "loss": [1.0, 0.6, 0.4],
            "val_loss": [1.2, 0.9, 0.8],
            "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.4, 0.6, 0.65],
            "learning_rate": [0.01, 0.005, 0.001],
        },
        str(tmp_path / "curves.png"),
    )
    height, width, _ = read_png_shape(path)
    assert width > height > 100


def test_plot_training_curves_accepts_a_training_history_object(tmp_path):
    path = plot_training_curves(resumed_training_history(), str(tmp_path / "history.png"))
    read_png_shape(path)


def test_plot_training_curves_rejects_an_empty_history(tmp_path):
    with pytest.raises(DataError, match="no per-epoch values"):
        plot_training_curves({}, str(tmp_path / "empty.png"))
    assert not os.listdir(tmp_path)


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    y, probs = multiclass_case()
    report = ModelEvaluator(class_names=["hold", "buy", "sell", "wait"]).evaluate_predictions(
        y, probs
    )
    path = plot_confusion_matrix(report, str(tmp_path / "cm.png"), normalize=True)
    read_png_shape(path)
    assert os.listdir(tmp_path) == ["cm.png"]


def test_plot_confusion_matrix_of_regression_report_is_a_data_error(tmp_path):
    report = ModelEvaluator(task="regression").evaluate_predictions([1.0, 2.0], [1.0, 2.5])
    with pytest.raises(DataError, match="no confusion matrix"):
        plot_confusion_matrix(report, str(tmp_path / "cm.png"))


def test_saturated_binary_scores_keep_roc_auc_when_read_as_scores():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    as_scores = ModelEvaluator().evaluate_predictions(y, p, prediction_type="scores")
    assert as_scores.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert "roc_auc" not in ModelEvaluator().evaluate_predictions(y, p).metrics


def test_labels_prediction_type_rejects_fractional_values():
    with pytest.raises(DataError, match="whole numbers"):
        ModelEvaluator().evaluate_predictions([0, 1], [0.2, 0.9], prediction_type="labels")


def test_unknown_prediction_type_is_a_config_error():
    with pytest.raises(ConfigError, match="prediction_type"):
        ModelEvaluator().evaluate_predictions([0, 1], [0, 1], prediction_type="probs")


def test_evaluate_binary_sigmoid_model_reports_roc_auc():
    inputs = keras.Input(shape=(5,))
    output = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=seeded(3))(inputs)
    model = keras.Model(inputs, output)
    y = (DATA_X[:, 0] > 0).astype(int)
    report = ModelEvaluator(model, class_names=["down", "up"]).evaluate(DATA_X, y)
    p = keras.ops.convert_to_numpy(model(DATA_X))[:, 0]
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert report.metrics["accuracy"] == pytest.approx(np.mean((p > 0.5) == y))


def test_evaluate_takes_a_loader_and_a_task_type_for_the_call():
    # The training-framework document's `evaluator.evaluate(test_loader, task_type=...)`.
    model = tiny_classifier(4, seed=1)
    loader = [(DATA_X[:16], DATA_Y[:16]), (DATA_X[16:], DATA_Y[16:])]
    report = ModelEvaluator(model, task="regression").evaluate(loader, task_type="classification")
    assert report.metrics["accuracy"] == pytest.approx(
        ModelEvaluator(model).evaluate(DATA_X, DATA_Y).metrics["accuracy"]
    )
    with pytest.raises(ConfigError, match="task: unknown 'ranking'"):
        ModelEvaluator(model).evaluate(loader, task_type="ranking")


@pytest.mark.one_backend  # matplotlib only: no Keras code runs
def test_memory_panel_keeps_noise_flat_and_every_panel_marks_the_best_epoch():
    pytest.importorskip("matplotlib")
    from keras_trainer.core.recording.plots import training_figure

    figure = training_figure(
        {
            "loss": [1.0, 0.6, 0.5, 0.55],
            "val_loss": [1.2, 0.9, 0.8, 0.85],  # best at epoch 3
            "peak_host_rss_mb": [1000.0, 1000.3, 1000.5, 1000.4],  # 0.5 MB of noise
        }
    )
    panels = {axis.get_title(): axis for axis in figure.axes if axis.get_visible()}
    low, high = panels["peak_host_rss_mb"].get_ylim()
    assert high - low >= 100  # at least 10 % of the mean: the noise stays a flat line
    for axis in panels.values():
        marks = [line for line in axis.get_lines() if line.get_label() == "best epoch 3"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [3, 3]
