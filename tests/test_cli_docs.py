"""docs/cli.md is the parser's own help text, up to date."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_cli_reference_page_is_up_to_date():
    result = subprocess.run(  # noqa: PLW1510
        [sys.executable, "scripts/make_cli_docs.py", "--check"],
        cwd=ROOT,
        env=subprocess_env(COLUMNS=100),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
