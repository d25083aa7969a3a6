"""ModelTrainer with measured times: outcome dicts, cost-aware training, fallback, runtime figures."""

import numpy as np
import pytest

from keras_trainer.errors import ConfigError, DataError
from keras_trainer.jit import SAMPLE_DATASET_PATH, read_dataset
from keras_trainer.jit.model.trainer import ModelTrainer, PreparedData

NAMES = ["O0", "O1", "O2", "O3", "O3-scalar"]


def _config(**training):
    return {
        "model": {"input_dim": 12, "hidden_layers": [16], "output_dim": 5},
        "training": {"epochs": 3, "verbose": 0, "batch_size": 16, **training},
        "jit": {"fallback": {"enabled": True}},
    }


@pytest.fixture(scope="module")
def measured():
    samples = read_dataset(SAMPLE_DATASET_PATH)["samples"][:48]
    return (
        [s["ir"] for s in samples],
        [s["runtime"] for s in samples],
        [s["timings_ns"] for s in samples],
    )


def test_outcome_dicts_give_tie_rule_labels_and_keep_the_times(measured):
    ir, runtime, outcomes = measured
    trainer = ModelTrainer(_config())
    data = trainer.prepare_training_data(ir, runtime, outcomes)
    X, y = data  # unpacks like the seed's (X, y)
    assert X.shape == (48, 12) and y.shape == (48, 5)
    assert data.times.shape == (48, 5) and data.times[0, 2] == outcomes[0]["O2"]
    for row, label in zip(data.times, np.argmax(y, axis=1)):
        fastest = row.min()
        assert row[label] <= fastest * 1.03
        # no strategy cheaper to compile (O0, O1, O3-scalar, O2, O3) is within 3 %
        rank = ["O0", "O1", "O3-scalar", "O2", "O3"]
        cheaper = rank[: rank.index(NAMES[label])]
        assert all(row[NAMES.index(name)] > fastest * 1.03 for name in cheaper)
    assert trainer.class_names == NAMES


def test_class_indices_still_work_and_mixing_forms_is_an_error(measured):
    ir, runtime, outcomes = measured
    trainer = ModelTrainer(_config())
    assert trainer.prepare_training_data(ir[:3], runtime[:3], [0, 3, 4]).times is None
    with pytest.raises(DataError, match=r"optimization_results\[1\]: expected a dict"):
        trainer.prepare_training_data(ir[:2], runtime[:2], [outcomes[0], 2])
    with pytest.raises(DataError, match="no time for strategy 'O3-scalar'"):
        trainer.prepare_training_data(ir[:1], runtime[:1], [{k: 1 for k in NAMES[:4]}])


def test_cost_aware_training_needs_times(measured):
    ir, runtime, _ = measured
    trainer = ModelTrainer(_config(loss="expected_slowdown"))
    X, y = trainer.prepare_training_data(ir, runtime, [2] * len(ir))
    with pytest.raises(DataError, match="expected_slowdown' needs measured times"):
        trainer.train((X, y))


def test_cost_aware_training_reports_runtime_and_stores_fallback(tmp_path, measured):
    ir, runtime, outcomes = measured
    trainer = ModelTrainer(_config(loss="expected_slowdown", cross_entropy_weight=0.1))
    data = trainer.prepare_training_data(ir, runtime, outcomes)
    history = trainer.train(data.take(np.arange(40)), validation_data=data.take(np.arange(40, 48)))
    assert np.isfinite(history.history["loss"]).all() and min(history.history["loss"]) >= 1.0
    assert trainer.fallback["strategy"] in NAMES and 0.0 <= trainer.fallback["threshold"] <= 1.0
    metrics = trainer.evaluate(data)
    for key in (
        "accuracy",
        "regret",
        "geomean_regret",
        "speedup_vs_best_fixed",
        "speedup_vs_O3",
        "majority_accuracy",
        "majority_regret",
    ):
        assert key in metrics
    assert metrics["regret"] >= 1.0 and metrics["geomean_regret"] >= 1.0
    report = trainer.runtime_report(data)
    chosen = trainer.predict_strategy_normalized(data.X)
    picked = data.times[np.arange(48), chosen].sum()
    assert report["regret"] == pytest.approx(picked / data.times.min(axis=1).sum())
    # The fallback rule travels with the model file; the stored split too.
    trainer.split = {"dataset": "x.json", "sha256": "0" * 64, "test_indices": [1, 2]}
    path = trainer.save_model(tmp_path / "m.keras")
    loaded = ModelTrainer({})
    loaded.load_model(path)
    assert loaded.fallback == trainer.fallback and loaded.split == trainer.split
    assert loaded.training_baselines == trainer.training_baselines
    raw = trainer.extract_features(ir, runtime)
    np.testing.assert_array_equal(loaded.predict_strategy(raw), trainer.predict_strategy(raw))


