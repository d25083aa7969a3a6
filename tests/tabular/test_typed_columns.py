"""Typed columns of raw tables: type inference, per-type preprocessing learned on the
training rows, imputation, out-of-vocabulary values, class names and the named errors.
NumPy and pandas only (no network is trained here)."""

import json

import numpy as np
import pandas as pd
import pytest

from keras_trainer.config.columns import ColumnConfig
from keras_trainer.errors import ColumnTypeError, ConfigError, DataError
from keras_trainer.tabular.preprocessing import (
    TablePreprocessor,
    embedding_size,
)
from keras_trainer.tabular.tables import (
    describe_table,
    encode_target,
    infer_column_type,
    read_frame,
    records_frame,
)

pytestmark = pytest.mark.one_backend


def _frame():
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(12)],
            "plan": [
                "basic",
                "pro",
                "basic",
                "team",
                None,
                "pro",
                "basic",
                "basic",
                "pro",
                "team",
                "basic",
                "",
            ],
            "tenure": ["1", "4", "", "10", "7", "2", "3", "8", "5", "6", "9", "12"],
            "active": [
                "yes",
                "no",
                "yes",
                "yes",
                "no",
                "yes",
                None,
                "no",
                "yes",
                "yes",
                "no",
                "yes",
            ],
            "source": ["web"] * 12,
            "churn": ["leave", "stay"] * 6,
        }
    )


def test_types_are_inferred_from_the_values():
    frame = _frame()
    inferred = {name: infer_column_type(frame[name], name) for name in frame.columns}
    assert inferred == {
        "customer_id": "id",  # a different text on every row
        "plan": "category",
        "tenure": "number",  # text cells that all parse as numbers
        "active": "binary",
        "source": "ignore",  # one value
        "churn": "binary",
    }
    assert infer_column_type([1, 2, 3, 4], "order_id") == "id"
    assert infer_column_type([1, 2, 3, 4], "amount") == "number"
    assert infer_column_type([None, "", float("nan")], "empty") == "ignore"


def test_numbers_are_standardized_with_training_statistics_and_median_imputed():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan, 10.0]})
    pre = TablePreprocessor.fit(train, {"x": {"type": "number"}})
    state = pre.columns[0]
    assert state["fill"] == 2.5  # the median of the present training cells
    filled = np.array([1.0, 2.0, 3.0, 2.5, 10.0])
    assert state["mean"] == pytest.approx(filled.mean())
    x, report = pre.transform(pd.DataFrame({"x": [4.0, None]}))
    expected = (np.array([4.0, 2.5]) - filled.mean()) / filled.std()
    np.testing.assert_allclose(x[:, 0], expected, rtol=1e-6)
    assert report.imputed == {"x": 1}


@pytest.mark.parametrize("transform", ["log", "quantile"])
def test_log_and_quantile_transforms_tame_a_skewed_column(transform):
    skewed = pd.DataFrame({"income": np.exp(np.linspace(0, 8, 50))})
    plain = TablePreprocessor.fit(skewed, {"income": {"type": "number"}})
    shaped = TablePreprocessor.fit(skewed, {"income": {"type": "number", "transform": transform}})
    x_plain, _ = plain.transform(skewed)
    x_shaped, _ = shaped.transform(skewed)
    # The largest value sits far out after plain scaling, near the rest after the transform.
    assert x_plain.max() > 3.5 and x_shaped.max() < 1.8
    assert x_shaped.mean() == pytest.approx(0, abs=1e-5) and x_shaped.std() == pytest.approx(
        1, rel=1e-4
    )


def test_categories_get_a_vocabulary_with_an_out_of_vocabulary_slot():
    frame = _frame()
    pre = TablePreprocessor.fit(frame, {}, target="churn")
    assert pre.input_columns == ["plan", "tenure", "active"]  # id and ignore dropped
    plan = pre.columns[1]
    assert plan["vocabulary"] == ["basic", "pro", "team"]  # most frequent first
    assert plan["fill"] == "basic"  # most frequent fills the two blanks
    assert pre.feature_names[:4] == ["plan=<unseen>", "plan=basic", "plan=pro", "plan=team"]
    x, report = pre.transform(
        pd.DataFrame({"plan": ["team", "gold", "gold"], "tenure": [1, 2, 3], "active": ["no"] * 3})
    )
    np.testing.assert_array_equal(x[:, :4], [[0, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0]])
    assert report.unseen == {"plan": {"gold": 2}}
    assert "'gold' (2)" in report.to_text()


