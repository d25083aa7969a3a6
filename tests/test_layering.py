"""The package's layers: imports point down only, families never import each other,
and no file imports itself back through others (no import circle between files).

Parses every module of keras_trainer with `ast` (function-local imports included)
and checks each `keras_trainer.*` import against the layer table of
docs/architecture.md. The circle check follows every import (at the top or inside
a function), `importlib.import_module("...")` with a literal name, and registry
target strings `"package.module:attribute"` outside `registry.py` (whose built-in
tables are the one sanctioned way from the general code to the families).
"""

import ast
import pathlib
import re
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
    "cli_args": 3,
    "cli_checks": 3,
    "export": 3,
    "functional": 3,
    "jit": 4,
    "tabular": 4,
    "assistant": 4,
    "tuning": 5,
    "serving": 5,
    "cli": 6,
    "cli_verbs": 6,
    "native_logs": 6,
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


def _fake_package(tmp_path, monkeypatch, core_files: dict) -> None:
    """A `keras_trainer/core/` with `core_files` under `tmp_path`, checked instead of ours."""
    fake = tmp_path / "keras_trainer"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    for name, text in core_files.items():
        (fake / "core" / name).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    _fake_package(
        tmp_path, monkeypatch, {"bad.py": "def f():\n    from keras_trainer.jit import trainer\n"}
    )
    assert _violations() == [
        "keras_trainer/core/bad.py:2: core (layer 2) imports keras_trainer.jit"
    ]


# ------------------------------------------------------------ file-level circles
_TARGET = re.compile(r"^keras_trainer(\.\w+)+:\w+$")  # a registry's lazy "module:attribute"


def _module_files(package: pathlib.Path) -> dict[str, pathlib.Path]:
    files = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _dependencies(path: pathlib.Path, modules: dict) -> dict[str, int]:
    """The modules `path` reaches, each with the line that first reaches it."""
    names = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from keras_trainer.core.training import fit`
                full = f"{node.module}.{alias.name}"
                names.append((node.lineno, full if full in modules else node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if function == "import_module" and isinstance(node.args[0].value, str):
                names.append((node.lineno, node.args[0].value))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _TARGET.match(node.value)
            and path.name != "registry.py"
        ):
            names.append((node.lineno, node.value.split(":")[0]))
    reached: dict[str, int] = {}
    for lineno, name in sorted(names):
        while name and name not in modules:  # `keras_trainer.x.y.Name` -> module `x.y`
            name = name.rpartition(".")[0]
        if name and modules[name] != path:
            reached.setdefault(name, lineno)
    return reached


def _circles() -> list[str]:
    """Every import circle between files, as `a.py:LINE -> b.py:LINE -> a.py`."""
    modules = _module_files(PACKAGE)
    graph = {name: _dependencies(path, modules) for name, path in modules.items()}
    found, done = [], set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            circle = trail[trail.index(name) :]
            start = circle.index(min(circle))  # the same circle reads the same from any file
            circle = circle[start:] + circle[:start]
            steps = [
                f"{modules[a].relative_to(PACKAGE.parent)}:{graph[a][b]}"
                for a, b in zip(circle, circle[1:] + circle[:1])
            ]
            text = " -> ".join(steps + [str(modules[circle[0]].relative_to(PACKAGE.parent))])
            if text not in found:
                found.append(text)
            return
        if name in done:
            return
        for target in graph[name]:
            visit(target, trail + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    return found


def test_no_import_circle_between_files():
    assert _circles() == []


def test_the_circle_check_catches_a_lazy_import_and_a_registry_string(tmp_path, monkeypatch):
    _fake_package(
        tmp_path,
        monkeypatch,
        {
            "a.py": "def f():\n    from keras_trainer.core import b\n",
            "b.py": 'TARGET = "keras_trainer.core.a:f"\n',
        },
    )
    assert _circles() == [
        "keras_trainer/core/a.py:2 -> keras_trainer/core/b.py:1 -> keras_trainer/core/a.py"
    ]


# Lazy imports named as strings ("package.module" or "package.module:attribute", what
# `importlib.import_module` and the registries take) are imports too. registry.py is where
# the general code may name a family (docs/architecture.md, "Registries"); elsewhere a
# string follows the layers. The reaches below predate this check; each says why it is
# there. Moving it to the registry removes it from this table.
KNOWN_STRING_REACHES = {
    (
        "keras_trainer/core/evaluating/cross_validation.py",
        "keras_trainer.jit.model.trainer:ModelTrainer",
    ): "the trainer a config file is cross-validated with",
    (
        "keras_trainer/core/saving/persistence.py",
        "keras_trainer.assistant.layers",
    ): "imported before loading, so the assistant's custom layers deserialize",
    (
        "keras_trainer/core/saving/persistence.py",
        "keras_trainer.assistant.model",
    ): "imported before loading, so the assistant's custom layers deserialize",
    (
        "keras_trainer/core/saving/persistence.py",
        "keras_trainer.tabular.layers",
    ): "imported before loading, so a typed table's category embedding deserializes",
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
