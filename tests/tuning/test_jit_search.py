"""`keras-trainer tune` on a JIT config: the JIT model and data through the same search, scored by regret."""

import json

import keras
import numpy as np
import pytest

from keras_trainer.cli import main
from keras_trainer.errors import TuningError
from keras_trainer.jit import C_KERNELS_PATH
from keras_trainer.jit.data.collect import read_dataset, save_dataset
from keras_trainer.tuning import AutoTrainer, resolve_objective
from keras_trainer.tuning.metrics import RegretCallback
from tests.conftest import ROOT


def test_regret_is_an_objective_to_minimize():
    objective = resolve_objective("regret")
    assert (objective.name, objective.direction, objective.kind) == ("val_regret", "min", "runtime")


def test_regret_callback_scores_the_strategies_the_model_picks():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.layers[0].set_weights([np.zeros((3, 2)), np.array([1.0, 0.0])])  # always class 0
    times = np.array([[1.0, 2.0], [4.0, 2.0]])
    callback = RegretCallback("regret", np.zeros((2, 3), "float32"), times)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_regret"] == pytest.approx((1.0 + 4.0) / (1.0 + 2.0))


def test_regret_without_the_validation_times_is_refused(tmp_path):
    x = np.zeros((8, 3), "float32")
    y = np.eye(2, dtype="float32")[[0, 1] * 4]
    trainer = AutoTrainer({"metric": "regret", "directory": str(tmp_path)})
    with pytest.raises(TuningError, match="val_times"):
        trainer.optimize(lambda dropout_rate: None, (x, y), (x, y))


# The command line end to end on one backend: the search trains through the core `fit`
# and scores by numpy on predictions, both tested on every backend elsewhere.
@pytest.mark.one_backend
def test_tune_searches_the_jit_model_by_regret_and_saves_the_best(tmp_path, capsys):
    data = read_dataset(C_KERNELS_PATH)
    data["samples"] = data["samples"][::30]  # 54 kernels of many families
    dataset = save_dataset(data, str(tmp_path / "jit.json"))
    code = main(
        [
            "tune",
            f"{ROOT}/config/model_config.json",
            "--data",
            dataset,
            "--directory",
            str(tmp_path / "search"),
            "--symbol",
            "jit",
            "--max-trials",
            "2",
            "--max-epochs",
            "1",
            "--set",
            "tuning.metric=regret",
            "--set",
            "tuning.search_method=random",
            "--set",
            "tuning.retrain_best=false",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "search: best trial's val_regret = " in out
    assert out.count("| COMPLETED |") == 2
    best = json.loads((tmp_path / "search" / "jit" / "best.json").read_text())
    assert best["metric"] == "val_regret" and best["val_metric"] >= 1.0
    assert "test metrics: " in out and "regret=" in out
    from keras_trainer.jit.model.trainer import load_jit_model

    saved = load_jit_model(str(tmp_path / "search" / "jit" / "best.keras"))
    assert saved.class_names == data["strategies"]
