"""One exact match: byte for byte, or a named variant that normalizes both sides."""

import pytest

from keras_trainer.core.evaluating.text import (
    BYTE_FOR_BYTE,
    exact_match,
    named_normalizer,
    variant_name,
)

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_exact_match_is_byte_for_byte_by_default():
    assert exact_match(["Run pip.", "run  pip."], ["Run pip.", "Run pip."]) == 0.5
    assert variant_name(None) == BYTE_FOR_BYTE


def test_a_named_variant_normalizes_both_sides_and_is_named():
    lower = named_normalizer("case ignored", str.lower)
    assert exact_match(["RUN pip.", "Run"], ["run PIP.", "Run pip."], normalize=lower) == 0.5
    assert variant_name(lower) == "case ignored"
