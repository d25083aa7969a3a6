"""The notebooks in notebooks/ execute top to bottom under the current backend."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT, subprocess_env

# Documentation runs end to end; every feature they show is tested on each backend.
pytestmark = pytest.mark.one_backend

NOTEBOOKS = sorted(
    name for name in os.listdir(os.path.join(ROOT, "notebooks")) if name.endswith(".ipynb")
)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    # The kernel is a new process: make it import this checkout, installed or not.
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    path = os.path.join(ROOT, "notebooks", name)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(path)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
