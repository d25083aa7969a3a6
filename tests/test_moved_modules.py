"""Old module paths (before core/ and jit/ were split into rooms) import the same modules."""

import importlib
import subprocess
import sys

import pytest

from keras_trainer.compat import MOVED_MODULES
from keras_trainer.registry import Registry
from tests.conftest import subprocess_env

pytestmark = pytest.mark.one_backend  # imports only


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_module_path_is_the_module_at_its_new_path(old):
    new = MOVED_MODULES[old]
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == module.__spec__.name == new  # it says where it really lives


def test_names_import_from_an_old_path():
    from keras_trainer.core.persistence import load_model
    from keras_trainer.core.saving.persistence import load_model as current

    assert load_model is current


def test_a_registry_string_with_an_old_path_resolves():
    registry = Registry("model type")
    registry.register_lazy("mlp", "keras_trainer.core.models:build_mlp")
    from keras_trainer.core.building.models import build_mlp

    assert registry.get("mlp") is build_mlp


def test_python_m_runs_an_old_module_path():
    # `python -m keras_trainer.jit.worker` in a branch written before the move still starts.
    done = subprocess.run(
        [sys.executable, "-m", "keras_trainer.core.runs"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
