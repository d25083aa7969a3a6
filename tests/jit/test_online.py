"""Learning from its own measurements: AdaptiveJIT's records, update() and run()."""

import json
import math

import numpy as np
import pytest

from keras_trainer.errors import ConfigError
from keras_trainer.jit.data.collect import load_dataset, read_dataset
from keras_trainer.jit.model.cost_model import COST_MODEL_CONFIG
from keras_trainer.jit.runtime.adaptive import AdaptiveJIT
from keras_trainer.jit.tiering.policies import TieredPolicy, policy_from_spec, policy_spec

from .snippets import NESTED_LOOP, ONE_LOOP, STRAIGHT

EXPECTED = sum(range(300))  # ONE_LOOP(300) sums 0..299


@pytest.mark.one_backend
def test_recorded_measurements_are_dataset_records_the_loader_reads_back(tmp_path):
    path = tmp_path / "measured.json"
    # Recompiling on the calling thread: the O2 build is ready for the third call.
    jit = AdaptiveJIT(None, trusted=True, record_to=path, background_compile=False)
    policy = TieredPolicy(threshold=2, level="O2")
    outcome = jit.run(ONE_LOOP, "entry", [300], calls=5, policy=policy)
    assert outcome["result"] == EXPECTED and outcome["strategy"] == "O2"
    jit.run(STRAIGHT, "entry", [3], calls=1, policy="always:O1")
    data = read_dataset(path)
    assert [s["entry"] for s in data["samples"]] == ["entry", "entry"]
    loop = data["samples"][0]
    assert loop["ir"] == ONE_LOOP and loop["args"] == [300]
    assert set(loop["timings_ns"]) == {"O0", "O2"} == set(loop["compile_times_ms"])
    assert loop["runtime"]["exec_time_ns"] == loop["timings_ns"]["O0"] > 0
    assert loop["measured_strategies"] == ["O0", "O2"]
    assert data["strategies"][loop["label"]] == min(loop["timings_ns"], key=loop["timings_ns"].get)
    ir_samples, runtime, labels = load_dataset(path)
    assert ir_samples == [ONE_LOOP, STRAIGHT] and len(runtime) == len(labels) == 2


@pytest.mark.one_backend
def test_a_new_jit_adds_to_an_existing_record_file(tmp_path):
    path = tmp_path / "measured.json.gz"
    AdaptiveJIT(None, trusted=True, record_to=path).run(ONE_LOOP, "entry", [300], 1, "always:O1")
    again = AdaptiveJIT(None, trusted=True, record_to=path)
    again.run(ONE_LOOP, "entry", [300], 1, "always:O3")
    again.run(NESTED_LOOP, "entry", [4], 1, "always:O3")
    samples = read_dataset(path)["samples"]
    assert len(samples) == 2 and set(samples[0]["timings_ns"]) == {"O0", "O1", "O3"}


@pytest.mark.one_backend
def test_a_sandboxed_run_builds_and_calls_in_the_worker_with_the_same_decisions():
    policy = TieredPolicy(threshold=2, level="O2")
    assert policy_from_spec(policy_spec(policy)).threshold == 2
    jit = AdaptiveJIT(None, background_compile=False)  # O2 ready for the third call
    outcome = jit.run(ONE_LOOP, "entry", [300], calls=4, policy=policy)
    assert outcome["result"] == EXPECTED and outcome["calls"] == 4 and outcome["wall_s"] > 0
    assert outcome["decisions"] == [[0, "compile", "O0"], [2, "compile", "O2"]]


def test_update_without_a_cost_model_says_what_it_needs(tmp_path):
    jit = AdaptiveJIT(None, trusted=True, record_to=tmp_path / "m.json")
    with pytest.raises(ConfigError, match="fine-tunes a cost model"):
        jit.update()


