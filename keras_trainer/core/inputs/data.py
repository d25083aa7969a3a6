"""Feeding arrays to `fit`: validation splits and reproducible, resumable shuffling."""

from __future__ import annotations

import math
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.errors import DataError

# Features beyond this magnitude overflow float32 training arithmetic (squares in
# variances, Adam's second moments reach inf past ~1.8e19): rescale them first.
MAX_FEATURE_MAGNITUDE = 1e18


def check_feature_values(
    matrix: np.ndarray, name: str = "features", column_names: Any = None, row_name: str = "row"
) -> None:
    """Rejects NaN, infinite and absurdly large (> `MAX_FEATURE_MAGNITUDE`) values.

    Raises:
        DataError: naming the first bad row and column (by name when given) and the value.
    """
    values = np.asarray(matrix)
    bad = ~np.isfinite(values) | (
        np.abs(np.where(np.isfinite(values), values, 0)) > MAX_FEATURE_MAGNITUDE
    )
    if not bad.any():
        return
    position = tuple(int(i) for i in np.argwhere(bad)[0])
    value = values[position]
    column = position[-1]
    if column_names is not None and column < len(column_names):
        column_text = f"feature {column_names[column]!r}"
    else:
        column_text = f"column {column}"
    if not np.isfinite(value):
        raise DataError(
            f"{name}: {row_name} {position[0]} contains NaN or infinite values ({column_text} is "
            f"{float(value)}; values beyond the float32 range become infinite)"
        )
    raise DataError(
        f"{name}: {row_name} {position[0]}, {column_text}: {float(value):.3g} is beyond "
        f"+-{MAX_FEATURE_MAGNITUDE:.0e}, which overflows float32 training; rescale it (e.g. a log transform)"
    )


def check_one_hot(labels: np.ndarray, name: str = "y") -> None:
    """Checks that 2-D class labels are one-hot: 0/1 values, exactly one 1 per row.

    Raises:
        DataError: naming the first row that is not one-hot.
    """
    values = np.asarray(labels)
    binary = (values == 0) | (values == 1)
    good = binary.all(axis=-1) & (values.sum(axis=-1) == 1)
    if good.all():
        return
    row = int(np.flatnonzero(~good)[0])
    raise DataError(
        f"{name}: row {row} is not one-hot ({np.array2string(values[row], precision=3, threshold=8)}); "
        "pass one 1 and zeros per row, or integer class indices of shape (n,)"
    )


def num_samples(data: Any, name: str = "x") -> int:
    """Returns the common first dimension of an array or a nest of arrays."""
    lengths = {len(leaf) for leaf in keras.tree.flatten(data)}
    if len(lengths) != 1:
        raise DataError(
            f"{name}: all arrays must have the same number of rows, got {sorted(lengths)}"
        )
    return lengths.pop()


def check_same_length(x: Any, y: Any) -> int:
    """Checks that `x` and `y` have the same number of samples; returns it."""
    n_x = num_samples(x, "x")
    if y is not None:
        n_y = num_samples(y, "y")
        if n_x != n_y:
            raise DataError(f"x has {n_x} samples but y has {n_y}; they must match")
    if n_x == 0:
        raise DataError("x has no samples; training needs at least one")
    return n_x


def take(data: Any, index: Any) -> Any:
    """Selects rows `index` from an array or from every array of a nest."""
    if data is None:
        return None
    return keras.tree.map_structure(lambda array: array[index], data)


def split_validation(x: Any, y: Any, sample_weight: Any, fraction: float):
    """Holds out the last `fraction` of the samples, as Keras' `validation_split` does.

    Returns:
        `((x, y, sample_weight), (x_val, y_val, sample_weight_val))`.
    """
    n = check_same_length(x, y)
    n_val = int(math.floor(n * fraction))
    if n_val == 0 or n_val == n:
        raise DataError(
            f"training.validation_split={fraction} leaves {n - n_val} training and {n_val} "
            f"validation samples out of {n}; give more data or change the split"
        )
    head, tail = slice(0, n - n_val), slice(n - n_val, n)
    return (take(x, head), take(y, head), take(sample_weight, head)), (
        take(x, tail),
        take(y, tail),
        take(sample_weight, tail),
    )


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The row order of epoch `epoch`: a function of the seed and the epoch number only.

    Both training engines (and a resumed run) feed the batches in this order on
    the JAX and torch backends; `tf_epoch_order` is the TensorFlow backend's.
    """
    if not shuffle:
        return np.arange(size)
    return np.random.default_rng([seed, epoch]).permutation(size)


def _tf_order(size: int, seed: int, epoch, shuffle: bool):
    import tensorflow as tf

    rows = tf.range(size, dtype=tf.int64)
    if shuffle:
        rows = tf.random.experimental.stateless_shuffle(
            rows, seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
        )
    return rows


def tf_epoch_order(size: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The row order of epoch `epoch` on the TensorFlow backend (`shuffled_tf_dataset`'s)."""
    return _tf_order(size, seed, epoch, shuffle).numpy()


