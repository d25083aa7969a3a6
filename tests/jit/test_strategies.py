"""The five strategies and the MCJIT engine."""

import pytest

from keras_trainer.errors import ConfigError, DataError
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.llvm_ir.ir_analysis import analyze_module
from keras_trainer.jit.runtime.engine import compile_ir
from keras_trainer.jit.strategies import STRATEGIES, STRATEGY_NAMES, get_strategy, optimize

from .snippets import DIAMOND, ONE_LOOP

pytestmark = pytest.mark.one_backend  # no Keras code runs here

FLOAT_ENTRY = """define double @scale(double %x, i32 %k) {
entry:
  %kf = sitofp i32 %k to double
  %y = fmul double %x, %kf
  ret double %y
}
"""


def test_five_strategies_in_documented_order():
    assert STRATEGY_NAMES == ["O0", "O1", "O2", "O3", "O3-scalar"]
    assert len({s.name for s in STRATEGIES}) == 5


def test_get_strategy_by_name_and_index():
    assert get_strategy("O3").speed_level == 3
    assert get_strategy(4).name == "O3-scalar"
    assert get_strategy(4).loop_vectorization is False


def test_unknown_strategy_raises_configerror():
    with pytest.raises(ConfigError, match="unknown strategy 'O9'"):
        get_strategy("O9")
    with pytest.raises(ConfigError, match="out of range"):
        get_strategy(5)


def test_o2_removes_allocas_that_o0_keeps():
    o0 = analyze_module(optimize(parse_ir(DIAMOND), "O0"))
    o2 = analyze_module(optimize(parse_ir(DIAMOND), "O2"))
    assert o0["allocas"] == 1
    assert o2["allocas"] == 0


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_computes_the_same_sum(strategy):
    function = compile_ir(ONE_LOOP, "entry", strategy)
    assert function(100) == sum(range(100))
    assert function.strategy == strategy
    assert function.compile_time_ms > 0


def test_code_size_is_measured_when_asked():
    function = compile_ir(ONE_LOOP, "entry", "O0", measure_code_size=True)
    assert function.code_size_bytes > 0


def test_float_and_i32_parameters_are_supported():
    function = compile_ir(FLOAT_ENTRY, "scale", "O1")
    assert function(1.5, 4) == 6.0


def test_wrong_argument_count_raises_dataerror():
    function = compile_ir(ONE_LOOP, "entry", "O0")
    with pytest.raises(DataError, match="takes 1 argument"):
        function(1, 2)


def test_unsupported_parameter_type_raises_dataerror():
    text = "define i64 @entry(ptr %p) {\nentry:\n  ret i64 0\n}\n"
    with pytest.raises(DataError, match="parameter 0 type ptr is not supported"):
        compile_ir(text, "entry", "O0")
