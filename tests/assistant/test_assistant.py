import numpy as np
import pytest

from keras_trainer.assistant.assistant import generate_response, load_assistant
from keras_trainer.assistant.tokenizer import normalize_text
from keras_trainer.errors import CheckpointError, DataError, ModelError

from tests.assistant.conftest import to_numpy


def test_greedy_answers_reproduce_training_responses(trained, greedy_ids, bundled_pairs):
    assistant, history = trained
    answers = [assistant.tokenizer.decode(row) for row in greedy_ids]
    exact = np.mean([a == normalize_text(r) for a, (_, r) in zip(answers, bundled_pairs)])
    print(f"exact match {exact:.3f}, final loss {history.history['loss'][-1]:.4f}")
    assert exact >= 0.9


def test_generate_batch_decodes_compiled_ids(trained_assistant, greedy_ids, bundled_pairs):
    queries = [q for q, _ in bundled_pairs]
    answers = trained_assistant.generate_batch(queries, max_length=24)
    assert answers == [trained_assistant.tokenizer.decode(row) for row in greedy_ids]


def test_save_and_load_keep_vocabulary_and_weights(trained_assistant, query_ids, tmp_path):
    path = trained_assistant.save(tmp_path / "assistant.keras")
    loaded = load_assistant(path)
    assert loaded.tokenizer.vocabulary == trained_assistant.tokenizer.vocabulary
    assert loaded.config == trained_assistant.config
    x = {"query": query_ids[:4], "response_in": query_ids[4:8]}
    np.testing.assert_allclose(
        *to_numpy([loaded.model(x), trained_assistant.model(x)]), atol=1e-5
    )


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_empty_or_non_string_query_is_a_data_error(trained_assistant, query):
    with pytest.raises(DataError, match="query"):
        generate_response(trained_assistant, query)


def test_generate_response_needs_an_assistant(trained_assistant):
    with pytest.raises(ModelError, match="Assistant"):
        generate_response(trained_assistant.model, "what is keras?")


def test_long_query_is_cut_with_warning(trained_assistant):
    with pytest.warns(UserWarning, match="cut"):
        ids = trained_assistant.encode_queries(["what " * 40])
    assert ids.shape == (1, trained_assistant.tokenizer.max_length)


def test_generator_is_compiled_once_per_setting(trained_assistant):
    greedy = trained_assistant.generator("greedy", 24)
    assert trained_assistant.generator("greedy", 24) is greedy
    assert trained_assistant.generator("greedy", 12) is not greedy


def test_load_rejects_non_assistant_file(tmp_path):
    with pytest.raises(CheckpointError):
        load_assistant(tmp_path / "missing.keras")

