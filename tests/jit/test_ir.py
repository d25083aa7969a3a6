"""parse_ir and analyze_module on IR whose structure is known exactly."""

import pytest

from keras_trainer.errors import DataError, IRParseError
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.llvm_ir.ir_analysis import analyze_module

from .snippets import DIAMOND, NESTED_LOOP, ONE_LOOP, SEQUENTIAL_LOOPS, STRAIGHT, SWITCH

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def stats(text):
    return analyze_module(parse_ir(text))


def test_straight_line_function_has_one_block_no_edges_no_loops():
    s = stats(STRAIGHT)
    assert (s["functions"], s["basic_blocks"], s["instructions"]) == (1, 1, 3)
    assert (s["cfg_edges"], s["loops"], s["max_loop_depth"]) == (0, 0, 0)
    assert s["int_arith"] == 2 and s["returns"] == 1


def test_one_loop_has_loop_count_one_and_three_blocks():
    s = stats(ONE_LOOP)
    assert s["basic_blocks"] == 3
    assert s["cfg_edges"] == 3
    assert s["loops"] == 1 and s["max_loop_depth"] == 1
    assert s["phis"] == 2 and s["cond_branches"] == 1 and s["uncond_branches"] == 1
    assert s["compares"] == 1 and s["int_arith"] == 2


def test_nested_loop_has_depth_two():
    s = stats(NESTED_LOOP)
    assert s["basic_blocks"] == 5 and s["cfg_edges"] == 6
    assert s["loops"] == 2 and s["max_loop_depth"] == 2


def test_sequential_loops_have_depth_one():
    s = stats(SEQUENTIAL_LOOPS)
    assert s["loops"] == 2 and s["max_loop_depth"] == 1
    assert s["basic_blocks"] == 4 and s["cfg_edges"] == 5


def test_diamond_counts_memory_float_cast_call_and_phi():
    s = stats(DIAMOND)
    assert s["functions"] == 2  # the declaration of llvm.sqrt is not counted
    assert s["basic_blocks"] == 5 and s["cfg_edges"] == 4 and s["loops"] == 0
    assert (s["allocas"], s["geps"], s["loads"], s["stores"]) == (1, 1, 1, 1)
    assert s["float_arith"] == 1 and s["casts"] == 2 and s["calls"] == 1
    assert s["phis"] == 1 and s["cond_branches"] == 1 and s["uncond_branches"] == 2
    assert s["max_block_size"] == 6


def test_switch_counts_one_switch_and_three_edges():
    s = stats(SWITCH)
    assert s["switches"] == 1 and s["cfg_edges"] == 3 and s["returns"] == 3


def test_syntax_error_raises_irparseerror_with_line_and_message():
    text = "define i64 @entry(i64 %n) {\nentry:\n  %a = add i64 %n, %undefined\n  ret i64 %a\n}\n"
    with pytest.raises(IRParseError, match="undefined") as info:
        parse_ir(text)
    assert info.value.line == 3
    assert "line 3" in str(info.value)


def test_verifier_failure_raises_irparseerror_with_line():
    text = (
        "define i64 @entry(i64 %n) {\n"
        "entry:\n"
        "  br i1 true, label %a, label %b\n"
        "a:\n"
        "  %x = add i64 %n, 1\n"
        "  br label %b\n"
        "b:\n"
        "  ret i64 %x\n"
        "}\n"
    )
    with pytest.raises(IRParseError, match="does not verify.*dominate") as info:
        parse_ir(text)
    assert info.value.line in (5, 8)


def test_empty_string_raises_irparseerror():
    with pytest.raises(IRParseError, match="empty"):
        parse_ir("   \n")


def test_non_string_raises_dataerror():
    with pytest.raises(DataError, match="must be a string, got bytes"):
        parse_ir(b"define void @f() { ret void }")


def test_module_without_functions_raises_irparseerror():
    with pytest.raises(IRParseError, match="defines no function"):
        parse_ir("declare i64 @f(i64)\n@g = global i64 0\n")


def test_missing_entry_function_raises_dataerror_naming_it():
    with pytest.raises(DataError, match="'@main' is not defined.*entry"):
        parse_ir(ONE_LOOP, entry="main")
