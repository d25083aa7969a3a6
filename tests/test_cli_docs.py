"""docs/cli.md is the parser's own help text, up to date."""

import argparse
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


def test_make_cli_docs_help_prints_help_and_writes_nothing(tmp_path):
    page = tmp_path / "cli.md"
    result = subprocess.run(  # noqa: PLW1510
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'make_cli_docs.py'; sys.path.insert(0, 'scripts');"
            f"import make_cli_docs; make_cli_docs.PAGE = {str(page)!r}; make_cli_docs.main(['--help'])",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "--check" in result.stdout and "usage:" in result.stdout
    assert not page.exists()


def _options(parser, path):
    """(command, option) for every option of `parser` and of its subcommands, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_of_every_command_has_help():
    from keras_trainer.cli import build_parser

    missing = [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, action in _options(build_parser(), "keras-trainer")
        if not action.help
    ]
    assert missing == []


def test_a_description_keeps_its_line_breaks():
    from keras_trainer.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    examples = [line for line in text.splitlines() if line.strip().startswith("keras-trainer ")]
    assert [line.split()[1] for line in examples] == ["train", "evaluate", "predict"]


def test_a_wrong_models_subcommand_shows_the_models_usage(capsys):
    from keras_trainer.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["models", "models/store"])  # the store is --store, not a positional
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert err.startswith("usage: keras-trainer models ") and "{add,list,show" in err
