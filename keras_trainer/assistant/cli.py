"""The assistant on the command line: `train`, `evaluate`, `predict` and `chat`.

    keras-trainer train config/assistant_config.json [--data qa.json]
    keras-trainer evaluate runs/assistant_config/version_0/model.keras [--data qa.json]
    keras-trainer predict models/assistant.keras --data questions.json --output answers.csv
    keras-trainer chat models/assistant.keras                      # interactive
    keras-trainer chat models/assistant.keras "What is keras_trainer?"   # one answer

A QA file is a JSON list of `{"query": ..., "response": ...}` records (the
bundled dataset's format). `evaluate` reports exact match (the whole answer,
token for token after the tokenizer's normalization) and token accuracy;
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
from keras_trainer.errors import DataError


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
    source = args.data or config.data_path
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
        scores = exact_match(assistant, pairs)
        metrics.update({f"train_{k}": float(v) for k, v in scores.items()})
        print(
            f"on the training pairs: exact match {scores['exact_match']:.3f} ({scores['matched']}/"
            f"{scores['pairs']}), token accuracy {scores['token_accuracy']:.3f}"
        )
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


def exact_match(assistant, pairs, batch_size: int = 64) -> dict:
    """Exact match and token accuracy of greedy answers to `pairs`' queries.

    Both sides go through the assistant's tokenizer (`decode(encode(text))`), so
    case and spacing do not count; words outside the vocabulary do.
    """
    tokenizer = assistant.tokenizer
    matched, tokens_right, tokens_total = 0, 0, 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        answers = assistant.generate_batch([q for q, _ in chunk])
        for answer, (_, expected) in zip(answers, chunk):
            want = tokenizer.decode(tokenizer.encode(expected)).split()
            got = answer.split()
            matched += got == want
            tokens_right += sum(a == b for a, b in zip(got, want))
            tokens_total += max(len(want), len(got))
    return {
        "exact_match": matched / max(len(pairs), 1),
        "token_accuracy": tokens_right / max(tokens_total, 1),
        "matched": matched,
        "pairs": len(pairs),
    }


def _load(path: str):
    if os.path.isdir(path):
        from keras_trainer.assistant.onnx import OnnxAssistant

        return OnnxAssistant.load(path)
    from keras_trainer.assistant.assistant import load_assistant

    return load_assistant(path)


def evaluate(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer evaluate` for an assistant: exact match on a QA file."""
    from keras_trainer.assistant.data import load_pairs

    assistant = _load(args.model)
    pairs = load_pairs(args.data)
    scores = exact_match(assistant, pairs)
    print(f"metrics on {len(pairs)} pairs of {args.data or 'the bundled QA dataset'}:")
    for name, value in scores.items():
        print(f"  {name:<16} {value:.4f}" if isinstance(value, float) else f"  {name:<16} {value}")
    if args.report:
        from keras_trainer.core.saving.atomic import write_json_atomic

        write_json_atomic(args.report, {"task": "assistant", "data": args.data, **scores})
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
