"""Static features of real corpus IR equal values recorded from the original extractor.

`data/sample_features_150.json` holds the "default", "extended" and
"autophase" rows of the first 150 bundled samples as computed by the
extractor before it read llvmlite's C functions directly; any change to a
single value fails here.
"""

import json
import pathlib

import numpy as np
import pytest

from keras_trainer.jit import SAMPLE_DATASET_PATH
from keras_trainer.jit.data.collect import read_dataset
from keras_trainer.jit.llvm_ir.features import FeatureExtractor
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.llvm_ir.ir_analysis import OPERAND_KEYS, analyze_module

pytestmark = pytest.mark.one_backend  # no Keras code runs here

GOLDEN_PATH = pathlib.Path(__file__).parent / "data" / "sample_features_150.json"
GOLDEN = json.loads(GOLDEN_PATH.read_text())


@pytest.fixture(scope="module")
def texts():
    samples = read_dataset(SAMPLE_DATASET_PATH)["samples"]
    return [sample["ir"] for sample in samples[:150]]


@pytest.mark.parametrize("feature_set", ["default", "extended", "autophase"])
def test_static_features_equal_recorded_values(texts, feature_set):
    extractor = FeatureExtractor({"static_features": feature_set})
    actual = np.stack([extractor.count_static(text) for text in texts])
    expected = np.asarray(GOLDEN["features"][feature_set], dtype=np.float32)
    assert actual.shape == expected.shape
    assert np.array_equal(actual, expected)


def test_skipping_operands_leaves_out_only_operand_keys(texts):
    for text in texts[:20]:
        full = analyze_module(parse_ir(text))
        cfg_only = analyze_module(parse_ir(text), operands=False)
        assert set(full) - set(cfg_only) == OPERAND_KEYS
        assert {k: v for k, v in full.items() if k not in OPERAND_KEYS} == cfg_only
