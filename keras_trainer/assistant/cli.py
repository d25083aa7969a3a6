"""The assistant on the command line: `train`, `evaluate`, `predict` and `chat`.

    keras-trainer train config/assistant_config.json [--data qa.json]
    keras-trainer evaluate runs/assistant_config/version_0/model.keras [--data qa.json]
    keras-trainer predict models/assistant.keras --data questions.json --output answers.csv
    keras-trainer chat models/assistant.keras                      # interactive
    keras-trainer chat models/assistant.keras "What is keras_trainer?"   # one answer

A QA file is a JSON list of `{"query": ..., "response": ...}` records (the
bundled dataset's format). `evaluate` scores the model's held-out pairs by
default (the `--test-data` file of `train`, else the bundled held-out questions)
and warns on its training pairs; it reports exact match in its two named
variants (byte for byte, and tokenizer-normalized: both sides read as the
tokenizer reads them; `keras_trainer.core.evaluating.text`) and token accuracy;
`predict` reads a JSON list of questions (strings or records with `query`) or
a CSV with a `query` column and writes one answer per question. `chat` also
serves an assistant ONNX folder (`export_assistant_onnx`, greedy only).

The core CLI calls these handlers through `keras_trainer.registry.FAMILY_VERBS`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from keras_trainer.cli_args import add_model_argument
from keras_trainer.errors import ConfigError, DataError


def train(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer train` for an assistant config."""
    from keras_trainer.assistant.assistant import train_assistant
    from keras_trainer.assistant.config import load_assistant_config
    from keras_trainer.assistant.data import load_pairs
    from keras_trainer.assistant.streaming import is_pair_stream
    from keras_trainer.cli_args import (
        check_overwrite,
        finish_run,
        load_verb_config,
        start_run,
        verb_config_dict,
    )

    raw = verb_config_dict(args)
    config = load_verb_config(args, load_assistant_config)
    training = config.training
    if "verbose" not in raw and "verbose" not in (raw.get("training") or {}):
        # A command-line user sees one line per epoch; the Python API stays quiet by default.
        training.verbose = 2
    if args.output:
        check_overwrite(args.output, "--output", getattr(args, "overwrite", False))
    if getattr(args, "quiet", False):
        training.verbose = 0
    if getattr(args, "cv", None):
        raise ConfigError(
            "--cv: the assistant is not cross-validated (a fold would train a whole sequence "
            "model and learn its own vocabulary); score held-out questions with --test-data FILE"
        )
    source = args.data or config.data_path
    test_source = getattr(args, "test_data", None)
    test_pairs = load_pairs(test_source) if test_source else None
    if is_pair_stream(source):
        pairs, described = None, "JSON Lines records, streamed"  # counting them is a pass
    else:
        pairs = load_pairs(source)
        described = f"{len(pairs)} pairs"
    run = start_run(args, args.config)
    print(f"data: {source or 'the bundled QA dataset'} ({described})", flush=True)
    assistant, history = train_assistant(config, source if pairs is None else pairs)
    print(history.summary())
    metrics = {
        f"heldout_{k}": float(v)
        for k, v in (assistant.evaluation or {}).items()
        if isinstance(v, (int, float))
    }
    if pairs is not None:  # a stream is scored on its held-out records only
        scores = score_pairs(assistant, pairs)
        metrics.update({f"train_{k}": float(v) for k, v in scores.items()})
        print(f"on the training pairs (validation pairs included): {describe_scores(scores)}")
        assistant.split = _split(source, pairs, test_source, config.seed)
    if test_pairs is not None:
        scores = score_pairs(assistant, test_pairs)
        metrics.update({f"test_{k}": float(v) for k, v in scores.items()})
        print(f"on {test_source} ({len(test_pairs)} held-out pairs): {describe_scores(scores)}")
    path = assistant.save(run.file(run.MODEL))
    if args.output:
        path = assistant.save(args.output)
    print(f"saved model: {path}")
    from keras_trainer.assistant.config import config_to_dict

    finish_run(
        run,
        args,
        config_to_dict(config),
        history=history,
        metrics=metrics,
        summary={"command": "train", "family": "assistant", "model": path},
    )
    return 0


