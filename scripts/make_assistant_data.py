"""Writes the assistant's bundled entity questions: a training set and a held-out split.

Questions about programming languages, Python libraries and compilers whose answers
must name the entity asked about. Every template appears in training with some
entities; the held-out split asks the same templates about entities that never
occur in the training data, so an answer is right only if the model copies the
name from the question. The hand-written keras_trainer questions already in
`training_data.json` (records without an "entity" field) are kept as they are.

Usage:
    PYTHONPATH=. python scripts/make_assistant_data.py [--per-template 8] [--seed 2026]
"""

from __future__ import annotations

import argparse
import json
import os
import random

DATA_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "keras_trainer",
    "assistant",
    "data",
)

LANGUAGES = {
    "train": [
        "Python",
        "Rust",
        "Go",
        "Haskell",
        "Kotlin",
        "Swift",
        "Julia",
        "Elixir",
        "Scala",
        "Clojure",
        "OCaml",
        "Erlang",
        "Dart",
        "Lua",
        "Perl",
        "Ruby",
        "Fortran",
        "Racket",
        "TypeScript",
        "JavaScript",
        "Java",
        "Groovy",
    ],
    "heldout": ["Zig", "Nim", "Crystal", "Gleam", "Odin", "Pascal", "Prolog", "Smalltalk"],
}
LIBRARIES = {
    "train": [
        "NumPy",
        "pandas",
        "SciPy",
        "Flask",
        "Django",
        "FastAPI",
        "requests",
        "Pydantic",
        "SQLAlchemy",
        "Celery",
        "Matplotlib",
        "seaborn",
        "Polars",
        "Dask",
        "spaCy",
        "NLTK",
        "Scrapy",
        "pytest",
        "Hypothesis",
        "Black",
        "mypy",
        "Numba",
        "Cython",
        "Jinja2",
        "Bokeh",
        "Plotly",
        "Optuna",
        "XGBoost",
        "statsmodels",
        "SymPy",
    ],
    "heldout": [
        "NetworkX",
        "Pillow",
        "LightGBM",
        "Typer",
        "Loguru",
        "Starlette",
        "Alembic",
        "Tenacity",
        "Pendulum",
        "Textual",
    ],
}
COMPILERS = {
    "train": [
        "GCC",
        "Clang",
        "MSVC",
        "rustc",
        "javac",
        "GraalVM",
        "Emscripten",
        "nvcc",
        "GHC",
        "gfortran",
    ],
    "heldout": ["TinyCC", "Cranelift", "kotlinc", "swiftc", "Roslyn"],
}

