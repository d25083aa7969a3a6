"""`ResultTable`: the one shape of a table of results (trials, architectures).

A table holds records in the order they were produced; each record gives its
row with `row() -> dict`. The table is a read-only sequence of its records and
renders them as Markdown or a pandas `DataFrame`. Subclasses add what their
records mean: `tuning.TrialTable` (a search's trials) and
`tabular.ArchitectureComparison` (architectures trained on the same data).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


class ResultTable:
    """Records of results, one row each, in order.

    Args:
        records: Objects with a `row() -> dict` method.
    """

    def __init__(self, records: Sequence[Any]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.records)

    def __getitem__(self, index: int) -> Any:
        return self.records[index]

    def rows(self) -> list[dict]:
        """Each record as a dict (columns in first-seen order)."""
        return [record.row() for record in self.records]

    def to_markdown(self) -> str:
        """A Markdown table of `rows()`; empty cells for missing values."""
        rows = self.rows()
        if not rows:
            return ""
        header = list(dict.fromkeys(key for row in rows for key in row))
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [
            "| " + " | ".join("" if row.get(k) is None else str(row.get(k)) for k in header) + " |"
            for row in rows
        ]
        return "\n".join(lines)

    def to_pandas(self):
        """The rows as a `pandas.DataFrame` (needs pandas)."""
        import pandas

        return pandas.DataFrame(self.rows())

    def __repr__(self) -> str:
        return self.to_markdown()
