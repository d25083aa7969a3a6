"""A user's own measurements: their strategy names, their data file, their report."""

import json
import os
import warnings

import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.errors import ConfigError, DataError
from keras_trainer.jit import SAMPLE_DATASET_PATH
from keras_trainer.jit.data.collect import read_dataset
from keras_trainer.jit.model.choices import validation_rows
from keras_trainer.jit.model.trainer import ModelTrainer
from tests.conftest import ROOT

#: The bundled strategies under a user's own names.
RENAMED = {"O0": "base", "O1": "light", "O2": "vec2", "O3": "vec3", "O3-scalar": "scalar3"}
USER_NAMES = list(RENAMED.values())
RANKED = [{"name": name, "compile_rank": rank} for rank, name in enumerate(USER_NAMES)]


@pytest.fixture(scope="module")
def records():
    """40 measured kernels as a user would write them: a plain list, their names,
    a program family, no `label` and no `entry`."""
    samples = read_dataset(SAMPLE_DATASET_PATH)["samples"][:40]
    return [
        {
            "ir": s["ir"],
            "runtime": s["runtime"],
            "timings_ns": {RENAMED[k]: v for k, v in s["timings_ns"].items()},
            "family": f"family_{i % 4}",
        }
        for i, s in enumerate(samples)
    ]


@pytest.fixture(scope="module")
def records_file(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "kernels.json"
    path.write_text(json.dumps(records))
    return path


def _config(strategies, **training):
    return {
        "model": {"input_dim": 12, "hidden_layers": [8]},
        "training": {"epochs": 1, "verbose": 0, "batch_size": 16, **training},
        "jit": {"strategies": strategies},
    }


def _outcomes(records):
    return (
        [r["ir"] for r in records],
        [r["runtime"] for r in records],
        [r["timings_ns"] for r in records],
    )


@pytest.mark.one_backend
def test_a_strategy_known_only_by_its_times_is_enough_for_training(records):
    trainer = ModelTrainer(_config(RANKED))
    data = trainer.prepare_training_data(*_outcomes(records))
    trainer.train(data)
    assert trainer.class_names == USER_NAMES
    assert trainer.evaluate(data)["regret"] >= 1.0
    from keras_trainer.jit.strategies import optimize, strategies_from_config

    with pytest.raises(ConfigError, match="'vec3' is known only by its measured times"):
        optimize(None, strategies_from_config(trainer.config.jit.strategies)[3])


@pytest.mark.one_backend
def test_a_partial_pipeline_is_a_config_error_when_the_config_is_loaded(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_config([{"name": "base"}, {"name": "vec", "speed_level": 3}])))
    with pytest.raises(ConfigError, match=r"jit.strategies\[1\].*'vec'.*'codegen_level'"):
        ModelTrainer(str(path))


@pytest.mark.one_backend
def test_without_compile_ranks_ties_go_by_config_order_with_one_warning_naming_them(records):
    ir, runtime = [r["ir"] for r in records[:2]], [r["runtime"] for r in records[:2]]
    tied = [{"b": 100.0, "a": 101.0}, {"b": 101.0, "a": 100.0}]  # within the 3 % tolerance
    ranked = ModelTrainer(
        _config([{"name": "a", "compile_rank": 1}, {"name": "b", "compile_rank": 0}])
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "jit.strategies")  # every rank given: no warning
        y = ranked.prepare_training_data(ir, runtime, tied).y
    assert np.argmax(y, axis=1).tolist() == [1, 1]  # the lowest rank, b
    trainer = ModelTrainer(_config([{"name": "a"}, {"name": "b", "compile_rank": 0}]))
    with pytest.warns(UserWarning, match=r"no compile_rank for \['a'\]") as caught:
        y = trainer.prepare_training_data(ir, runtime, tied).y
        trainer.prepare_training_data(ir, runtime, tied)
    assert len([w for w in caught if "compile_rank" in str(w.message)]) == 1
    assert np.argmax(y, axis=1).tolist() == [0, 0]  # the first in the config, a


@pytest.mark.one_backend
def test_a_plain_list_of_records_reads_without_label_or_entry(records_file):
    data = read_dataset(str(records_file))
    assert data["strategies"] == USER_NAMES
    first = data["samples"][0]
    assert first["entry"] == "entry"
    assert USER_NAMES[first["label"]] == min(first["timings_ns"], key=first["timings_ns"].get)
    broken = records_file.parent / "broken.json"
    broken.write_text(json.dumps([{"ir": "x", "runtime": {}, "timings_ns": {"a": 1}}, {}]))
    with pytest.raises(DataError, match=r"samples\[1\]: missing key 'ir'"):
        read_dataset(str(broken))
    broken.write_text(
        json.dumps([{"ir": "x", "runtime": {}, "timings_ns": {"a": 1}}, {"ir": "x", "runtime": {}}])
    )
    with pytest.raises(DataError, match=r"samples\[1\]: needs 'label'.*\['a'\]"):
        read_dataset(str(broken))


