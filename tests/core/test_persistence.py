import zipfile

import keras
import numpy as np
import pytest

from keras_trainer.core.saving.persistence import load_model, read_metadata, save_model
from keras_trainer.errors import CheckpointError


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_round_trip_keeps_weights_and_metadata(tmp_path, suffix):
    model = _model()
    path = save_model(model, tmp_path / f"m{suffix}", {"class_names": ["a", "b", "c"]})
    loaded, metadata = load_model(path)
    assert metadata["class_names"] == ["a", "b", "c"]
    assert metadata["backend"] == keras.backend.backend() and "library_version" in metadata
    assert read_metadata(path) == metadata
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    save_model(_model(), path, {"version": 1})

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(_model(), path, {"version": 2})
    assert read_metadata(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_unsupported_suffix_is_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="must end in '.keras'"):
        save_model(_model(), tmp_path / "m.pt")


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="model file not found: .*absent.keras"):
        load_model(tmp_path / "absent.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="corrupt.keras: not a readable model file"):
        load_model(corrupt)


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "m.keras"
    save_model(_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="m.keras"):
        load_model(path)


def test_safe_mode_refuses_code_in_the_file(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        assert "keras_trainer.json" in archive.namelist()
    with pytest.raises(CheckpointError, match="(?i)unsafe|safe_mode|lambda"):
        load_model(path)


def test_every_module_that_registers_a_serializable_class_is_on_the_allowlist():
    import pathlib

    from keras_trainer.core.saving.persistence import SERIALIZABLE_MODULES

    package = pathlib.Path(__file__).resolve().parents[2] / "keras_trainer"
    registering = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for path in package.rglob("*.py")
        if "register_keras_serializable" in path.read_text(encoding="utf-8")
    }
    assert registering <= set(SERIALIZABLE_MODULES)
