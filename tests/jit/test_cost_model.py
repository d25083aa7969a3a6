"""The JIT cost model: targets, training through ModelTrainer, save/load, its policy."""

import json
import math

import numpy as np
import pytest

from keras_trainer.errors import CheckpointError, ConfigError
from keras_trainer.jit import C_KERNELS_PATH
from keras_trainer.jit.data.collect import read_dataset
from keras_trainer.jit.model.cost_model import (
    COST_MODEL_CONFIG,
    CostModel,
    cost_targets,
    output_names,
    train_cost_model,
)
from keras_trainer.jit.tiering.policies import ModelCostBenefitPolicy
from keras_trainer.jit.tiering.workload import Workload, replay


@pytest.fixture(scope="module")
def small_dataset():
    data = read_dataset(C_KERNELS_PATH)
    return {**data, "samples": data["samples"][::60]}  # 27 kernels of many families


@pytest.fixture(scope="module")
def trained(small_dataset):
    return train_cost_model(small_dataset, quick_config())


def quick_config(**training):
    config = json.load(open(COST_MODEL_CONFIG))
    config["training"].update({"epochs": 1, "verbose": 0, "validation_split": 0.0, **training})
    return config


@pytest.mark.one_backend
def test_targets_are_log_speedups_over_o0_then_log_compile_ratios():
    record = {
        "ir": "",
        "entry": "entry",
        "runtime": {},
        "label": 0,
        "timings_ns": {"O0": 8.0, "O1": 2.0},
        "compile_times_ms": {"O0": 1.0, "O1": 3.0},
    }
    workload = Workload.from_dataset({"strategies": ["O0", "O1"], "samples": [record]}, "fixed:1")
    assert np.allclose(cost_targets(workload), [[math.log(4.0), math.log(3.0)]])
    assert output_names(["O0", "O1"]) == ["log_speedup:O1", "log_compile_ratio:O1"]


def test_cost_model_save_and_load_give_the_same_predictions(small_dataset, trained, tmp_path):
    model = trained
    speedup, ratio = model.predict_samples(small_dataset["samples"][:4])
    assert speedup.shape == ratio.shape == (4, 5) and (speedup[:, 0] == 1).all()
    path = model.save(tmp_path / "cost.keras")
    loaded = CostModel.load(path)
    assert loaded.strategies == small_dataset["strategies"]
    again = loaded.predict_samples(small_dataset["samples"][:4])
    assert np.allclose(again[0], speedup, rtol=1e-5) and np.allclose(again[1], ratio, rtol=1e-5)


def test_a_cost_model_config_with_the_wrong_output_size_is_refused(small_dataset):
    config = quick_config()
    config["model"]["output_dim"] = 5
    with pytest.raises(ConfigError, match="output_dim is 5 but a cost model of 5 strategies has 8"):
        train_cost_model(small_dataset, config)


def test_a_strategy_classifier_is_not_loaded_as_a_cost_model(tmp_path):
    from keras_trainer.jit.model.trainer import ModelTrainer

    trainer = ModelTrainer({"model": {"input_dim": 12, "output_dim": 5}})
    trainer.create_model(12)
    path = trainer.save_model(tmp_path / "classifier.keras")
    with pytest.raises(CheckpointError, match="not a JIT cost model"):
        CostModel.load(path)


def test_cost_benefit_with_the_model_uses_each_functions_predicted_speedups(small_dataset, trained):
    workload = Workload.from_dataset(small_dataset, "fixed:100000")
    policy = ModelCostBenefitPolicy(trained)
    result = replay(workload, policy)
    speedup, ratio = trained.predict_samples(workload.samples)
    for i in (0, 5):
        controller = policy.controller(workload.samples[i], workload.strategies)
        assert controller.speedup == pytest.approx(dict(zip(workload.strategies, speedup[i])))
        assert controller.ratio == pytest.approx(dict(zip(workload.strategies, ratio[i])))
    assert result.decide_s > 0  # the model's batched predictions count as deciding


def test_jit_replay_scores_cost_benefit_with_a_saved_model(
    small_dataset, trained, tmp_path, capsys
):
    from keras_trainer.jit.data.collect import save_dataset

    from .test_policies import parse

    data = save_dataset(small_dataset, tmp_path / "small.json")
    model = trained.save(tmp_path / "cost.keras")
    argv = ["jit-replay", "--data", data, "--model", model, "--calls", "fixed:1000", "--json"]
    args = parse(argv + ["--folds", "2", "--policies", "cost_benefit,cost_benefit+model"])
    assert args.handler(args) == 0
    policies = json.loads(capsys.readouterr().out)["policies"]
    assert set(policies) == {"cost_benefit", "cost_benefit+model"}
    assert policies["cost_benefit+model"]["regret"] >= 1.0


def test_adaptive_jit_takes_a_cost_model_and_compiles_the_predicted_fastest(trained, tmp_path):
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT

    from .snippets import ONE_LOOP

    jit = AdaptiveJIT(trained.save(tmp_path / "cost.keras"), trusted=True)
    fn = jit.compile(ONE_LOOP, "entry", args=[200])
    assert fn(200) == sum(range(200))
    assert sorted(fn.probabilities) == sorted(trained.strategies)
    assert math.isclose(sum(fn.probabilities.values()), 1.0, rel_tol=1e-5)
    assert fn.probabilities[fn.strategy] == max(fn.probabilities.values())


def test_live_cost_benefit_with_the_model_predicts_from_an_o0_probe(trained, tmp_path):
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT

    from .snippets import ONE_LOOP

    jit = AdaptiveJIT(trained.save(tmp_path / "cost.keras"), trusted=True)
    fn = jit.compile_tiered(ONE_LOOP, "entry", "cost_benefit+model", args=[200])
    assert [fn(200) for _ in range(4)] == [sum(range(200))] * 4
    assert fn.decisions[0] == (0, "compile", "O0") and fn.controller.speedup["O0"] == 1.0
    with pytest.raises(ConfigError, match="pass args="):
        jit.compile_tiered(ONE_LOOP, "entry", "cost_benefit+model")
