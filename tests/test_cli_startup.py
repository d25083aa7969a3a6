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
        # TF_ENABLE_ONEDNN_OPTS=1 is what TensorFlow picks on AVX-512 hosts: its oneDNN
        # notice and absl's pre-init line then reach stderr whatever TF_CPP_MIN_LOG_LEVEL
        # says, so this host shows them too.
        env={
            **{k: v for k, v in subprocess_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"},
            "TF_ENABLE_ONEDNN_OPTS": "1",
        },
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


NATIVE_WRITER = """
import os, sys
from keras_trainer.native_logs import filter_native_log_lines
filter_native_log_lines()
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1796603724.075843   10996 port.cc:153] oneDNN custom operations are on.\\n")
os.write(2, b"E0000 00:00:1796603724.1 10996 dataset.cc:9] use_unbounded_threadpool\\n")
os.write(2, b"2026-12-07 10:00:00.123456: W tensorflow/core/x.cc:1] a TensorFlow warning\\n")
os.write(2, b"F0000 00:00:1796603724.2 10996 x.cc:1] a fatal line\\n")
print("a Python warning", file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.one_backend
def test_native_log_filter_drops_native_info_lines_and_keeps_python_and_fatal_ones():
    result = subprocess.run(  # noqa: PLW1510 (the test reads returncode)
        [sys.executable, "-c", NATIVE_WRITER],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "F0000 00:00:1796603724.2 10996 x.cc:1] a fatal line",
        "a Python warning",
    ]


@pytest.mark.one_backend
def test_a_warning_is_one_plain_line_without_a_source_path():
    # `train --resume` without a checkpoint warns through `warnings.warn`, as any library
    # warning does; after main() ran, it reads "warning: ..." with no path or category.
    code = (
        "import warnings\n"
        "from keras_trainer.cli import main\n"
        "main(['schema', '--kind', 'serving'])\n"
        "warnings.warn('training.resume: no complete checkpoint in runs/ckpt; starting afresh')\n"
    )
    result = subprocess.run(  # noqa: PLW1510 (the test reads returncode)
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "warning: training.resume: no complete checkpoint in runs/ckpt; starting afresh\n"
    )