def _untrained_cost_model(path):
    """A cost model with random weights, and measured base data without ONE_LOOP."""
    from keras_trainer.jit.model.cost_model import _CostModelTrainer, output_names

    strategies = ["O0", "O1", "O2", "O3", "O3-scalar"]
    samples = []
    for ir in (NESTED_LOOP, STRAIGHT):
        runtime = {"exec_time_ns": 1000.0, "compile_time_ms": 1.0, "code_size_bytes": 200}
        timings = {s: 1000.0 if s == "O0" else 500.0 for s in strategies}
        compiles = {s: 1.0 if s == "O0" else 3.0 for s in strategies}
        samples.append(
            {"ir": ir, "runtime": runtime, "timings_ns": timings, "compile_times_ms": compiles}
        )
    trainer = _CostModelTrainer(json.load(open(COST_MODEL_CONFIG)))
    trainer.strategies, trainer.class_names = strategies, output_names(strategies)
    trainer.fit_normalizer(
        trainer.extract_features([s["ir"] for s in samples], [s["runtime"] for s in samples])
    )
    trainer.create_model(12)
    trainer.save_model(path)
    return {"format": "keras_trainer.jit_dataset/1", "strategies": strategies, "samples": samples}


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    path = tmp_path_factory.mktemp("cost") / "cost.keras"
    return path, _untrained_cost_model(path)


def test_unmeasured_strategies_keep_the_prediction_or_shift_by_the_measured_error(untrained):
    from keras_trainer.jit.model.cost_model import CostModel, measured_targets

    model = CostModel.load(untrained[0])
    record = dict(untrained[1]["samples"][0], timings_ns={"O0": 900.0, "O3": 300.0})
    record["compile_times_ms"] = {"O0": 1.0}
    raw = model.features([record])
    predicted = model.trainer.predict(raw)[0]
    kept = measured_targets(model, [record], raw)[0]
    o1, o3 = model.strategies.index("O1") - 1, model.strategies.index("O3") - 1
    assert kept[o3] == pytest.approx(math.log(3.0)) and kept[o1] == pytest.approx(predicted[o1])
    assert np.allclose(kept[4:], predicted[4:])  # no compile time but O0's: all predicted
    shifted = measured_targets(model, [record], raw, unmeasured="shifted")[0]
    assert shifted[o1] == pytest.approx(predicted[o1] + math.log(3.0) - predicted[o3], abs=1e-5)


def test_pooled_targets_move_every_record_and_strategy_by_the_workloads_error(untrained):
    from keras_trainer.jit.model.cost_model import CostModel, measured_targets

    model = CostModel.load(untrained[0])
    timed = dict(untrained[1]["samples"][0], timings_ns={"O0": 900.0, "O3": 300.0})
    timed["compile_times_ms"] = {"O0": 1.0}
    untimed = dict(untrained[1]["samples"][1], timings_ns={"O0": 900.0})
    untimed["compile_times_ms"] = {"O0": 1.0}
    raw = model.features([timed, untimed])
    predicted = model.trainer.predict(raw)
    o3 = model.strategies.index("O3") - 1
    error = math.log(3.0) - predicted[0, o3]  # the one measured output's error
    pooled = measured_targets(model, [timed, untimed], raw, unmeasured="pooled")
    assert pooled[0, o3] == pytest.approx(math.log(3.0))
    # One measurement: the workload's error is that one; every unmeasured speed-up of
    # both records moves by it (the record without timings too), compile ratios do not.
    others = [j for j in range(4) if j != o3]
    assert np.allclose(pooled[0, others], predicted[0, others] + error, atol=1e-5)
    assert np.allclose(pooled[1, :4], predicted[1, :4] + error, atol=1e-5)
    assert np.allclose(pooled[:, 4:], predicted[:, 4:], atol=1e-6)
    kept = measured_targets(model, [timed, untimed], raw)
    assert np.allclose(kept[1], predicted[1], atol=1e-6)  # "prediction": not pulled anywhere
    with pytest.raises(ConfigError, match="pooled"):
        measured_targets(model, [timed], raw[:1], unmeasured="guess")


def test_update_moves_predictions_toward_the_recorded_measurements(untrained, tmp_path):
    from keras_trainer.export.store import ModelStore

    path, base = untrained
    jit = AdaptiveJIT(
        path,
        trusted=True,
        record_to=tmp_path / "measured.json",
        update_every=1,
        base_data=base,
        store=tmp_path / "store",
        update_epochs=20,
    )
    before = jit.cost_model
    # A long loop: O3's closed form makes the measured speed-up large (log ~4), far from
    # what random weights predict, so moving toward it is the update's doing.
    jit.run(ONE_LOOP, "entry", [100_000], calls=20, policy="always:O3")  # 1 record: update()
    after = jit.cost_model
    assert after is not before and len(ModelStore(tmp_path / "store").versions()) == 1
    record = jit.log.samples[0]
    timed = record["timings_ns"]
    measured = math.log(timed["O0"] / timed["O3"])
    j = before.strategies.index("O3")
    old = math.log(before.predict_samples([record])[0][0, j])
    new = math.log(after.predict_samples([record])[0][0, j])
    assert abs(new - measured) < abs(old - measured)
    assert np.isfinite(new)


