"""Reading question-answer pairs and turning them into teacher-forcing arrays.

`training_data.json` is a list of records `{"query": ..., "response": ...}`; the
seed's other spellings `question`/`answer` and `input`/`output` are accepted too.

Example:

>>> pairs = load_pairs()  # the bundled dataset
>>> len(pairs) > 50
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal, Union

import numpy as np

from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID, AssistantTokenizer
from keras_trainer.errors import DataError

BUNDLED_DATA = os.path.join(os.path.dirname(__file__), "data", "training_data.json")
BUNDLED_SPLITS = {
    "train": BUNDLED_DATA,
    "heldout": os.path.join(os.path.dirname(__file__), "data", "heldout_data.json"),
}
FIELD_NAMES = (("query", "response"), ("question", "answer"), ("input", "output"))


def parse_pairs(records: Any, source: str = "dataset") -> list[tuple[str, str]]:
    """Validates records and returns them as `(query, response)` pairs.

    Args:
        records: The parsed JSON: a list of dicts.
        source: Where the records came from, for messages.

    Returns:
        The pairs, in order.

    Raises:
        DataError: the data is not a non-empty list, or a record lacks a field or
            has a non-string or empty one (the message names the record index).
    """
    if not isinstance(records, list):
        raise DataError(f"{source}: must be a list of records, got {type(records).__name__}")
    if not records:
        raise DataError(f"{source}: the dataset is empty; it needs at least one record")
    return [
        parse_record(record, f"{source}: record {index}") for index, record in enumerate(records)
    ]


def parse_record(record: Any, where: str) -> tuple[str, str]:
    """One record as a `(query, response)` pair.

    Args:
        record: The parsed JSON object.
        where: How messages name the record (`"data.json: record 3"`, `"part-0.jsonl:12"`).

    Raises:
        DataError: not an object, a missing field, or a non-string or empty one.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where} must be an object, got {record!r:.60}")
    names = next((n for n in FIELD_NAMES if n[0] in record or n[1] in record), FIELD_NAMES[0])
    values = []
    for name in names:
        if name not in record:
            raise DataError(f"{where} has no {name!r} field")
        value = record[name]
        if not isinstance(value, str):
            raise DataError(f"{where} field {name!r} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise DataError(f"{where} field {name!r} is empty")
        values.append(value)
    return values[0], values[1]


def load_pairs(
    path: Union[str, os.PathLike, None] = None, split: Literal["train", "heldout"] = "train"
) -> list[tuple[str, str]]:
    """Reads `training_data.json` (a file, or a folder holding one).

    Args:
        path: The JSON file or its folder; None reads the bundled dataset.
        split: Bundled dataset only: "train", or "heldout" (questions about
            entities that never occur in "train", in templates it pairs with others).

    Returns:
        The `(query, response)` pairs.

    Raises:
        DataError: the file is missing, malformed, empty, or has a bad record.
    """
    if split not in ("train", "heldout"):
        raise DataError(f"split must be 'train' or 'heldout', got {split!r}")
    if path is not None and split != "train":
        raise DataError("split applies to the bundled dataset only; pass the held-out file as path")
    path = os.fspath(path) if path is not None else BUNDLED_SPLITS[split]
    if os.path.isdir(path):
        path = os.path.join(path, "training_data.json")
    from keras_trainer.config import read_json_file

    records = read_json_file(path, "dataset", DataError)
    return parse_pairs(records, path)


def encode_queries(
    tokenizer: AssistantTokenizer,
    queries: Sequence[str],
    copy: bool,
    warn: bool = False,
    length: int | None = None,
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Encodes queries into model inputs `(n, length)`, padded with `<PAD>`.

    Args:
        tokenizer: The tokenizer.
        queries: The questions.
        copy: Copy attention: also `query_extended`, the id copying each position
            produces (`AssistantTokenizer.encode_query`).
        warn: Warn when a query is cut.
        length: Columns; None uses `tokenizer.max_length`.

    Returns:
        `(inputs, oovs)`: `{"query": ids}` (and `"query_extended"` with `copy`), and
        each query's extended-vocabulary words, for `AssistantTokenizer.decode`.
    """
    if not copy:
        ids = encode_batch(tokenizer, queries, warn, "query", length)
        return {"query": ids}, [[] for _ in queries]
    encoded = [tokenizer.encode_query(q, warn=warn) for q in queries]
    inputs = {
        "query": _pad([e[0] for e in encoded], tokenizer, length),
        "query_extended": _pad([e[1] for e in encoded], tokenizer, length),
    }
    return inputs, [e[2] for e in encoded]


def _pad(rows: Sequence[Sequence[int]], tokenizer: AssistantTokenizer, length: int | None):
    length = tokenizer.max_length if length is None else length
    array = np.full((len(rows), length), PAD_ID, dtype="int32")
    for row, ids in enumerate(rows):
        array[row, : len(ids)] = ids
    return array


def encode_batch(
    tokenizer: AssistantTokenizer,
    texts: Sequence[str],
    warn: bool = False,
    what: str = "text",
    length: int | None = None,
) -> np.ndarray:
    """Encodes texts into a `(len(texts), length)` int32 array padded with `<PAD>`.

    Args:
        length: Columns; None uses `tokenizer.max_length`. Must fit the longest text.
    """
    return _pad([tokenizer.encode(text, warn=warn, what=what) for text in texts], tokenizer, length)


def make_training_arrays(
    pairs: Sequence[tuple[str, str]],
    tokenizer: AssistantTokenizer,
    copy: bool = False,
    length: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Builds teacher-forcing arrays: the decoder sees the response shifted by one.

    Args:
        pairs: `(query, response)` pairs.
        tokenizer: The tokenizer.
        copy: Copy attention: inputs gain `query_extended` (`encode_query`) and
            the query's extended-vocabulary words are one id in the response.
        length: Columns of every array; None pads to the longest text.

    Returns:
        `(inputs, targets)`: inputs `{"query": (n, L), "response_in": (n, L)}`, with L
        the longest encoded text (at most `max_length`), where
        `response_in` is `<SOS>` + response; targets `(n, L)` are response + `<EOS>`,
        both padded with `<PAD>` (id 0, ignored by loss and metrics).
    """
    if not pairs:
        raise DataError("no pairs to train on: the dataset is empty")
    queries, extended, responses = [], [], []
    for query, response in pairs:
        if copy:
            query_ids, copy_ids, oovs = tokenizer.encode_query(query)
            extended.append(copy_ids)
            responses.append(tokenizer.encode_response(response, oovs))
        else:
            query_ids = tokenizer.encode(query)
            responses.append(tokenizer.encode(response))
        queries.append(query_ids)
    # Pad to the longest text, not max_length: padded steps still cost time.
    longest = max(len(ids) for ids in queries + responses) if length is None else length
    queries, targets = _pad(queries, tokenizer, longest), _pad(responses, tokenizer, longest)
    response_in = np.full_like(targets, PAD_ID)
    response_in[:, 0] = SOS_ID
    # Shift right by one; the <EOS> of a full-length target drops off the input.
    response_in[:, 1:] = np.where(targets[:, :-1] == EOS_ID, PAD_ID, targets[:, :-1])
    inputs = {"query": queries, "response_in": response_in}
    if copy:
        inputs["query_extended"] = _pad(extended, tokenizer, longest)
    return inputs, targets