def score_pairs(assistant, pairs, batch_size: int = 64) -> dict:
    """Greedy answers to `pairs`' queries scored against their responses.

    Returns:
        `exact_match` (byte for byte, `keras_trainer.core.evaluating.text`), the
        tokenizer-normalized variant `exact_match_normalized` (both sides read
        as the tokenizer reads them), `matched` (its count), `token_accuracy`
        (tokens right at their position, of the longer side) and `pairs`.
    """
    from keras_trainer.assistant.evaluation import tokenizer_normalized
    from keras_trainer.core.evaluating.text import exact_match, exact_matches

    pairs = list(pairs)
    answers = []  # in chunks: an ONNX assistant answers one batch at a time
    for start in range(0, len(pairs), batch_size):
        answers += assistant.generate_batch([q for q, _ in pairs[start : start + batch_size]])
    references = [r for _, r in pairs]
    normalize = tokenizer_normalized(assistant.tokenizer)
    matched = exact_matches(answers, references, normalize)
    tokens_right, tokens_total = 0, 0
    for answer, expected in zip(answers, references):
        got, want = normalize(answer).split(), normalize(expected).split()
        tokens_right += sum(a == b for a, b in zip(got, want))
        tokens_total += max(len(want), len(got))
    return {
        "exact_match": exact_match(answers, references),
        "exact_match_normalized": sum(matched) / len(matched),
        "matched": sum(matched),
        "token_accuracy": tokens_right / max(tokens_total, 1),
        "pairs": len(pairs),
    }


def describe_scores(scores: dict) -> str:
    """The scores in words, each exact-match variant named."""
    from keras_trainer.assistant.evaluation import TOKENIZER_NORMALIZED
    from keras_trainer.core.evaluating.text import BYTE_FOR_BYTE

    return (
        f"exact match ({BYTE_FOR_BYTE}) {scores['exact_match']:.3f}, exact match "
        f"({TOKENIZER_NORMALIZED}) {scores['exact_match_normalized']:.3f} "
        f"({scores['matched']}/{scores['pairs']}), token accuracy {scores['token_accuracy']:.3f}"
    )


def _load(path: str):
    if os.path.isdir(path):
        from keras_trainer.assistant.onnx import OnnxAssistant

        return OnnxAssistant.load(path)
    from keras_trainer.assistant.assistant import load_assistant

    return load_assistant(path)


BUNDLED_HELDOUT = "the bundled held-out questions"


def pairs_fingerprint(pairs) -> str:
    """The fingerprint of QA pairs (`keras_trainer.core.evaluating.held_out`)."""
    import numpy as np

    from keras_trainer.core.evaluating.held_out import data_fingerprint

    return data_fingerprint(np.asarray([f"{q}\x00{r}" for q, r in pairs] or [""]))


def _split(source, pairs, test_source, seed: int) -> dict:
    """The held-out pairs of a trained assistant: the `--test-data` file, else the bundled
    held-out questions for the bundled data; a custom file without one holds none out
    (its validation pairs steer early stopping), so scoring it warns."""
    from keras_trainer.assistant.data import load_pairs
    from keras_trainer.core.evaluating.held_out import split_record

    trained_on = pairs_fingerprint(pairs)
    if test_source is None and source is not None:
        return {**split_record(source, trained_on, seed, 0.0, []), "data": os.fspath(source)}
    test = load_pairs(test_source) if test_source else load_pairs(None, split="heldout")
    name = test_source or BUNDLED_HELDOUT
    record = split_record(name, pairs_fingerprint(test), seed, 1.0, range(len(test)), trained_on)
    record["test_data"] = test_source
    return record


def _evaluation_pairs(args: argparse.Namespace, assistant) -> tuple[list, str]:
    """The pairs `evaluate` scores and their name: `--data`, else the model's held-out file."""
    from keras_trainer.assistant.data import load_pairs

    split = getattr(assistant, "split", None) or {}
    if args.data:
        return load_pairs(args.data), args.data
    if split.get("test_data"):
        return load_pairs(split["test_data"]), split["test_data"]
    if split.get("data"):  # trained on a file without a test file: none held out
        return load_pairs(split["data"]), split["data"]
    return load_pairs(None, split="heldout"), BUNDLED_HELDOUT