def _runnable_dataset(path):
    """Three modules with args and (made-up but complete) times of every strategy."""
    strategies = ["O0", "O1", "O2", "O3", "O3-scalar"]
    samples = []
    for ir, args in ((ONE_LOOP, [300]), (NESTED_LOOP, [6]), (STRAIGHT, [3])):
        samples.append(
            {
                "ir": ir,
                "args": args,
                "runtime": {"exec_time_ns": 2000.0, "compile_time_ms": 1.0, "code_size_bytes": 90},
                "timings_ns": {s: 2000.0 if s == "O0" else 1000.0 for s in strategies},
                "compile_times_ms": {s: 1.0 if s == "O0" else 2.0 for s in strategies},
            }
        )
    path.write_text(json.dumps(samples))
    return str(path)


@pytest.mark.one_backend
def test_jit_bench_times_each_policy_on_real_kernels(tmp_path, capsys):
    import argparse

    from keras_trainer.jit.cli import register

    parser = argparse.ArgumentParser(prog="keras-trainer")
    register(parser.add_subparsers(dest="command", required=True))
    data = _runnable_dataset(tmp_path / "kernels.json")
    argv = ["jit-bench", "--data", data, "--kernels", "2", "--calls", "fixed:5", "--repeats", "1"]
    args = parser.parse_args(argv + ["--json", "--record-to", str(tmp_path / "measured.json")])
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kernels"] == 2 and report["total_calls"] == 10 and report["sandboxed"]
    assert set(report["policies"]) == {"recommended", "always:O3", "tiered"}
    for row in report["policies"].values():
        assert row["wall_s"] > 0 and row["ratio_to_always_O3"] > 0
    assert report["policies"]["always:O3"]["ratio_to_always_O3"] == 1.0
    assert len(read_dataset(tmp_path / "measured.json")["samples"]) == 2


@pytest.mark.one_backend
def test_replay_records_what_the_policy_measured():
    from keras_trainer.jit.tiering.workload import Workload, measured_records, replay

    strategies = ["O0", "O1", "O2"]
    record = {
        "ir": ONE_LOOP,
        "runtime": {"exec_time_ns": 4000.0, "compile_time_ms": 1.0, "code_size_bytes": 90},
        "timings_ns": {"O0": 4000.0, "O1": 3000.0, "O2": 1000.0},
        "compile_times_ms": {"O0": 1.0, "O1": 2.0, "O2": 5.0},
        "family": "loops",
    }
    dataset = {"strategies": strategies, "samples": [record]}
    workload = Workload.from_dataset(dataset, "fixed:10")
    result = replay(workload, TieredPolicy(threshold=2, level="O2"))
    (measured,) = measured_records(workload, result)
    assert measured["timings_ns"] == pytest.approx({"O0": 4000.0, "O2": 1000.0})
    assert measured["compile_times_ms"] == pytest.approx({"O0": 1.0, "O2": 5.0})
    assert measured["family"] == "loops" and measured["ir"] == ONE_LOOP


class _FixedCostModel:
    """A stand-in cost model: the same predicted speed-ups and compile ratios everywhere."""

    strategies = ["O0", "O1", "O2"]

    def predict_samples(self, samples):
        speedup = np.tile([1.0, 1.1, 1.2], (len(samples), 1))
        ratio = np.tile([1.0, 2.0, 5.0], (len(samples), 1))
        return speedup, ratio


