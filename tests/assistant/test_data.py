import json

import numpy as np
import pytest

from keras_trainer.assistant.config import load_assistant_config
from keras_trainer.assistant.data import load_pairs, make_training_arrays, parse_pairs
from keras_trainer.assistant.tokenizer import EOS_ID, SOS_ID, UNK_ID, AssistantTokenizer
from keras_trainer.errors import ConfigError, DataError


def test_bundled_dataset_has_training_and_heldout_splits():
    train, heldout = load_pairs(), load_pairs(split="heldout")
    assert len(train) >= 250 and len(heldout) >= 100


def test_split_of_a_user_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="bundled"):
        load_pairs(tmp_path, split="heldout")


@pytest.mark.parametrize(
    "names", [("query", "response"), ("question", "answer"), ("input", "output")]
)
def test_seed_field_names_are_accepted(tmp_path, names):
    path = tmp_path / "training_data.json"
    path.write_text(json.dumps([{names[0]: "hi", names[1]: "hello"}]))
    assert load_pairs(tmp_path) == [("hi", "hello")]


def test_missing_field_names_record_index():
    with pytest.raises(DataError, match="record 1 has no 'response'"):
        parse_pairs([{"query": "a", "response": "b"}, {"query": "c"}])


def test_non_string_field_names_record_index():
    with pytest.raises(DataError, match="record 0 field 'response' must be a string"):
        parse_pairs([{"query": "a", "response": 3}])


def test_empty_dataset_is_an_error():
    with pytest.raises(DataError, match="empty"):
        parse_pairs([])


def test_unknown_words_become_unk_in_a_word_vocabulary():
    tokenizer = AssistantTokenizer.build(["how do i train"], max_length=10, kind="word")
    assert tokenizer.encode("how do i fly")[-2:] == [UNK_ID, EOS_ID]


def test_min_freq_drops_rare_words():
    tokenizer = AssistantTokenizer.build(["a a a b"], max_length=10, min_freq=2, kind="word")
    assert tokenizer.vocabulary[4:] == [" a"]


def test_long_text_is_cut_with_warning():
    tokenizer = AssistantTokenizer.build(["a b c d e f"], max_length=4, kind="word")
    with pytest.warns(UserWarning, match="cut"):
        ids = tokenizer.encode("a b c d e f", warn=True)
    assert len(ids) == 4 and ids[-1] == EOS_ID


def test_teacher_forcing_shifts_response_by_one():
    tokenizer = AssistantTokenizer.build(["q", "x y"], max_length=8, kind="word")
    x, y = make_training_arrays([("q", "x y")], tokenizer)
    x_id, y_id = tokenizer.token_id("x"), tokenizer.token_id(" y")
    np.testing.assert_array_equal(y[0, :3], [x_id, y_id, EOS_ID])
    np.testing.assert_array_equal(x["response_in"][0, :3], [SOS_ID, x_id, y_id])


def test_config_error_names_key_path():
    with pytest.raises(ConfigError, match="hidden_dim"):
        load_assistant_config({"hidden_dim": 0})
    with pytest.raises(ConfigError, match="did you mean 'dropout'"):
        load_assistant_config({"dropuot": 0.1})


def test_copy_arrays_give_copied_words_one_extended_id():
    tokenizer = AssistantTokenizer.build(["Is it safe?", "Yes, it is safe."] * 3, vocab_size=300)
    x, y = make_training_arrays([("Is Quokka safe?", "Yes, Quokka is safe.")], tokenizer, copy=True)
    extended = tokenizer.vocab_size  # " Quokka", the query's first extended word
    assert extended in x["query_extended"][0] and extended not in x["query"][0]
    assert list(y[0]).count(extended) == 1
    np.testing.assert_array_equal(x["response_in"][0, 1:], y[0, :-1] * (y[0, :-1] != EOS_ID))