def test_sample_groups_reach_the_fallback_rule(measured, monkeypatch):
    import keras_trainer.jit.model.choices as choices

    seen = []
    choose = choices.choose_fallback_threshold

    def spy(*args, groups=None, **kwargs):
        seen.append(None if groups is None else list(groups))
        return choose(*args, groups=groups, **kwargs)

    monkeypatch.setattr(choices, "choose_fallback_threshold", spy)
    ir, runtime, outcomes = measured
    families = [f"family_{i % 6}" for i in range(48)]
    trainer = ModelTrainer(_config())
    data = trainer.prepare_training_data(ir, runtime, outcomes, groups=families)
    assert data.take([0, 7]).groups.tolist() == ["family_0", "family_1"]
    trainer.train(data.take(np.arange(40)), validation_data=data.take(np.arange(40, 48)))
    trainer.model = None
    trainer.train(data)  # training.validation_split holds out whole families
    assert seen[0] == families[40:]
    held_out = set(seen[1])
    assert 0 < len(held_out) < 6 and len(seen[1]) == 8 * len(held_out)  # each family whole
    trainer.train(PreparedData(data.X, data.y, data.times))
    assert seen[-1] is None  # no groups: the row bootstrap
    with pytest.raises(DataError, match="groups has 3 entries but ir_samples has 48"):
        trainer.prepare_training_data(ir, runtime, outcomes, groups=families[:3])
    with pytest.raises(DataError, match="groups has 3 entries but X has 48 rows"):
        PreparedData(data.X, data.y, data.times, families[:3])


def test_fallback_argument_of_predict_strategy(measured):
    ir, runtime, outcomes = measured
    trainer = ModelTrainer(_config())
    data = trainer.prepare_training_data(ir, runtime, outcomes)
    trainer.train(data)
    raw = trainer.extract_features(ir, runtime)
    always = trainer.predict_strategy(raw, fallback={"strategy": "O1", "threshold": 1.01})
    assert (always == 1).all()
    never = trainer.predict_strategy(raw, fallback={"strategy": "O1", "threshold": 0.0})
    np.testing.assert_array_equal(never, trainer.predict_strategy(raw, fallback=False))
    with pytest.raises(DataError, match="fallback"):
        trainer.predict_strategy(raw, fallback="O1")


def test_fallback_needs_validation_data_or_a_threshold(measured):
    ir, runtime, outcomes = measured
    trainer = ModelTrainer(_config(validation_split=0.0))
    data = trainer.prepare_training_data(ir, runtime, outcomes)
    with pytest.raises(ConfigError, match="no validation data"):
        trainer.train(data)


def test_class_weighting_balances_the_classes():
    trainer = ModelTrainer({"jit": {"class_weighting": "balanced"}})
    y = np.eye(5, dtype="float32")[[0, 0, 0, 1]]
    weights = trainer._sample_weights(y)
    assert weights[3] == pytest.approx(3 * weights[0])
    assert PreparedData(np.zeros((1, 12)), y[:1]).times is None


def test_training_class_weights_take_the_place_of_jit_class_weighting():
    y = np.eye(5, dtype="float32")[[0, 0, 0, 1]]
    trainer = ModelTrainer({"training": {"class_weights": {"O1": 5.0}}})  # a strategy by name
    assert trainer._sample_weights(y).tolist() == [1.0, 1.0, 1.0, 5.0]
