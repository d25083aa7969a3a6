import numpy as np
import pytest

from keras_trainer.core.inputs.data import ShuffledArrays, shuffled_tf_dataset, split_validation
from keras_trainer.errors import DataError

pytestmark = pytest.mark.one_backend  # no Keras code runs here

X = np.arange(20, dtype="float32").reshape(10, 2)
Y = np.arange(10, dtype="float32")


def _epoch_rows(batches):
    return np.concatenate([batches[i][1] for i in range(len(batches))]).astype(int).tolist()


def test_each_epoch_order_depends_only_on_seed_and_epoch():
    run = ShuffledArrays(X, Y, batch_size=3, seed=7)
    first = _epoch_rows(run)
    run.set_epoch(1)
    second = _epoch_rows(run)
    resumed = ShuffledArrays(X, Y, batch_size=3, seed=7, initial_epoch=1)
    assert sorted(first) == list(range(10)) and first != second
    assert _epoch_rows(resumed) == second
    assert len(run) == 4 and len(run[3][0]) == 1


def test_no_shuffle_keeps_the_order():
    assert _epoch_rows(ShuffledArrays(X, Y, batch_size=4, shuffle=False)) == list(range(10))


def test_tf_dataset_follows_the_same_contract():
    pytest.importorskip("tensorflow")

    def rows(dataset):
        return np.concatenate([np.asarray(batch[1]) for batch in dataset]).astype(int).tolist()

    dataset, counter = shuffled_tf_dataset(X, Y, batch_size=3, seed=7)
    first = rows(dataset)
    counter.on_epoch_end(0)
    second = rows(dataset)
    resumed, _ = shuffled_tf_dataset(X, Y, batch_size=3, seed=7, initial_epoch=1)
    assert sorted(first) == list(range(10)) and first != second
    assert rows(resumed) == second
    assert int(dataset.cardinality()) == 4


def test_validation_split_holds_out_the_tail():
    (x, y, _), (x_val, y_val, _) = split_validation(X, Y, None, 0.2)
    assert y.tolist() == list(range(8)) and y_val.tolist() == [8, 9]


def test_mismatched_nested_inputs_are_named():
    with pytest.raises(DataError, match="same number of rows"):
        ShuffledArrays([X, X[:5]], Y)
