"""The CLI answers `--help`, `--version`, `validate` and `schema` without importing
Keras or any backend (checked on `sys.modules` in a fresh interpreter, not by timing),
and keeps third-party log spam out of its output."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env

HEAVY = (
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "keras_tuner",
    "onnx",
    "onnxruntime",
    "matplotlib",
    "fastapi",
)

PROBE = """
import json, sys
from keras_trainer.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("\\nMODULES " + json.dumps(heavy))
"""


def _probe(*args):
    return subprocess.run(  # noqa: PLW1510 (the test reads returncode)
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["schema"],
        ["validate", os.path.join(ROOT, "config", "model_config.json")],
        ["validate", os.path.join(ROOT, "config", "tabular_tuning_config.json")],
    ],
)
def test_light_commands_import_no_deep_learning_library(args):
    result = _probe(*args)
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.rsplit("MODULES ", 1)[1])
    assert imported == [], f"{' '.join(args)} imported {imported}"


def test_version_names_the_package():
    from keras_trainer import __version__

    result = _probe("--version")
    assert result.stdout.startswith(f"keras-trainer {__version__}")


def test_verbose_flag_may_follow_the_command():
    from keras_trainer.cli import _pop_verbose

    assert _pop_verbose(["validate", "c.json", "-v"]) == (["validate", "c.json"], 1)
    assert _pop_verbose(["-v", "train", "c.json", "--verbose"]) == (
        ["train", "c.json"],
        2,
    )


def test_training_output_has_no_third_party_log_lines_and_no_progress_bar(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            {
                "model": {"input_dim": 12, "hidden_layers": [8], "output_dim": 5},
                "training": {"epochs": 2, "batch_size": 64},
            }
        )
    )
    result = subprocess.run(  # noqa: PLW1510 (the test reads returncode)
        [
            sys.executable,
            "-m",
            "keras_trainer",
            "train",
            str(config),
            "--output",
            str(tmp_path / "m.keras"),
        ],
        env={k: v for k, v in subprocess_env().items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for noise in (
        "oneDNN",
        "absl::InitializeLog",
        "E0000",
        "use_unbounded_threadpool",
        "cuda",
        "UserWarning",
    ):
        assert noise not in output, noise
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout
    # One line per epoch: Keras' verbose=2 format.
    assert result.stdout.count("Epoch 2/2") == 1
