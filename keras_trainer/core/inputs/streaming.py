"""Training on data that does not fit in memory: shard streams and other batch streams.

`fit` accepts, besides in-memory arrays, any *stream* of batches:

* a `ShardDataset`: a folder or glob of CSV, Parquet or `.npy` shards, read lazily
  (`.npy` shards memory-mapped) by `num_workers` threads with `prefetch` batches
  queued ahead, shuffled with a seed (see "Stream position" below);
* a `keras.utils.PyDataset` of your own;
* a `tf.data.Dataset` or a `torch.utils.data.DataLoader` (Keras reads both on
  every backend; the TensorFlow and torch backends avoid a conversion);
* a Python generator or iterator of `(x, y)` batches (set
  `training.steps_per_epoch`: a generator has no length);
* a path string or `os.PathLike` (opened as a `ShardDataset`).

Stream position
---------------
A `ShardDataset`'s batches are a pure function of `(seed, epoch, step)`: epoch `e`
visits the shards in the order `numpy.random.default_rng([seed, e]).permutation`,
concatenates their rows, and shuffles every window of `shuffle_buffer` consecutive
rows `w` with `default_rng([seed, e, w + 1])`; step `s` is rows
`[s * batch_size, (s + 1) * batch_size)` of that order (`ShardDataset.batch_rows`).
A run resumed from the checkpoint of epoch `e` continues at position
`(epoch=e + 1, step=0)` and sees exactly the batches an uninterrupted run sees;
with `checkpoint.every_steps`, one resumed from a checkpoint written after batch
`s` of epoch `e` continues at `(epoch=e, step=s)` through `from_step(s)`.
Your own `PyDataset` or `DataLoader` gets `set_epoch(epoch)` (on the dataset, or on
a DataLoader's sampler, as torch's `DistributedSampler` expects) at the start of
each epoch, so it can give the same promise.

Example:

>>> train = ShardDataset("data/shards/*.npy", batch_size=256, num_workers=4)
>>> mean, variance = stream_statistics(train)
>>> history = fit(model, train, config=TrainingConfig(epochs=3))
"""

from __future__ import annotations

import errno
import inspect
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras
import numpy as np

# The shard files live in a Keras-free module (for commands that must not import
# Keras); their names stay importable from here.
from keras_trainer.core.inputs.shard_files import (  # noqa: F401
    SHARD_SUFFIXES,
    folder_files,
    is_glob,
    shard_paths,
)
from keras_trainer.errors import ConfigError, DataError


