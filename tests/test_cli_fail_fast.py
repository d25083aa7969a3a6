"""`train`, `evaluate`, `predict` and `tune` check their config, input files, CSV columns
and output paths before Keras is imported, and import only the active backend
(checked on `sys.modules` in a fresh interpreter, not by timing)."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT, subprocess_env

# Each case runs main() in one fresh interpreter; the backend of the test run does not matter.
pytestmark = pytest.mark.one_backend

BACKENDS = ("keras", "tensorflow", "jax", "torch")

# Runs each command line of argv[1] (a JSON list) through main() in this interpreter and
# prints, per command, its exit status and the deep-learning modules loaded at its end.
_RUN_ALL = """
import json, sys
from keras_trainer.cli import main
for argv in json.loads(sys.argv[1]):
    status = main(argv)
    loaded = [m for m in {backends!r} if m in sys.modules]
    print(json.dumps({{"status": status, "loaded": loaded}}), flush=True)
    print("END", file=sys.stderr, flush=True)
"""


def _run_all(commands, **env):
    result = subprocess.run(  # noqa: PLW1510 (the test reads returncode)
        [sys.executable, "-c", _RUN_ALL.format(backends=BACKENDS), json.dumps(commands)],
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = result.stderr.split("END\n")
    return [{**o, "error": e.strip()} for o, e in zip(outcomes, errors)]


@pytest.fixture
def files(tmp_path):
    """A tiny CSV table, a tabular config, and a stand-in model file whose metadata
    names its features (read without Keras; the model itself is never loaded)."""
    (tmp_path / "rows.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    config = {
        "model": {
            "type": "feed_forward",
            "hidden_layers": [4],
            "output_dim": 1,
            "output_activation": "sigmoid",
        }
    }
    (tmp_path / "tabular.json").write_text(json.dumps(config))
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("keras_trainer.json", json.dumps({"feature_names": ["a", "b", "c"]}))
    return tmp_path


def test_input_column_and_output_mistakes_are_reported_before_keras_is_imported(files):
    config, rows, model = (str(files / n) for n in ("tabular.json", "rows.csv", "model.keras"))
    tuning = os.path.join(ROOT, "config", "tabular_tuning_config.json")
    cases = [
        (["train", config, "--data", str(files / "absent.csv")], "data file not found: "),
        (["train", config, "--data", rows, "--target", "price"], "no column 'price' (--target"),
        (
            ["train", config, "--data", rows, "--set", 'data.columns={"plna": {"type": "number"}}'],
            "data.columns: the table",
        ),
        (
            ["train", config, "--data", rows, "--output", model],
            f"--output: {model} already exists; pass --overwrite",
        ),
        (["train", config, "--data", rows, "--report", str(files)], "is a folder"),
        (["evaluate", model, "--data", rows, "--target", "price"], "no column 'price'"),
        (["predict", model, "--data", rows], "missing feature column(s) ['c']"),
        (["predict", model, "--data", rows, "--output", str(files / "p.txt")], "must end in"),
        (["tune", tuning, "--data", str(files / "absent.csv")], "data file not found: "),
    ]
    outcomes = _run_all([argv for argv, _ in cases])
    assert len(outcomes) == len(cases)
    for (argv, message), outcome in zip(cases, outcomes):
        assert outcome["status"] == 2, (argv, outcome)
        assert message in outcome["error"], (argv, outcome)
        assert outcome["loaded"] == [], (argv, outcome)


@pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("jax", "tensorflow")),
    reason="needs JAX, and TensorFlow installed beside it",
)
def test_training_under_jax_does_not_import_tensorflow(files):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    table = np.column_stack([x, x[:, 0] > 0])
    np.savetxt(files / "table.csv", table, delimiter=",", header="a,b,label", comments="")
    argv = [
        "train",
        str(files / "tabular.json"),
        "--data",
        str(files / "table.csv"),
        "--epochs",
        "1",
        "--quiet",
        "--runs-dir",
        str(files / "runs"),
        "--output",
        str(files / "trained.keras"),  # saving serializes the model: Keras' TensorFlow check
    ]
    (outcome,) = _run_all([argv], KERAS_BACKEND="jax")
    assert outcome["status"] == 0, outcome
    assert outcome["loaded"] == ["keras", "jax"]
