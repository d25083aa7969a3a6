"""Question-answer pairs streamed from JSON Lines files (`keras_trainer.assistant.streaming`)."""

import json

import numpy as np
import pytest

from keras_trainer.assistant.assistant import train_assistant
from keras_trainer.assistant.streaming import PairStream, is_pair_stream
from keras_trainer.assistant.tokenizer import AssistantTokenizer
from keras_trainer.errors import DataError


def _write(folder, pairs, parts=2):
    folder.mkdir(exist_ok=True)
    for part in range(parts):
        with open(folder / f"part-{part}.jsonl", "w", encoding="utf-8") as handle:
            for query, response in pairs[part::parts]:
                handle.write(json.dumps({"query": query, "response": response}) + "\n")
            handle.write("\n")  # blank lines are skipped
    return folder


PAIRS = [(f"what is item {i}?", f"item {i} is number {i}") for i in range(40)]


@pytest.mark.one_backend
def test_records_are_indexed_read_lazily_and_split_in_file_order(tmp_path):
    folder = _write(tmp_path / "qa", PAIRS)
    assert is_pair_stream(folder) and is_pair_stream(str(folder / "*.jsonl"))
    assert not is_pair_stream(tmp_path / "training_data.json")
    stream = PairStream(folder, batch_size=8)
    assert stream.size == 40 and len(stream) == 5
    in_file_order = PAIRS[0::2] + PAIRS[1::2]
    assert list(stream.pairs()) == in_file_order
    train, held_out = stream.split(0.25)
    assert list(held_out.pairs()) == in_file_order[30:]
    assert train.size == 30 and not held_out.shuffle

    tokenizer = AssistantTokenizer.build(train.texts(), max_length=12, kind="word")
    batches = train.with_tokenizer(tokenizer)
    inputs, targets = batches[0]
    # Every batch has the same shape (one compiled step): padded to max_length.
    assert inputs["query"].shape == (8, 12) and targets.shape == (8, 12)
    # The order is a pure function of (seed, epoch).
    again = PairStream(folder, batch_size=8).split(0.25)[0].with_tokenizer(tokenizer)
    np.testing.assert_array_equal(again[0][1], targets)
    batches.set_epoch(1)
    assert not np.array_equal(batches[0][1], targets)
    # A run resumed after batch 2 of an epoch reads that epoch's batches from the third.
    later = batches.from_step(2)
    assert len(later) == len(batches) - 2
    np.testing.assert_array_equal(later[0][1], batches[2][1])


@pytest.mark.one_backend
def test_a_bad_record_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"query": "a", "response": "b"}\n{"query": "c"}\n{not json\n')
    stream = PairStream(path, batch_size=4, shuffle=False)
    with pytest.raises(DataError, match=r"qa.jsonl:2 has no 'response' field"):
        list(stream.pairs())
    with pytest.raises(DataError, match=r"qa.jsonl:3: not valid JSON"):
        stream._read(stream.records[2:])
    with pytest.raises(DataError, match="no .jsonl files"):
        PairStream(str(tmp_path / "none-*.jsonl"))


def test_train_assistant_streams_json_lines_and_learns_the_vocabulary_from_training_records(
    tmp_path,
):
    folder = _write(tmp_path / "qa", PAIRS)
    config = {
        "embedding_dim": 16,
        "hidden_dim": 16,
        "max_length": 12,
        "tokenizer": "word",
        "dropout": 0.0,
        "training": {
            "epochs": 2,
            "batch_size": 8,
            "validation_split": 0.25,
            "seed": 1,
            "verbose": 0,
        },
    }
    assistant, history = train_assistant(config, str(folder))
    assert len(history.history["val_loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    # Held out: the last 10 records in file order (items 21, 23, ..., 39), never seen in training.
    words = {token.strip() for token in assistant.tokenizer.vocabulary}
    assert "38" in words and "39" not in words
    assert set(assistant.evaluation) >= {"exact_match", "token_f1"}