def test_max_categories_sends_rare_values_to_the_out_of_vocabulary_slot():
    frame = pd.DataFrame({"city": ["a"] * 5 + ["b"] * 3 + ["c"]})
    pre = TablePreprocessor.fit(frame, {"city": {"type": "category", "max_categories": 2}})
    assert pre.columns[0]["vocabulary"] == ["a", "b"]
    x, report = pre.transform(pd.DataFrame({"city": ["c"]}))
    assert x[0, 0] == 1 and report.unseen == {"city": {"c": 1}}


def test_many_valued_categories_are_embedded_with_the_documented_size():
    frame = pd.DataFrame({"zip": [f"z{i % 30}" for i in range(90)]})
    pre = TablePreprocessor.fit(frame, {"zip": {"type": "category"}})
    assert pre.columns[0]["encoding"] == "embedding"
    assert pre.columns[0]["embedding_size"] == embedding_size(31) == round(1.6 * 31**0.56)
    assert pre.embedding_blocks() == [[0, 31, embedding_size(31)]]
    few = TablePreprocessor.fit(frame.head(5), {"zip": {"type": "category"}})
    assert few.columns[0]["encoding"] == "one_hot" and few.embedding_blocks() == []


def test_values_seen_once_train_the_out_of_vocabulary_slot_of_an_embedded_column():
    frame = pd.DataFrame({"name": [f"n{i}" for i in range(20)] + ["n0", "n1"]})
    embedded = TablePreprocessor.fit(frame, {"name": {"type": "category", "encoding": "embedding"}})
    assert embedded.columns[0]["vocabulary"] == ["n0", "n1"]  # the others share slot 0
    assert embedded.transform(frame)[0][2:20, 0].tolist() == [1.0] * 18
    one_hot = TablePreprocessor.fit(frame, {"name": {"type": "category", "encoding": "one_hot"}})
    assert len(one_hot.columns[0]["vocabulary"]) == 20


@pytest.mark.parametrize(
    "values, positive",
    [(["yes", "no"], "yes"), (["M", "F"], "M"), (["True", "False"], "True"), ([0, 1], "1")],
)
def test_binary_columns_take_any_two_values(values, positive):
    frame = pd.DataFrame({"flag": values * 3})
    pre = TablePreprocessor.fit(frame, {"flag": {"type": "binary"}})
    assert pre.columns[0]["values"][1] == positive
    x, _ = pre.transform(frame)
    np.testing.assert_array_equal(x[:, 0], [float(str(v) == positive) for v in values * 3])


def test_binary_positive_value_can_be_declared_and_a_third_value_is_a_named_error():
    frame = pd.DataFrame({"smoker": ["yes", "no", "no"]})
    pre = TablePreprocessor.fit(frame, {"smoker": {"type": "binary", "positive": "no"}})
    np.testing.assert_array_equal(pre.transform(frame)[0][:, 0], [0, 1, 1])
    with pytest.raises(
        ColumnTypeError, match=r"column 'smoker' is binary .* data row 2 holds 'maybe'"
    ):
        pre.transform(pd.DataFrame({"smoker": ["no", "maybe"]}))
    with pytest.raises(
        ColumnTypeError, match="declared binary but its training rows hold 3 values"
    ):
        TablePreprocessor.fit(pd.DataFrame({"s": ["a", "b", "c"]}), {"s": {"type": "binary"}})


def test_missing_indicator_and_constant_imputation():
    frame = pd.DataFrame({"age": [30, None, 50], "team": ["red", None, "blue"]})
    pre = TablePreprocessor.fit(
        frame,
        {
            "age": {
                "type": "number",
                "impute": "constant",
                "fill_value": 0,
                "missing_indicator": True,
            },
            "team": {"type": "category", "impute": "constant", "fill_value": "none"},
        },
    )
    assert pre.feature_names == ["age", "age_missing", "team=<unseen>", "team=blue", "team=red"]
    x, report = pre.transform(frame)
    np.testing.assert_array_equal(x[:, 1], [0, 1, 0])
    assert pre.columns[0]["fill"] == 0.0
    assert x[1, 2] == 1  # the constant "none" was never seen: out of vocabulary
    assert report.imputed == {"age": 1, "team": 1}


