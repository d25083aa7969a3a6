"""The `export` CLI subcommand."""

import argparse

from keras_trainer.export import read_onnx_metadata
from keras_trainer.export.cli import register


def _parse(argv):
    parser = argparse.ArgumentParser(prog="keras-trainer")
    register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_parses_paths_and_options():
    args = _parse(["export", "m.keras", "m.onnx", "--opset", "15", "--custom-module", "a.b"])
    assert (args.model_path, args.output, args.opset) == ("m.keras", "m.onnx", 15)
    assert args.custom_modules == ["a.b"]
    assert callable(args.handler)


def test_missing_model_exits_1_with_message(tmp_path, capsys):
    args = _parse(["export", str(tmp_path / "absent.keras"), str(tmp_path / "m.onnx")])
    assert args.handler(args) == 1
    assert "not found" in capsys.readouterr().err


def test_unreadable_metadata_file_exits_1(exported_models, tmp_path, capsys):
    bad = tmp_path / "meta.json"
    bad.write_text("{not json")
    args = _parse(
        [
            "export",
            exported_models["jit_mlp"].keras_path,
            str(tmp_path / "m.onnx"),
            "--metadata",
            str(bad),
        ]
    )
    assert args.handler(args) == 1
    assert "meta.json" in capsys.readouterr().err


def test_exports_model_file_with_metadata_file(exported_models, tmp_path, capsys):
    meta = tmp_path / "meta.json"
    meta.write_text('{"class_names": ["a", "b", "c"]}')
    output = tmp_path / "cli.onnx"
    args = _parse(
        [
            "export",
            exported_models["tabular_cnn_lstm"].keras_path,
            str(output),
            "--metadata",
            str(meta),
        ]
    )
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert read_onnx_metadata(output)["class_names"] == ["a", "b", "c"]
