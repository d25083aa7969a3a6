"""Workloads (call-count distributions), replay arithmetic and the oracle."""

import math

import numpy as np
import pytest

from keras_trainer.errors import ConfigError, DataError
from keras_trainer.jit.tiering.policies import (
    AlwaysPolicy,
    AutotunePolicy,
    CostBenefitPolicy,
    TieredPolicy,
)
from keras_trainer.jit.tiering.workload import Workload, check_calls_spec, draw_calls, replay

pytestmark = pytest.mark.one_backend


def record(call_s: dict, compile_s: dict, family: str = "f", passes=None) -> dict:
    """A dataset record with times per call (s) and compile times (s) by strategy."""
    out = {
        "name": family,
        "ir": "",
        "entry": "entry",
        "runtime": {},
        "label": 0,
        "family": family,
        "timings_ns": {k: v * 1e9 for k, v in call_s.items()},
        "compile_times_ms": {k: v * 1e3 for k, v in compile_s.items()},
    }
    if passes is not None:
        out["pass_timings_ns"] = [{k: v * 1e9 for k, v in p.items()} for p in passes]
    return out


def dataset(*records) -> dict:
    return {"strategies": ["O0", "O3"], "samples": list(records)}


# One function: O0 runs 1 s a call and compiles in 1 s; O3 runs 0.25 s and compiles in 4 s.
HAND = record({"O0": 1.0, "O3": 0.25}, {"O0": 1.0, "O3": 4.0})
SPEEDUP, RATIO = {"O0": 1.0, "O3": 4.0}, {"O0": 1.0, "O3": 4.0}


def hand_workload(calls=10) -> Workload:
    return Workload.from_dataset(dataset(HAND), calls=[calls])


def test_runtime_spec_sizes_each_function_by_its_total_o0_time():
    o0 = np.array([1e-6, 1e-3, 0.5])
    calls = draw_calls("runtime:0.01:100", np.repeat(o0, 200), seed=3)
    totals = calls * np.repeat(o0, 200)
    assert totals.min() >= 0.01 and (totals - np.repeat(o0, 200)).max() <= 100
    assert calls[:200].mean() > 100 * calls[200:400].mean()  # faster kernels get more calls


def test_loguniform_zipf_and_fixed_call_counts_stay_in_their_ranges():
    o0 = np.ones(2000)
    log = draw_calls("loguniform:1:10000", o0, seed=0)
    assert log.min() >= 1 and log.max() <= 10000
    assert 0.2 < np.mean(log <= 100) < 0.7  # half the mass below the geometric middle
    zipf = draw_calls("zipf:2:50", o0, seed=0)
    assert zipf.min() == 1 and zipf.max() <= 50 and 0.5 < np.mean(zipf == 1) < 0.7
    assert (draw_calls("fixed:7", o0) == 7).all()


def test_call_counts_repeat_with_the_seed_and_change_without_it():
    o0 = np.full(50, 1e-5)
    first = draw_calls("runtime:0.001:10", o0, seed=1)
    assert (first == draw_calls("runtime:0.001:10", o0, seed=1)).all()
    assert (first != draw_calls("runtime:0.001:10", o0, seed=2)).any()


@pytest.mark.parametrize(
    "spec", ["runtime:1", "gamma:1:2", "runtime:10:1", "zipf:0.5:10", "fixed:0", "fixed:x"]
)
def test_a_malformed_calls_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError, match="--calls"):
        check_calls_spec(spec)


def test_a_record_without_compile_times_is_named():
    bad = record({"O0": 1.0, "O3": 0.5}, {"O0": 1.0, "O3": 2.0})
    del bad["compile_times_ms"]["O3"]
    with pytest.raises(DataError, match=r"samples\[1\]\['compile_times_ms'\].*'O3'"):
        Workload.from_dataset(dataset(HAND, bad), calls="fixed:1")


def test_oracle_compiles_each_function_once_with_its_cheapest_total():
    result = Workload.from_dataset(dataset(HAND, HAND), calls=[2, 10]).oracle()
    # 2 calls: O0 1 + 2 = 3 beats O3 4 + 0.5; 10 calls: O3 4 + 2.5 = 6.5 beats O0 11.
    assert result.totals_s.tolist() == [3.0, 6.5]
    assert [d[0][2] for d in result.decisions] == ["O0", "O3"]


def test_replay_of_always_pays_one_compile_and_every_call():
    assert replay(hand_workload(), AlwaysPolicy("O0")).total_s == 11.0
    assert replay(hand_workload(), AlwaysPolicy("O3")).total_s == 6.5


def test_replay_of_tiered_runs_k_calls_at_o0_then_the_level():
    result = replay(hand_workload(), TieredPolicy(threshold=2, level="O3"))
    assert result.total_s == 1 + 2 * 1.0 + 4 + 8 * 0.25
    assert result.decisions[0] == [(0, "compile", "O0"), (2, "compile", "O3")]


