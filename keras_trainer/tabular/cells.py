"""Cells of a raw table: what counts as missing, a cell as vocabulary text, numeric columns.

Shared by column-type inference (`tables`) and the fitted preprocessing
(`preprocessing`), which both read raw cells the same way.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, dict, str)) else False
    except (ImportError, TypeError, ValueError):
        return False


def as_text(value: Any) -> Optional[str]:
    """A cell as the text a vocabulary holds (`None` when missing); 2.0 reads as "2"."""
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value).strip()


def all_numbers(texts: list[str]) -> bool:
    """Whether every text parses as a number."""
    try:
        [float(t) for t in texts]
        return True
    except ValueError:
        return False