def _csv_header(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [name.strip() for name in handle.readline().rstrip("\r\n").split(",")]


def _csv_rows(path: str) -> int:
    rows = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            rows += block.count(b"\n")
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            rows += 1
    return rows - 1  # the header


def _shard_layout(path: str) -> tuple[int, list[str]]:
    """`(rows, column names)` of a shard, read from its header only."""
    suffix = os.path.splitext(path)[1]
    try:
        if suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.ndim != 2:
                raise DataError(
                    f"{path}: a .npy shard must be 2-D (rows, columns), got shape {array.shape}"
                )
            return array.shape[0], [str(i) for i in range(array.shape[1])]
        if suffix == ".csv":
            return _csv_rows(path), _csv_header(path)
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
        return metadata.num_rows, list(metadata.schema.names)
    except ImportError:
        raise ConfigError(
            f"{path}: reading Parquet shards needs pyarrow (pip install pyarrow)"
        ) from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable shard ({error})") from None


def _read_shard(path: str) -> np.ndarray:
    """The whole shard as a 2-D array (memory-mapped for .npy: nothing is read yet)."""
    suffix = os.path.splitext(path)[1]
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".csv":
            return np.loadtxt(path, delimiter=",", skiprows=1, dtype="float32", ndmin=2)
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return np.column_stack(
            [table.column(i).to_numpy() for i in range(table.num_columns)]
        ).astype("float32")
    except (OSError, ValueError) as error:
        if getattr(error, "errno", None) == errno.ENOMEM:
            raise MemoryError(f"{path}: no memory left to map or read this shard") from error
        raise DataError(f"{path}: unreadable shard ({error})") from None


class ShardReader:
    """How a `ShardDataset` reads a shard: its layout from the header, its rows as numbers.

    The default reads numeric shards. A family with raw shards (text cells, rows to
    leave out) passes its own, whose `read` returns the encoded rows and whose
    `layout` counts exactly those rows and names their columns.
    """

    def layout(self, path: str) -> tuple[int, list[str]]:
        """`(rows, column names)` of the shard at `path`."""
        return _shard_layout(path)

    def read(self, path: str) -> np.ndarray:
        """The shard's rows as a 2-D array (memory-mapped for .npy: nothing is read yet)."""
        return _read_shard(path)


class ShardDataset(keras.utils.PyDataset):
    """Batches streamed lazily from a folder or glob of CSV, Parquet or `.npy` shards.

    Every shard is a table with the same columns: the `target_columns` are the
    targets, every other column is a feature. `.npy` shards are 2-D arrays read
    through a memory map (only the rows of a batch are read); CSV and Parquet
    shards are read whole when first needed and at most two are kept at a time,
    so memory holds two shards plus the queued batches, whatever the data size.

    Args:
        source: A folder, a glob (`"data/*.parquet"`), or a list of shard paths.
        target_columns: Target column names (CSV/Parquet header) or indices
            (`.npy`; negative counts from the end). Defaults to the last column.
        batch_size: Rows per batch; the last batch may be smaller.
        shuffle: Shuffle the shard order and the rows within `shuffle_buffer`.
        seed: Seed of the shuffling (see the module's "Stream position").
        shuffle_buffer: Rows shuffled together.
        num_workers: Threads loading batches in parallel (Keras' `workers`).
        prefetch: Batches queued ahead of training (Keras' `max_queue_size`).
        transform: Optional `fn(x, y) -> (x, y)` applied to each batch
            (normalization, one-hot labels).
        initial_epoch: The epoch the first batch belongs to (for resuming).
        rows: Optional `(start, stop)` range of rows (in file order) to use:
            `split` uses it to hold out validation rows.
        start_step: Batches of the epoch to leave out at its start (`from_step`).
        reader: A `ShardReader` (defaults to one of numeric shards); typed tables
            pass one that encodes their raw rows
            (`keras_trainer.tabular.typed_shards`).

    Example:

    >>> data = ShardDataset("shards/", target_columns=["label"], batch_size=128)
    >>> x, y = data[0]
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str],
        *,
        target_columns: Sequence[str | int] = (-1,),
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 10000,
        num_workers: int = 1,
        prefetch: int = 4,
        transform: Callable[[np.ndarray, np.ndarray], tuple] | None = None,
        initial_epoch: int = 0,
        rows: tuple[int, int] | None = None,
        start_step: int = 0,
        reader: ShardReader | None = None,
    ):
        super().__init__(workers=num_workers, use_multiprocessing=False, max_queue_size=prefetch)
        if batch_size < 1 or shuffle_buffer < 1:
            raise ConfigError(
                f"batch_size and shuffle_buffer must be positive, got {batch_size}, {shuffle_buffer}"
            )
        self.source = source
        self.paths = shard_paths(source)
        self.reader = reader or ShardReader()
        layouts = [self.reader.layout(path) for path in self.paths]
        self.columns = layouts[0][1]
        for path, (_, columns) in zip(self.paths, layouts):
            if columns != self.columns:
                raise DataError(
                    f"{path}: columns {columns} differ from {self.paths[0]}'s {self.columns}"
                )
        self.target_index = [self._column(c) for c in target_columns]
        self.feature_index = [i for i in range(len(self.columns)) if i not in self.target_index]
        if not self.feature_index:
            raise DataError(f"{self.paths[0]}: every column is a target; no feature columns left")
        counts = np.array([rows_ for rows_, _ in layouts], dtype=np.int64)
        self._file_starts = np.concatenate([[0], np.cumsum(counts)])
        start, stop = rows if rows is not None else (0, int(self._file_starts[-1]))
        self.row_range = (int(start), int(stop))
        # Rows of each shard inside the range: [lo, hi) in shard-local numbers.
        self._lo = np.clip(start - self._file_starts[:-1], 0, counts)
        self._hi = np.clip(stop - self._file_starts[:-1], 0, counts)
        self.size = int((self._hi - self._lo).sum())
        if self.size == 0:
            raise DataError(f"{source}: the shards hold no rows")
        self.target_columns = list(target_columns)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.num_workers, self.prefetch = num_workers, prefetch
        self.transform = transform
        self.start_step = start_step
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._windows: dict[tuple[int, int], np.ndarray] = {}
        self.set_epoch(initial_epoch)

    @classmethod
    def from_config(
        cls,
        data: Any,
        training: Any,
        source: Any = None,
        target_columns: list[str | int] | None = None,
        reader: ShardReader | None = None,
    ) -> ShardDataset:
        """The stream a config's `data` section describes (`data.shards`, `data.num_workers`, ...).

        Args:
            data: The `data` section (`DataConfig`).
            training: The `training` section (batch size, shuffle, seed).
            source: Overrides `data.shards`.
            target_columns: Override `data.target_columns`.
            reader: How to read a shard (default: numbers from CSV, Parquet or `.npy`).

        Raises:
            ConfigError: neither `source` nor `data.shards` is set.
        """
        source = source or data.shards
        if not source:
            raise ConfigError("data.shards: set a folder or glob of CSV, Parquet or .npy shards")
        if target_columns is None:
            target_columns = [int(c) if c.lstrip("-").isdigit() else c for c in data.target_columns]
        return cls(
            source,
            target_columns=target_columns,
            batch_size=training.batch_size,
            shuffle=training.shuffle,
            seed=training.seed or 0,
            shuffle_buffer=data.shuffle_buffer,
            num_workers=data.num_workers,
            prefetch=data.prefetch,
            reader=reader,
        )

    def _column(self, column: str | int) -> int:
        if isinstance(column, str) and column in self.columns:
            return self.columns.index(column)
        try:
            index = int(column)
        except (TypeError, ValueError):
            raise DataError(
                f"{self.paths[0]}: no column {column!r}; columns are {self.columns[:20]}"
            ) from None
        if not -len(self.columns) <= index < len(self.columns):
            raise DataError(
                f"{self.paths[0]}: column index {index} out of range for {len(self.columns)} columns"
            )
        return index % len(self.columns)

    # ---------------------------------------------------------------- position
    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch whose order the next batches follow."""
        self.epoch = int(epoch)
        n = len(self.paths)
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(n)
            if self.shuffle
            else np.arange(n)
        )
        self._order = order
        sizes = (self._hi - self._lo)[order]
        self._stream_starts = np.concatenate([[0], np.cumsum(sizes)])
        self._windows.clear()

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    def _window(self, window: int) -> np.ndarray:
        key = (self.epoch, window)
        permutation = self._windows.get(key)
        if permutation is None:
            length = min(self.shuffle_buffer, self.size - window * self.shuffle_buffer)
            permutation = np.random.default_rng([self.seed, self.epoch, window + 1]).permutation(
                length
            )
            self._windows[key] = permutation
        return permutation

    def batch_rows(self, step: int) -> list[tuple[str, int]]:
        """The `(shard path, row)` of every sample of batch `step` of the current epoch."""
        return [(self.paths[s], int(r)) for s, r in zip(*self._locate(step))]

    def _locate(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        positions = np.arange(step * self.batch_size, min((step + 1) * self.batch_size, self.size))
        if self.shuffle:
            windows = positions // self.shuffle_buffer
            offsets = positions % self.shuffle_buffer
            positions = np.array(
                [
                    w * self.shuffle_buffer + self._window(int(w))[o]
                    for w, o in zip(windows, offsets)
                ],
                dtype=np.int64,
            )
        slot = np.searchsorted(self._stream_starts, positions, side="right") - 1
        shard = self._order[slot]
        row = positions - self._stream_starts[slot] + self._lo[shard]
        return shard, row

    # ---------------------------------------------------------------- reading
    def _shard(self, index: int) -> np.ndarray:
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        array = self.reader.read(self.paths[index])
        with self._lock:
            self._cache[index] = array
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return array

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size) - self.start_step

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        shard, row = self._locate(index + self.start_step)
        out = np.empty((len(row), len(self.columns)), dtype="float32")
        for index in np.unique(shard):
            where = np.nonzero(shard == index)[0]
            rows = row[where]
            order = np.argsort(rows)
            out[where[order]] = self._shard(int(index))[rows[order]]
        x = out[:, self.feature_index]
        y = out[:, self.target_index]
        if y.shape[1] == 1:
            y = y[:, 0]
        if self.transform is not None:
            return self.transform(x, y)
        return x, y

    # ---------------------------------------------------------------- derived streams
    def _copy(self, **changes) -> ShardDataset:
        arguments = dict(
            target_columns=self.target_columns,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            shuffle_buffer=self.shuffle_buffer,
            num_workers=self.num_workers,
            prefetch=self.prefetch,
            transform=self.transform,
            initial_epoch=self.epoch,
            rows=self.row_range,
            start_step=self.start_step,
            reader=self.reader,
        )
        arguments.update(changes)
        return ShardDataset(self.paths, **arguments)

    def with_batch_size(self, batch_size: int) -> ShardDataset:
        """The same stream in batches of `batch_size` (used by `training.auto_batch_size`)."""
        return self._copy(batch_size=batch_size)

    def from_step(self, step: int) -> ShardDataset:
        """The same stream starting each epoch at batch `step` (resuming within an epoch)."""
        return self._copy(start_step=step)

    def with_transform(self, transform: Callable | None) -> ShardDataset:
        """The same stream with `transform(x, y)` applied to each batch."""
        return self._copy(transform=transform)

    @staticmethod
    def split_sizes(rows: int, test_split: float, validation_split: float) -> tuple[int, int, int]:
        """`(train, validation, test)` rows that `splits` cuts out of `rows`."""
        n_test = math.floor(rows * test_split) if test_split > 0 else 0
        n_val = math.floor((rows - n_test) * validation_split)
        return rows - n_test - n_val, n_val, n_test

    def splits(
        self, test_split: float, validation_split: float
    ) -> tuple[ShardDataset, ShardDataset, ShardDataset | None]:
        """Training, validation and test streams: the test rows are the last `test_split`
        of the rows in file order (none when 0), the validation rows the last
        `validation_split` of the rest (`split`)."""
        rest, test = self, None
        if test_split > 0:
            rest, test = self.split(test_split)
        train, validation = rest.split(validation_split)
        return train, validation, test

    def split(self, fraction: float) -> tuple[ShardDataset, ShardDataset]:
        """Holds out the last `fraction` of the rows (file order) as an unshuffled validation stream."""
        start, stop = self.row_range
        n_val = math.floor(self.size * fraction)
        if n_val == 0 or n_val == self.size:
            raise DataError(
                f"training.validation_split={fraction} leaves {self.size - n_val} training and "
                f"{n_val} validation rows out of {self.size}; give more data or change the split"
            )
        return self._copy(rows=(start, stop - n_val)), self._copy(
            rows=(stop - n_val, stop), shuffle=False
        )

    def feature_chunks(self, rows: int = 65536) -> Iterable[np.ndarray]:
        """The feature columns of every row, in file order, `rows` at a time (no transform)."""
        return self._column_chunks(self.feature_index, rows)

    def chunks(self, rows: int = 65536) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """`(features, targets (n, targets))` of every row, in file order, `rows` at a time."""
        width = len(self.feature_index)
        for chunk in self._column_chunks(self.feature_index + self.target_index, rows):
            yield chunk[:, :width], chunk[:, width:]

    def _column_chunks(self, columns: list[int], rows: int) -> Iterable[np.ndarray]:
        for index, path in enumerate(self.paths):
            lo, hi = int(self._lo[index]), int(self._hi[index])
            if hi <= lo:
                continue
            array = self.reader.read(path)
            for begin in range(lo, hi, rows):
                yield np.asarray(array[begin : min(begin + rows, hi)], dtype="float32")[:, columns]


