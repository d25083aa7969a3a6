"""Typed tables cut in shards: preprocessing learned in one pass, rows encoded shard by shard.

A folder or glob of CSV or Parquet shards whose cells hold text or blanks (or
with declared `data.columns`) trains like one typed table without holding its
rows at once (`TypedShards.learn`):

1. the column types are declared, or inferred from the first shard
   (`keras_trainer.tabular.tables.column_specs`);
2. a counting pass reads each shard in turn: its rows with a target (rows
   without one are left out, as in memory), the target's classes, and the
   inferred types checked (`StreamedFit.check`), so a type change in any shard
   stops the run before training, naming the file, line and column;
3. one pass over the training rows (the first rows in file order; validation and
   test are the last, as for numeric shards) learns the `TablePreprocessor`
   state (`keras_trainer.tabular.streamed_fit.StreamedFit`): the same JSON, in
   the same metadata, as an in-memory fit;
4. `fit` reads a `ShardDataset` whose `TypedShardReader` encodes a shard when a
   batch first needs it (two shards are kept at a time).

`predict` and `evaluate` read typed shard globs through `shard_frames` and
`TypedShardReader` with the saved state; unseen category values and filled cells
are counted over all shards.

Example:

>>> shards = TypedShards.learn("shards/*.csv", "churn", config)
>>> train, validation, test = shards.streams(config)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from keras_trainer.core.inputs.streaming import ShardDataset, ShardReader, shard_paths
from keras_trainer.errors import ColumnTypeError, DataError
from keras_trainer.tabular.cells import all_numbers, as_text
from keras_trainer.tabular.preprocessing import TablePreprocessor, TransformReport
from keras_trainer.tabular.tables import (
    TYPED_SHARD_SUFFIXES,
    column_specs,
    encode_target,
    read_frame,
    typed_shard_paths,
)

TARGET_VALUES = 1024  # distinct number targets remembered while looking for class names


def shard_place(path: str, positions: np.ndarray) -> Any:
    """`where(i)` for messages: the file and line (CSV, header on line 1) or row of row `i`."""
    if path.endswith(".csv"):
        return lambda row: f"{path} line {int(positions[row]) + 2}"
    return lambda row: f"{path} row {int(positions[row]) + 1}"


def shard_frames(source: Any) -> Iterable[tuple[str, Any]]:
    """`(path, DataFrame)` of each shard of `source`, in file order, one at a time."""
    for path in typed_shard_paths(source):
        yield path, read_frame(path)


def target_rows(path: str, frame: Any, target: str) -> tuple[Any, np.ndarray]:
    """The rows of a shard that have a target, and their positions in the shard.

    Raises:
        DataError: the shard has no target column.
    """
    if target not in frame.columns:
        raise DataError(
            f"{path}: no column {target!r} for the target (columns: {', '.join(frame.columns)})"
        )
    keep = np.array([as_text(v) is not None for v in frame[target]], dtype=bool)
    return frame[keep].reset_index(drop=True), np.nonzero(keep)[0]


class TypedShardReader(ShardReader):
    """Reads a typed shard as `[encoded features..., target]` rows for a `ShardDataset`.

    Args:
        preprocessor: The fitted (or saved) `TablePreprocessor`.
        target: The target column.
        class_names: The text classes (targets become their indices), or `None`:
            the targets are numbers (regression, or class labels 0, 1, ...).
        rows: Shard path -> rows with a target (the counting pass), or `None` to count
            them when the stream opens.
    """

    def __init__(
        self,
        preprocessor: TablePreprocessor,
        target: str,
        class_names: Optional[list[str]],
        rows: Optional[dict[str, int]] = None,
    ):
        self.preprocessor = preprocessor
        self.target = target
        self.class_names = class_names
        self.rows = dict(rows or {})
        self.reports: dict[str, TransformReport] = {}  # the last report of each shard
        self._lock = threading.Lock()

    @property
    def columns(self) -> list[str]:
        return [*self.preprocessor.feature_names, self.target]

    def layout(self, path: str) -> tuple[int, list[str]]:
        if path not in self.rows:
            self.rows[path] = len(target_rows(path, read_frame(path), self.target)[0])
        return self.rows[path], self.columns

    def read(self, path: str) -> np.ndarray:
        frame, positions = target_rows(path, read_frame(path), self.target)
        if len(frame) != self.rows.get(path, len(frame)):
            raise DataError(
                f"{path}: holds {len(frame)} rows with a target, {self.rows[path]} when the "
                "stream opened; a shard changed during training"
            )
        x, report = self.preprocessor.transform(frame, where=shard_place(path, positions))
        y, names = encode_target(frame[self.target], self.target, self.class_names)
        if self.class_names is None and names is not None:
            raise ColumnTypeError(
                f"{path}: target column {self.target!r} holds text ({', '.join(names[:3])}, "
                "...); the model predicts its numbers"
            )
        with self._lock:
            self.reports[path] = report
        return np.column_stack([x, y.astype("float64")]).astype("float32")

    def report(self) -> TransformReport:
        """Unseen values and filled cells over the shards read so far (each counted once)."""
        total = TransformReport()
        with self._lock:
            for report in self.reports.values():
                total.add(report)
        return total


class TypedShards:
    """The training shards of a typed table, with their preprocessing learned.

    Build it with `learn`. Attributes: `preprocessor`, `target`, `class_names`
    (`None` for regression until a head says otherwise), `classification`,
    `width` (encoded features), `paths`, `rows` (path -> rows with a target),
    `sizes` (train, validation, test rows).
    """

    def __init__(self, source: Any, paths: list[str], target: str, rows: dict[str, int]):
        self.source = source
        self.paths = paths
        self.target = target
        self.rows = rows
        self.class_names: Optional[list[str]] = None
        self.text_classes: Optional[list[str]] = None  # class names read from the targets
        self.classification = False
        self.preprocessor: Optional[TablePreprocessor] = None
        self.sizes = (0, 0, 0)

    @property
    def width(self) -> int:
        return len(self.preprocessor.feature_names)

    @classmethod
    def learn(
        cls, source: Any, target: Optional[str], config: Any, seed: Optional[int] = None
    ) -> TypedShards:
        """Counts the shards' rows, sets the head from the targets and fits the preprocessing
        on the training rows (one pass; see the module docstring). Sets a null
        `model.output_dim`.

        Args:
            source: A folder or glob of CSV or Parquet shards.
            target: The target column; `None`: `data.target_columns[0]` when named,
                else the last column.
            config: The run's config (`data`, `model`, `training`).
            seed: Seed of the numbers' reservoir samples; defaults to `training.seed`.

        Raises:
            DataError: unreadable shards, shards with other columns, no target.
            ColumnTypeError: a column whose type changes in a later shard (file, line, column).
        """
        from keras_trainer.tabular.streamed_fit import StreamedFit
        from keras_trainer.tabular.typed_training import target_column

        paths = typed_shard_paths(source)
        first = read_frame(paths[0])
        target = target_column(first, str(source), target, config)
        shards = cls(source, paths, target, {})
        declared = config.data.columns or {}
        specs = column_specs(target_rows(paths[0], first, target)[0], declared, target)
        seed = (config.training.seed or 0) if seed is None else seed
        fit = StreamedFit(specs, target, [n for n in specs if n not in declared], seed=seed)
        # The counting pass: rows with a target, the target's values, every shard's types.
        targets = _Targets(target)
        for path in paths:
            frame = first if path == paths[0] else read_frame(path)
            if list(frame.columns) != list(first.columns):
                raise DataError(
                    f"{path}: columns {list(frame.columns)} differ from {paths[0]}'s "
                    f"{list(first.columns)}"
                )
            frame, positions = target_rows(path, frame, target)
            fit.check(frame, shard_place(path, positions))
            shards.rows[path] = len(frame)
            targets.add(frame[target], path)
        shards._head(targets, config.model)
        shards.sizes = ShardDataset.split_sizes(
            sum(shards.rows.values()),
            config.data.test_split,
            config.training.validation_split or 0.2,
        )
        # The learning pass, over the training rows only.
        for frame, where in shards.training_chunks(first):
            fit.add(frame, where)
        if fit.needs_second_pass:
            for frame, where in shards.training_chunks():
                fit.add_shaped(frame, where)
        shards.preprocessor = fit.preprocessor()
        return shards

    def _head(self, targets: _Targets, model_config: Any) -> None:
        from keras_trainer.tabular.data import CLASSIFICATION_ACTIVATIONS, head_targets

        names = self.text_classes = targets.class_names()
        activation = model_config.output_activation
        if names is not None and activation not in CLASSIFICATION_ACTIVATIONS:
            raise DataError(
                f"{self.source}: target {self.target!r} holds class names "
                f"({', '.join(names[:4])}); set model.output_activation to 'softmax' "
                "(or 'sigmoid' for two classes)"
            )
        probe = np.array([0.0, len(names) - 1.0]) if names is not None else targets.probe()
        _, self.classification = head_targets(probe, model_config, str(self.source))
        if self.classification and names is None:
            width = 2 if activation == "sigmoid" else model_config.output_dim
            names = [str(i) for i in range(width)]
        self.class_names = names

    def training_chunks(self, first: Any = None) -> Iterable[tuple[Any, Any]]:
        """`(rows, where)` of the training rows, one shard at a time, in file order."""
        left = self.sizes[0]
        for path in self.paths:
            if left <= 0:
                return
            frame = first if (first is not None and path == self.paths[0]) else read_frame(path)
            frame, positions = target_rows(path, frame, self.target)
            take = min(left, len(frame))
            left -= take
            yield frame.iloc[:take], shard_place(path, positions[:take])

    def reader(self) -> TypedShardReader:
        return TypedShardReader(self.preprocessor, self.target, self.text_classes, self.rows)

    def streams(self, config: Any) -> tuple[ShardDataset, ShardDataset, Optional[ShardDataset]]:
        """Training (shuffled), validation and test streams of encoded rows: the test rows
        are the last `data.test_split` of the rows in file order, the validation rows the
        `training.validation_split` (default 0.2) before them."""
        data, training = config.data, config.training
        stream = ShardDataset.from_config(
            data, training, self.paths, target_columns=[self.target], reader=self.reader()
        )
        if self.classification:
            stream = stream.with_transform(lambda x, y: (x, y.astype("int64")))
        train, validation, test = stream.splits(data.test_split, training.validation_split or 0.2)
        if train.size != self.sizes[0]:  # the preprocessing must have seen these rows
            raise DataError(f"{self.source}: {train.size} training rows, {self.sizes[0]} fitted")
        return train, validation, test


class _Targets:
    """The target values of every shard: class names (text), or the range of numbers."""

    def __init__(self, name: str):
        self.name = name
        self.distinct: Optional[set] = set()  # None once too many numbers were seen
        self.words = False
        self.low, self.high, self.whole = np.inf, -np.inf, True

    def add(self, values: Any, path: str) -> None:
        texts = [as_text(v) for v in values]
        if not self.words and all_numbers(texts):
            numbers = np.array([float(t) for t in texts])
            if len(numbers):
                self.low = min(self.low, float(numbers.min()))
                self.high = max(self.high, float(numbers.max()))
                self.whole = self.whole and bool(np.all(np.mod(numbers, 1) == 0))
        elif self.distinct is None:
            raise DataError(
                f"{path}: target column {self.name!r} holds text after more than "
                f"{TARGET_VALUES} distinct numbers in earlier shards; is it the target?"
            )
        else:
            self.words = True
        if self.distinct is not None:
            self.distinct.update(texts)
            if len(self.distinct) > TARGET_VALUES and not self.words:
                self.distinct = None

    def class_names(self) -> Optional[list[str]]:
        return sorted(self.distinct) if self.words else None

    def probe(self) -> np.ndarray:
        """Two targets with the range and wholeness of all (what `head_targets` needs)."""
        return np.array([self.low, self.high if self.whole else self.high + 0.5])


def is_typed_shards(source: Any, config: Any = None) -> bool:
    """Whether shards are read as a typed table: declared `data.columns`, or a first
    CSV or Parquet shard with text or blank cells."""
    from keras_trainer.tabular.typed_training import is_typed_table

    if config is not None and config.data.columns:
        return True
    first = shard_paths(source)[0]
    return first.endswith(TYPED_SHARD_SUFFIXES) and is_typed_table(os.fspath(first))
