"""The `collect` and `jit` subcommands, through argparse as the main CLI wires them."""

import argparse
import json

from keras_trainer.jit.cli import register
from keras_trainer.jit.data.collect import load_dataset

from .snippets import ONE_LOOP
from .test_adaptive import save_tiny_model


def parse(argv):
    parser = argparse.ArgumentParser(prog="keras-trainer")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_collect_writes_a_dataset_from_ll_files(tmp_path, capsys):
    source = tmp_path / "loop.ll"
    source.write_text(ONE_LOOP)
    output = tmp_path / "out.json"
    args = parse(
        [
            "collect",
            str(source),
            "--args",
            "20",
            "--repeats",
            "1",
            "--output",
            str(output),
            "--timeout",
            "20",
        ]
    )
    assert args.handler(args) == 0
    ir_samples, runtime_data, labels = load_dataset(str(output))
    assert ir_samples == [ONE_LOOP] and len(labels) == 1
    assert json.loads(output.read_text())["samples"][0]["args"] == [20]
    out = capsys.readouterr().out
    assert "1 samples, 0 failed" in out
    label = json.loads(output.read_text())["samples"][0]["label_name"]
    assert "final labels" in out and f"  loop.ll: {label}\n" in out


def test_collect_without_inputs_is_an_error(tmp_path, capsys):
    args = parse(["collect", "--output", str(tmp_path / "x.json")])
    assert args.handler(args) == 2
    assert "nothing to collect" in capsys.readouterr().err


def test_jit_prints_strategy_and_result(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "m.keras", favourite=3)
    source = tmp_path / "loop.ll"
    source.write_text(ONE_LOOP)
    args = parse(["jit", model, str(source), "100"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "strategy: O3" in out and "result: 4950" in out


def test_jit_reports_bad_ir_with_its_line(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "m.keras", favourite=3)
    source = tmp_path / "bad.ll"
    source.write_text("define i64 @entry(i64 %n) {\n  ret i64 %nope\n}\n")
    args = parse(["jit", model, str(source), "1"])
    assert args.handler(args) == 2
    assert "line 2" in capsys.readouterr().err


def test_training_on_a_dataset_without_samples_is_a_named_error(tmp_path, capsys):
    import gzip
    import json as json_module

    from keras_trainer.cli import main
    from keras_trainer.jit import SAMPLE_DATASET_PATH
    from tests.conftest import ROOT

    opener = gzip.open if SAMPLE_DATASET_PATH.endswith(".gz") else open
    with opener(SAMPLE_DATASET_PATH, "rt", encoding="utf-8") as handle:
        data = json_module.load(handle)
    empty = tmp_path / "empty.json"
    empty.write_text(json_module.dumps({**data, "samples": []}))
    config = f"{ROOT}/config/model_config.json"
    arguments = ["train", config, "--data", str(empty), "--runs-dir", str(tmp_path / "runs")]
    assert main([*arguments, "--output", str(tmp_path / "m.keras")]) == 2
    assert "empty.json: the dataset has no samples" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