def stream_statistics(stream: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of a stream, in one pass (Chan's parallel merge).

    The streaming twin of `keras_trainer.core.inputs.normalization.feature_statistics`
    (which takes arrays): constant features get variance 1 here too.

    Args:
        stream: A `ShardDataset` (its raw features, file order), or any iterable
            of `(x, ...)` batches or of feature arrays. Sequence windows
            `(n, steps, features)` count every time step.

    Returns:
        `(mean, variance)` as float64 arrays of one value per feature.

    Raises:
        DataError: the stream is empty.
    """
    chunks = stream.feature_chunks() if isinstance(stream, ShardDataset) else stream
    count, mean, m2 = 0, None, None
    for chunk in chunks:
        if isinstance(chunk, (tuple, list)):
            chunk = chunk[0]
        chunk = np.asarray(keras.ops.convert_to_numpy(chunk), dtype="float64")
        chunk = chunk.reshape(-1, chunk.shape[-1])
        n = len(chunk)
        if n == 0:
            continue
        chunk_mean = chunk.mean(axis=0)
        chunk_m2 = ((chunk - chunk_mean) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n, chunk_mean, chunk_m2
            continue
        delta = chunk_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + chunk_m2 + delta**2 * count * n / total
        count = total
    if mean is None:
        raise DataError("stream_statistics: the stream yielded no rows")
    variance = m2 / count
    variance[variance <= 1e-12] = 1.0  # as core.inputs.normalization.feature_statistics
    return mean, variance


# ------------------------------------------------------------------ fit's side
def is_stream(data: Any) -> bool:
    """Whether `fit` should read `data` as a stream of batches rather than arrays."""
    if isinstance(data, (str, os.PathLike, keras.utils.PyDataset)):
        return True
    module = type(data).__module__
    if module.startswith("tensorflow") and "Dataset" in type(data).__name__:
        return True
    if module.startswith("torch.utils.data"):
        return True
    return inspect.isgenerator(data) or (hasattr(data, "__next__") and hasattr(data, "__iter__"))


class _StreamEpochs(keras.callbacks.Callback):
    """Calls `set_epoch(epoch)` on a user's stream (or its sampler) as each epoch starts."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_epoch_begin(self, epoch, logs=None):
        self.target.set_epoch(epoch)


def start_at_step(stream: Any, step: int, callbacks: list) -> tuple[Any, list]:
    """`stream` starting its epochs at batch `step`, and `callbacks` retargeted to it."""
    started = stream.from_step(step)
    for callback in callbacks:
        if isinstance(callback, _StreamEpochs) and callback.target is stream:
            callback.target = started
    return started, callbacks


def open_stream(x: Any, y: Any, config: Any, validation_data: Any, initial_epoch: int = 0):
    """Prepares a stream for `fit`: `(batches, validation_data, steps_per_epoch, callbacks)`.

    Raises:
        ConfigError: `y` was given with a stream (the stream yields the targets),
            or a generator without `training.steps_per_epoch`.
    """
    if y is not None:
        raise ConfigError("fit: a stream yields (x, y) batches itself; pass y=None")
    if isinstance(x, (str, os.PathLike)):
        x = ShardDataset(
            x,
            batch_size=config.batch_size,
            shuffle=config.shuffle,
            seed=config.seed or 0,
        )
    callbacks = []
    if isinstance(x, ShardDataset):
        if x.batch_size != config.batch_size:
            x = x.with_batch_size(config.batch_size)
        if validation_data is None and config.validation_split > 0:
            x, validation_data = x.split(config.validation_split)
        x.set_epoch(initial_epoch)
    else:
        target = x if hasattr(x, "set_epoch") else getattr(x, "sampler", None)
        if target is not None and hasattr(target, "set_epoch"):
            target.set_epoch(initial_epoch)
            callbacks.append(_StreamEpochs(target))
    steps = config.steps_per_epoch
    if steps is None:
        try:
            steps = len(x)
        except TypeError:
            steps = None
        if steps is None and "Dataset" in type(x).__name__ and hasattr(x, "cardinality"):
            cardinality = int(x.cardinality())
            steps = cardinality if cardinality > 0 else None
        if steps is None:
            raise ConfigError(
                f"training.steps_per_epoch: a {type(x).__name__} has no length; set how many "
                "batches make an epoch"
            )
    return x, validation_data, steps, callbacks
