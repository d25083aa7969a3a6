"""Which rows `evaluate` scores: the model's held-out test split unless told otherwise.

`train` records its split in the saved model (`split_record`: the dataset's name
and SHA-256, the seed, the test fraction and the test row indices). `evaluate`
then calls `rows_to_score`: on the same dataset it scores the held-out rows only;
`--all` scores every row and warns that the training rows among them flatter the
model; a model that records no split is scored on every row with a warning, and
so is its training data when the model held none of it out (trained with a
separate test file); a dataset with another SHA-256 is new data and is scored
whole, silently. Every
family's `evaluate` goes through here, so the rule and its words are one.

Example:

>>> split = split_record("wine.csv", data_fingerprint(x, y), seed=0, test_split=0.2, test_rows=test)
>>> rows = rows_to_score(split, data_fingerprint(x, y), len(x), "wine.csv")
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from keras_trainer.errors import DataError


def file_fingerprint(path: str) -> str:
    """SHA-256 of a file's bytes: identifies the dataset file a model's split refers to.

    Raises:
        DataError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(os.fspath(path), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    return digest.hexdigest()


def data_fingerprint(*arrays: Any) -> str:
    """SHA-256 of arrays' shapes, types and values: a table however it was read
    (a bundled `builtin:` table, a CSV or Parquet file, a typed frame's encoding)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()


def split_record(
    dataset: str,
    fingerprint: str,
    seed: int,
    test_split: float,
    test_rows: Sequence[int],
    trained_on: Optional[str] = None,
) -> dict[str, Any]:
    """The split a model file keeps (`metadata["split"]`) for `rows_to_score`.

    Args:
        dataset: The data the test rows are in (a file, `builtin:<name>`).
        fingerprint: Its fingerprint.
        seed: The seed of the split.
        test_split: The fraction held out (1.0 for a separate test file).
        test_rows: The test rows' indices in `dataset`.
        trained_on: The fingerprint of the training data when it is another
            dataset (`train --test-data`), so that scoring it warns.
    """
    record = {
        "dataset": os.path.basename(dataset) if os.path.exists(dataset) else dataset,
        "sha256": fingerprint,
        "seed": int(seed),
        "test_split": float(test_split),
        "test_indices": [int(i) for i in test_rows],
    }
    if trained_on is not None and trained_on != fingerprint:
        record["train_sha256"] = trained_on
    return record


def rows_to_score(
    split: Optional[dict],
    fingerprint: str,
    n_rows: int,
    data_name: str,
    score_all: bool = False,
    unit: str = "rows",
) -> list[int]:
    """The row indices `evaluate` scores, saying which on stdout (warnings on stderr).

    Args:
        split: The model's `split_record`, or None when it records none.
        fingerprint: The fingerprint of the data about to be scored, made as the
            one in `split` was (`file_fingerprint` or `data_fingerprint`).
        n_rows: Rows in that data.
        data_name: The data as the user named it (for the messages).
        score_all: `--all`: every row, with a warning when some trained the model.
        unit: What a row is called ("rows", "samples", "pairs").

    Raises:
        DataError: nothing is left to score.
    """
    rows = list(range(n_rows))
    if not split:
        print(
            f"warning: the model file records no held-out split; scoring every one of the "
            f"{n_rows} {unit} of {data_name}, some of which may have been used for training",
            file=sys.stderr,
        )
    elif split.get("sha256") == fingerprint:
        test = sorted({int(i) for i in split.get("test_indices", []) if 0 <= int(i) < n_rows})
        if not test:
            warn_training_data(data_name, unit)
        elif score_all:
            print(
                f"warning: {n_rows - len(test)} of these {n_rows} {unit} were used to train the "
                "model; their scores flatter it (drop --all to score the held-out split only)",
                file=sys.stderr,
            )
        else:
            rows = test
            print(
                f"scoring the model's held-out split: {len(rows)} of {n_rows} {unit} of {data_name}"
            )
    elif split.get("train_sha256") == fingerprint:
        warn_training_data(data_name, unit)
    if not rows:
        raise DataError(f"{data_name}: no {unit} to score")
    return rows


def warn_training_data(data_name: str, unit: str = "rows") -> None:
    """Warns that `data_name` is the data the model was trained on."""
    print(
        f"warning: {data_name} holds the {unit} the model was trained on; their scores flatter "
        "it (score held-out data instead)",
        file=sys.stderr,
    )
