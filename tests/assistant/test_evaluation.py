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


@pytest.mark.one_backend  # the tokenizer is plain Python
def test_the_tokenizer_normalized_variant_reads_both_sides_as_the_tokenizer_does():
    from keras_trainer.assistant.evaluation import tokenizer_normalized
    from keras_trainer.assistant.tokenizer import AssistantTokenizer
    from keras_trainer.core.evaluating.text import variant_name

    tokenizer = AssistantTokenizer.build(["Run pip show NumPy."], 12, kind="word")
    normalize = tokenizer_normalized(tokenizer)
    # Two names outside the vocabulary both read as <UNK>: equal for the variant only.
    answers, references = ["Run pip show Zig."], ["Run pip show Rust."]
    assert exact_match(answers, references, normalize=normalize) == 1.0
    assert exact_match(answers, references) == 0.0
    assert variant_name(normalize) == "tokenizer-normalized"
