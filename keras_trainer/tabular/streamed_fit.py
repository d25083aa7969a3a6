"""`StreamedFit`: a `TablePreprocessor` learned from training rows that arrive in chunks.

The streaming twin of `TablePreprocessor.fit` (which takes one DataFrame), for
typed tables cut in shards (`keras_trainer.tabular.typed_shards`). It writes the
same per-column state through the same functions (`number_state`,
`category_state`, `binary_state`), so a model trained on shards saves the
metadata an in-memory fit saves. Memory holds the summaries, not the rows:

- `category` and `binary`: exact counts of each value (the vocabulary, the
  most frequent value, the two binary values), as in memory;
- `number`: exact count, mean, deviation (Chan's parallel merge, the filled
  cells included as an in-memory fit counts them) and minimum (the `log`
  offset); the **median** (the default imputation), a `most_frequent` fill and
  the `quantile` transform's quantiles come from a uniform reservoir sample of
  `sample_size` present values (Vitter's algorithm R, seeded). Up to
  `sample_size` values the sample is every value and the result is exact; beyond,
  the median's rank is off by `0.5 / sqrt(sample_size)` of the rows (one
  standard deviation): with the default 10,000, the value lies between the
  49th and 51st percentile of the training values in 95% of runs.

One pass over the training rows (`add`) learns everything for columns with
the default `transform: standard`; a `log` or `quantile` column needs its
offset or quantiles before its mean and deviation, so `needs_second_pass` is
true and `add_shaped` takes the same rows once more.

Columns whose type was inferred from the first shard are checked on every
chunk that `add` or `check` (any rows, training or not) sees: a number column
with a word, a binary column with a third value, or an `ignore` column (one
value) with a second value raises `ColumnTypeError` naming the place (`where`:
the shard file and line) and the column.

Example:

>>> fit = StreamedFit(specs, target="churn")
>>> for frame, where in chunks:
...     fit.add(frame, where)
>>> preprocessor = fit.preprocessor()
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Optional

import numpy as np

from keras_trainer.config.columns import ColumnConfig
from keras_trainer.errors import ColumnTypeError, DataError
from keras_trainer.tabular.cells import as_text
from keras_trainer.tabular.preprocessing import (
    FEATURE_TYPES,
    TablePreprocessor,
    binary_state,
    category_state,
    column_numbers,
    fill_value,
    finish_number,
    number_state,
    shape_number,
)

SAMPLE_SIZE = 10_000
Where = Callable[[int], str]


def _merge(a: tuple, b: tuple) -> tuple:
    """`(count, mean, m2)` of two parts merged (Chan et al.)."""
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = a, b
    if n_b == 0:
        return a
    if n_a == 0:
        return b
    total = n_a + n_b
    delta = mean_b - mean_a
    return total, mean_a + delta * n_b / total, m2_a + m2_b + delta**2 * n_a * n_b / total


def _moments(values: np.ndarray) -> tuple:
    mean = float(values.mean()) if len(values) else 0.0
    return len(values), mean, float(((values - mean) ** 2).sum())


class _Numbers:
    """A number column's summary: moments, minimum, missing cells and a reservoir sample."""

    def __init__(self, name: str, sample_size: int, seed: list[int]):
        self.name = name
        self.moments = (0, 0.0, 0.0)
        self.shaped = (0, 0.0, 0.0)
        self.low = math.inf
        self.missing = 0
        self.sample = np.empty(0)
        self.seen = 0
        self.size = sample_size
        self.rng = np.random.default_rng(seed)

    def add(self, cells: list, where: Where) -> None:
        values = column_numbers(cells, self.name, where=where)
        present = values[~np.isnan(values)]
        self.missing += len(values) - len(present)
        if not len(present):
            return
        self.moments = _merge(self.moments, _moments(present))
        self.low = min(self.low, float(present.min()))
        self._sample(present)

    def _sample(self, values: np.ndarray) -> None:
        room = self.size - len(self.sample)
        if room > 0:
            self.sample = np.concatenate([self.sample, values[:room]])
            self.seen += min(room, len(values))
            values = values[room:]
        if not len(values):
            return
        # Algorithm R: the i-th value (0-based) replaces a random slot with probability size / (i + 1).
        slots = self.rng.integers(0, self.seen + np.arange(len(values)) + 1)
        for slot, value in zip(slots, values):
            if slot < self.size:
                self.sample[slot] = value
        self.seen += len(values)

    def state(self, spec: ColumnConfig) -> dict:
        count, mean, _ = self.moments
        if count == 0:
            raise DataError(
                f"column {self.name!r}: every training cell is missing; declare it 'ignore'"
            )
        fill = fill_value(self.sample, spec, True, mean=mean)
        state = number_state(self.name, spec, fill, self.low, self.sample)
        if spec.transform == "standard":
            # The filled cells count in the mean and deviation, as in memory.
            merged = _merge(self.moments, (self.missing, float(fill), 0.0))
            return finish_number(state, merged[1], math.sqrt(merged[2] / merged[0]))
        return state

    def add_shaped(self, state: dict, cells: list, where: Where) -> None:
        values = column_numbers(cells, self.name, where=where)
        shaped = shape_number(state, np.where(np.isnan(values), state["fill"], values))
        self.shaped = _merge(self.shaped, _moments(shaped))


