"""`ColumnConfig`: how one column of a table is read (the `data.columns` entries).

A typed table names each column's kind: `number` (standardized), `category`
(a vocabulary with an out-of-vocabulary slot, then one-hot or an embedding),
`binary` (any two values), `id` (carried to the predictions, not a feature) or
`ignore` (dropped). Columns left out are inferred from the training rows
(`keras-trainer inspect DATA` prints what it infers, in this form).

Example:

>>> ColumnConfig.from_dict({"type": "number", "transform": "log"}).impute
'auto'
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional, Union

from keras_trainer.config.fields import ConfigSection, option
from keras_trainer.errors import ConfigError

ColumnType = Literal["number", "category", "binary", "ignore", "id"]


@dataclasses.dataclass
class ColumnConfig(ConfigSection):
    """One column of a typed table: its type and per-type preprocessing."""

    type: ColumnType = option(
        description="number, category, binary, id (carried to predictions) or ignore (dropped)."
    )
    impute: Literal["auto", "median", "mean", "most_frequent", "constant"] = option(
        "auto",
        description=(
            "How a missing cell is filled, from the training rows: auto is median for "
            "numbers and most_frequent for categories and binary columns."
        ),
    )
    fill_value: Union[float, str, None] = option(
        None, description="The value of impute 'constant'."
    )
    missing_indicator: bool = option(
        False, description="Add a 0/1 feature saying the cell was missing."
    )
    transform: Literal["standard", "log", "quantile"] = option(
        "standard",
        description=(
            "number: standardize; log: log(1 + x - training minimum), then standardize; "
            "quantile: the training quantile of x, standardized."
        ),
    )
    encoding: Literal["auto", "one_hot", "embedding"] = option(
        "auto",
        description=(
            "category: one_hot, or embedding (a learned vector per value); auto is one_hot "
            "up to 16 values, else embedding."
        ),
    )
    embedding_size: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description="Embedding width; null: min(50, round(1.6 * n ** 0.56)), n = values + 1.",
    )
    max_categories: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description="Keep the most frequent values; the rest go to the out-of-vocabulary slot.",
    )
    min_frequency: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description=(
            "Values seen fewer times in the training rows share the out-of-vocabulary slot, "
            "so that slot is trained; null: 2 for embedded columns, 1 for one-hot."
        ),
    )
    positive: Optional[str] = option(
        None,
        description="binary: the value that is 1 (default: yes/true/1/y/t if present, else the later in sorted order).",
    )

    def validate(self, path: str) -> None:
        where = path or "column"
        if self.type != "number" and self.transform != "standard":
            raise ConfigError(f"{where}.transform: applies to number columns, not {self.type}")
        if self.type != "category" and (
            self.encoding != "auto"
            or self.embedding_size
            or self.max_categories
            or self.min_frequency
        ):
            raise ConfigError(
                f"{where}: encoding, embedding_size, max_categories and min_frequency apply to "
                "category columns"
            )
        if self.type != "binary" and self.positive is not None:
            raise ConfigError(f"{where}.positive: applies to binary columns, not {self.type}")
        if self.impute == "constant" and self.fill_value is None:
            raise ConfigError(f"{where}.fill_value: impute 'constant' needs a fill_value")
        if self.type == "number" and isinstance(self.fill_value, str):
            raise ConfigError(f"{where}.fill_value: a number column needs a number")
        if self.type != "number" and self.impute in ("median", "mean"):
            raise ConfigError(
                f"{where}.impute: {self.impute!r} applies to number columns; use "
                "'most_frequent' or 'constant'"
            )