def _train(tmp_path, config, data, *extra):
    model = tmp_path / "own.keras"
    argv = ["train", config, "--data", str(data), "--epochs", "2", "--output", str(model)]
    return main([*argv, "--quiet", "--runs-dir", str(tmp_path / "runs"), *extra]), model


# The CLI's path, not the backend, is under test (fit runs on every backend elsewhere).
@pytest.mark.one_backend
def test_the_seed_config_trains_on_other_names_and_evaluate_reports_regret(
    tmp_path, records_file, capsys
):
    seed = os.path.join(ROOT, "config", "model_config.json")
    status, model = _train(tmp_path, seed, records_file)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "measures the strategies ['base'" in err and "no ['O0'" in err
    assert "regret" in out and "always vec3" in out and "test_speedup_vs_vec3" in out
    assert main(["evaluate", str(model), "--data", str(records_file)]) == 0
    out, err = capsys.readouterr()
    assert "regret" in out and "speedup_vs_scalar3" in out
    # A model asked about strategies the data does not measure names them.
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            [{**r, "timings_ns": {"x": 1, "y": 2}} for r in json.loads(records_file.read_text())]
        )
    )
    assert main(["evaluate", str(model), "--data", str(other)]) == 2
    assert "has no strategy ['base', 'light'" in capsys.readouterr().err


@pytest.mark.one_backend
def test_a_config_naming_strategies_the_data_lacks_says_which(tmp_path, records_file, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config([{"name": "base"}, {"name": "O3"}])))
    status, _ = _train(tmp_path, str(config), records_file)
    err = capsys.readouterr().err
    assert status == 2 and "['O3'] are not measured" in err and "'scalar3'" in err


@pytest.mark.one_backend
def test_cross_validation_runs_the_cost_aware_loss(tmp_path, records_file, capsys):
    cost_aware = os.path.join(ROOT, "config", "jit_cost_aware.json")
    status, _ = _train(tmp_path, cost_aware, records_file, "--cv", "2")
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "2-fold cross-validation" in out and "val_regret:" in out


def test_accuracy_is_reported_with_and_without_the_fallback(records):
    trainer = ModelTrainer(_config(RANKED, validation_split=0.0))
    data = trainer.prepare_training_data(*_outcomes(records))
    trainer.train(data)
    labels = np.argmax(data.y, axis=1)
    own = trainer.predict_strategy_normalized(data.X, fallback=False)
    fallback = "vec2" if np.mean(labels == 2) != np.mean(own == labels) else "base"
    trainer.fallback = {"strategy": fallback, "threshold": 1.0}  # always falls back
    metrics = trainer.evaluate(data)
    assert metrics["accuracy"] == pytest.approx(trainer.evaluation_report(data).metrics["accuracy"])
    assert metrics["accuracy"] == pytest.approx(np.mean(own == labels))
    index = USER_NAMES.index(fallback)
    assert metrics["accuracy_with_fallback"] == pytest.approx(np.mean(labels == index))
    assert metrics["accuracy_with_fallback"] != pytest.approx(metrics["accuracy"])
    always = data.times[:, index].sum() / data.times.min(axis=1).sum()
    assert metrics["regret"] == pytest.approx(always)  # the runtime figures apply the fallback
    assert "regret_without_fallback" in metrics


def test_evaluate_names_speedups_by_the_strategies_of_the_times(records):
    trainer = ModelTrainer(_config(RANKED, validation_split=0.0))
    data = trainer.prepare_training_data(*_outcomes(records))
    trainer.train(data)
    chosen = trainer.predict_strategy_normalized(data.X)
    picked = data.times[np.arange(len(chosen)), chosen].sum()
    other = [dict(zip("pqrst", row)) for row in data.times]  # same columns, other names
    metrics = trainer.evaluate((data.X, data.y, other))
    assert "speedup_vs_t" in metrics and "speedup_vs_scalar3" not in metrics
    assert metrics["speedup_vs_p"] == pytest.approx(data.times[:, 0].sum() / picked)
    # The model's own names in another order are put back in class order.
    shuffled = [dict(reversed(list(zip(USER_NAMES, row)))) for row in data.times]
    metrics = trainer.evaluate((data.X, data.y, shuffled))
    assert metrics["speedup_vs_base"] == pytest.approx(data.times[:, 0].sum() / picked)


@pytest.mark.one_backend
def test_validation_rows_are_whole_groups_or_a_shuffled_stratified_share():
    labels = np.array([0] * 30 + [1] * 10)
    groups = np.array([f"f{i % 8}" for i in range(40)])
    train, held = validation_rows(labels, groups, 0.2, seed=0)
    assert set(groups[held]).isdisjoint(groups[train]) and len(held) == 10
    train, held = validation_rows(labels, None, 0.2, seed=0)
    assert sorted(np.bincount(labels[held]).tolist()) == [2, 6]  # a fifth of each class
    assert held.tolist() != list(range(32, 40))  # not the file's tail
    assert sorted(np.r_[train, held].tolist()) == list(range(40))
    with pytest.raises(DataError, match="validation_split=0.2 leaves"):
        validation_rows(labels[:2], np.array(["f", "f"]), 0.2, seed=0)
