"""Every Python and shell example in README.md and docs/ runs as written.

The files run in order (README.md first, then docs/ alphabetically) in ONE
folder that holds copies of `config/` and `examples/` (the files the examples
name), as a reader who follows them would: the model the README trains is
the one docs/ uses. Within a file, Python examples run in one namespace (a
later example may use an earlier one's names), shell examples with bash. Sizes are made small
in the copied configs (1 epoch) and by `SMALLER` (e.g. a 300-kernel corpus
becomes 6 kernels), never in the examples' text otherwise. Examples that
install packages or run the whole test suite (the Quickstart) are skipped:
CI runs exactly those.

A block preceded by `<!-- example: skip (reason) -->` is not run; none should be.
A result the text states is checked where the doc marks it with
`<!-- example: prints NAME >= VALUE -->`: the first line of the Python examples'
output that starts with NAME must show a number of at least VALUE.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env

# Documentation runs end to end; every feature they show is tested on each backend.
pytestmark = pytest.mark.one_backend

DOCS = ["README.md"] + sorted(
    os.path.join("docs", name)
    for name in os.listdir(os.path.join(ROOT, "docs"))
    if name.endswith(".md")
)
FENCE = re.compile(r"(<!-- example: skip[^>]*-->\s*)?```(python|bash|sh|shell)\n(.*?)```", re.S)
# Sizes made small for the test, in the examples' own words.
SMALLER = [
    (re.compile(r"--corpus \d+"), "--corpus 12 --repeats 1"),
    (re.compile(r"--repeats \d+"), "--repeats 1"),
    (re.compile(r"num_iterations=\d+"), "num_iterations=2"),
]
SKIPPED_COMMANDS = ("pip install", "run_all_backends.py")
STATED = re.compile(r"<!-- example: prints (\w+) >= ([0-9.]+) -->")


def _runnable(line: str) -> str:
    """A shell line without the commands the test must not run (`pip install ... && train`
    keeps `train`; a line that runs the whole test suite goes)."""
    parts = [part for part in line.split("&&") if not any(c in part for c in SKIPPED_COMMANDS)]
    return "&&".join(parts).strip() + "\n" if parts else ""


def examples(doc: str) -> list[tuple[str, str]]:
    with open(os.path.join(ROOT, doc), encoding="utf-8") as handle:
        text = handle.read()
    found = []
    for skip, language, code in FENCE.findall(text):
        if skip:
            continue
        if language != "python":
            code = "".join(_runnable(line) for line in code.splitlines(keepends=True))
        for pattern, replacement in SMALLER:
            code = pattern.sub(replacement, code)
        if code.strip():
            found.append(("python" if language == "python" else "bash", code))
    return found


def small_configs(folder):
    """`config/` and `examples/` copied, every training shortened to one or two epochs."""
    for name in ("config", "examples"):
        shutil.copytree(os.path.join(ROOT, name), folder / name)
    for path in (folder / "config").glob("*.json"):
        config = json.loads(path.read_text())
        if "training" in config:
            config["training"]["epochs"] = 2
        if "tuning" in config:
            config["tuning"].update(max_trials=1, max_epochs=1, min_epochs=1)
        if "epochs" in config:  # the assistant's flat config
            config["epochs"] = 1
        path.write_text(json.dumps(config, indent=2))


DOCS_WITH_EXAMPLES = [doc for doc in DOCS if examples(doc)]


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reader")
    small_configs(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS_WITH_EXAMPLES)
def test_examples_run_as_written(doc, reader_folder):
    tmp_path = reader_folder
    env = subprocess_env(OMP_NUM_THREADS=1)
    python_blocks, printed = [], []
    for number, (language, code) in enumerate(examples(doc)):
        if language == "python":
            python_blocks.append(code)
            continue
        # Shell blocks run after the Python written above them.
        printed.append(_run_python(python_blocks, tmp_path, env, doc))
        python_blocks = []
        result = subprocess.run(  # noqa: PLW1510 (the test reads returncode)
            ["bash", "-euo", "pipefail", "-c", code.replace("python3 ", f"{sys.executable} ")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (
            f"{doc} shell example {number}:\n{code}\n{result.stderr[-3000:]}"
        )
    printed.append(_run_python(python_blocks, tmp_path, env, doc))
    check_stated_results(doc, "".join(printed))


def stated_results(doc: str) -> list[tuple[str, float]]:
    """The `(name, least value)` results a doc states with `<!-- example: prints ... -->`."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as handle:
        return [(name, float(value)) for name, value in STATED.findall(handle.read())]


def check_stated_results(doc: str, output: str) -> None:
    for name, least in stated_results(doc):
        found = re.search(rf"^\s*{name}\s+(-?[0-9.]+)", output, re.M)
        assert found, f"{doc} states {name} >= {least}; its examples print no {name} line"
        assert float(found.group(1)) >= least, (
            f"{doc} states {name} >= {least}; its examples print {found.group(0).strip()}"
        )


def test_the_evaluation_docs_state_the_wine_example_s_accuracy():
    assert stated_results(os.path.join("docs", "evaluation.md")) == [("accuracy", 0.9)]


def _run_python(blocks, folder, env, doc) -> str:
    if not blocks:
        return ""
    script = folder / "example.py"
    script.write_text("\n\n".join(blocks))
    result = subprocess.run(  # noqa: PLW1510
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"{doc} Python example:\n{script.read_text()}\n{result.stderr[-3000:]}"
    )
    return result.stdout
