"""Hostile and broken model files, for every loader and both formats (issue 12, items 1 and 7).

A crafted file names modules and classes in its config; loading it must never
import a module because the file names it, and must fail with a
`CheckpointError` naming the file and the config key.
"""

import json
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from keras_trainer.core.saving.persistence import load_model, read_metadata, save_model
from keras_trainer.errors import CheckpointError, KerasTrainerError

SUFFIXES = [".keras", ".h5"]


def _serving_model():
    inputs = keras.Input((12,))
    x = keras.layers.Normalization(
        mean=np.zeros(12), variance=np.ones(12), name="feature_normalization"
    )(inputs)
    hidden = keras.Sequential([keras.Input((12,)), keras.layers.Dense(5, activation="softmax")])
    return keras.Model(inputs, hidden(x))


def _metadata():
    from keras_trainer.jit.llvm_ir.features import FeatureExtractor
    from keras_trainer.jit.strategies import STRATEGY_NAMES

    return {
        "task": "jit_strategy",
        "class_names": list(STRATEGY_NAMES),
        "feature_config": FeatureExtractor().get_config()["feature_config"],
    }


def _rewrite_config(path, edit):
    """Applies `edit(config_dict)` to the model config stored in `path`."""
    path = str(path)
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        config = json.loads(entries["config.json"])
        edit(config)
        entries["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    else:
        with h5py.File(path, "a") as handle:
            config = json.loads(handle.attrs["model_config"])
            edit(config)
            handle.attrs["model_config"] = json.dumps(config)


def _name_module(module, class_name="Dense", registered=None):
    def edit(config):
        layer = config["config"]["layers"][1]
        layer["module"] = module
        layer["class_name"] = class_name
        layer["registered_name"] = registered

    return edit


@pytest.fixture(params=SUFFIXES)
def model_file(request, tmp_path):
    pytest.importorskip("llvmlite")
    path = tmp_path / f"model{request.param}"
    save_model(_serving_model(), path, _metadata())
    return path


def _loaders():
    def trainer(path):
        from keras_trainer import ModelTrainer

        ModelTrainer({}).load_model(path)

    def assistant(path):
        from keras_trainer.assistant.assistant import load_assistant

        load_assistant(path)

    def tabular(path):
        from keras_trainer.tabular.normalization import load_tabular_model

        load_tabular_model(path)

    def inference(path):
        from keras_trainer.export.inference import CompiledInferenceLayer

        CompiledInferenceLayer(backend="keras").load_model(path)

    def adaptive(path):
        from keras_trainer.jit.runtime.adaptive import AdaptiveJIT

        AdaptiveJIT(str(path))

    return {
        "load_model": load_model,
        "ModelTrainer.load_model": trainer,
        "load_assistant": assistant,
        "load_tabular_model": tabular,
        "CompiledInferenceLayer": inference,
        "AdaptiveJIT": adaptive,
    }


LOADERS = _loaders()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_file_naming_the_cli_module_does_not_run_it(model_file, loader, monkeypatch, capsys):
    _rewrite_config(
        model_file, _name_module("keras_trainer.__main__", "Evil", "keras_trainer>Evil")
    )
    monkeypatch.setattr(sys, "argv", ["host.py", "schema"])
    monkeypatch.delitem(sys.modules, "keras_trainer.__main__", raising=False)
    with pytest.raises(KerasTrainerError, match=r"model\.(keras|h5).*layers\[1\].*Evil"):
        LOADERS[loader](model_file)
    assert "keras_trainer.__main__" not in sys.modules
    assert "$schema" not in capsys.readouterr().out


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_file_naming_a_missing_module_gives_a_named_error(model_file, loader):
    _rewrite_config(model_file, _name_module("keras_trainer.no_such_module", "Ghost"))
    with pytest.raises(KerasTrainerError, match=r"model\.(keras|h5).*layers\[1\].*Ghost"):
        LOADERS[loader](model_file)


def test_a_class_registered_by_another_package_is_refused(model_file):
    @keras.saving.register_keras_serializable(package="ThirdPartyReliabilityTest")
    class Intruder(keras.layers.Normalization):
        pass

    _rewrite_config(
        model_file, _name_module("somewhere", "Intruder", "ThirdPartyReliabilityTest>Intruder")
    )
    with pytest.raises(CheckpointError, match="ThirdPartyReliabilityTest>Intruder"):
        load_model(model_file)
    # The caller may allow it explicitly.
    load_model(model_file, custom_objects={"ThirdPartyReliabilityTest>Intruder": Intruder})


def test_our_registered_classes_still_load(tmp_path):
    from keras_trainer.core.building.losses import FocalLoss

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile("adam", loss=FocalLoss())
    for suffix in SUFFIXES:
        path = save_model(model, tmp_path / f"focal{suffix}")
        loaded, _ = load_model(path, compile=True)
        assert loaded.loss.__class__.__name__ == "FocalLoss"


def test_metadata_that_is_a_json_list_is_a_named_error(model_file):
    if str(model_file).endswith(".keras"):
        with zipfile.ZipFile(model_file) as archive:
            entries = {n: archive.read(n) for n in archive.namelist()}
        entries["keras_trainer.json"] = b"[1, 2, 3]"
        with zipfile.ZipFile(model_file, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    else:
        with h5py.File(model_file, "a") as handle:
            handle.attrs["keras_trainer_metadata"] = "[1, 2, 3]"
    for loader in ("load_model", "ModelTrainer.load_model", "AdaptiveJIT"):
        with pytest.raises(CheckpointError, match="must be a JSON object, got list"):
            LOADERS[loader](model_file)


def test_metadata_larger_than_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "bomb.keras"
    save_model(_serving_model(), path)
    # 40 MB of metadata compressed into a file of a few tens of kilobytes.
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("keras_trainer.json", '{"pad": "' + " " * 40_000_000 + '"}')
    assert path.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match="limit"):
        read_metadata(path)


def test_deeply_nested_metadata_is_a_named_error(tmp_path):
    path = tmp_path / "nested.keras"
    save_model(_serving_model(), path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("keras_trainer.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested.keras"):
        read_metadata(path)


def test_hostile_class_names_in_trainer_metadata_are_named(model_file):
    from keras_trainer import ModelTrainer

    metadata = dict(_metadata(), class_names={"not": "a list"})
    save_model(_serving_model(), model_file, metadata)
    with pytest.raises(CheckpointError, match="class_names"):
        ModelTrainer({}).load_model(model_file)