# (question, answer) with {} standing for the entity. The entity never starts the
# answer and always follows a space, as in the question, so it can be copied.
TEMPLATES = {
    "language": (
        LANGUAGES,
        [
            (
                "How do I install {} on Linux?",
                "Install {} with your distribution's package manager, then run the {} version "
                "command "
                "to check it.",
            ),
            (
                "Where can I learn {}?",
                "Start with the official {} tutorial, then read code from popular {} projects.",
            ),
            (
                "How do I write a unit test in {}?",
                "Use the standard test framework of {} and run the tests on every change.",
            ),
            (
                "Can keras_trainer call code written in {}?",
                "Not directly: wrap the {} code as a command line tool or a service and call it "
                "from "
                "Python.",
            ),
            (
                "What is a good first project in {}?",
                "Write a small command line tool in {}, such as a word counter, to learn its "
                "syntax.",
            ),
            (
                "How do I format {} code?",
                "Use the standard formatter of {} and run it in CI, so every {} file follows one "
                "style.",
            ),
            (
                "Which editor works well for {}?",
                "Any editor with a {} language server: it gives completion and navigation for {} "
                "code.",
            ),
            (
                "How do I profile a slow {} program?",
                "Run the {} program under a sampling profiler and look at the hottest functions "
                "first.",
            ),
            (
                "Who maintains {}?",
                "The {} core team and its community; the {} website explains how decisions are "
                "made.",
            ),
            (
                "Is {} a good choice for machine learning?",
                "It depends on the libraries: check which model and data tools exist for {} "
                "before you "
                "start.",
            ),
        ],
    ),
    "library": (
        LIBRARIES,
        [
            (
                "How do I install {}?",
                "Run pip install {} inside a virtual environment, then import {} to check it.",
            ),
            (
                "Does keras_trainer depend on {}?",
                "No, {} is not a dependency of keras_trainer; install {} yourself if your code "
                "needs it.",
            ),
            (
                "How do I upgrade {}?",
                "Run pip install --upgrade {}, then read the {} changelog for breaking changes.",
            ),
            (
                "Which version of {} do I have?",
                "Run pip show {}; the Version line is the installed release.",
            ),
            (
                "Can I use {} with keras_trainer?",
                "Yes, {} runs beside keras_trainer in the same environment.",
            ),
            (
                "Where is the documentation for {}?",
                "The {} documentation is linked from its PyPI page; start with the quickstart.",
            ),
            (
                "How do I report a bug in {}?",
                "Open an issue on the {} tracker with a minimal example and your {} version.",
            ),
            (
                "Why does import {} fail?",
                "Most likely {} is not installed in the active environment; run pip install {} "
                "there.",
            ),
            (
                "How do I uninstall {}?",
                "Run pip uninstall {}; packages that need {} will stop working.",
            ),
            (
                "Is {} thread safe?",
                "Read the concurrency notes of the {} documentation before you share {} objects "
                "between threads.",
            ),
        ],
    ),
    "compiler": (
        COMPILERS,
        [
            (
                "How do I enable optimizations in {}?",
                "Raise the optimization level on the {} command line, then compare the run times "
                "of "
                "both builds.",
            ),
            (
                "How do I see the assembly that {} generates?",
                "Ask {} to emit assembly instead of an object file, and read it next to your "
                "source.",
            ),
            (
                "Why is {} slow on my project?",
                "Build in parallel and cache the outputs; most {} time goes to recompiling "
                "unchanged "
                "files.",
            ),
            (
                "How do I check the {} version?",
                "Run {} --version; it prints the release and the target it builds for.",
            ),
            (
                "How do I turn on warnings in {}?",
                "Enable all warnings in {} and treat them as errors in CI, so new {} warnings "
                "fail the "
                "build.",
            ),
            (
                "How do I cross compile with {}?",
                "Install a {} toolchain for the target, then pass the target triple to {} when you "
                "build.",
            ),
        ],
    ),
}


def make_pairs(per_template: int, heldout_per_template: int, seed: int):
    """Returns `(train, heldout)` lists of records with query, response and entity."""
    rng = random.Random(seed)
    train, heldout = [], []
    for kind, (pools, templates) in TEMPLATES.items():
        for question, answer in templates:
            for split, count, out in (
                ("train", per_template, train),
                ("heldout", heldout_per_template, heldout),
            ):
                for entity in rng.sample(pools[split], min(count, len(pools[split]))):
                    out.append(
                        {
                            "query": question.format(entity),
                            "response": answer.format(*[entity] * answer.count("{}")),
                            "entity": entity,
                            "kind": kind,
                        }
                    )
    rng.shuffle(train)
    return train, heldout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-template", type=int, default=8)
    parser.add_argument("--heldout-per-template", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    train_path = os.path.join(DATA_DIR, "training_data.json")
    with open(train_path, encoding="utf-8") as handle:
        kept = [r for r in json.load(handle) if "entity" not in r]
    train, heldout = make_pairs(args.per_template, args.heldout_per_template, args.seed)
    seen = {r["entity"] for r in train}
    assert not seen & {r["entity"] for r in heldout}, "held-out entities must be unseen"
    for path, records in (
        (train_path, kept + train),
        (os.path.join(DATA_DIR, "heldout_data.json"), heldout),
    ):
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(records, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.replace(path + ".tmp", path)
        print(f"{path}: {len(records)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