def test_id_columns_name_the_rows_and_ignored_columns_are_dropped():
    frame = _frame()
    pre = TablePreprocessor.fit(frame, {"tenure": {"type": "ignore"}}, target="churn")
    assert pre.id_columns == ["customer_id"] and "tenure" not in pre.input_columns
    assert pre.row_ids(frame)[:2] == ["c000", "c001"]
    x, _ = pre.transform(frame.drop(columns=["customer_id", "tenure", "source"]))
    assert x.shape == (12, len(pre.feature_names))


def test_a_column_whose_type_changes_is_a_named_error():
    pre = TablePreprocessor.fit(_frame(), {}, target="churn")
    rows = {"plan": ["pro"], "tenure": ["ten"], "active": ["yes"]}
    with pytest.raises(
        ColumnTypeError, match=r"column 'tenure' is a number column; data row 1 holds 'ten'"
    ):
        pre.transform(pd.DataFrame(rows))
    rows = {"plan": [3], "tenure": [1], "active": ["yes"]}  # words in training, a number now
    with pytest.raises(
        ColumnTypeError, match=r"column 'plan' held words in training .* the number 3"
    ):
        pre.transform(pd.DataFrame(rows))
    with pytest.raises(ColumnTypeError, match="column 'plan' is a number column"):
        TablePreprocessor.fit(_frame(), {"plan": {"type": "number"}}, target="churn")


def test_missing_and_undeclared_columns_are_named():
    pre = TablePreprocessor.fit(_frame(), {}, target="churn")
    with pytest.raises(DataError, match=r"rows lack the column\(s\) \['active'\]"):
        pre.transform(pd.DataFrame({"plan": ["pro"], "tenure": [1]}))
    with pytest.raises(ConfigError, match=r"data.columns: the table has no column\(s\) \['plna'\]"):
        TablePreprocessor.fit(_frame(), {"plna": {"type": "category"}}, target="churn")
    with pytest.raises(ConfigError, match=r"transform: applies to number columns"):
        ColumnConfig.from_dict({"type": "category", "transform": "log"})


def test_state_is_plain_json_and_rebuilds_the_same_transform():
    frame = _frame()
    pre = TablePreprocessor.fit(
        frame, {"tenure": {"type": "number", "transform": "log"}}, target="churn"
    )
    again = TablePreprocessor.from_config(json.loads(json.dumps(pre.get_config())))
    np.testing.assert_array_equal(again.transform(frame)[0], pre.transform(frame)[0])
    with pytest.raises(DataError, match="preprocessing metadata: malformed"):
        TablePreprocessor.from_config({"columns": [{"type": "date"}]})


def test_string_targets_become_class_indices_with_their_names():
    y, names = encode_target(["stay", "leave", "stay"], "churn")
    assert names == ["leave", "stay"] and y.tolist() == [1, 0, 1]
    y, names = encode_target(["1.5", "2"], "price")
    assert names is None and y.tolist() == [1.5, 2.0]
    with pytest.raises(DataError, match=r"target column 'churn': class\(es\) \['maybe'\]"):
        encode_target(["maybe"], "churn", ["leave", "stay"])


def test_csv_and_parquet_read_blanks_as_missing(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,x\n,NA\n3, y\n")
    frame = read_frame(str(tmp_path / "t.csv"))
    assert frame["a"].isna().tolist() == [False, True, False]
    assert frame["b"].tolist()[0] == "x" and pd.isna(frame["b"][1]) and frame["b"][2] == "y"
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_frame(str(tmp_path / "t.parquet")).shape == (3, 2)
    with pytest.raises(DataError, match="rows are objects column -> value"):
        records_frame([1, 2], "rows")


def test_penguins_are_bundled_and_described_with_pasteable_columns():
    frame = read_frame("builtin:penguins")
    assert len(frame) == 344 and sorted(set(frame["species"])) == ["Adelie", "Chinstrap", "Gentoo"]
    text = describe_table(frame, target="species")
    assert "sex                binary    3.2%" in text
    pasted = json.loads(text.split("paste into the config (and edit):\n")[1])
    assert pasted["data"]["columns"]["island"] == {"type": "category"}
    assert "species" not in pasted["data"]["columns"]


def test_cars_are_bundled_with_a_many_valued_text_column_that_is_embedded():
    frame = read_frame("builtin:cars")
    assert len(frame) == 406 and frame["Year"].min() == 1970
    pre = TablePreprocessor.fit(frame, {}, target="Origin")
    name = pre.columns[0]
    assert name["name"] == "Name" and name["encoding"] == "embedding"
    assert encode_target(frame["Origin"], "Origin")[1] == ["Europe", "Japan", "USA"]
