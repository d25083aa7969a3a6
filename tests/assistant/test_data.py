import json

import numpy as np
import pytest

from keras_trainer.assistant.config import load_assistant_config
from keras_trainer.assistant.data import load_pairs, make_training_arrays, parse_pairs
from keras_trainer.assistant.tokenizer import EOS_ID, SOS_ID, UNK_ID, AssistantTokenizer
from keras_trainer.errors import ConfigError, DataError


def test_bundled_dataset_loads():
    pairs = load_pairs()
    assert 60 <= len(pairs) <= 150


@pytest.mark.parametrize("names", [("query", "response"), ("question", "answer"), ("input", "output")])
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


def test_unknown_words_become_unk():
    tokenizer = AssistantTokenizer.build(["how do i train"], max_length=10)
    assert tokenizer.encode("how do i fly")[-2:] == [UNK_ID, EOS_ID]


def test_min_freq_drops_rare_words():
    tokenizer = AssistantTokenizer.build(["a a b"], max_length=10, min_freq=2)
    assert tokenizer.vocabulary[4:] == ["a"]


def test_long_text_is_cut_with_warning():
    tokenizer = AssistantTokenizer.build(["a b c d e f"], max_length=4)
    with pytest.warns(UserWarning, match="cut"):
        ids = tokenizer.encode("a b c d e f", warn=True)
    assert len(ids) == 4 and ids[-1] == EOS_ID


def test_teacher_forcing_shifts_response_by_one():
    tokenizer = AssistantTokenizer.build(["q", "x y"], max_length=8)
    x, y = make_training_arrays([("q", "x y")], tokenizer)
    x_id, y_id = tokenizer.token_id("x"), tokenizer.token_id("y")
    np.testing.assert_array_equal(y[0, :3], [x_id, y_id, EOS_ID])
    np.testing.assert_array_equal(x["response_in"][0, :3], [SOS_ID, x_id, y_id])


def test_config_error_names_key_path():
    with pytest.raises(ConfigError, match="hidden_dim"):
        load_assistant_config({"hidden_dim": 0})
    with pytest.raises(ConfigError, match="did you mean 'dropout'"):
        load_assistant_config({"dropuot": 0.1})


def test_config_file_is_valid():
    config = load_assistant_config("config/assistant_config.json")
    assert (config.embedding_dim, config.hidden_dim, config.max_length) == (128, 256, 64)
