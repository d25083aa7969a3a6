"""Typed tables cut in shards: the preprocessing learned in one streaming pass equals the
in-memory fit on the same rows, `train` / `predict` / `evaluate` read shard globs, and a
column whose type changes in a later shard is named with its file and line."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from keras_trainer.cli import main
from keras_trainer.config import load_config
from keras_trainer.config.columns import ColumnConfig
from keras_trainer.errors import ColumnTypeError, ConfigError
from keras_trainer.tabular.preprocessing import TablePreprocessor
from keras_trainer.tabular.streamed_fit import StreamedFit
from keras_trainer.tabular.typed_shards import TypedShards

PLANS = ["basic", "pro", "team"]


def _rows(count, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        plan = PLANS[i % 3]
        tenure = int(rng.integers(1, 40))
        rows.append(
            {
                "customer_id": f"c{seed}-{i:04d}",
                "plan": "" if i % 17 == 0 else plan,  # blanks in a category
                "tenure": "" if i % 13 == 0 else str(tenure),  # blanks in a number
                "spend": f"{rng.lognormal(3, 1):.3f}",
                "active": "yes" if i % 4 else "no",
                "churn": "leave" if (plan == "basic" and tenure < 20) else "stay",
            }
        )
    return rows


def _write_shards(folder, parts=3, rows=40):
    folder.mkdir()
    for part in range(parts):
        with open(folder / f"part-{part}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(_rows(1)[0]))
            writer.writeheader()
            writer.writerows(_rows(rows, seed=part))
    return folder


def _columns(preprocessor):
    return {c["name"]: c for c in preprocessor.get_config()["columns"]}


DECLARED = {
    "customer_id": {"type": "id"},
    "plan": {"type": "category"},
    "tenure": {"type": "number", "missing_indicator": True},
    "spend": {"type": "number", "transform": "log"},
    "active": {"type": "binary"},
}


@pytest.mark.one_backend
def test_streamed_state_equals_the_in_memory_state_on_the_same_rows():
    frame = pd.DataFrame(_rows(300))
    specs = {n: ColumnConfig.from_dict(s) for n, s in DECLARED.items()}
    fit = StreamedFit(specs, target="churn")
    for start in range(0, 300, 70):  # chunks of uneven size
        fit.add(frame.iloc[start : start + 70], lambda row: f"row {row}")
    assert fit.needs_second_pass  # spend is log-transformed
    for start in range(0, 300, 70):
        fit.add_shaped(frame.iloc[start : start + 70], lambda row: f"row {row}")
    streamed = _columns(fit.preprocessor())
    whole = _columns(TablePreprocessor.fit(frame, DECLARED, target="churn"))
    assert streamed.keys() == whole.keys()
    for name in ("plan", "active", "customer_id"):
        assert streamed[name] == whole[name]  # vocabulary, binary values, fills: exact
    for name in ("tenure", "spend"):
        for key in ("mean", "std", "fill", "offset"):
            expected = whole[name].get(key)
            if expected is None:  # pytest 9.2's approx refuses None
                assert streamed[name].get(key) is None
            else:
                assert streamed[name].get(key) == pytest.approx(expected, rel=1e-9)
        assert set(streamed[name]) == set(whole[name])


@pytest.mark.one_backend
def test_the_streamed_median_is_exact_within_the_sample_and_within_its_error_beyond():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 1, size=20_000)
    frame = pd.DataFrame({"x": [f"{v:.6f}" for v in values]})
    spec = {"x": ColumnConfig.from_dict({"type": "number"})}
    small = StreamedFit(spec, sample_size=len(values))
    sampled = StreamedFit(spec, sample_size=2_500)
    for start in range(0, len(values), 3_000):
        small.add(frame.iloc[start : start + 3_000], str)
        sampled.add(frame.iloc[start : start + 3_000], str)
    exact = np.median(frame["x"].astype(float))
    assert _columns(small.preprocessor())["x"]["fill"] == pytest.approx(exact)
    # Rank error of a 2,500-value sample's median: 0.5 / sqrt(2500) = 1% (one sigma); 4 sigma here.
    rank = np.mean(frame["x"].astype(float) < _columns(sampled.preprocessor())["x"]["fill"])
    assert abs(rank - 0.5) < 0.04


@pytest.mark.one_backend
def test_learning_from_shards_fits_the_training_rows_as_in_memory(tmp_path):
    folder = _write_shards(tmp_path / "shards")
    config = load_config(
        {
            "model": {"type": "feed_forward", "output_activation": "softmax"},
            "training": {"validation_split": 0.2},
            "data": {"test_split": 0.25},
        }
    )
    shards = TypedShards.learn(str(folder / "part-*.csv"), "churn", config)
    assert shards.sizes == (72, 18, 30)  # 120 rows: the last 30 test, 18 validation before them
    assert shards.class_names == ["leave", "stay"] and config.model.output_dim == 2
    training = pd.concat([pd.read_csv(folder / f"part-{p}.csv", dtype=str) for p in range(3)])
    whole = TablePreprocessor.fit(training.iloc[:72].reset_index(drop=True), {}, "churn")
    streamed, expected = _columns(shards.preprocessor), _columns(whole)
    assert {n: c["type"] for n, c in streamed.items()} == {
        "customer_id": "id",
        "plan": "category",
        "tenure": "number",
        "spend": "number",
        "active": "binary",
    }
    assert {n: c["type"] for n, c in expected.items()} == {
        n: c["type"] for n, c in streamed.items()
    }
    assert streamed["plan"] == expected["plan"] and streamed["active"] == expected["active"]
    assert streamed["tenure"]["mean"] == pytest.approx(expected["tenure"]["mean"])
    assert streamed["tenure"]["std"] == pytest.approx(expected["tenure"]["std"])
    assert streamed["tenure"]["fill"] == expected["tenure"]["fill"]  # 72 values: all sampled


def _config(tmp_path, **data):
    config = {
        "model": {
            "type": "feed_forward",
            "hidden_layers": [8],
            "output_activation": "softmax",
            "batch_norm": False,
        },
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "seed": 1},
        "data": {"test_split": 0.2, **data},
    }
    path = tmp_path / "churn.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_train_on_typed_shards_then_predict_and_evaluate_shards_with_unseen_values(
    tmp_path, capsys
):
    from keras_trainer.core.saving import persistence

    folder = _write_shards(tmp_path / "shards")
    model = tmp_path / "churn.keras"
    arguments = ["--target", "churn", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    glob = str(folder / "part-*.csv")
    assert (
        main(["train", _config(tmp_path), "--data", glob, "--output", str(model), *arguments]) == 0
    )
    out = capsys.readouterr().out
    assert "77 train, 19 validation, 24 test rows" in out
    assert "plan: category" in out and "customer_id: id" in out
    _, metadata = persistence.load_model(str(model))
    assert metadata["class_names"] == ["leave", "stay"]
    assert {c["name"] for c in metadata["preprocessing"]["columns"]} >= {"plan", "tenure"}

    new = tmp_path / "new"
    new.mkdir()
    (new / "a.csv").write_text(
        "customer_id,plan,tenure,spend,active\nn1,basic,5,20.5,yes\nn2,gold,,3.1,no\n"
    )
    (new / "b.csv").write_text("customer_id,plan,tenure,spend,active\nn3,,30,,yes\n")
    output = tmp_path / "predictions.csv"
    assert main(["predict", str(model), "--data", str(new / "*.csv"), "--output", str(output)]) == 0
    err = capsys.readouterr().err
    assert "column 'plan': 1 of 3 rows hold values unseen in training" in err and "'gold'" in err
    assert "column 'tenure': 1 of 3 missing cells filled" in err
    with open(output, newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [r["id"] for r in predicted] == ["n1", "n2", "n3"]
    assert {r["label"] for r in predicted} <= {"leave", "stay"}

    assert main(["evaluate", str(model), "--data", glob]) == 0
    assert f"metrics on 120 rows of {glob}" in capsys.readouterr().out


def test_a_type_change_in_a_later_shard_names_the_file_line_and_column(tmp_path, capsys):
    folder = _write_shards(tmp_path / "shards")
    lines = (folder / "part-1.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = "long"  # tenure, a number in part-0, holds a word on line 6 of part-1
    lines[5] = ",".join(cells)
    (folder / "part-1.csv").write_text("\n".join(lines) + "\n")
    config = load_config({"model": {"type": "feed_forward", "output_activation": "softmax"}})
    with pytest.raises(ColumnTypeError, match=r"column 'tenure'.*part-1\.csv line 6 holds 'long'"):
        TypedShards.learn(str(folder), "churn", config)
    arguments = ["--data", str(folder), "--target", "churn", "--runs-dir", str(tmp_path)]
    assert main(["train", _config(tmp_path), *arguments]) != 0
    err = capsys.readouterr().err
    assert "ColumnTypeError" in err or "column 'tenure'" in err
    assert "part-1.csv line 6" in err


@pytest.mark.one_backend
def test_an_inferred_binary_column_with_a_third_value_in_a_later_shard_is_a_type_change(
    tmp_path,
):
    folder = _write_shards(tmp_path / "shards")
    lines = (folder / "part-2.csv").read_text().splitlines()
    lines[-1] = lines[-1].replace(",yes,", ",maybe,").replace(",no,", ",maybe,")
    (folder / "part-2.csv").write_text("\n".join(lines) + "\n")  # a validation row: checked too
    config = load_config({"model": {"type": "feed_forward", "output_activation": "softmax"}})
    with pytest.raises(
        ColumnTypeError, match=r"'active' was inferred binary .*part-2\.csv line 41 holds 'maybe'"
    ):
        TypedShards.learn(str(folder), "churn", config)


@pytest.mark.one_backend
def test_declared_columns_on_npy_shards_are_refused_with_a_config_error(tmp_path):
    from keras_trainer.tabular.tables import typed_shard_paths

    (tmp_path / "part-0.npy").write_bytes(b"")
    with pytest.raises(ConfigError, match=".npy shards hold numbers only"):
        typed_shard_paths(str(tmp_path / "*.npy"))


@pytest.mark.one_backend
def test_parquet_shards_learn_the_state_csv_shards_learn(tmp_path):
    pytest.importorskip("pyarrow")
    folder = _write_shards(tmp_path / "csv")
    (tmp_path / "parquet").mkdir()
    for part in range(3):
        frame = pd.read_csv(folder / f"part-{part}.csv", dtype=str, keep_default_na=True)
        frame["tenure"] = pd.to_numeric(frame["tenure"])  # a typed Parquet column, blanks as NaN
        frame.to_parquet(tmp_path / "parquet" / f"part-{part}.parquet")
    config = load_config({"model": {"type": "feed_forward", "output_activation": "softmax"}})
    from_csv = TypedShards.learn(str(folder), "churn", config)
    from_parquet = TypedShards.learn(str(tmp_path / "parquet"), "churn", config)
    assert from_parquet.sizes == from_csv.sizes
    assert _columns(from_parquet.preprocessor) == _columns(from_csv.preprocessor)


@pytest.mark.one_backend
def test_inspect_describes_shards_by_the_first_shard_train_infers_from(tmp_path, capsys):
    folder = _write_shards(tmp_path / "shards")
    assert main(["inspect", str(folder / "part-*.csv"), "--target", "churn"]) == 0
    out = capsys.readouterr().out
    assert f"the first shard, {folder / 'part-0.csv'}" in out
    assert '"plan": {"type": "category"}' in out and '"active": {"type": "binary"}' in out
