"""Fitting each tiering policy on training data, and the `jit-replay` command."""

import argparse
import json
import math

import numpy as np
import pytest

from keras_trainer.errors import ConfigError
from keras_trainer.jit.cli import register
from keras_trainer.jit.tiering.policies import (
    AlwaysPolicy,
    CostBenefitPolicy,
    TieredPolicy,
    constant_estimates,
    get_policy,
    recommended_policy,
)
from keras_trainer.jit.tiering.policy_eval import compare_policies, family_folds
from keras_trainer.jit.tiering.workload import Workload, replay

from .test_workload import record

pytestmark = pytest.mark.one_backend

STRATEGIES = ["O0", "O1", "O3"]


def toy_dataset(n=24, seed=0) -> dict:
    """Functions where O1 is about 2x faster than O0, and O3 4x on even functions but
    only 1.5x on odd ones (no constant speed-up fits both); 4 families."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        o0 = 1e-5 * rng.uniform(0.5, 2.0)
        o3 = 4.0 if i % 2 == 0 else 1.5
        speed = {"O0": 1.0, "O1": 2.0 * rng.uniform(0.9, 1.1), "O3": o3 * rng.uniform(0.9, 1.1)}
        call_s = {k: o0 / v for k, v in speed.items()}
        compile_s = {"O0": 0.005, "O1": 0.012, "O3": 0.02}
        samples.append(record(call_s, compile_s, family=f"fam{i % 4}"))
    return {"strategies": STRATEGIES, "samples": samples}


def test_tiered_fit_finds_the_best_threshold_and_level_in_hindsight():
    workload = Workload.from_dataset(toy_dataset(), calls="loguniform:1:100000", seed=1)
    fitted = TieredPolicy().fit(workload)
    best = replay(workload, fitted).total_s
    for power in range(0, 18):
        for level in STRATEGIES[1:]:
            other = replay(workload, TieredPolicy(2.0**power, level)).total_s
            assert best <= other + 1e-12


def test_cost_benefit_constants_are_geometric_means_over_the_training_functions():
    data = {
        "strategies": ["O0", "O3"],
        "samples": [
            record({"O0": 1.0, "O3": 0.5}, {"O0": 1.0, "O3": 2.0}),
            record({"O0": 1.0, "O3": 0.125}, {"O0": 1.0, "O3": 8.0}),
        ],
    }
    speedup, ratio = constant_estimates(Workload.from_dataset(data, calls="fixed:1"))
    assert math.isclose(speedup["O3"], 4.0) and math.isclose(ratio["O3"], 4.0)
    assert CostBenefitPolicy().fit(Workload.from_dataset(data, calls="fixed:1")).speedup == speedup


def test_recommended_starts_cold_code_on_the_level_that_pays_on_the_first_call():
    # One call each: compiling O0 then anything else never pays; O1's compile + call is
    # cheaper than O3's and than O0's (O0 compiles in 5 ms but its call costs 50 ms).
    data = toy_dataset()
    for sample in data["samples"]:
        sample["timings_ns"] = {"O0": 5e7, "O1": 1e7, "O3": 9e6}
    workload = Workload.from_dataset(data, calls="fixed:1")
    policy = recommended_policy().fit(workload)
    assert policy.first == "O1"
    assert replay(workload, policy).total_s == pytest.approx(
        replay(workload, get_policy("always:O1")).total_s
    )


def test_recommended_beats_cost_benefit_and_fixed_strategies_on_hot_code():
    workload = Workload.from_dataset(toy_dataset(40), calls="runtime:10:100", seed=0)
    scores = compare_policies(
        workload, ["always:O3", "tiered", "cost_benefit", "recommended"], folds=2
    )["policies"]
    assert scores["recommended"]["regret"] < 1.01
    assert scores["recommended"]["total_s"] < min(
        scores[name]["total_s"] for name in ("always:O3", "tiered", "cost_benefit")
    )


def test_family_folds_keep_families_whole():
    workload = Workload.from_dataset(toy_dataset(), calls="fixed:1")
    folds = family_folds(workload, folds=2, seed=0)
    families = np.array(workload.families)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(workload)))
    assert not set(families[folds[0]]) & set(families[folds[1]])
    assert len(family_folds(workload)) == 4  # leave-family-out


def test_unknown_policies_and_unfitted_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="unknown policy 'fastest'"):
        get_policy("fastest")
    with pytest.raises(ConfigError, match="needs a cost model"):
        get_policy("cost_benefit+model")
    with pytest.raises(ConfigError, match="fit"):
        TieredPolicy().controller({}, STRATEGIES)
    with pytest.raises(ConfigError, match="no strategy 'O2'"):
        AlwaysPolicy("O2").controller({}, STRATEGIES)


def parse(argv):
    parser = argparse.ArgumentParser(prog="keras-trainer")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_jit_replay_prints_oracle_and_regret_per_policy_as_json(tmp_path, capsys):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"format": "keras_trainer.jit_dataset/1", **toy_dataset()}))
    args = parse(
        ["jit-replay", "--data", str(path), "--calls", "fixed:1000", "--folds", "2", "--json"]
    )
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    oracle = Workload.from_dataset(str(path), calls="fixed:1000").oracle().total_s
    assert result["oracle_s"] == pytest.approx(oracle)
    assert set(result["policies"]) >= {"always:O0", "always:O3", "tiered", "recommended"}
    for row in result["policies"].values():
        assert row["regret"] == pytest.approx(row["total_s"] / oracle) and row["regret"] >= 1
