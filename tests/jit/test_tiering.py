"""Live tiering: a policy's controller recompiling a function while it runs."""

import time

import pytest

from keras_trainer.errors import ConfigError
from keras_trainer.jit.runtime.tiering import AUTOTUNE_TIMED_CALLS, compile_tiered
from keras_trainer.jit.tiering.policies import AutotunePolicy, TieredPolicy, shipped_policy

from .snippets import ONE_LOOP

pytestmark = pytest.mark.one_backend

EXPECTED = sum(range(200))  # ONE_LOOP(200) sums 0..199


def test_a_tiered_function_recompiles_after_k_real_calls_and_keeps_its_result():
    fn = compile_tiered(ONE_LOOP, "entry", TieredPolicy(threshold=3, level="O2"), trusted=True)
    results = [fn(200) for _ in range(6)]
    assert results == [EXPECTED] * 6
    assert fn.decisions == [(0, "compile", "O0"), (3, "compile", "O2")]
    assert fn.strategy == "O2" and fn.state.calls == 6 and fn.state.level_calls == 3
    assert set(fn.state.compiled_s) == {"O0", "O2"} and fn.state.run_s > 0


def test_live_autotuning_times_each_candidate_on_warm_real_calls_and_keeps_the_fastest():
    unit = {"O0": 1.0, "O1": 1.0, "O2": 1.0}
    policy = AutotunePolicy(budget=0.0, candidates=["O1", "O2"], speedup=unit, ratio=unit)
    fn = compile_tiered(ONE_LOOP, "entry", policy, trusted=True)
    per_candidate = 1 + AUTOTUNE_TIMED_CALLS  # a warm-up call, then the timed ones
    calls = 1 + 2 * per_candidate
    assert [fn(200) for _ in range(calls)] == [EXPECTED] * calls
    timed = [d for d in fn.decisions if d[1] == "time"]
    assert [d[2] for d in timed] == ["O1", "O2"]
    assert [d[0] for d in timed] == [1 + per_candidate, 1 + 2 * per_candidate]
    measured = fn.state.measured_call_s
    assert fn.strategy == min(("O0", "O1", "O2"), key=measured.get)


def test_the_shipped_recommended_policy_decides_without_training_data():
    fn = compile_tiered(ONE_LOOP, "entry", "recommended", trusted=True)
    assert fn(200) == EXPECTED and fn.decisions[0] == (0, "compile", "O1")
    with pytest.raises(ConfigError, match="fit it on a workload"):
        shipped_policy("tiered")


def test_untrusted_ir_is_refused_by_live_tiering():
    with pytest.raises(ConfigError, match="trusted=True"):
        compile_tiered(ONE_LOOP, "entry", "recommended")


def test_adaptive_jit_hands_out_tiered_functions_with_the_recommended_default(tmp_path):
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT

    from .test_adaptive import save_tiny_model

    path = save_tiny_model(tmp_path / "m.keras", favourite=2)
    jit = AdaptiveJIT(path, trusted=True, background_compile=False)
    fn = jit.compile_tiered(ONE_LOOP, "entry")
    assert [fn(200) for _ in range(3)] == [EXPECTED] * 3
    assert fn.decisions[0] == (0, "compile", "O1")  # the shipped recommended first build
    # Recompiling on a background thread, the cheapest first build pays best.
    fn = AdaptiveJIT(path, trusted=True, background_compile=True).compile_tiered(ONE_LOOP)
    assert fn(200) == EXPECTED and fn.decisions[0] == (0, "compile", "O0")
    assert fn.state.background
    with pytest.raises(ConfigError, match="trusted=True"):
        AdaptiveJIT(jit.model_path).compile_tiered(ONE_LOOP, "entry")


def test_a_batched_run_makes_the_decisions_of_single_calls():
    unit = {"O0": 1.0, "O1": 1.0, "O2": 1.0}
    for make in (
        lambda: TieredPolicy(threshold=3, level="O2"),
        lambda: AutotunePolicy(budget=0.0, candidates=["O1", "O2"], speedup=unit, ratio=unit),
    ):
        single = compile_tiered(ONE_LOOP, "entry", make(), trusted=True)
        results = [single(200) for _ in range(20)]
        batched = compile_tiered(ONE_LOOP, "entry", make(), trusted=True)
        assert batched.run([200], 20) == results[-1] == EXPECTED
        kept = [d for d in batched.decisions if d[1] != "switch"]  # which is fastest: timing
        assert kept == [d for d in single.decisions if d[1] != "switch"]
        assert batched.state.calls == 20 and batched.state.run_s > 0


def test_a_background_build_keeps_the_calls_going_until_it_is_ready():
    from keras_trainer.jit.runtime.tiering import TieredFunction

    def build(name):
        if name == "O3":
            time.sleep(0.2)  # the compile the calls must not wait for
        return (lambda x: x + 1), 0.2 if name == "O3" else 0.0

    controller = TieredPolicy(threshold=3, level="O3").controller({}, ["O0", "O3"])
    fn = TieredFunction(build, controller, background=True)
    started = time.perf_counter()
    results = []
    while fn.strategy != "O3" and time.perf_counter() - started < 10:
        results.append(fn(len(results)))
        time.sleep(0.001)
    assert results == [i + 1 for i in range(len(results))]
    compiled, switched = fn.decisions[1:]
    assert compiled == (3, "compile", "O3") and switched[1:] == ("switch", "O3")
    assert switched[0] > 3 + 50  # 0.2 s of compiling at about 1 ms a call
    assert fn.state.compiled_s["O3"] == 0.2