class ShuffledArrays(keras.utils.PyDataset):
    """Batches of in-memory arrays, shuffled each epoch with a seed of its own.

    Epoch `e` is shuffled with `numpy.random.default_rng([seed, e])`, so the order
    of every epoch depends only on the seed and the epoch number. A run resumed
    at epoch `e` therefore sees exactly the batches an uninterrupted run sees,
    which Keras' own array shuffling (a global generator) cannot promise.

    Args:
        x: An array, or a list/tuple/dict of arrays with the same number of rows.
        y: Targets (same structure rules), or `None`.
        sample_weight: Per-sample weights, or `None`.
        batch_size: Rows per batch; the last batch may be smaller.
        shuffle: Whether to shuffle at all.
        seed: Seed of the per-epoch permutations.
        initial_epoch: The epoch the first batch belongs to (for resuming).
        multiple_of: Trim the last batch to a multiple of this many rows (data
            parallelism on JAX shards every batch exactly over the devices; at
            most `multiple_of - 1` rows of each epoch's order are left out).
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        initial_epoch: int = 0,
        multiple_of: int = 1,
    ):
        super().__init__()
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.size = check_same_length(x, y)
        # batch_size is a multiple of `multiple_of`, so only the last batch is trimmed.
        self.rows_per_epoch = self.size - self.size % multiple_of
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.set_epoch(initial_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch whose order the next batches follow."""
        self.epoch = epoch
        self.order = epoch_order(self.size, self.seed, epoch, self.shuffle)

    def __len__(self) -> int:
        return math.ceil(self.rows_per_epoch / self.batch_size)

    def __getitem__(self, index: int):
        stop = min((index + 1) * self.batch_size, self.rows_per_epoch)
        rows = self.order[index * self.batch_size : stop]
        batch = (take(self.x, rows), take(self.y, rows))
        if self.sample_weight is not None:
            batch = batch + (take(self.sample_weight, rows),)
        return batch

    def epoch_callback(self) -> keras.callbacks.Callback:
        """The callback that sets this dataset's epoch as each epoch begins.

        Keras' data adapter calls `on_epoch_end` once more than there are epochs
        (when it resets before training), so the dataset cannot count epochs
        itself; with this callback epoch `e` is ordered by `epoch_order(..., e)`,
        as the fused engine orders it.
        """
        return _FollowEpochs(self)


class _FollowEpochs(keras.callbacks.Callback):
    def __init__(self, dataset: ShuffledArrays):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


class EpochCounter(keras.callbacks.Callback):
    """Advances a `tf.Variable` epoch counter that a `tf.data` shuffle reads."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_end(self, epoch, logs=None):
        self.variable.assign(epoch + 1)


def shuffled_tf_dataset(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    initial_epoch: int = 0,
):
    """The TensorFlow-native twin of `ShuffledArrays`: `(dataset, callback)`.

    On the TensorFlow backend a `PyDataset` feeds every batch through a Python
    generator, which made `fit` about 0.6x as fast as Keras' own array path.
    This builds the batches inside `tf.data` instead. The order of epoch `e` is
    `tf.random.experimental.stateless_shuffle` with seed `(seed, e)`: a function
    of the seed and the epoch number only, so resuming stays exact. The returned
    callback advances the epoch the next iteration shuffles with; pass it to `fit`.
    """
    import tensorflow as tf

    size = check_same_length(x, y)
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
    arrays = (x, y) if sample_weight is None else (x, y, sample_weight)

    def order(_):
        return _tf_order(size, seed, epoch.read_value(), shuffle)

    batches = tf.data.Dataset.range(1).map(order).unbatch().batch(batch_size)
    tensors = tf.data.Dataset.from_tensors(arrays).repeat()
    dataset = tf.data.Dataset.zip((batches, tensors)).map(
        lambda rows, data: keras.tree.map_structure(lambda array: tf.gather(array, rows), data),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # unbatch() hides the length; Keras plans epochs faster when it is known.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(size / batch_size)))
    return dataset.prefetch(tf.data.AUTOTUNE), EpochCounter(epoch)


def as_feature_matrix(
    data: Any, width: Optional[int] = None, name: str = "x", allow_empty: bool = True
) -> np.ndarray:
    """`data` as a finite float32 array `(samples, features)` or `(samples, steps, features)`.

    The one input check of feature arrays, used by every family. A 1-D array is one
    sample (a row).

    Args:
        data: Array-like of numbers.
        width: Expected features per sample (last axis); `None` accepts any.
        name: What `data` is, for messages ("train_data[0] (X)").
        allow_empty: Whether zero samples are accepted.

    Raises:
        DataError: naming the shape, dtype, empty input or the first row with NaN/inf.
    """
    try:
        array = np.asarray(data, dtype="float32")
    except (TypeError, ValueError) as error:
        raise DataError(f"{name}: must be numeric, got {type(data).__name__} ({error})") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim not in (2, 3):
        raise DataError(
            f"{name}: must have shape (samples, features) or (samples, steps, features), "
            f"got {array.shape}"
        )
    if not allow_empty and array.shape[0] == 0:
        raise DataError(f"{name}: has no samples")
    if width is not None and array.shape[-1] != width:
        raise DataError(f"{name}: expected {width} features per sample, got shape {array.shape}")
    check_feature_values(array, name)
    return array


def check_pair(data: Any, name: str, width: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Checks an `(X, y)` pair: a 2-tuple, numeric finite X, as many labels as rows.

    Returns:
        `(X, y)`: X float32 (see `as_feature_matrix`), y as a NumPy array.

    Raises:
        DataError: naming `name` and the problem.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(f"{name}: must be a tuple (X, y), got {type(data).__name__}")
    x = as_feature_matrix(data[0], width, f"{name}[0] (X)", allow_empty=False)
    y = np.asarray(data[1])
    if len(x) != len(y):
        raise DataError(f"{name}: X has {len(x)} samples but y has {len(y)}; they must match")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{name}[1] (y): contains NaN or infinite values")
    return x, y
