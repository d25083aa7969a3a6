"""`split_rows`: shuffled, stratified by class, reproducible by seed, or in time order."""

import numpy as np
import pytest

from keras_trainer.core.inputs.splits import split_rows
from keras_trainer.errors import DataError

pytestmark = pytest.mark.one_backend  # NumPy only

# 100 rows sorted by class: 60 of class 0, 30 of class 1, 10 of class 2.
LABELS = np.repeat([0, 1, 2], [60, 30, 10])


def test_stratified_split_holds_each_class_share_in_every_part():
    train, validation, test = split_rows(100, 0.2, 0.2, seed=7, labels=LABELS)
    assert [
        np.bincount(LABELS[part], minlength=3).tolist() for part in (train, validation, test)
    ] == [
        [36, 18, 6],
        [12, 6, 2],
        [12, 6, 2],
    ]
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(100))


def test_split_rows_are_drawn_from_the_whole_file_not_in_file_order():
    train, validation, test = split_rows(100, 0.2, 0.2, seed=7, labels=LABELS)
    assert sorted(test.tolist()) != list(range(80, 100))
    assert test.tolist() != sorted(test.tolist())
    assert min(test) < 50 < max(test)


def test_the_same_seed_gives_the_same_split_another_seed_another():
    first = split_rows(100, 0.2, 0.2, seed=7, labels=LABELS)
    again = split_rows(100, 0.2, 0.2, seed=7, labels=LABELS)
    other = split_rows(100, 0.2, 0.2, seed=8, labels=LABELS)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[2], other[2])


def test_a_time_series_split_keeps_the_row_order():
    train, validation, test = split_rows(100, 0.2, 0.1, seed=7, shuffle=False)
    assert (train.tolist(), validation.tolist(), test.tolist()) == (
        list(range(70)),
        list(range(70, 90)),
        list(range(90, 100)),
    )


def test_a_split_that_leaves_a_part_empty_is_refused():
    with pytest.raises(DataError, match="cannot be split"):
        split_rows(3, 0.5, 0.5, seed=0)
