"""The case-preserving tokenizer: exact round trip, subword fallback, extended ids."""

import pytest

from keras_trainer.assistant.data import load_pairs
from keras_trainer.assistant.tokenizer import (
    EOS_ID,
    UNK_ID,
    AssistantTokenizer,
    pre_tokenize,
)
from keras_trainer.errors import DataError


@pytest.fixture(scope="module")
def bundled_texts():
    train = [t for pair in load_pairs() for t in pair]
    heldout = [t for pair in load_pairs(split="heldout") for t in pair]
    return train, heldout


@pytest.fixture(scope="module")
def subword(bundled_texts):
    return AssistantTokenizer.build(bundled_texts[0], max_length=128, vocab_size=600)


def test_round_trip_is_exact_on_every_bundled_record(subword, bundled_texts):
    # Trained on the training split only; the held-out split's entities are unseen.
    for text in bundled_texts[0] + bundled_texts[1]:
        assert subword.decode(subword.encode(text)) == text


def test_pre_tokens_concatenate_to_the_text():
    text = "Hi,  Ada!\n\tDoes  `pip show NumPy` work?  "
    assert "".join(pre_tokenize(text)) == text


def test_case_spacing_and_unseen_characters_survive(subword):
    text = "Does ZÜRICH's  café\tserve 🍕 at 9:30?\n"
    assert subword.decode(subword.encode(text)) == text
    assert UNK_ID not in subword.encode(text)


def test_unknown_words_fall_back_to_subword_pieces(subword):
    pieces = subword.tokenize(" Smalltalk")
    assert len(pieces) > 1 and "".join(pieces) == " Smalltalk"


def test_frequent_words_are_single_tokens(subword):
    assert subword.tokenize(" install") == [" install"]


def test_word_tokenizer_keeps_case_and_marks_unknown_words():
    tokenizer = AssistantTokenizer.build(["How do I train?"], kind="word", vocab_size=50)
    assert tokenizer.tokenize("How do I fly?") == ["How", " do", " I", " fly", "?"]
    assert tokenizer.encode("How do I fly?")[-3:] == [UNK_ID, tokenizer.token_id("?"), EOS_ID]
    assert tokenizer.token_id("how") == UNK_ID


def test_query_words_that_are_not_one_token_get_extended_ids(subword):
    ids, copy_ids, oovs = subword.encode_query("How do I install Smalltalk?")
    assert oovs == [" Smalltalk"]
    start = ids.index(subword.token_id(" install")) + 1
    assert copy_ids[start] == subword.vocab_size
    assert copy_ids[:start] == ids[:start]
    response = subword.encode_response("Install Smalltalk with care.", oovs)
    assert response.count(subword.vocab_size) == 1
    assert subword.decode(response, oovs) == "Install Smalltalk with care."


def test_config_round_trip_keeps_encoding(subword):
    restored = AssistantTokenizer.from_config(subword.get_config())
    text = "Why does import Loguru fail?"
    assert restored.encode(text) == subword.encode(text)


def test_too_small_subword_vocabulary_is_a_data_error():
    with pytest.raises(DataError, match="vocab_size"):
        AssistantTokenizer.build(["abc"], vocab_size=100)


def test_old_tokenizer_config_is_a_data_error():
    with pytest.raises(DataError, match="retrain"):
        AssistantTokenizer.from_config({"vocabulary": ["<PAD>"], "max_length": 8})
