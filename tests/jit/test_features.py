"""FeatureExtractor: layout, exact values, runtime metrics and errors."""

import numpy as np
import pytest

from keras_trainer.errors import DataError, IRParseError
from keras_trainer.jit.config import FeatureConfig, RuntimeMetricSpec
from keras_trainer.jit.llvm_ir.features import FeatureExtractor

from .snippets import DIAMOND, NESTED_LOOP, ONE_LOOP

pytestmark = pytest.mark.one_backend  # no Keras code runs here

RUNTIME = {"exec_time_ns": 1000.0, "compile_time_ms": 2.5, "code_size_bytes": 64}

DEFAULT_NAMES = [
    "instructions",
    "basic_blocks",
    "loops",
    "max_loop_depth",
    "int_arith",
    "float_arith",
    "memory_ops",
    "calls",
    "cond_branches",
    "exec_time_ns",
    "compile_time_ms",
    "code_size_bytes",
]


def test_default_layout_is_nine_static_plus_three_runtime():
    assert FeatureExtractor().feature_names == DEFAULT_NAMES


def test_extended_and_autophase_set_sizes():
    assert len(FeatureExtractor({"static_features": "extended"}).static_feature_names) == 24
    autophase = FeatureExtractor(FeatureConfig(static_features="autophase"))
    assert len(autophase.static_feature_names) == 56
    assert autophase.static_feature_names[0] == "BBNumArgsHi"
    assert autophase.static_feature_names[-1] == "testUnary"


def test_one_loop_static_values_are_exact():
    values = FeatureExtractor().count_static(ONE_LOOP)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, [8, 3, 1, 1, 2, 0, 0, 0, 1])


def test_nested_loop_static_values_are_exact():
    values = dict(zip(DEFAULT_NAMES, FeatureExtractor().count_static(NESTED_LOOP)))
    assert values["loops"] == 2 and values["max_loop_depth"] == 2 and values["basic_blocks"] == 5


def test_autophase_values_on_one_loop():
    extractor = FeatureExtractor({"static_features": "autophase"})
    values = dict(zip(extractor.static_feature_names, extractor.count_static(ONE_LOOP)))
    assert values["TotalBlocks"] == 3 and values["TotalInsts"] == 8 and values["NumEdges"] == 3
    assert values["NumPHIInst"] == 2 and values["ArgsPhi"] == 4 and values["BBNumArgsLo"] == 1
    assert values["NumAddInst"] == 2 and values["NumICmpInst"] == 1 and values["NumBrInst"] == 2
    assert values["onePred"] == 1  # exit (entry has none, the loop has two)
    assert values["twoPred"] == 1  # the loop: from entry and from itself
    assert values["twoSuccessor"] == 1 and values["oneSuccessor"] == 1
    # i64 constants: the two phis' 0 and the increment's 1.
    assert (
        values["const64Bit"] == 3 and values["numConstZeroes"] == 2 and values["numConstOnes"] == 1
    )


def test_diamond_autophase_counts_critical_edges_and_calls():
    extractor = FeatureExtractor({"static_features": "autophase"})
    values = dict(zip(extractor.static_feature_names, extractor.count_static(DIAMOND)))
    assert values["TotalFuncs"] == 2 and values["NumCallInst"] == 1
    assert values["CriticalCount"] == 0 and values["NumAllocaInst"] == 1


def test_runtime_metrics_are_log1p_transformed():
    values = FeatureExtractor().extract_runtime(RUNTIME)
    np.testing.assert_allclose(values, np.log1p([1000.0, 2.5, 64.0]), rtol=1e-6)


def test_identity_transform_keeps_value():
    config = FeatureConfig(runtime_metrics=[RuntimeMetricSpec("exec_time_ns", "identity")])
    assert FeatureExtractor(config).extract_runtime({"exec_time_ns": 7})[0] == 7.0


def test_extract_stacks_rows_with_matching_width():
    x = FeatureExtractor().extract([ONE_LOOP, NESTED_LOOP], [RUNTIME, RUNTIME])
    assert x.shape == (2, 12) and x.dtype == np.float32


def test_missing_runtime_key_names_index_and_key():
    bad = {"exec_time_ns": 1.0, "compile_time_ms": 1.0}
    with pytest.raises(DataError, match=r"runtime_data\[1\].*'code_size_bytes'"):
        FeatureExtractor().extract([ONE_LOOP, ONE_LOOP], [RUNTIME, bad])


def test_non_numeric_runtime_value_names_index_and_key():
    bad = dict(RUNTIME, compile_time_ms="fast")
    with pytest.raises(DataError, match=r"runtime_data\[3\]\['compile_time_ms'\].*'fast'"):
        FeatureExtractor().extract_runtime(bad, index=3)


def test_boolean_runtime_value_is_rejected():
    with pytest.raises(DataError, match="exec_time_ns"):
        FeatureExtractor().extract_runtime(dict(RUNTIME, exec_time_ns=True))


def test_bad_ir_in_batch_names_sample_and_keeps_line():
    with pytest.raises(IRParseError, match="sample 1") as info:
        FeatureExtractor().extract(
            [ONE_LOOP, "define i64 @f() {\n  ret i64 %x\n}"], [RUNTIME, RUNTIME]
        )
    assert info.value.line == 2


def test_length_mismatch_raises_dataerror():
    with pytest.raises(DataError, match="1 entries but runtime_data has 2"):
        FeatureExtractor().extract([ONE_LOOP], [RUNTIME, RUNTIME])


def test_get_config_round_trips():
    extractor = FeatureExtractor({"static_features": "autophase"})
    rebuilt = FeatureExtractor.from_config(extractor.get_config())
    assert rebuilt.feature_names == extractor.feature_names


def test_density_transform_logs_sizes_and_divides_counts_by_instructions():
    from keras_trainer.jit.config import FeatureConfig

    counts = FeatureExtractor(FeatureConfig(static_transform="counts")).extract_static(ONE_LOOP)
    density = FeatureExtractor().extract_static(ONE_LOOP)
    names = FeatureExtractor().static_feature_names
    total = counts[names.index("instructions")]
    for name, raw, value in zip(names, counts, density):
        if name in ("instructions", "basic_blocks"):
            assert value == pytest.approx(np.log1p(raw))
        elif name == "max_loop_depth":
            assert value == raw
        else:
            assert value == pytest.approx(raw / total)
    logged = FeatureExtractor(FeatureConfig(static_transform="log1p")).extract_static(ONE_LOOP)
    np.testing.assert_allclose(logged, np.log1p(counts), rtol=1e-6)
