"""The JIT family's command-line subcommands: `collect` and `jit`.

    keras-trainer collect --corpus 300 --seed 0 --output data/jit.json
    keras-trainer collect kernels/*.ll --entry entry --args 1000 --output data/jit.json
    keras-trainer jit models/jit_optimizer.keras kernel.ll --entry entry 1000

The lead's `keras_trainer/cli.py` calls `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

from keras_trainer.errors import DataError, KerasTrainerError


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def register(subparsers) -> None:
    """Adds the `collect` and `jit` subcommands to an argparse subparsers object."""
    collect = subparsers.add_parser(
        "collect",
        help="Measure IR modules under the 5 strategies and write a JIT dataset JSON.",
        description=(
            "Optimizes each module under every strategy, MCJIT-compiles and times it in a "
            "worker subprocess, and writes the dataset (format keras_trainer.jit_dataset/1)."
        ),
    )
    collect.add_argument("files", nargs="*", help=".ll files (each with the entry function)")
    collect.add_argument("--corpus", type=int, default=0, metavar="N",
                         help="also generate N corpus kernels (keras_trainer.jit.corpus)")
    collect.add_argument("--seed", type=int, default=0, help="corpus seed")
    collect.add_argument("--entry", default="entry", help="entry function of the .ll files")
    collect.add_argument("--args", type=_number, nargs="*", default=[],
                         help="arguments passed to the .ll files' entry function")
    collect.add_argument("--output", "-o", required=True, help="dataset JSON to write")
    collect.add_argument("--repeats", type=int, default=5)
    collect.add_argument("--warmup", type=int, default=1)
    collect.add_argument("--timeout", type=float, default=60.0, help="seconds per module")
    collect.add_argument("--tie-tolerance", type=float, default=0.02,
                         help="relative margin within which strategies tie")
    collect.add_argument("--tie-break", choices=["overall", "cheapest"], default="overall",
                         help="who wins a tie: the best strategy overall, or the cheapest")
    collect.add_argument("--workers", type=int, default=1)
    collect.set_defaults(handler=run_collect)

    jit = subparsers.add_parser(
        "jit",
        help="Compile an .ll file with the strategy a trained model picks, and run it.",
    )
    jit.add_argument("model", help="trained strategy model (.keras or .h5)")
    jit.add_argument("file", help=".ll file")
    jit.add_argument("args", type=_number, nargs="*", help="arguments of the entry function")
    jit.add_argument("--entry", default="entry")
    jit.add_argument("--timeout", type=float, default=60.0,
                     help="seconds each step of the untrusted IR (probe, build, run) may take")
    jit.add_argument("--trusted", action="store_true",
                     help="compile and run the IR in this process (only for IR you wrote)")
    jit.set_defaults(handler=run_jit)


def run_collect(args) -> int:
    from keras_trainer.jit.collect import collect_dataset, save_dataset
    from keras_trainer.jit.corpus import generate_corpus

    from keras_trainer.config import read_text_file
    from keras_trainer.core.atomic import check_writable_path

    try:
        check_writable_path(args.output, "--output", (".json",))
        modules = []
        for path in args.files:
            text = read_text_file(path, "IR", DataError)
            modules.append({"name": os.path.basename(path), "ir": text, "entry": args.entry,
                            "args": list(args.args)})
        if args.corpus:
            modules.extend(generate_corpus(args.corpus, seed=args.seed))
        if not modules:
            raise DataError("nothing to collect: give .ll files and/or --corpus N")

        def progress(done, total, record):
            if "reason" in record:
                status = f"FAILED ({record['reason']})"
            else:
                status = "fastest " + min(record["timings_ns"], key=record["timings_ns"].get)
            print(f"[{done}/{total}] {record['name']}: {status}", flush=True)

        dataset = collect_dataset(modules, repeats=args.repeats, warmup=args.warmup,
                                  timeout_s=args.timeout, tie_tolerance=args.tie_tolerance,
                                  tie_break=args.tie_break,
                                  workers=args.workers, progress=progress)
        save_dataset(dataset, args.output)
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    labels = collections.Counter(s["label_name"] for s in dataset["samples"])
    print(f"wrote {args.output}: {len(dataset['samples'])} samples, "
          f"{len(dataset['failed'])} failed; labels {dict(labels)}")
    return 0


def run_jit(args) -> int:
    from keras_trainer.config import read_text_file
    from keras_trainer.jit.adaptive import AdaptiveJIT

    function = None
    try:
        text = read_text_file(args.file, "IR", DataError)
        jit = AdaptiveJIT(args.model, trusted=args.trusted, timeout_s=args.timeout)
        function = jit.compile(text, args.entry, args=args.args)
        result = function(*args.args)
    except KerasTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if function is not None and hasattr(function, "close"):
            function.close()
    probabilities = ", ".join(f"{k}={v:.3f}" for k, v in function.probabilities.items())
    print(f"strategy: {function.strategy} ({probabilities})")
    print(f"result: {result}")
    return 0
