"""The notebooks in notebooks/ execute top to bottom under the current backend."""

import os

import nbformat
import pytest

from scripts.execute_notebooks import run_notebook
from tests.conftest import ROOT, subprocess_env

# Documentation runs end to end; every feature they show is tested on each backend.
pytestmark = pytest.mark.one_backend(backend="torch")  # where they run fastest

NOTEBOOKS = sorted(
    name for name in os.listdir(os.path.join(ROOT, "notebooks")) if name.endswith(".ipynb")
)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    # The kernel is a new process: make it import this checkout, installed or not.
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    monkeypatch.setenv("KERAS_TRAINER_NOTEBOOK_EPOCHS", "10")  # the assistant's, made short
    run_notebook(os.path.join(ROOT, "notebooks", name), timeout=300)  # raises on a failed cell


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_with_its_outputs(name):
    # scripts/execute_notebooks.py writes them; a reader sees results without a kernel.
    notebook = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code), name
    assert all(cell.get("outputs") for cell in code if "print(" in cell.source), name


# Lines that TensorFlow, absl or XLA print on their own (not our output).
THIRD_PARTY_LINES = ("E0000", "I0000", "W0000", "oneDNN", "absl::", "tf.function retracing")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_outputs_carry_no_third_party_log_lines(name):
    notebook = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    texts = [
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]
    found = [line for text in texts for line in THIRD_PARTY_LINES if line in text]
    assert not found, f"{name}: {found} (regenerate: python scripts/execute_notebooks.py)"
