"""Dataset collection in worker subprocesses, and the dataset loader."""

import json

import pytest

from keras_trainer.errors import DataError
from keras_trainer.jit.data.collect import (
    DATASET_FORMAT,
    choose_label,
    collect_dataset,
    label_samples,
    load_dataset,
    merge_collections,
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


def _pass(times: dict, result=7, seconds=10.0) -> dict:
    """A hand-made collection of modules named by `times`' keys."""
    samples = [
        {
            "name": name,
            "ir": "",
            "entry": "entry",
            "args": [],
            "runtime": {"exec_time_ns": t[0], "compile_time_ms": t[0] / 100, "code_size_bytes": 64},
            "timings_ns": dict(zip(["O0", "O1", "O2"], t)),
            "compile_times_ms": {"O0": 1.0, "O1": 2.0, "O2": 3.0},
            "result": result,
        }
        for name, t in times.items()
    ]
    return label_samples(
        {
            "format": DATASET_FORMAT,
            "strategies": ["O0", "O1", "O2"],
            "metadata": {"collection_seconds": seconds},
            "samples": samples,
            "failed": [],
        },
        tie_tolerance=0.03,
        tie_break="cheapest",
    )


def test_merged_passes_keep_each_times_median_and_relabel():
    passes = [
        _pass({"a": (300, 100, 90), "b": (300, 100, 99)}),
        # A load spike hits O2 of "a" in this pass only.
        _pass({"a": (310, 101, 400), "b": (290, 100, 98)}),
        _pass({"a": (305, 99, 91), "b": (295, 99, 98)}),
    ]
    assert passes[1]["samples"][0]["label_name"] == "O1"
    merged = merge_collections(passes)
    a, b = merged["samples"]
    assert a["timings_ns"] == {"O0": 305, "O1": 100, "O2": 91}
    assert a["label_name"] == "O2"  # 9 % faster than O1 in the median
    assert b["label_name"] == "O1"  # within 3 % of O2: the cheaper one wins
    assert a["runtime"]["exec_time_ns"] == 305
    assert a["runtime"]["compile_time_ms"] == 3.05
    assert [t["O2"] for t in a["pass_timings_ns"]] == [90, 400, 91]
    assert merged["metadata"]["passes"] == 3
    assert merged["metadata"]["collection_seconds"] == 30.0
    assert merged["metadata"]["tie_break"] == "cheapest"


def test_a_module_failing_or_disagreeing_in_any_pass_is_failed():
    second = _pass({"a": (300, 100, 90)})
    second["failed"].append({"name": "b", "entry": "entry", "reason": "crashed (SIGSEGV)"})
    third = _pass({"a": (300, 100, 90), "b": (300, 100, 90)})
    third["samples"][0]["result"] = 8
    merged = merge_collections([_pass({"a": (300, 100, 90), "b": (300, 100, 90)}), second, third])
    assert merged["samples"] == []
    reasons = {f["name"]: f["reason"] for f in merged["failed"]}
    assert reasons["b"] == "crashed (SIGSEGV)"
    assert "results differ between passes: 7, 7, 8" in reasons["a"]


def test_merging_passes_of_other_strategies_raises_dataerror():
    other = _pass({"a": (300, 100, 90)})
    other["strategies"] = ["O0", "O1", "O3"]
    with pytest.raises(DataError, match="pass 1 measured strategies"):
        merge_collections([_pass({"a": (300, 100, 90)}), other])
    with pytest.raises(DataError, match="no datasets"):
        merge_collections([])


def test_two_real_passes_merge_into_a_loadable_dataset(dataset, tmp_path):
    modules = [{"name": "one_loop", "ir": ONE_LOOP, "args": [50]}]
    again = collect_dataset(modules, repeats=2, warmup=1, timeout_s=4.0)
    merged = merge_collections([dataset, again])
    assert [s["name"] for s in merged["samples"]] == ["one_loop"]
    assert {f["name"] for f in merged["failed"]} == {"crashes", "hangs", "nested"}
    path = save_dataset(merged, str(tmp_path / "merged.json.gz"))
    ir_samples, runtime_data, labels = load_dataset(path)
    assert ir_samples == [ONE_LOOP] and labels == [merged["samples"][0]["label"]]


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
