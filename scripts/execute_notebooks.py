"""Runs every notebook in notebooks/ top to bottom and saves it with its outputs.

    python scripts/execute_notebooks.py [--backend jax] [NAME.ipynb ...]

The notebooks are committed with their outputs, so a reader sees the results
without running them; run this after changing a notebook or what it shows.
Each runs in a fresh kernel in notebooks/ (as a reader would open it), under
`KERAS_BACKEND` (default: the environment's, else Keras' default), and is
written back only when every cell ran without an error (atomically).
"""

from __future__ import annotations

import argparse
import os
import sys

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "notebooks")


def run_notebook(path: str, timeout: int = 600) -> nbformat.NotebookNode:
    """Runs a notebook in a fresh kernel in notebooks/; returns it with its outputs.

    Raises:
        RuntimeError: a cell failed (naming the notebook and the error).
    """
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": FOLDER}}
    ).execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    if errors:
        raise RuntimeError(f"{path}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return notebook


def execute(path: str) -> None:
    notebook = run_notebook(path)
    temporary = path + ".tmp"
    nbformat.write(notebook, temporary)
    os.replace(temporary, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", help="KERAS_BACKEND for the kernels")
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    args = parser.parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    # TensorFlow's C++ start-up lines would land in the saved outputs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The kernel is a new process: make it import this checkout, installed or not.
    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    names = args.names or sorted(n for n in os.listdir(FOLDER) if n.endswith(".ipynb"))
    for name in names:
        execute(os.path.join(FOLDER, name))
        print(f"executed {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