def evaluate(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer evaluate` for an assistant: exact match on a QA file
    (default: the model's held-out pairs; its training pairs are scored with a warning)."""
    from keras_trainer.assistant.evaluation import TOKENIZER_NORMALIZED
    from keras_trainer.core.evaluating.held_out import rows_to_score
    from keras_trainer.core.evaluating.text import BYTE_FOR_BYTE

    assistant = _load(args.model)
    pairs, name = _evaluation_pairs(args, assistant)
    split = getattr(assistant, "split", None)
    if split is not None or name != BUNDLED_HELDOUT:  # the bundled held-out pairs train nothing
        rows = rows_to_score(split, pairs_fingerprint(pairs), len(pairs), name, args.all, "pairs")
        pairs = [pairs[i] for i in rows]
    scores = score_pairs(assistant, pairs)
    print(f"metrics on {len(pairs)} pairs of {name}:")
    labels = {
        "exact_match": f"exact match ({BYTE_FOR_BYTE})",
        "exact_match_normalized": f"exact match ({TOKENIZER_NORMALIZED})",
    }
    for key, value in scores.items():
        label = labels.get(key, key.replace("_", " "))
        print(
            f"  {label:<36} {value:.4f}" if isinstance(value, float) else f"  {label:<36} {value}"
        )
    if args.report:
        from keras_trainer.core.saving.atomic import write_json_atomic

        write_json_atomic(args.report, {"task": "assistant", "data": name, **scores})
        print(f"saved report: {args.report}")
    return 0


def read_queries(path: str) -> list[str]:
    """Questions from a JSON list (strings or `{"query": ...}` records) or a CSV with a `query` column."""
    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    if path.lower().endswith(".csv"):
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "query" not in (reader.fieldnames or []):
                raise DataError(f"{path}: needs a 'query' column (columns: {reader.fieldnames})")
            return [row["query"] for row in reader]
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty JSON list of questions")
    queries = []
    for index, item in enumerate(data):
        query = item.get("query") if isinstance(item, dict) else item
        if not isinstance(query, str):
            raise DataError(
                f"{path}[{index}]: expected a question string or an object with 'query'"
            )
        queries.append(query)
    return queries


def predict(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer predict` for an assistant: one answer per question."""
    from keras_trainer.core.evaluating.predictions import emit_records

    if not args.data:
        raise DataError("predict: pass --data QUESTIONS (.json list or .csv with a 'query' column)")
    assistant = _load(args.model)
    queries = read_queries(args.data)
    answers = assistant.generate_batch(queries)
    records = [
        {"id": i, "query": q, "response": a} for i, (q, a) in enumerate(zip(queries, answers))
    ]
    emit_records(records, args.output, "answers")
    return 0


def register(subparsers) -> None:
    """Adds `chat` (the assistant's own verb) to the command line."""
    chat = subparsers.add_parser(
        "chat",
        help="talk to a trained assistant (interactive, or one answer per question given)",
        description="Answers each QUESTION given and exits; without questions, reads one per line "
        "from standard input until an empty line, 'exit' or end of input.",
    )
    add_model_argument(chat, "assistant .keras file, or an assistant ONNX folder")
    chat.add_argument("questions", nargs="*", help="questions to answer (default: interactive)")
    chat.add_argument(
        "--method",
        choices=["greedy", "beam"],
        default="greedy",
        help="how answers are decoded: the likeliest next token each step, or a beam search "
        "(default greedy; an ONNX folder answers greedily)",
    )
    chat.add_argument(
        "--beam-width",
        type=int,
        default=4,
        help=f"answers kept at each step of --method beam (1 to {_MAX_BEAM_WIDTH}, default 4)",
    )
    chat.set_defaults(handler=chat_command)


_MAX_BEAM_WIDTH = 64


def _read_line(number: int) -> str:
    """One line of standard input as UTF-8 text, whatever the locale says.

    Raises:
        DataError: the line is not UTF-8, naming its number.
    """
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream (tests, embedding): already decoded
        return sys.stdin.readline()
    raw = stream.readline()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"standard input line {number}: not UTF-8 text (byte {error.start} is "
            f"{raw[error.start]:#04x})"
        ) from None


def chat_command(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer chat`."""
    if not 1 <= args.beam_width <= _MAX_BEAM_WIDTH:
        raise DataError(
            f"--beam-width: expected 1 to {_MAX_BEAM_WIDTH}, got {args.beam_width} "
            "(wider beams take longer and answer no better)"
        )
    assistant = _load(args.model)
    settings = {}
    if args.method == "beam":
        if os.path.isdir(args.model):
            raise DataError(
                "--method beam: an ONNX assistant answers greedily; chat with the .keras file"
            )
        settings = {"method": "beam", "beam_width": args.beam_width}

    def answer(question: str) -> str:
        from keras_trainer.assistant.generation import check_query

        check_query(question)
        return assistant.generate_batch([question], **settings)[0]

    if args.questions:
        for question in args.questions:
            print(answer(question))
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask a question (empty line or 'exit' to stop).")
    number = 0
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = _read_line(number := number + 1)
        if not line or line.strip() in ("", "exit", "quit"):
            return 0
        print(answer(line.strip()), flush=True)
