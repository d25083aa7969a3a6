"""No function in keras_trainer is over 100 lines, so each reads on a screen or two.

Lists every longer one (decorators excluded, docstring included) so that a new one
is noticed: split it into steps named for what they do.
"""

import ast
import pathlib

import pytest

import keras_trainer

pytestmark = pytest.mark.one_backend  # no Keras code runs here

PACKAGE = pathlib.Path(keras_trainer.__file__).parent
MAX_LINES = 100


def long_functions(package: pathlib.Path) -> list[str]:
    """`path:line name (N lines)` for every function or method over `MAX_LINES`."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    where = path.relative_to(package.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_over_100_lines():
    assert long_functions(PACKAGE) == []


def test_the_check_names_a_function_over_100_lines(tmp_path):
    package = tmp_path / "keras_trainer"
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (package / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}")
    assert long_functions(package) == [f"keras_trainer/long.py:5 long ({MAX_LINES + 1} lines)"]
