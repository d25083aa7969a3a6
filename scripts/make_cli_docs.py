"""Writes docs/cli.md, the command-line reference, from the argument parser itself.

    python3 scripts/make_cli_docs.py          # rewrite docs/cli.md
    python3 scripts/make_cli_docs.py --check  # exit 1 if docs/cli.md is out of date

The page is the `--help` text of `keras-trainer` and of every verb, so it
cannot drift from the code (tests/test_cli_docs.py runs `--check`).
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "cli.md")

INTRO = """# Command-line reference

`keras-trainer VERB ...` (or `python3 -m keras_trainer VERB ...`). Every verb
prints one line `error: ...` and exits with status 2 on bad input (a config key,
a file, a column, an IR line), before any work is lost: `train`, `evaluate`,
`predict` and `tune` check the config, input files, CSV columns and output paths
before Keras is imported, and import only the active backend. `-v` (anywhere on the
line) shows the log lines of TensorFlow, JAX and absl that are hidden by default.
Training and tuning write a run folder `runs/<name>/version_N/` (see
`keras_trainer.core.recording.runs`). This page is generated from the parser by
`scripts/make_cli_docs.py`; the text below is each command's `--help`.
"""


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; the page must not
    sys.path.insert(0, ROOT)
    from keras_trainer.cli import build_parser

    parser = build_parser()
    parser.prog = "keras-trainer"
    sections = [INTRO, "## keras-trainer\n\n```text\n" + parser.format_help() + "```\n"]
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in sorted(actions[0].choices.items()):
        sections.append(f"## keras-trainer {name}\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].split("\n")[0],
        epilog="Without --check, docs/cli.md is rewritten.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/cli.md is out of date; write nothing"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        with open(PAGE, encoding="utf-8") as handle:
            if handle.read() != text:
                print(
                    f"{PAGE} is out of date: run python3 scripts/make_cli_docs.py", file=sys.stderr
                )
                return 1
        return 0
    with open(PAGE, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
