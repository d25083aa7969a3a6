"""`TablePreprocessor`: typed columns of raw rows -> the float matrix a network reads.

Learned on the training rows only and kept as plain JSON (`get_config`), which
travels in the saved model's metadata (`"preprocessing"`), so `predict`,
`evaluate`, `serve`, the Python API and an exported ONNX network all read raw
rows (strings, blanks, unseen values) through the same NumPy code on every
backend. Per column type:

- `number`: missing cells imputed (median by default), optionally `log` or
  `quantile` transformed, then standardized with the training mean and deviation.
- `category`: a vocabulary of the training values (most frequent first) with
  slot 0 for values outside it (unseen, or cut by `max_categories`); one-hot,
  or for `encoding="embedding"` the same one-hot block that a
  `CategoryEmbedding` layer projects to `embedding_size` learned numbers.
- `binary`: any two values -> 0/1 (`positive` is 1).
- `id`: not a feature; its values name the prediction rows. `ignore`: dropped.

Any column may add a 0/1 `<name>_missing` feature (`missing_indicator`).

Example:

>>> pre = TablePreprocessor.fit(train_frame, {"island": {"type": "category"}}, target="species")
>>> x, report = pre.transform(new_frame)
>>> report.unseen  # {"island": {"Atlantis": 1}}
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Optional

import numpy as np

from keras_trainer.config.columns import ColumnConfig
from keras_trainer.errors import ColumnTypeError, DataError
from keras_trainer.tabular.cells import all_numbers, as_text, is_missing

FEATURE_TYPES = ("number", "category", "binary")
TRUE_WORDS = ("yes", "true", "1", "y", "t", "positive", "pos")
ONE_HOT_LIMIT = 16  # encoding "auto": one-hot up to this many values, else an embedding
OOV = "<unseen>"


def embedding_size(slots: int) -> int:
    """Width of a category's embedding: `min(50, round(1.6 * slots ** 0.56))` (fast.ai's rule).

    `slots` counts the vocabulary and the out-of-vocabulary slot.
    """
    return int(min(50, max(1, round(1.6 * slots**0.56))))


def _is_number_value(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def data_row(row: int) -> str:
    """Where a cell is, for messages: "data row 3" (1-based, header not counted)."""
    return f"data row {row + 1}"


def column_numbers(
    values: Any, name: str, kind: str = "number", where: Callable[[int], str] = data_row
) -> np.ndarray:
    """A column's cells as float64 (NaN where missing).

    Args:
        values: The cells.
        name: The column, for messages.
        kind: The column's type, for messages.
        where: Names the place of cell `row` (0-based) in messages; defaults to
            `data row N`. Shard streams name the file and line.

    Raises:
        ColumnTypeError: a cell that is not a number, naming the column, row and value.
    """
    cells = list(values)
    out = np.full(len(cells), np.nan)
    for row, cell in enumerate(cells):
        if is_missing(cell):
            continue
        if isinstance(cell, (bool, np.bool_)):
            out[row] = float(cell)
            continue
        try:
            out[row] = float(cell.strip() if isinstance(cell, str) else cell)
        except (TypeError, ValueError):
            raise ColumnTypeError(
                f"column {name!r} is a {kind} column; {where(row)} holds {cell!r}, "
                "not a number (declare it as category in data.columns, or fix the cell)"
            ) from None
        if not math.isfinite(out[row]):
            raise DataError(f"column {name!r}: {where(row)} is infinite")
    return out


@dataclasses.dataclass
class TransformReport:
    """What `TablePreprocessor.transform` met: unseen category values and filled cells.

    Attributes:
        rows: Rows transformed.
        unseen: Column -> {value: rows} of category values outside the vocabulary
            (they went to the out-of-vocabulary slot).
        imputed: Column -> number of missing cells filled.
    """

    rows: int = 0
    unseen: dict = dataclasses.field(default_factory=dict)
    imputed: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def add(self, other: TransformReport) -> None:
        """Adds the counts of `other` (the report of more rows) to this one."""
        self.rows += other.rows
        for name, values in other.unseen.items():
            mine = self.unseen.setdefault(name, {})
            for value, count in values.items():
                mine[value] = mine.get(value, 0) + count
        for name, count in other.imputed.items():
            self.imputed[name] = self.imputed.get(name, 0) + count

    def to_text(self) -> str:
        """One line per column with unseen values or filled cells (empty when none)."""
        lines = []
        for name, values in self.unseen.items():
            shown = ", ".join(f"{v!r} ({n})" for v, n in sorted(values.items())[:5])
            lines.append(
                f"column {name!r}: {sum(values.values())} of {self.rows} rows hold values unseen in "
                f"training, read as out-of-vocabulary: {shown}"
            )
        for name, count in self.imputed.items():
            lines.append(f"column {name!r}: {count} of {self.rows} missing cells filled")
        return "\n".join(lines)


def fill_value(
    present: Any,
    spec: ColumnConfig,
    numeric: bool,
    counts: Optional[Counter] = None,
    mean: Optional[float] = None,
) -> Any:
    """A column's imputation value from its training values (`spec.impute`).

    Args:
        present: The present training values, or a uniform sample of them (the median).
        spec: The column's config.
        numeric: Whether it is a number column (`auto` is the median, else the most frequent).
        counts: The exact counts of the present values, when known (the most frequent).
        mean: The exact mean of the present values, when known.
    """
    impute = spec.impute
    if impute == "auto":
        impute = "median" if numeric else "most_frequent"
    if impute == "constant":
        return float(spec.fill_value) if numeric else as_text(spec.fill_value)
    if not len(present) and not counts:
        return None
    if impute == "median":
        return float(np.median(present))
    if impute == "mean":
        return float(np.mean(present) if mean is None else mean)
    counts = counts if counts is not None else Counter(list(present))
    return min(counts, key=lambda v: (-counts[v], v))  # most frequent, ties by value


def number_state(name: str, spec: ColumnConfig, fill: float, low: float, sample: Any) -> dict:
    """A number column's state before its mean and deviation (`finish_number`).

    Args:
        fill: The imputation value.
        low: The smallest training value (the `log` transform's offset).
        sample: The training values, or a uniform sample of them (the `quantile`
            transform's quantiles).
    """
    state = {
        "name": name,
        "type": "number",
        "fill": fill,
        "indicator": spec.missing_indicator,
        "transform": spec.transform,
    }
    if spec.transform == "log":
        state["offset"] = float(low)
    elif spec.transform == "quantile":
        state["quantiles"] = np.quantile(np.asarray(sample), np.linspace(0, 1, 101)).tolist()
    return state


def finish_number(state: dict, mean: float, std: float) -> dict:
    """`state` with the mean and deviation of its shaped training values (a constant
    column's deviation reads as 1)."""
    state["mean"], state["std"] = float(mean), float(std) if std > 0 else 1.0
    return state


def _fit_number(name: str, cells: list, spec: ColumnConfig) -> dict:
    values = column_numbers(cells, name)
    present = values[~np.isnan(values)]
    if not len(present):
        raise DataError(f"column {name!r}: every training cell is missing; declare it 'ignore'")
    fill = fill_value(present, spec, True)
    state = number_state(name, spec, fill, present.min(), present)
    shaped = shape_number(state, np.where(np.isnan(values), state["fill"], values))
    return finish_number(state, shaped.mean(), shaped.std())


def shape_number(state: dict, values: np.ndarray) -> np.ndarray:
    """A number column's filled values after its transform (`log`, `quantile`, or none)."""
    if state["transform"] == "log":
        return np.log1p(np.maximum(values - state["offset"], 0.0))
    if state["transform"] == "quantile":
        quantiles = np.asarray(state["quantiles"])
        return np.interp(values, quantiles, np.linspace(0, 1, len(quantiles)))
    return values


def category_state(name: str, counts: Counter, spec: ColumnConfig) -> dict:
    """A category column's state from the counts of its present training values."""
    vocabulary = sorted(counts, key=lambda v: (-counts[v], v))[: spec.max_categories]
    encoding = spec.encoding
    if encoding == "auto":
        encoding = "one_hot" if len(vocabulary) <= ONE_HOT_LIMIT else "embedding"
    # Rare values train the out-of-vocabulary slot that unseen values use later.
    least = spec.min_frequency or (2 if encoding == "embedding" else 1)
    vocabulary = [v for v in vocabulary if counts[v] >= least]
    return {
        "name": name,
        "type": "category",
        "vocabulary": vocabulary,
        "fill": fill_value([], spec, False, counts),
        "indicator": spec.missing_indicator,
        "encoding": encoding,
        "embedding_size": (spec.embedding_size or embedding_size(len(vocabulary) + 1))
        if encoding == "embedding"
        else None,
        # Whether the training values were words: a number arriving later is a type change.
        "text": not all_numbers(list(counts)),
    }


def _fit_category(name: str, cells: list, spec: ColumnConfig) -> dict:
    texts = [as_text(c) for c in cells]
    return category_state(name, Counter(t for t in texts if t is not None), spec)


def binary_state(name: str, counts: Counter, spec: ColumnConfig) -> dict:
    """A binary column's state from the counts of its present training values.

    Raises:
        ColumnTypeError: more than two values.
    """
    values = sorted(counts)
    if len(values) > 2:
        raise ColumnTypeError(
            f"column {name!r} is declared binary but its training rows hold {len(values)} values "
            f"({', '.join(values[:5])}); declare it category"
        )
    positive = as_text(spec.positive) if spec.positive is not None else None
    if positive is None:
        words = [v for v in values if v.lower() in TRUE_WORDS]
        positive = words[0] if words else (values[-1] if values else "1")
    negatives = [v for v in values if v != positive]
    return {
        "name": name,
        "type": "binary",
        "values": [negatives[0] if negatives else None, positive],
        "fill": fill_value([], spec, False, counts),
        "indicator": spec.missing_indicator,
    }


def _fit_binary(name: str, cells: list, spec: ColumnConfig) -> dict:
    texts = [as_text(c) for c in cells]
    return binary_state(name, Counter(t for t in texts if t is not None), spec)


_FITTERS = {"number": _fit_number, "category": _fit_category, "binary": _fit_binary}


class TablePreprocessor:
    """Typed columns -> a float32 feature matrix, with its state as JSON.

    Args:
        columns: Per-column state, as `fit` learns it (`get_config()["columns"]`).
        target: The target column (never a feature), or `None`.
    """

    def __init__(self, columns: list[dict], target: Optional[str] = None):
        self.columns = [dict(c) for c in columns]
        self.target = target

    @classmethod
    def fit(
        cls,
        frame: Any,
        declared: Optional[Mapping[str, Any]] = None,
        target: Optional[str] = None,
    ) -> TablePreprocessor:
        """Learns each column's state from the training rows of a pandas DataFrame.

        Args:
            frame: The training rows (every column; the target is skipped).
            declared: Column name -> `ColumnConfig` (or its dict); the other columns'
                types are inferred (`keras_trainer.tabular.tables.infer_column_type`).
            target: The target column.

        Raises:
            ConfigError: a declared column that the table does not have.
            ColumnTypeError: a declared type that the values do not fit.
        """
        from keras_trainer.tabular.tables import column_specs

        specs = column_specs(frame, declared or {}, target)
        columns = []
        for name, spec in specs.items():
            if spec.type in FEATURE_TYPES:
                columns.append(_FITTERS[spec.type](name, list(frame[name]), spec))
            else:
                columns.append({"name": name, "type": spec.type})
        if not any(c["type"] in FEATURE_TYPES for c in columns):
            raise DataError(
                "the table has no feature column (every column is id, ignore or the target)"
            )
        return cls(columns, target)

    # ------------------------------------------------------------ description
    @property
    def input_columns(self) -> list[str]:
        """The raw columns a row must have (features, then nothing else)."""
        return [c["name"] for c in self.columns if c["type"] in FEATURE_TYPES]

    @property
    def id_columns(self) -> list[str]:
        return [c["name"] for c in self.columns if c["type"] == "id"]

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features: `x`, `x_missing`, `island=Biscoe`, `island=<unseen>`."""
        names = []
        for column in self._features():
            name = column["name"]
            if column["type"] == "category":
                names += [f"{name}={v}" for v in [OOV, *column["vocabulary"]]]
            else:
                names.append(name)
            if column["indicator"]:
                names.append(f"{name}_missing")
        return names

    def embedding_blocks(self) -> list[list[int]]:
        """`[start, width, size]` of each embedded category's one-hot block in the features."""
        blocks, start = [], 0
        for column in self._features():
            width = len(column["vocabulary"]) + 1 if column["type"] == "category" else 1
            if column.get("encoding") == "embedding":
                blocks.append([start, width, int(column["embedding_size"])])
            start += width + (1 if column["indicator"] else 0)
        return blocks

    def _features(self) -> list[dict]:
        return [c for c in self.columns if c["type"] in FEATURE_TYPES]

    # -------------------------------------------------------------- transform
    def transform(
        self, frame: Any, where: Callable[[int], str] = data_row
    ) -> tuple[np.ndarray, TransformReport]:
        """Encodes raw rows (a pandas DataFrame; extra columns are ignored).

        Args:
            frame: The rows.
            where: Names the place of row `i` (0-based) in messages (`data row N`;
                a shard stream names its file and line).

        Returns:
            `(features float32 (rows, len(feature_names)), report)`.

        Raises:
            DataError: a feature column is absent (named).
            ColumnTypeError: a column holds another type than in training.
        """
        missing = [name for name in self.input_columns if name not in frame.columns]
        if missing:
            raise DataError(
                f"rows lack the column(s) {missing} the model was trained with "
                f"(it reads {self.input_columns})"
            )
        report = TransformReport(rows=len(frame))
        blocks = [
            self._encode(column, list(frame[column["name"]]), report, where)
            for column in self._features()
        ]
        return np.concatenate(blocks, axis=1).astype("float32"), report

    def _encode(
        self, column: dict, cells: list, report: TransformReport, where: Callable[[int], str]
    ) -> np.ndarray:
        name, kind = column["name"], column["type"]
        if kind == "number":
            values = column_numbers(cells, name, where=where)
            missing = np.isnan(values)
            shaped = shape_number(column, np.where(missing, column["fill"], values))
            block = ((shaped - column["mean"]) / column["std"])[:, None]
        else:
            texts = [as_text(c) for c in cells]
            missing = np.array([t is None for t in texts], dtype=bool)
            texts = [column["fill"] if t is None else t for t in texts]
            if kind == "binary":
                block = self._binary(column, texts, cells, where)
            else:
                block = self._one_hot(column, texts, cells, report, where)
        if missing.any():
            report.imputed[name] = int(missing.sum())
        if column["indicator"]:
            block = np.concatenate([block, missing[:, None].astype("float64")], axis=1)
        return block

    @staticmethod
    def _binary(column: dict, texts: list, cells: list, where: Callable[[int], str]) -> np.ndarray:
        negative, positive = column["values"]
        for row, text in enumerate(texts):
            if text not in (negative, positive):
                raise ColumnTypeError(
                    f"column {column['name']!r} is binary ({negative!r}/{positive!r} in training); "
                    f"{where(row)} holds {cells[row]!r}"
                )
        return np.array([[t == positive] for t in texts], dtype="float64")

    @staticmethod
    def _one_hot(
        column: dict, texts: list, cells: list, report: TransformReport, where: Callable[[int], str]
    ) -> np.ndarray:
        name = column["name"]
        if column["text"]:
            for row, cell in enumerate(cells):
                if _is_number_value(cell) and not is_missing(cell):
                    raise ColumnTypeError(
                        f"column {name!r} held words in training ({', '.join(column['vocabulary'][:3])}, "
                        f"...); {where(row)} holds the number {cell!r}"
                    )
        index = {value: slot for slot, value in enumerate(column["vocabulary"], start=1)}
        slots = np.array([index.get(t, 0) for t in texts])
        for text, slot in zip(texts, slots):
            if slot == 0:
                unseen = report.unseen.setdefault(name, {})
                unseen[text] = unseen.get(text, 0) + 1
        block = np.zeros((len(texts), len(index) + 1))
        block[np.arange(len(texts)), slots] = 1.0
        return block

    def row_ids(self, frame: Any) -> Optional[list]:
        """The first id column's values as text, or `None` without one."""
        ids = [name for name in self.id_columns if name in frame.columns]
        return [as_text(v) for v in frame[ids[0]]] if ids else None

    # ---------------------------------------------------------------- state
    def get_config(self) -> dict:
        """The JSON state (the `preprocessing` entry of the model's metadata)."""
        return {"target": self.target, "columns": self.columns}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TablePreprocessor:
        """Rebuilds a preprocessor from `get_config()` output.

        Raises:
            DataError: the state is not one `get_config` wrote.
        """
        try:
            columns = list(config["columns"])
            for column in columns:
                if column["type"] not in (*FEATURE_TYPES, "id", "ignore"):
                    raise KeyError(column["type"])
        except (KeyError, TypeError) as error:
            raise DataError(f"preprocessing metadata: malformed ({error!r})") from None
        return cls(columns, config.get("target"))