def test_cost_benefit_recompiles_when_the_benefit_of_future_equals_past_beats_compiling():
    # Checkpoints at 1, 2, 4, 8 calls: staying costs `calls` s more, O3 costs
    # 4 + calls / 4; it wins first at 8 calls (8 > 6).
    result = replay(hand_workload(), CostBenefitPolicy(SPEEDUP, RATIO))
    assert result.decisions[0] == [(0, "compile", "O0"), (8, "compile", "O3")]
    assert result.total_s == 1 + 8 * 1.0 + 4 + 2 * 0.25
    assert result.decide_s >= 0


def test_background_replay_runs_calls_at_the_current_build_while_the_next_one_compiles():
    # O3's 4 s compile runs on the other thread from call 2: calls 3-6 run at O0
    # meanwhile, then the last 4 at O3; the compile is not on the caller's time.
    result = replay(hand_workload(), TieredPolicy(threshold=2, level="O3"), background=True)
    assert result.decisions[0] == [(0, "compile", "O0"), (2, "compile", "O3"), (6, "switch", "O3")]
    assert result.total_s == 1 + 6 * 1.0 + 4 * 0.25
    assert result.background_s == 4.0
    assert replay(hand_workload(), TieredPolicy(threshold=2, level="O3")).background_s == 0.0


def test_background_cost_benefit_starts_a_build_only_if_it_is_ready_before_the_expected_end():
    # Checkpoints 1, 2, 4 expect 1, 2, 4 s more: a 4 s compile would not be ready in
    # time. At 8 calls: 4 s at O0 while compiling, then 4 calls at O3 (5 < 8).
    result = replay(hand_workload(20), CostBenefitPolicy(SPEEDUP, RATIO), background=True)
    assert result.decisions[0] == [(0, "compile", "O0"), (8, "compile", "O3"), (12, "switch", "O3")]
    assert result.total_s == 1 + 12 * 1.0 + 8 * 0.25


def test_cost_benefit_assumes_a_level_no_faster_than_a_measured_level_expected_to_beat_it():
    from keras_trainer.jit.tiering.policies import _CostBenefit
    from keras_trainer.jit.tiering.workload import FunctionState

    speedup = {"O0": 1.0, "O1": 2.0, "O2": 2.5, "O3": 3.0}
    ratio = {"O0": 1.0, "O1": 2.0, "O2": 3.0, "O3": 3.0}
    state = FunctionState(calls=10**6, level="O1", measured_call_s={"O1": 1e-6})
    state.compiled_s = {"O0": 1e-3, "O1": 2e-3}
    # By the constants alone O3 and O2 would each pay on a million more calls...
    assert _CostBenefit("O0", speedup, ratio).decide(state) == ("compile", ["O3"])
    # ...but O3 was built and ran no faster than O1: O2, expected slower than O3, is
    # not tried (nor O3 again).
    state.compiled_s["O3"], state.measured_call_s["O3"] = 3e-3, 1e-6
    assert _CostBenefit("O0", speedup, ratio).decide(state) is None


def test_autotune_compiles_candidates_once_past_time_exceeds_the_budget_and_keeps_the_fastest():
    # Past time reaches 1 x the O3 compile cost (4 s) at the 4-call checkpoint.
    policy = AutotunePolicy(budget=1.0, speedup=SPEEDUP, ratio=RATIO)
    result = replay(hand_workload(), policy)
    assert result.decisions[0] == [
        (0, "compile", "O0"),
        (4, "compile", "O3"),
        (5, "time", "O3"),
        (5, "switch", "O3"),
    ]
    assert result.total_s == 1 + 4 * 1.0 + 4 + 0.25 + 5 * 0.25


def test_autotune_judges_a_build_by_what_one_call_measured():
    # Every measuring pass saw O3 slower than O0 (noise): the tuner keeps O0.
    noisy = record(
        {"O0": 1.0, "O3": 0.25}, {"O0": 1.0, "O3": 4.0}, passes=[{"O0": 1.0, "O3": 2.0}] * 3
    )
    workload = Workload.from_dataset(dataset(noisy), calls=[10])
    result = replay(workload, AutotunePolicy(budget=1.0, speedup=SPEEDUP, ratio=RATIO))
    assert result.total_s == 1 + 4 * 1.0 + 4 + 0.25 + 5 * 1.0
    assert result.decisions[0][-1] == (5, "time", "O3")


def test_a_workload_takes_rows_and_new_call_counts():
    workload = Workload.from_dataset(dataset(HAND, HAND), calls=[2, 10])
    assert workload.take([1]).calls.tolist() == [10]
    assert workload.with_calls("fixed:3").calls.tolist() == [3, 3]
    assert math.isclose(workload.oracle().total_s, 9.5)
