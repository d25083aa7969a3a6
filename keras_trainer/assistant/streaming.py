"""Question-answer pairs streamed from JSON Lines files, for data bigger than memory.

A `.jsonl` file holds one record per line, `{"query": ..., "response": ...}` (or the
other spellings `parse_pairs` accepts). `PairStream` scans its files once for the
byte offset of every record and then reads only the records of each batch, so
memory holds the offsets (24 bytes a record), the vocabulary and the queued
batches. `train_assistant` takes such a source (a file, a folder of `.jsonl` files
or a glob) wherever it takes pairs: the tokenizer is learned in one pass over the
training records, and the last `validation_split` of the records (file order) are
held out.

Stream position: epoch `e` visits the records in the order
`numpy.random.default_rng([seed, e]).permutation(n)`; step `s` is positions
`[s * batch_size, (s + 1) * batch_size)` of that order. Every batch is padded to
the tokenizer's `max_length`, so all batches have one shape (one compiled step).

Example:

>>> stream = PairStream("conversations/", batch_size=64)  # doctest: +SKIP
>>> train, validation = stream.split(0.1)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Optional, Union

import keras
import numpy as np

from keras_trainer.assistant.data import make_training_arrays, parse_record
from keras_trainer.assistant.tokenizer import AssistantTokenizer
from keras_trainer.core.inputs.streaming import folder_files, is_glob
from keras_trainer.errors import DataError

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def is_pair_stream(source: object) -> bool:
    """Whether `source` names JSON Lines files (a file, a folder holding some, or a glob)."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    source = os.fspath(source)
    if os.path.isdir(source):
        return bool(folder_files(source, JSON_LINES_SUFFIXES)) and not os.path.isfile(
            os.path.join(source, "training_data.json")
        )
    return source.lower().endswith(JSON_LINES_SUFFIXES) or is_glob(source)


def _paths(source: Union[str, os.PathLike, Sequence[str]]) -> list[str]:
    if not isinstance(source, (str, os.PathLike)):
        paths = [os.fspath(p) for p in source]
    else:
        source = os.fspath(source)
        if os.path.isdir(source):
            paths = folder_files(source, JSON_LINES_SUFFIXES)
        elif is_glob(source):
            paths = sorted(glob.glob(source))
        else:
            paths = [source]
    if not paths:
        raise DataError(f"{source}: no .jsonl files found")
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"dataset file not found: {path}")
    return paths


def _index(paths: list[str]) -> np.ndarray:
    """`(file, byte offset, line number)` of every non-blank line."""
    rows = []
    for number, path in enumerate(paths):
        offset = 0
        with open(path, "rb") as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    rows.append((number, offset, line_number))
                offset += len(line)
    if not rows:
        raise DataError(f"{paths[0]}: the dataset is empty; it needs at least one record")
    return np.asarray(rows, dtype=np.int64)