class _Values:
    """A category, binary or ignored column's summary: the count of each present value."""

    def __init__(self, name: str, kind: str, inferred: bool):
        self.name, self.kind, self.inferred = name, kind, inferred
        self.counts: Counter = Counter()

    def add(self, cells: list, where: Where) -> None:
        texts = [as_text(c) for c in cells]
        before = set(self.counts)
        self.counts.update(t for t in texts if t is not None)
        limit = {"binary": 2, "ignore": 1}.get(self.kind)
        if limit is None or len(self.counts) <= limit:
            return
        if self.kind == "binary" and not self.inferred:
            return  # a declared binary column: binary_state names its values at the end
        row, value = next((r, t) for r, t in enumerate(texts) if t is not None and t not in before)
        seen = ", ".join(repr(v) for v in sorted(before)) or "no value"
        change = "a third value" if self.kind == "binary" else "a second value"
        raise ColumnTypeError(
            f"column {self.name!r} was inferred {self.kind} from the first shard ({seen}); "
            f"{where(row)} holds {value!r}, {change}: the column's type changes "
            "between shards. Declare its type in data.columns (e.g. category)"
        )


class StreamedFit:
    """Learns each column's preprocessing state from chunks of training rows.

    Args:
        specs: Column name -> `ColumnConfig`, every column but the target, in table
            order (`keras_trainer.tabular.tables.column_specs` of the first chunk).
        target: The target column.
        inferred: The columns whose type was inferred (checked on later chunks).
        sample_size: Present values of a number column kept for its median and
            quantiles. Defaults to 10,000.
        seed: Seed of the reservoir sampling. Defaults to 0.
    """

    def __init__(
        self,
        specs: dict[str, ColumnConfig],
        target: Optional[str] = None,
        inferred: Iterable[str] = (),
        sample_size: int = SAMPLE_SIZE,
        seed: int = 0,
    ):
        self.specs = dict(specs)
        self.target = target
        inferred = set(inferred)
        self.summaries: dict[str, Any] = {}
        for position, (name, spec) in enumerate(self.specs.items()):
            if spec.type == "number":
                self.summaries[name] = _Numbers(name, sample_size, [seed, position])
            elif spec.type in FEATURE_TYPES or (spec.type == "ignore" and name in inferred):
                self.summaries[name] = _Values(name, spec.type, name in inferred)
        self.rows = 0
        self._states: Optional[dict[str, dict]] = None
        self._checked = {
            n: _Values(n, s.type, True)
            for n, s in self.specs.items()
            if s.type in ("binary", "ignore") and n in inferred
        }

    def check(self, frame: Any, where: Where) -> None:
        """Checks the types of any rows (training or not) without learning from them: the
        number columns hold numbers, an inferred binary column at most two values, an
        inferred `ignore` column at most one.

        Raises:
            ColumnTypeError: a cell of another type, naming `where(row)` and the column.
        """
        for name, spec in self.specs.items():
            if spec.type == "number":
                column_numbers(frame[name], name, where=where)
            elif name in self._checked:
                self._checked[name].add(list(frame[name]), where)

    def add(self, frame: Any, where: Where) -> None:
        """Counts a chunk of training rows (a DataFrame); `where(i)` names row `i`'s place.

        Raises:
            ColumnTypeError: a cell of another type than the column's (see the module).
        """
        if not len(frame):
            return
        for name, summary in self.summaries.items():
            summary.add(list(frame[name]), where)
        self.rows += len(frame)

    @property
    def needs_second_pass(self) -> bool:
        """Whether a `log` or `quantile` number column needs the rows again (`add_shaped`)."""
        return any(self.specs[n].transform != "standard" for n in self._numbers())

    def add_shaped(self, frame: Any, where: Where) -> None:
        """Second pass over the same rows: the mean and deviation of transformed numbers."""
        states = self._first_states()
        for name in self._numbers():
            if self.specs[name].transform != "standard":
                self.summaries[name].add_shaped(states[name], list(frame[name]), where)

    def preprocessor(self) -> TablePreprocessor:
        """The fitted `TablePreprocessor` (the state `TablePreprocessor.fit` writes).

        Raises:
            DataError: no rows, a number column with no value, or no feature column.
            ColumnTypeError: a declared binary column with more than two values.
        """
        if not self.rows:
            raise DataError("the training shards hold no rows with a target")
        states = self._first_states()
        columns = []
        for name, spec in self.specs.items():
            if spec.type not in FEATURE_TYPES:
                columns.append({"name": name, "type": spec.type})
                continue
            state = dict(states[name])
            if spec.type == "number" and "mean" not in state:
                count, mean, m2 = self.summaries[name].shaped
                state = finish_number(state, mean, math.sqrt(m2 / max(count, 1)))
            columns.append(state)
        if not any(c["type"] in FEATURE_TYPES for c in columns):
            raise DataError(
                "the table has no feature column (every column is id, ignore or the target)"
            )
        return TablePreprocessor(columns, self.target)

    def _numbers(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.type == "number"]

    def _first_states(self) -> dict[str, dict]:
        if self._states is None:
            self._states = {}
            for name, spec in self.specs.items():
                summary = self.summaries.get(name)
                if spec.type == "number":
                    self._states[name] = summary.state(spec)
                elif spec.type == "category":
                    self._states[name] = category_state(name, summary.counts, spec)
                elif spec.type == "binary":
                    self._states[name] = binary_state(name, summary.counts, spec)
        return self._states
