"""The Python inference API applies training's value rules: numbers only, finite, in range."""

import numpy as np
import pytest

from keras_trainer.core.inputs.data import MAX_FEATURE_MAGNITUDE as TRAINING_RULE
from keras_trainer.errors import DataError
from keras_trainer.export.input_checks import MAX_FEATURE_MAGNITUDE, InputSpec, check_input

SPEC = InputSpec("features", (None, 3), np.dtype("float32"))


def test_serving_applies_the_same_magnitude_rule_as_training():
    assert MAX_FEATURE_MAGNITUDE == TRAINING_RULE


@pytest.mark.parametrize("value", [1e38, -1e19])
def test_values_beyond_the_training_range_are_refused(value):
    with pytest.raises(DataError, match=r"row 1, position \[2\].*beyond \+-1e\+18"):
        check_input(np.array([[1, 2, 3], [1, 2, value]]), SPEC)


def test_values_within_the_range_pass():
    array = check_input(np.array([[1e17, -1e17, 0]]), SPEC)
    assert array.dtype == np.float32 and array.shape == (1, 3)


@pytest.mark.parametrize("value", [[["1.5", "2", "3"]], [[True, False, True]]])
def test_strings_and_booleans_are_refused(value):
    with pytest.raises(DataError, match="expected numbers"):
        check_input(value, SPEC)
