"""The package's layers: imports point down only, and families never import each other.

Parses every module of keras_trainer with `ast` (function-local imports included)
and checks each `keras_trainer.*` import against the layer table of
docs/architecture.md.
"""

import ast
import pathlib
import sys

import pytest

import keras_trainer

pytestmark = pytest.mark.one_backend  # no Keras code runs here

PACKAGE = pathlib.Path(keras_trainer.__file__).parent

# Layer of each top-level part of the package (docs/architecture.md).
LAYERS = {
    "errors": 0,
    "version": 0,
    "registry": 0,
    "config": 1,
    "core": 2,
    "export": 3,
    "jit": 4,
    "tabular": 4,
    "assistant": 4,
    "tuning": 5,
    "serving": 5,
    "cli": 6,
    "cli_verbs": 6,
    "compat": 6,
    "__main__": 6,
    "__init__": 6,
}
FAMILIES = {"jit", "tabular", "assistant"}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from keras_trainer import tabular`
                yield node.lineno, f"{node.module}.{alias.name}"


def _violations(find=_imports):
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        source = _part(module) if len(relative.parts) > 1 else "__init__"
        for lineno, name in find(path):
            if not name.startswith("keras_trainer.") or _part(name) not in LAYERS:
                continue
            target = _part(name)
            if target == source:
                continue
            upward = LAYERS[target] > LAYERS[source]
            cross_family = source in FAMILIES and target in FAMILIES
            layer = LAYERS[source]
            message = (
                f"{relative}.py:{lineno}: {source} (layer {layer}) imports keras_trainer.{target}"
            )
            if (upward or cross_family) and message not in found:
                found.append(message)
    return found


def test_every_package_part_has_a_layer():
    parts = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
    }
    assert parts <= set(LAYERS), (
        f"add to LAYERS and docs/architecture.md: {sorted(parts - set(LAYERS))}"
    )


def test_imports_point_down_only_and_families_stay_apart():
    assert _violations() == []


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "keras_trainer"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "bad.py").write_text("def f():\n    from keras_trainer.jit import trainer\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _violations() == [
        "keras_trainer/core/bad.py:2: core (layer 2) imports keras_trainer.jit"
    ]


# Lazy imports named as strings ("package.module" or "package.module:attribute", what
# `importlib.import_module` and the registries take) are imports too. registry.py is where
# the general code may name a family (docs/architecture.md, "Registries"); elsewhere a
# string follows the layers. The reaches below predate this check; each says why it is
# there. Moving it to the registry removes it from this table.
KNOWN_STRING_REACHES = {
    (
        "keras_trainer/core/cross_validation.py",
        "keras_trainer.jit.trainer:ModelTrainer",
    ): "the trainer a config file is cross-validated with",
    (
        "keras_trainer/core/persistence.py",
        "keras_trainer.assistant.layers",
    ): "imported before loading, so the assistant's custom layers deserialize",
    (
        "keras_trainer/core/persistence.py",
        "keras_trainer.assistant.model",
    ): "imported before loading, so the assistant's custom layers deserialize",
}


def _string_targets(path: pathlib.Path):
    """The package modules that string constants of `path` name, as `(lineno, module)`."""
    if path.name == "registry.py" and path.parent == PACKAGE:
        return
    relative = path.relative_to(PACKAGE.parent).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        module = node.value.split(":")[0]
        parts = module.split(".")
        if node.value.count(":") > 1 or parts[0] != "keras_trainer" or len(parts) < 2:
            continue
        names_a_module = (PACKAGE.parent.joinpath(*parts).with_suffix(".py")).is_file() or (
            PACKAGE.parent.joinpath(*parts, "__init__.py")
        ).is_file()  # not a logger name such as "keras_trainer.fit"
        if names_a_module and (relative, node.value) not in KNOWN_STRING_REACHES:
            yield node.lineno, module


def test_lazy_imports_named_as_strings_point_down_only(tmp_path, monkeypatch):
    assert _violations(_string_targets) == []
    for (relative, target), why in KNOWN_STRING_REACHES.items():  # the table stays true
        assert repr(target)[1:-1] in (PACKAGE.parent / relative).read_text(encoding="utf-8"), why
    # The checker sees such a string.
    fake = tmp_path / "keras_trainer"
    (fake / "core").mkdir(parents=True)
    (fake / "jit").mkdir()
    for init in ("__init__.py", "core/__init__.py", "jit/__init__.py", "jit/trainer.py"):
        (fake / init).write_text("")
    (fake / "core" / "bad.py").write_text('TRAINER = "keras_trainer.jit.trainer:ModelTrainer"\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _violations(_string_targets) == [
        "keras_trainer/core/bad.py:1: core (layer 2) imports keras_trainer.jit"
    ]
