import numpy as np
import pytest

from keras_trainer.errors import DataError
from keras_trainer.tabular import make_windows, stock_features, train_val_windows

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_windows_hold_past_rows_and_the_future_target():
    series = np.arange(20, dtype="float32")
    x, y = make_windows(series, window=4, horizon=2, stride=3)
    assert x.shape == (5, 4, 1)
    np.testing.assert_array_equal(x[1, :, 0], [3, 4, 5, 6])
    assert y[1] == 6 + 2
    assert (y > x[:, -1, 0]).all()


def test_target_column_by_name_and_separate_targets():
    import pandas

    frame = pandas.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) * 10})
    _, y = make_windows(frame, window=3, target_column="b")
    assert y[0] == 30
    _, y2 = make_windows(frame, window=3, targets=np.arange(10.0) + 100)
    assert y2[0] == 103


def test_train_and_validation_share_no_row():
    series = np.arange(100, dtype="float32")
    (xt, yt), (xv, yv) = train_val_windows(series, window=5, horizon=2, val_fraction=0.3, gap=1)
    split = 70
    assert yt.max() < split and xt.max() < split
    assert xv.min() >= split + 1
    assert xv.min() > yt.max()


def test_real_stock_series_windows():
    features, returns, names = stock_features()
    assert features.shape == (1045, 4) and len(names) == 4
    # Row t holds day t's return; its target is day t+1's return (the next row's first feature).
    np.testing.assert_allclose(returns[:-1], features[1:, 0])
    (xt, yt), (xv, yv) = train_val_windows(features, window=10, targets=returns, val_fraction=0.2)
    assert xt.shape[1:] == (10, 4) and len(xt) + len(xv) < len(features)


def test_window_longer_than_series_is_rejected():
    with pytest.raises(
        DataError, match="window=30 plus horizon=1 needs at least 31 rows, but the series has 20"
    ):
        make_windows(np.zeros(20), window=30)


def test_too_short_validation_side_is_rejected():
    with pytest.raises(DataError, match="each side needs"):
        train_val_windows(np.zeros(50), window=10, val_fraction=0.1)


def test_mismatched_targets_are_rejected():
    with pytest.raises(DataError, match="targets has 5 rows but the series has 10"):
        make_windows(np.zeros(10), window=2, targets=np.zeros(5))
