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
from typing import Any, Sequence, Union

import numpy as np

from keras_trainer.assistant.tokenizer import PAD_ID, SOS_ID, AssistantTokenizer
from keras_trainer.errors import DataError

BUNDLED_DATA = os.path.join(os.path.dirname(__file__), "data", "training_data.json")
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
    pairs = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"{source}: record {index} must be an object, got {record!r:.60}")
        names = next((n for n in FIELD_NAMES if n[0] in record or n[1] in record), FIELD_NAMES[0])
        values = []
        for name in names:
            if name not in record:
                raise DataError(f"{source}: record {index} has no {name!r} field")
            value = record[name]
            if not isinstance(value, str):
                raise DataError(
                    f"{source}: record {index} field {name!r} must be a string, "
                    f"got {type(value).__name__}"
                )
            if not value.strip():
                raise DataError(f"{source}: record {index} field {name!r} is empty")
            values.append(value)
        pairs.append((values[0], values[1]))
    return pairs


def load_pairs(path: Union[str, os.PathLike, None] = None) -> list[tuple[str, str]]:
    """Reads `training_data.json` (a file, or a folder holding one).

    Args:
        path: The JSON file or its folder; None reads the bundled dataset.

    Returns:
        The `(query, response)` pairs.

    Raises:
        DataError: the file is missing, malformed, empty, or has a bad record.
    """
    path = os.fspath(path) if path is not None else BUNDLED_DATA
    if os.path.isdir(path):
        path = os.path.join(path, "training_data.json")
    from keras_trainer.config import read_json_file

    records = read_json_file(path, "dataset", DataError)
    return parse_pairs(records, path)


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
    encoded = [tokenizer.encode(text, warn=warn, what=what) for text in texts]
    length = tokenizer.max_length if length is None else length
    array = np.full((len(texts), length), PAD_ID, dtype="int32")
    for row, ids in enumerate(encoded):
        array[row, : len(ids)] = ids
    return array


def make_training_arrays(
    pairs: Sequence[tuple[str, str]], tokenizer: AssistantTokenizer
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Builds teacher-forcing arrays: the decoder sees the response shifted by one.

    Args:
        pairs: `(query, response)` pairs.
        tokenizer: The tokenizer.

    Returns:
        `(inputs, targets)`: inputs `{"query": (n, L), "response_in": (n, L)}`, with L
        the longest encoded text (at most `max_length`), where
        `response_in` is `<SOS>` + response; targets `(n, L)` are response + `<EOS>`,
        both padded with `<PAD>` (id 0, ignored by loss and metrics).
    """
    if not pairs:
        raise DataError("no pairs to train on: the dataset is empty")
    # Pad to the longest text, not max_length: padded steps still cost time.
    longest = max(len(tokenizer.encode(t)) for pair in pairs for t in pair)
    queries = encode_batch(tokenizer, [q for q, _ in pairs], length=longest)
    targets = encode_batch(tokenizer, [r for _, r in pairs], length=longest)
    response_in = np.full_like(targets, PAD_ID)
    response_in[:, 0] = SOS_ID
    # Shift right by one; the <EOS> of a full-length target drops off the input.
    response_in[:, 1:] = np.where(targets[:, :-1] == 3, PAD_ID, targets[:, :-1])
    return {"query": queries, "response_in": response_in}, targets
