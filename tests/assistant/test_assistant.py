import numpy as np
import pytest

from keras_trainer.assistant.assistant import (
    Assistant,
    generate_response,
    load_assistant,
    train_assistant,
)
from keras_trainer.assistant.data import load_pairs
from keras_trainer.assistant.tokenizer import normalize_text
from keras_trainer.errors import CheckpointError, DataError

PAIRS = [("what is keras?", "a deep learning api."), ("what is jax?", "a numerical library.")]
TINY = {"embedding_dim": 8, "hidden_dim": 8, "max_length": 12, "epochs": 1, "verbose": 0}


@pytest.fixture(scope="module")
def tiny_assistant():
    assistant, _ = train_assistant(TINY, pairs=PAIRS)
    return assistant


def test_save_and_load_keep_vocabulary_and_answers(tiny_assistant, tmp_path):
    path = tiny_assistant.save(tmp_path / "assistant.keras")
    loaded = load_assistant(path)
    assert loaded.tokenizer.vocabulary == tiny_assistant.tokenizer.vocabulary
    assert loaded.config == tiny_assistant.config
    assert generate_response(loaded, "what is jax?", max_length=8) == generate_response(
        tiny_assistant, "what is jax?", max_length=8
    )


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_empty_or_non_string_query_is_a_data_error(tiny_assistant, query):
    with pytest.raises(DataError, match="query"):
        generate_response(tiny_assistant, query)


def test_long_query_is_cut_with_warning(tiny_assistant):
    with pytest.warns(UserWarning, match="cut"):
        generate_response(tiny_assistant, "what " * 40, max_length=4)


def test_load_rejects_non_assistant_file(tmp_path):
    with pytest.raises(CheckpointError):
        load_assistant(tmp_path / "missing.keras")


@pytest.mark.slow
def test_greedy_answers_reproduce_training_responses():
    config = {"embedding_dim": 32, "hidden_dim": 64, "max_length": 32, "dropout": 0.0,
              "learning_rate": 0.01, "batch_size": 16, "epochs": 120, "verbose": 0}
    assistant, history = train_assistant(config)
    pairs = load_pairs()
    answers = assistant.generate_batch([q for q, _ in pairs], max_length=32)
    exact = np.mean([a == normalize_text(r) for a, (_, r) in zip(answers, pairs)])
    print(f"exact match {exact:.3f}, final loss {history.history['loss'][-1]:.4f}")
    assert exact >= 0.9