class PairStream(keras.utils.PyDataset):
    """Teacher-forcing batches of `(query, response)` records read lazily from JSON Lines.

    Args:
        source: A `.jsonl` file, a folder of them, a glob, or a list of paths.
        tokenizer: Encodes the batches; `train_assistant` sets it (`with_tokenizer`)
            after learning it from `texts()`. Without one, only `texts`, `pairs`
            and `split` work.
        batch_size: Records per batch; the last batch may be smaller.
        shuffle: Visit the records in a seeded random order each epoch.
        seed: Seed of the order (see the module's "Stream position").
        copy: Copy attention's inputs (`make_training_arrays(copy=True)`).
        num_workers: Threads loading batches (Keras' `workers`).
        prefetch: Batches queued ahead of training (Keras' `max_queue_size`).
        index: The `(file, byte offset, line)` rows to read (what `split` passes);
            None scans the files.
        start_step: Batches of the epoch to leave out at its start (`from_step`).
    """

    def __init__(
        self,
        source: Union[str, os.PathLike, Sequence[str]],
        tokenizer: Optional[AssistantTokenizer] = None,
        *,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        copy: bool = False,
        num_workers: int = 1,
        prefetch: int = 4,
        index: Optional[np.ndarray] = None,
        start_step: int = 0,
    ):
        super().__init__(workers=num_workers, use_multiprocessing=False, max_queue_size=prefetch)
        if batch_size < 1:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.paths = _paths(source)
        self.records = _index(self.paths) if index is None else index
        self.tokenizer = tokenizer
        self.batch_size, self.shuffle, self.seed, self.copy = batch_size, shuffle, seed, copy
        self.num_workers, self.prefetch = num_workers, prefetch
        self.start_step = start_step
        self.set_epoch(0)

    def _copy(self, **changes) -> PairStream:
        arguments = dict(
            tokenizer=self.tokenizer,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            copy=self.copy,
            num_workers=self.num_workers,
            prefetch=self.prefetch,
            index=self.records,
            start_step=self.start_step,
        )
        arguments.update(changes)
        stream = PairStream(self.paths, **arguments)
        stream.set_epoch(self.epoch)
        return stream

    @property
    def size(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch whose order the next batches follow."""
        self.epoch = int(epoch)
        n = len(self.records)
        self._order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(n)
            if self.shuffle
            else np.arange(n)
        )

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def __len__(self) -> int:
        return math.ceil(len(self.records) / self.batch_size) - self.start_step

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        if self.tokenizer is None:
            raise DataError("PairStream: set a tokenizer (with_tokenizer) before reading batches")
        step = index + self.start_step
        chosen = self._order[step * self.batch_size : (step + 1) * self.batch_size]
        pairs = self._read(self.records[chosen])
        return make_training_arrays(
            pairs, self.tokenizer, copy=self.copy, length=self.tokenizer.max_length
        )

    def _read(self, records: np.ndarray) -> list[tuple[str, str]]:
        """The pairs of `records` (rows of the index), in their order."""
        pairs: list = [None] * len(records)
        # One open and forward seeks per file, whatever the batch's order.
        for number in np.unique(records[:, 0]):
            path = self.paths[int(number)]
            where = np.nonzero(records[:, 0] == number)[0]
            with open(path, "rb") as handle:
                for position in where[np.argsort(records[where, 1])]:
                    _, offset, line = records[position]
                    handle.seek(int(offset))
                    text = handle.readline()
                    try:
                        record = json.loads(text)
                    except ValueError as error:
                        raise DataError(f"{path}:{line}: not valid JSON ({error})") from None
                    pairs[position] = parse_record(record, f"{path}:{line}")
        return pairs

    def pairs(self, chunk: int = 4096) -> Iterator[tuple[str, str]]:
        """Every pair of the stream, in file order."""
        for begin in range(0, len(self.records), chunk):
            yield from self._read(self.records[begin : begin + chunk])

    def texts(self) -> Iterator[str]:
        """Every query and response, in file order (what `AssistantTokenizer.build` learns from)."""
        for query, response in self.pairs():
            yield query
            yield response

    def with_tokenizer(self, tokenizer: AssistantTokenizer) -> PairStream:
        """The same stream encoding its batches with `tokenizer`."""
        return self._copy(tokenizer=tokenizer)

    def from_step(self, step: int) -> PairStream:
        """The same stream starting each epoch at batch `step` (resuming within an epoch)."""
        return self._copy(start_step=step)

    def with_batch_size(self, batch_size: int) -> PairStream:
        """The same stream in batches of `batch_size`."""
        return self._copy(batch_size=batch_size)

    def split(self, fraction: float) -> tuple[PairStream, PairStream]:
        """Holds out the last `fraction` of the records (file order) as an unshuffled stream."""
        held_out = math.floor(len(self.records) * fraction)
        if held_out == 0 or held_out == len(self.records):
            raise DataError(
                f"validation_split={fraction} leaves {len(self.records) - held_out} training "
                f"and {held_out} validation records out of {len(self.records)}"
            )
        cut = len(self.records) - held_out
        return self._copy(index=self.records[:cut]), self._copy(
            index=self.records[cut:], shuffle=False
        )


__all__ = ["JSON_LINES_SUFFIXES", "PairStream", "is_pair_stream"]
