"""Model store integrity: recorded checksums on every load, files inside the store,
named errors for malformed store files."""

import json
import os

import pytest

from keras_trainer.errors import ModelStoreError
from keras_trainer.export import CompiledInferenceLayer
from keras_trainer.export.store import ModelStore, resolve_model_path
from tests.export.test_store import models  # noqa: F401  (the fixture)


@pytest.fixture
def store(models, tmp_path):  # noqa: F811
    store = ModelStore(tmp_path / "store")
    store.promote(store.add(models[0]).version)
    return store


def test_a_file_replaced_after_promote_is_refused_by_name(store, models):  # noqa: F811
    stored = store.get("production").model_path
    assert resolve_model_path(f"{store.root}@production") == stored
    with open(models[1], "rb") as source, open(stored, "wb") as target:
        target.write(source.read())  # same format, other weights
    for load in (
        lambda: resolve_model_path(f"{store.root}@production"),
        lambda: CompiledInferenceLayer(backend="keras").load_model(f"{store.root}@1"),
    ):
        with pytest.raises(ModelStoreError, match="model.keras: changed since it was stored"):
            load()


def test_the_served_model_refuses_a_replaced_store_file(store, models):  # noqa: F811
    pytest.importorskip("fastapi")
    from keras_trainer.serving import ServedModel

    assert ServedModel(f"{store.root}@production").store_version == 1
    with open(store.get(1).model_path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelStoreError, match="changed since it was stored"):
        ServedModel(f"{store.root}@production")


def rewrite_version(store, change):
    path = os.path.join(store.get(1).directory, "version.json")
    with open(path, encoding="utf-8") as handle:
        info = json.load(handle)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(change(info), handle)


@pytest.mark.parametrize(
    "model_file", ["../../outside.keras", "/tmp/outside.keras", "..", "", "sub/model.keras", 3]
)
def test_model_file_must_name_a_file_inside_the_version(store, model_file):
    rewrite_version(store, lambda info: {**info, "model_file": model_file})
    with pytest.raises(ModelStoreError, match="model_file must name a file inside"):
        resolve_model_path(f"{store.root}@1")


def test_a_symlink_out_of_the_store_is_refused(store, tmp_path):
    outside = tmp_path / "outside.keras"
    outside.write_bytes(b"x")
    os.symlink(outside, os.path.join(store.get(1).directory, "link.keras"))
    rewrite_version(store, lambda info: {**info, "model_file": "link.keras"})
    with pytest.raises(ModelStoreError, match="model_file must name a file inside"):
        store.path(1)


@pytest.mark.parametrize(
    "aliases, message",
    [
        ({"production": {"version": "abc"}}, "alias 'production' must be an object with a version"),
        ({"production": 1}, "alias 'production' must be an object with a version"),
        ({"production": {"version": True}}, "must be an object with a version"),
        ([1, 2], "expected an object alias -> version entry, got list"),
    ],
)
def test_malformed_aliases_are_named_errors(store, aliases, message):
    with open(os.path.join(store.root, "aliases.json"), "w", encoding="utf-8") as handle:
        json.dump(aliases, handle)
    with pytest.raises(ModelStoreError, match=message):
        store.path("production")


def test_a_version_file_holding_a_list_is_a_named_error(store):
    rewrite_version(store, lambda info: [info])
    with pytest.raises(ModelStoreError, match="version.json: expected a JSON object, got list"):
        store.get(1)
