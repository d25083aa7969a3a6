"""The versioned model store: add / list / promote / rollback, references, crash safety."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_trainer.cli import main as cli_main
from keras_trainer.core.saving.persistence import save_model
from keras_trainer.errors import ModelStoreError
from keras_trainer.export import CompiledInferenceLayer
from keras_trainer.export.store import ModelStore, file_fingerprint, resolve_model_path
from tests.conftest import subprocess_env


def small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), name="features")
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs)
    return keras.Model(inputs, outputs)


@pytest.fixture
def models(tmp_path):
    paths = []
    for seed in range(3):
        metadata = {
            "task": "tabular",
            "config": {"model": {"hidden_layers": [seed]}},
            "class_names": list("abc"),
        }
        paths.append(save_model(small_model(seed), tmp_path / f"model_{seed}.keras", metadata))
    return paths


def test_versions_are_numbered_with_their_metadata(models, tmp_path):
    data = tmp_path / "data.json"
    data.write_text('{"samples": []}')
    store = ModelStore(tmp_path / "store")
    first = store.add(models[0], metrics={"accuracy": 0.8}, data_path=data)
    second = store.add(models[1])
    assert [v.version for v in store.versions()] == [1, 2]
    info = first.info
    assert info["metrics"] == {"accuracy": 0.8} and info["data_fingerprint"] == file_fingerprint(
        data
    )
    assert info["config"] == {"model": {"hidden_layers": [0]}} and info["task"] == "tabular"
    assert info["library_version"] and info["created"].startswith("20")
    assert info["files"]["model.keras"] == file_fingerprint(models[0])
    assert second.info["metrics"] is None and os.path.isfile(second.model_path)


def test_promote_and_rollback_move_the_production_alias(models, tmp_path):
    store = ModelStore(tmp_path / "store")
    for path in models:
        store.add(path)
    store.promote(1)
    store.promote(3)
    assert store.get("production").version == 3
    assert store.rollback().version == 1
    assert store.aliases()["production"]["history"] == [1]
    with pytest.raises(ModelStoreError, match="no earlier version"):
        store.rollback()
    with pytest.raises(ModelStoreError, match=r"no version 7 \(versions: \[1, 2, 3\]\)"):
        store.promote(7)
    with pytest.raises(ModelStoreError, match="no alias 'staging'"):
        store.get("staging")


def test_references_load_in_the_inference_layer(models, tmp_path):
    store = ModelStore(tmp_path / "store")
    for path in models[:2]:
        store.add(path)
    store.promote(2)
    root = str(tmp_path / "store")
    assert resolve_model_path(f"{root}@production") == store.path(2)
    assert resolve_model_path(root) == store.path(2)
    assert resolve_model_path(f"{root}@1") == store.path(1)
    layer = CompiledInferenceLayer("keras").load_model(f"{root}@production")
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    expected = keras.ops.convert_to_numpy(small_model(1)(x))
    np.testing.assert_allclose(layer.predict(x).prediction, expected, atol=1e-6)
    with pytest.raises(ModelStoreError, match="no ONNX export"):
        CompiledInferenceLayer("onnx").load_model(f"{root}@production")
    with pytest.raises(ModelStoreError, match="neither a model file nor a model store"):
        resolve_model_path(str(tmp_path / "nowhere@production"))


def test_onnx_version_serves_through_onnx_runtime(exported_models, tmp_path):
    exported = exported_models["jit_trainer"]
    store = ModelStore(tmp_path / "store")
    store.promote(store.add(exported.keras_path, onnx_path=exported.onnx_path).version)
    layer = CompiledInferenceLayer("onnx").load_model(f"{tmp_path / 'store'}@production")
    assert (
        np.max(np.abs(layer.predict(exported.example[0]).prediction - exported.keras_outputs[0]))
        <= 1e-5
    )


def test_damaged_version_cannot_be_promoted(models, tmp_path):
    store = ModelStore(tmp_path / "store")
    version = store.add(models[0])
    with open(version.model_path, "ab") as handle:
        handle.write(b"garbage")
    with pytest.raises(ModelStoreError, match="checksum mismatch"):
        store.promote(1)
    assert store.aliases() == {}


def test_cli_add_list_promote_rollback(models, tmp_path, capsys):
    root = str(tmp_path / "store")
    metrics = tmp_path / "report.json"
    metrics.write_text(json.dumps({"accuracy": 0.9, "regret": 1.02}))
    assert (
        cli_main(
            ["models", "add", models[0], "--store", root, "--metrics", str(metrics), "--promote"]
        )
        == 0
    )
    assert cli_main(["models", "add", models[1], "--store", root]) == 0
    assert cli_main(["models", "promote", "2", "--store", root]) == 0
    assert cli_main(["models", "rollback", "--store", root]) == 0
    assert cli_main(["models", "list", "--store", root]) == 0
    out = capsys.readouterr().out
    assert "production -> version 1 (rolled back)" in out
    listing = out.splitlines()[-2:]
    assert "accuracy=0.9" in listing[0] and listing[0].rstrip().endswith("production")
    assert cli_main(["models", "promote", "9", "--store", root]) == 2
    assert "no version 9" in capsys.readouterr().err


def test_cli_add_reads_the_numbers_of_an_evaluation_report(models, tmp_path, capsys):
    root = str(tmp_path / "store")
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "task": "classification",
                "metrics": {"accuracy": 0.5},
                "runtime": {"regret": 1.1, "best_fixed": "O3", "samples": 2},
            }
        )
    )
    assert cli_main(["models", "add", models[0], "--store", root, "--metrics", str(report)]) == 0
    assert ModelStore(root).versions()[0].info["metrics"] == {
        "accuracy": 0.5,
        "regret": 1.1,
        "samples": 2,
    }
    assert cli_main(["models", "list", "--store", root]) == 0
    assert "regret=1.1, accuracy=0.5" in capsys.readouterr().out


_KILLED_PROMOTE = textwrap.dedent(
    """
    import os, signal, sys
    from keras_trainer.export.store import ModelStore
    store = ModelStore(sys.argv[1])
    stage = sys.argv[2]
    real_replace = os.replace
    def replace(source, target):
        if os.path.basename(target) == "aliases.json":
            if stage == "before_rename":
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(source, target)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, target)
    os.replace = replace
    if sys.argv[3] == "add":
        real_rename = os.rename
        def rename(source, target):
            os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename
        store.add(sys.argv[4])
    else:
        store.promote(int(sys.argv[3]))
    """
)


@pytest.mark.parametrize("stage", ["before_rename", "after_rename"])
def test_kill_during_promote_leaves_a_complete_version_behind_the_alias(models, tmp_path, stage):
    root = str(tmp_path / "store")
    store = ModelStore(root)
    store.add(models[0])
    store.add(models[1])
    store.promote(1)
    script = tmp_path / "promote.py"
    script.write_text(_KILLED_PROMOTE)
    process = subprocess.run(
        [sys.executable, str(script), root, stage, "2"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    expected = 1 if stage == "before_rename" else 2
    version = store.get("production")
    assert version.version == expected
    store.verify("production")
    layer = CompiledInferenceLayer("keras").load_model(f"{root}@production")
    assert layer.predict(np.zeros((1, 4), "float32")).prediction.shape == (1, 3)
    if expected == 2:
        assert store.rollback().version == 1
    else:  # the killed promote never reached the alias' history
        with pytest.raises(
            ModelStoreError, match=r"no earlier version to roll back to \(history \[1\]\)"
        ):
            store.rollback()


def test_kill_during_add_leaves_no_version(models, tmp_path):
    root = str(tmp_path / "store")
    store = ModelStore(root)
    store.add(models[0])
    store.promote(1)
    script = tmp_path / "add.py"
    script.write_text(_KILLED_PROMOTE)
    process = subprocess.run(
        [sys.executable, str(script), root, "none", "add", models[1]],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert [v.version for v in store.versions()] == [1]
    with pytest.raises(ModelStoreError, match="no version 2"):
        store.promote(2)
    assert store.add(models[1]).version == 2  # the leftover does not block the next add
    assert store.get("production").version == 1
