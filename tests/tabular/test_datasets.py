import numpy as np
import pytest

from keras_trainer.errors import DataError
from keras_trainer.tabular import load_table
from keras_trainer.tabular.datasets import load_csv

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_builtin_tables_are_real_and_bundled():
    x, y, names = load_table("wine")
    assert x.shape == (178, 13) and sorted(set(y.tolist())) == [0, 1, 2] and names[0] == "alcohol"
    with pytest.raises(DataError, match="unknown builtin dataset 'iris'"):
        load_table("iris")


def test_csv_target_by_name_or_last_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label,b\n1,0,2.5\n3,1,4\n")
    x, y, names = load_csv(str(path), "label")
    np.testing.assert_array_equal(x, [[1, 2.5], [3, 4]])
    assert y.tolist() == [0, 1] and names == ["a", "b"]
    x, y, names = load_csv(str(path))
    assert y.tolist() == [2.5, 4] and names == ["a", "label"]


@pytest.mark.parametrize(
    "text, target, message",
    [
        ("a,b\n1,2\n3,x\n", None, r"t.csv:3: column 'b' holds 'x', not a number"),
        ("a,b\n1,2\n3\n", None, r"t.csv:3: has 1 cells but the header has 2"),
        ("a,b\n1,2\n", "c", r"no column 'c' for the target \(columns: a, b\)"),
        ("a,b\n", None, "needs a header row and at least one data row"),
        ("a,b\n1,nan\n", None, r"t.csv:2: column 'b' is NaN or infinite"),
    ],
)
def test_bad_csv_is_reported_with_line_and_column(tmp_path, text, target, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_csv(str(path), target)


@pytest.mark.one_backend
@pytest.mark.parametrize(
    "activation, targets, expected",
    [
        ("softmax", np.array([0, 2, 1, 2]), 3),
        ("sigmoid", np.array([0, 1, 1, 0]), 1),
        ("linear", np.array([0.5, 1.5, 2.0]), 1),
        ("linear", np.ones((3, 2)), 2),
    ],
)
def test_a_null_output_dim_is_taken_from_the_targets(activation, targets, expected):
    from keras_trainer.config import ModelConfig
    from keras_trainer.tabular.data import head_targets

    config = ModelConfig(type="feed_forward", output_activation=activation)
    head_targets(targets, config, "table.csv")
    assert config.output_dim == expected
