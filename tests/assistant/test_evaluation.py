import pytest

from keras_trainer.assistant.evaluation import exact_match, token_f1
from keras_trainer.errors import DataError


def test_exact_match_is_byte_for_byte():
    assert exact_match(["Run pip show NumPy."], ["Run pip show NumPy."]) == 1.0
    assert exact_match(["run pip show numpy."], ["Run pip show NumPy."]) == 0.0
    assert exact_match(["Run pip show NumPy. "], ["Run pip show NumPy."]) == 0.0


def test_token_f1_counts_words_and_punctuation():
    assert token_f1(["a b c"], ["a b c"]) == 1.0
    assert token_f1(["x y"], ["a b"]) == 0.0
    # 4 of 5 words shared both ways: F1 0.8.
    assert token_f1(["Run pip show numpy."], ["Run pip show NumPy."]) == pytest.approx(0.8)


def test_mismatched_lengths_are_a_data_error():
    with pytest.raises(DataError, match="answers"):
        exact_match(["a"], ["a", "b"])
