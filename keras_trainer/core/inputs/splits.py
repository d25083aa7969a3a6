"""Training, validation and test rows of one dataset: shuffled, stratified, or by time.

`split_rows` is the one way every family cuts a table into its three parts.
By default the rows are shuffled with a seed, and when class labels are given
every part keeps each class's share of the rows (stratified): a table sorted by
class, as many public tables are, still gives every part every class. For a
time series (`shuffle=False`) the parts are consecutive: the first rows train,
the next ones validate and the last ones are the test, so no part sees its future.

Example:

>>> train, validation, test = split_rows(100, 0.2, 0.2, seed=0, labels=[0] * 50 + [1] * 50)
>>> len(train), len(validation), len(test)
(60, 20, 20)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from keras_trainer.errors import DataError


def stratified_order(labels: Any, seed: int) -> np.ndarray:
    """A seeded shuffle of the rows in which every prefix holds each class in its share.

    Each class's rows are shuffled; a row ranked `r` of its class's `m` rows gets
    the position `(r + 0.5) / m`, and the rows are sorted by it (ties in the
    shuffled order), so the first `k` rows hold about `k * m / n` rows of each class.
    """
    labels = np.asarray(labels).reshape(len(labels))
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(labels))
    position = np.empty(len(labels), dtype="float64")
    for label in np.unique(labels):
        members = shuffled[labels[shuffled] == label]  # this class, in shuffled order
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    return shuffled[np.argsort(position[shuffled], kind="stable")]


def split_rows(
    n: int,
    validation: float,
    test: float,
    seed: int,
    *,
    labels: Optional[Any] = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training, validation and test row indices of `n` rows.

    Args:
        n: Number of rows.
        validation: Fraction of the rows held out for validation (early stopping).
        test: Fraction held out for the final evaluation (0: no test part).
        seed: Seed of the shuffle; the same seed gives the same split.
        labels: Class of each row: every part then keeps each class's share
            (stratified). None shuffles without regard to classes.
        shuffle: False keeps the row order (a time series): the last rows are the
            test, the validation rows come before them, the training rows first.

    Returns:
        `(train, validation, test)` index arrays; shuffled parts come in shuffled
        order, time-ordered parts in row order.

    Raises:
        DataError: a part would be empty, or `labels` does not have `n` entries.
    """
    n_test = int(round(n * test))
    n_val = int(round(n * validation))
    if n - n_test - n_val < 1 or n_val < 1:
        raise DataError(
            f"{n} rows cannot be split into training, validation ({validation}) and test ({test}) parts"
        )
    if not shuffle:
        cut = n - n_test - n_val
        return np.arange(cut), np.arange(cut, n - n_test), np.arange(n - n_test, n)
    if labels is None:
        order = np.random.default_rng(seed).permutation(n)
    else:
        if len(labels) != n:
            raise DataError(f"split: {len(labels)} labels for {n} rows")
        order = stratified_order(labels, seed)
    # The test part first, then validation: a prefix of a stratified order is stratified.
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
