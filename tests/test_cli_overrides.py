"""`--set KEY=VALUE`, `--seed`, `--print-config`, no abbreviations, no surprise overwrite,
`validate` of every shipped config."""

import json
import os
import subprocess
import sys

import pytest

from keras_trainer.cli import main
from tests.conftest import ROOT, subprocess_env

# Argument parsing and config validation only: no Keras code runs.
pytestmark = pytest.mark.one_backend

CONFIGS = os.path.join(ROOT, "config")

# Runs `main(argv)` in a fresh interpreter; prints the exit status and whether Keras was imported.
_PRINT_CONFIG = """
import json, sys
from keras_trainer.cli import main
status = main(json.loads(sys.argv[1]))
print(json.dumps({"status": status, "keras": "keras" in sys.modules}), file=sys.stderr)
"""


def _print_config(*argv):
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_CONFIG, json.dumps([*argv, "--print-config"])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=subprocess_env(),
        timeout=120,
    )
    outcome = json.loads(result.stderr.strip().splitlines()[-1])
    return outcome, json.loads(result.stdout) if outcome["status"] == 0 else result.stderr


@pytest.mark.parametrize(
    "verb, config",
    [
        ("train", "model_config.json"),  # JIT
        ("train", "penguins_config.json"),  # tabular
        ("train", "assistant_config.json"),  # assistant
        ("tune", "tabular_tuning_config.json"),
    ],
)
def test_print_config_shows_the_overrides_and_exits_without_importing_keras(verb, config):
    outcome, resolved = _print_config(
        verb,
        os.path.join(CONFIGS, config),
        "--set",
        "training.epochs=5",
        "--set",
        "training.learning_rate=0.01",
        "--seed",
        "7",
    )
    assert outcome == {"status": 0, "keras": False}
    training = resolved["training"]
    assert (training["epochs"], training["learning_rate"], training["seed"]) == (5, 0.01, 7)


def test_set_takes_json_lists_and_plain_strings_at_dotted_paths():
    outcome, resolved = _print_config(
        "train",
        os.path.join(CONFIGS, "model_config.json"),
        "--set",
        "model.hidden_layers=[32,16]",
        "--set",
        "output.model_path=models/other.keras",
    )
    assert outcome["status"] == 0
    assert resolved["model"]["hidden_layers"] == [32, 16]
    assert resolved["output"]["model_path"] == "models/other.keras"


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.epochs=-1", "training.epochs: must be"),
        ("training.epoch=3", "training.epoch: unknown key"),
        ("model.hidden_layers=wide", "model.hidden_layers: must be"),
        ("training.validation_split.x=1", "training.validation_split is a value, not a section"),
        ("training.epochs", "expected KEY=VALUE"),
    ],
)
def test_a_bad_override_is_the_config_error_naming_its_key(capsys, override, message):
    config = os.path.join(CONFIGS, "tabular_tuning_config.json")
    err = _error(capsys, ["train", config, "--set", override, "--print-config"])
    assert err.startswith("error: ") and message in err


def test_an_override_fails_as_the_same_value_in_the_file_does(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"training": {"epochs": -1}}))
    from_file = _error(capsys, ["train", str(path), "--print-config"])
    from_override = _error(
        capsys,
        [
            "train",
            os.path.join(CONFIGS, "model_config.json"),
            "--set",
            "training.epochs=-1",
            "--print-config",
        ],
    )
    assert from_file.split("training.epochs", 1)[1] == from_override.split("training.epochs", 1)[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "config/model_config.json", "--epoch", "2"],
        ["train", "config/model_config.json", "--print-conf"],
        ["tune", "config/tabular_tuning_config.json", "--max-trial", "2"],
    ],
)
def test_abbreviated_long_options_are_refused(capsys, argv):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONFIGS) if n.endswith(".json")))
def test_validate_accepts_every_shipped_config_without_a_kind(capsys, name):
    assert main(["validate", os.path.join(CONFIGS, name)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_checks_a_tabular_config_with_the_key_names_train_reads(capsys, tmp_path):
    path = tmp_path / "tabular.json"
    # ("hidden_sizes", the ML-framework document's name, is an alias of hidden_layers.)
    path.write_text(json.dumps({"model": {"type": "feed_forward", "hidden_size": [8]}}))
    assert "model.hidden_size: unknown key" in _error(capsys, ["validate", str(path)])


def test_a_section_written_as_a_string_shows_its_object_form(capsys, tmp_path):
    path = tmp_path / "optimizer.json"
    # ("optimizer": "adamw" is the training-framework document's form, an alias.)
    path.write_text(json.dumps({"training": {"lr_schedule": "cosine"}}))
    assert 'training.lr_schedule: must be an object, got \'cosine\' (write {"name": "cosine"})' in (
        _error(capsys, ["validate", str(path)])
    )


def test_jit_train_refuses_an_existing_output_model_path_naming_both_ways_to_allow_it(
    capsys, tmp_path
):
    existing = tmp_path / "jit.keras"
    existing.write_bytes(b"the Quickstart's model")
    config = os.path.join(CONFIGS, "model_config.json")
    command = ["train", config, "--set", f"output.model_path={existing}"]
    err = _error(capsys, [*command, "--runs-dir", str(tmp_path / "runs")])
    assert f"output.model_path: {existing} already exists; pass --overwrite (or set " in err
    assert "output.overwrite: true in the config)" in err
    assert existing.read_bytes() == b"the Quickstart's model"
    assert not (tmp_path / "runs").exists()


def test_class_weights_from_a_set_override():
    from keras_trainer.cli_args import apply_overrides
    from keras_trainer.config import TrainingConfig

    raw = apply_overrides({}, ['training.class_weights={"0": 1, "1": 3.5}'])
    assert TrainingConfig.from_dict(raw["training"]).class_weights == {"0": 1.0, "1": 3.5}
    raw = apply_overrides({}, ["training.class_weights=balanced"])
    assert TrainingConfig.from_dict(raw["training"]).class_weights == "balanced"
