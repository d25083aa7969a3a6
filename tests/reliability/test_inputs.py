"""Bad input files, arguments, output paths and data give named library errors
(issue 12, items 4, 6 and 7)."""

import json

import numpy as np
import pytest

from keras_trainer import cli
from keras_trainer.errors import ConfigError, DataError

pytest.importorskip("llvmlite")

from keras_trainer import ModelTrainer  # noqa: E402

CONFIG = {
    "model": {"input_dim": 12, "hidden_layers": [4], "output_dim": 5},
    "training": {"epochs": 1, "batch_size": 16, "verbose": 0, "validation_split": 0.0},
}
UNWRITABLE = "/sys/keras_trainer_reliability/out"  # not writable, even by root


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    trainer = ModelTrainer(CONFIG)
    trainer.create_model(12)
    path = tmp_path_factory.mktemp("model") / "jit.keras"
    trainer.save_model(path)
    return str(path)


def _cli_error(capsys, argv):
    """Runs the CLI; returns its error line (it must exit 2 with one, no traceback)."""
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: "), err
    return err


def test_predict_with_a_missing_ir_file_names_it(saved_model, capsys, tmp_path):
    err = _cli_error(capsys, ["predict", saved_model, "--ir", str(tmp_path / "absent.ll")])
    assert "--ir file not found" in err and "absent.ll" in err


def test_predict_with_a_missing_features_file_names_it(saved_model, capsys, tmp_path):
    err = _cli_error(capsys, ["predict", saved_model, "--features", str(tmp_path / "absent.json")])
    assert "--features file not found" in err


@pytest.mark.parametrize("flag", ["--features", "--runtime"])
def test_malformed_json_arguments_name_the_file_and_line(saved_model, capsys, tmp_path, flag):
    bad = tmp_path / "bad.json"
    bad.write_text('{"exec_time_ns": 1,\n oops}')
    ir = tmp_path / "k.ll"
    ir.write_text("define i64 @entry(i64 %n) {\nentry:\n  ret i64 %n\n}\n")
    argv = ["predict", saved_model, flag, str(bad)] + (
        ["--ir", str(ir)] if flag == "--runtime" else []
    )
    err = _cli_error(capsys, argv)
    assert f"{bad}:2:" in err and "malformed JSON" in err


def test_a_binary_ir_file_is_named(saved_model, capsys, tmp_path):
    binary = tmp_path / "k.ll"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    err = _cli_error(capsys, ["predict", saved_model, "--ir", str(binary)])
    assert "k.ll" in err and "not UTF-8" in err


def test_a_binary_config_file_is_named(capsys, tmp_path):
    binary = tmp_path / "config.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    err = _cli_error(capsys, ["validate", str(binary)])
    assert "config.json" in err and "not UTF-8" in err


def test_feature_rows_that_are_not_numbers_are_named(saved_model, capsys, tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([[1] * 12, ["a"] * 12]))
    err = _cli_error(capsys, ["predict", saved_model, "--features", str(rows)])
    assert "row 1" in err


def test_evaluate_report_to_an_unwritable_path_fails_before_evaluating(saved_model, capsys):
    err = _cli_error(capsys, ["evaluate", saved_model, "--report", UNWRITABLE + "/report.json"])
    assert "--report" in err and "cannot write" in err


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def test_train_with_a_wrong_output_suffix_fails_before_training(config_file, capsys, tmp_path):
    err = _cli_error(
        capsys, ["train", config_file, "--output", str(tmp_path / "models" / "out.txt")]
    )
    assert "--output" in err and "'.keras'" in err
    assert not (tmp_path / "models").exists()


def test_train_into_an_unwritable_folder_fails_before_training(config_file, capsys):
    err = _cli_error(capsys, ["train", config_file, "--output", UNWRITABLE + "/model.keras"])
    assert "--output" in err and "cannot write" in err
    assert "dataset:" not in capsys.readouterr().out


def test_train_with_a_checkpoint_directory_that_is_a_file_fails_up_front(
    config_file, capsys, tmp_path
):
    blocker = tmp_path / "ckpt"
    blocker.write_text("")
    err = _cli_error(
        capsys,
        [
            "train",
            config_file,
            "--output",
            str(tmp_path / "m.keras"),
            "--checkpoint-dir",
            str(blocker),
        ],
    )
    assert "is a file" in err


# ----------------------------------------------------------------------- data
def test_two_dimensional_labels_that_are_not_one_hot_are_rejected():
    trainer = ModelTrainer(CONFIG)
    x = np.zeros((8, 12), dtype="float32")
    for labels, row in ((np.random.default_rng(0).random((8, 5)), 0), (np.zeros((8, 5)), 0)):
        with pytest.raises(DataError, match=f"row {row} is not one-hot"):
            trainer.train((x, labels))
    soft = np.eye(5)[np.arange(8) % 5]
    soft[3] = [0.5, 0.5, 0, 0, 0]
    with pytest.raises(DataError, match="row 3 is not one-hot"):
        trainer.train((x, soft))


def test_absurdly_large_features_are_rejected():
    trainer = ModelTrainer(CONFIG)
    x = np.ones((8, 12), dtype="float32")
    x[5, 7] = 1e38
    with pytest.raises(DataError, match="row 5, column 7: 1e\\+38 is beyond"):
        trainer.train((x, np.arange(8) % 5))


def test_a_huge_runtime_metric_is_named_not_blamed_on_nan(tmp_path):
    from ..jit.snippets import ONE_LOOP

    identity = [
        {"key": k, "transform": "identity"}
        for k in ("exec_time_ns", "compile_time_ms", "code_size_bytes")
    ]
    trainer = ModelTrainer(dict(CONFIG, features={"runtime_metrics": identity}))
    runtime = [{"exec_time_ns": 1000.0, "compile_time_ms": 1.0, "code_size_bytes": 100.0}] * 3
    runtime = [dict(r) for r in runtime]
    runtime[1]["exec_time_ns"] = 3e37
    with pytest.raises(DataError, match="sample 1, feature 'exec_time_ns'") as caught:
        trainer.prepare_training_data([ONE_LOOP] * 3, runtime, [0, 1, 2])
    assert "NaN" not in str(caught.value)


# ------------------------------------------------------------------ assistant
@pytest.mark.parametrize(
    "settings, key",
    [
        ({"method": "foo"}, "method"),
        ({"max_length": 0}, "max_length"),
        ({"method": "beam", "beam_width": 0}, "beam_width"),
    ],
)
def test_assistant_generation_arguments_are_config_errors(settings, key):
    from keras_trainer.assistant.assistant import Assistant

    assistant = Assistant.__new__(Assistant)
    assistant._generators = {}
    with pytest.raises(ConfigError, match=f"^{key}: "):
        assistant.generator(**settings)


# ------------------------------------------------- past the list: more loaders
def test_a_binary_dataset_file_is_named(tmp_path):
    from keras_trainer.jit.data.collect import load_dataset

    path = tmp_path / "data.json"
    path.write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(DataError, match="data.json: not UTF-8"):
        load_dataset(str(path))


def test_collect_with_a_wrong_output_suffix_fails_before_measuring(capsys, tmp_path):
    status = cli.main(["collect", "--corpus", "1", "--output", str(tmp_path / "data.txt")])
    err = capsys.readouterr().err
    assert status == 2 and "--output" in err and "'.json'" in err
