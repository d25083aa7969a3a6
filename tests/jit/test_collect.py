"""Dataset collection in worker subprocesses, and the dataset loader."""

import json

import pytest

from keras_trainer.errors import DataError
from keras_trainer.jit.collect import (
    DATASET_FORMAT,
    choose_label,
    collect_dataset,
    label_samples,
    load_dataset,
    save_dataset,
)
from keras_trainer.jit.strategies import STRATEGY_NAMES

from .snippets import NESTED_LOOP, ONE_LOOP

pytestmark = pytest.mark.one_backend  # no Keras code runs here

CRASHES = """define i64 @entry(i64 %n) {
entry:
  store volatile i64 %n, ptr null
  ret i64 0
}
"""

HANGS = """define i64 @entry(i64 %n) {
entry:
  br label %spin
spin:
  br label %spin
}
"""


@pytest.fixture(scope="module")
def dataset():
    modules = [
        {"name": "one_loop", "ir": ONE_LOOP, "args": [50]},
        {"name": "crashes", "ir": CRASHES, "args": [1]},
        {"name": "nested", "ir": NESTED_LOOP, "args": [12]},
        {"name": "hangs", "ir": HANGS, "args": [1]},
    ]
    return collect_dataset(modules, repeats=2, warmup=1, timeout_s=4.0, workers=2)


def test_good_modules_become_labelled_samples(dataset):
    assert dataset["format"] == DATASET_FORMAT
    assert dataset["strategies"] == STRATEGY_NAMES
    names = [s["name"] for s in dataset["samples"]]
    assert names == ["one_loop", "nested"]
    sample = dataset["samples"][0]
    assert sample["result"] == sum(range(50))
    assert set(sample["timings_ns"]) == set(STRATEGY_NAMES)
    assert sample["runtime"]["exec_time_ns"] == sample["timings_ns"]["O0"]
    assert sample["runtime"]["code_size_bytes"] > 0
    assert 0 <= sample["label"] < 5
    assert sample["label_name"] == STRATEGY_NAMES[sample["label"]]


def test_crashing_and_hanging_modules_are_recorded_as_failed(dataset):
    failed = {f["name"]: f["reason"] for f in dataset["failed"]}
    assert set(failed) == {"crashes", "hangs"}
    assert "crashed" in failed["crashes"] and "SIGSEGV" in failed["crashes"]
    assert "timed out after 4 s" in failed["hangs"]


def test_bad_ir_module_is_recorded_as_failed_with_the_parse_error():
    result = collect_dataset(
        [{"name": "bad", "ir": "define i64 @entry( {"}], repeats=1, timeout_s=10
    )
    assert result["samples"] == []
    assert "IRParseError" in result["failed"][0]["reason"]


def test_choose_label_prefers_the_earliest_within_tolerance():
    timings = {"O0": 100, "O1": 50, "O2": 49, "O3": 60, "O3-scalar": 70}
    assert choose_label(timings, STRATEGY_NAMES, 0.05) == 1
    assert choose_label(timings, STRATEGY_NAMES, 0.0) == 2


def test_overall_tie_break_prefers_the_strategy_best_over_the_collection():
    names = ["O0", "O1", "O2"]
    dataset = {
        "strategies": names,
        "samples": [
            {"timings_ns": {"O0": 300, "O1": 100, "O2": 101}},
            {"timings_ns": {"O0": 300, "O1": 200, "O2": 100}},
            {"timings_ns": {"O0": 300, "O1": 100, "O2": 100}},
        ],
    }
    labelled = label_samples(dataset, tie_tolerance=0.02, tie_break="overall")
    assert labelled["metadata"]["tie_preference"] == ["O2", "O1", "O0"]
    assert [s["label_name"] for s in labelled["samples"]] == ["O2", "O2", "O2"]
    cheapest = label_samples(dataset, tie_tolerance=0.02, tie_break="cheapest")
    assert [s["label_name"] for s in cheapest["samples"]] == ["O1", "O2", "O1"]


def test_unknown_tie_break_raises_dataerror():
    with pytest.raises(DataError, match="tie_break"):
        label_samples({"strategies": ["O0"], "samples": []}, tie_break="random")


def test_saved_dataset_loads_as_three_lists(dataset, tmp_path):
    path = save_dataset(dataset, str(tmp_path / "d.json"))
    ir_samples, runtime_data, labels = load_dataset(path)
    assert ir_samples == [ONE_LOOP, NESTED_LOOP]
    assert len(runtime_data) == 2 and all(isinstance(label, int) for label in labels)


def test_loader_names_record_index_and_key(dataset, tmp_path):
    broken = json.loads(json.dumps(dataset))
    del broken["samples"][1]["runtime"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(DataError, match=r"samples\[1\]: missing key 'runtime'"):
        load_dataset(str(path))


def test_loader_rejects_out_of_range_label(dataset, tmp_path):
    broken = json.loads(json.dumps(dataset))
    broken["samples"][0]["label"] = 7
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(DataError, match=r"samples\[0\]\['label'\]: 7 is not a strategy"):
        load_dataset(str(path))


def test_loader_rejects_other_formats(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something/2"}))
    with pytest.raises(DataError, match="'format' must be"):
        load_dataset(str(path))


def test_loader_reports_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nope.json"))