@pytest.mark.one_backend
def test_exploration_times_every_strategy_and_pays_for_it_in_the_replay():
    from keras_trainer.jit.tiering.policies import ModelCostBenefitPolicy
    from keras_trainer.jit.tiering.workload import Workload, measured_records, replay

    record = {
        "ir": ONE_LOOP,
        "runtime": {"exec_time_ns": 4000.0, "compile_time_ms": 1.0, "code_size_bytes": 90},
        "timings_ns": {"O0": 4000.0, "O1": 3000.0, "O2": 1000.0},
        "compile_times_ms": {"O0": 1.0, "O1": 2.0, "O2": 5.0},
    }
    dataset = {"strategies": _FixedCostModel.strategies, "samples": [record]}
    workload = Workload.from_dataset(dataset, "fixed:10000")
    # Without exploration (by hand): the cost-benefit rule first switches at the checkpoint
    # of 8,192 calls, to O1 (2 ms + 8,192 x 4 us / 1.1 beats staying and O2); O2 is never
    # measured, so the JIT's record says nothing about it.
    frozen = replay(workload, ModelCostBenefitPolicy(_FixedCostModel()))
    assert frozen.total_s == pytest.approx(1e-3 + 8192 * 4e-6 + 2e-3 + 1808 * 3e-6)
    (partial,) = measured_records(workload, frozen)
    assert sorted(partial["timings_ns"]) == ["O0", "O1"]
    # Exploring with budget 1: at 2,048 calls the past 8.192 ms exceed 1 x the predicted
    # 7 ms of building O1 and O2; both are built (paid), each timed on one real call
    # (paid at its own speed) and the fastest, O2, runs the remaining 7,950 calls.
    explored = replay(workload, ModelCostBenefitPolicy(_FixedCostModel(), explore=1.0))
    assert [d[1:] for d in explored.decisions[0] if d[1] == "time"] == [
        ("time", "O1"),
        ("time", "O2"),
    ]
    assert explored.total_s == pytest.approx(
        1e-3 + 2048 * 4e-6 + (2e-3 + 5e-3) + (3e-6 + 1e-6) + 7950 * 1e-6
    )
    (complete,) = measured_records(workload, explored)
    assert complete["timings_ns"] == pytest.approx({"O0": 4000.0, "O1": 3000.0, "O2": 1000.0})
    assert complete["compile_times_ms"] == pytest.approx({"O0": 1.0, "O1": 2.0, "O2": 5.0})
    # explore=None or inf is off; a budget must be positive.
    off = ModelCostBenefitPolicy(_FixedCostModel(), explore=math.inf)
    assert off.explore is None and replay(workload, off).total_s == frozen.total_s
    with pytest.raises(ConfigError, match="explore"):
        ModelCostBenefitPolicy(_FixedCostModel(), explore=0)


def test_a_recording_jit_explores_so_its_records_measure_every_strategy(untrained, tmp_path):
    path, _ = untrained
    assert AdaptiveJIT(path, trusted=True).explore_budget is None
    recording = AdaptiveJIT(path, trusted=True, record_to=tmp_path / "default.json")
    assert recording.explore_budget == 50.0  # policies.EXPLORE_BUDGET: on when recording
    assert recording.update_targets == "pooled"  # and update() uses the pooled targets
    with pytest.raises(ConfigError, match="explore"):
        AdaptiveJIT(path, trusted=True, explore_budget=-1.0)
    # A tiny budget: explored at the first checkpoint, whatever the random weights predict
    # (compiled on the calling thread, so the builds are ready for the next calls).
    jit = AdaptiveJIT(
        path,
        trusted=True,
        record_to=tmp_path / "m.json",
        explore_budget=1e-9,
        background_compile=False,
    )
    outcome = jit.run(ONE_LOOP, "entry", [300], calls=100, policy="cost_benefit+model")
    assert outcome["result"] == EXPECTED
    assert {d[2] for d in outcome["decisions"] if d[1] == "time"} == set(jit.class_names[1:])
    (record,) = jit.log.samples  # what update() fine-tunes on
    assert sorted(record["timings_ns"]) == sorted(jit.class_names)
    assert sorted(record["compile_times_ms"]) == sorted(jit.class_names)
    # Switched off, the same JIT times nothing it did not choose.
    off = AdaptiveJIT(
        path,
        trusted=True,
        record_to=tmp_path / "o.json",
        explore_budget=math.inf,
        background_compile=False,
    )
    outcome = off.run(ONE_LOOP, "entry", [300], calls=100, policy="cost_benefit+model")
    assert not [d for d in outcome["decisions"] if d[1] == "time"]
    assert len(off.log.samples[0]["timings_ns"]) < len(off.class_names)
