"""Builds the bundled C-kernel JIT dataset: clang-compiled kernels measured under every strategy.

Generates a seeded corpus of C kernels (`keras_trainer.jit.data.c_corpus`, 28 program
families, see `c_corpus.FAMILY_WEIGHTS`), compiles each with clang (-O0, optnone dropped), measures each under
the strategies in a worker subprocess (`keras_trainer.jit.data.collect`) and writes
keras_trainer/jit/data/c_kernels.json.gz. It collects the whole corpus
`--passes` times, one pass after another, and keeps each time's median over
the passes (`collect.merge_collections`): each pass compiles the code anew
and meets the machine at another moment. A pass works in chunks; after each
chunk the records so far are saved to `<output>.pass<k>.json.gz.partial`,
each finished pass to `<output>.pass<k>.json.gz`, and `--resume` continues
from there.

Usage:
    PYTHONPATH=. nice -n 5 python scripts/build_c_corpus.py [--count 1620] [--seed 2026]
    PYTHONPATH=. python scripts/build_c_corpus.py --relabel-only --tie-tolerance 0.03
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

from keras_trainer.jit.cli import collect_options
from keras_trainer.jit.data.c_corpus import FAMILIES, generate_c_corpus
from keras_trainer.jit.data.collect import (
    collect_dataset,
    label_samples,
    merge_collections,
    read_dataset,
    save_dataset,
)

DEFAULT_OUTPUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "keras_trainer",
    "jit",
    "data",
    "c_kernels.json.gz",
)


def _summary(dataset: dict) -> str:
    labels = collections.Counter(s["label_name"] for s in dataset["samples"])
    share = {k: f"{v / max(1, len(dataset['samples'])):.0%}" for k, v in labels.most_common()}
    return f"{len(dataset['samples'])} samples, {len(dataset['failed'])} failed, labels {share}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1620)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-sample-us", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="whole collections, one after another; each time is their median",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="modules compiled and measured at once"
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--tie-tolerance", type=float, default=0.03)
    parser.add_argument("--tie-break", choices=["overall", "cheapest"], default="cheapest")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the passes already written and continue the one under way",
    )
    parser.add_argument(
        "--relabel-only",
        action="store_true",
        help="recompute the labels of --output from its recorded timings",
    )
    args = parser.parse_args(argv)
    if args.relabel_only:
        dataset = label_samples(read_dataset(args.output), args.tie_tolerance, args.tie_break)
        save_dataset(dataset, args.output)
        print(f"relabelled {args.output}: {_summary(dataset)}")
        return 0
    start = time.time()
    kernels = generate_c_corpus(args.count, seed=args.seed, workers=args.workers)
    print(
        f"compiled {len(kernels)} C kernels with clang in {time.time() - start:.0f} s",
        flush=True,
    )
    passes = []
    for number in range(args.passes):
        path = f"{args.output}.pass{number}.json.gz"
        if args.resume and os.path.exists(path):
            passes.append(read_dataset(path))
            print(f"pass {number}: already collected ({path})", flush=True)
            continue
        passes.append(collect_pass(kernels, args, path, number))
    merged = merge_collections(passes)
    save_dataset(merged, args.output)
    for number in range(args.passes):
        os.unlink(f"{args.output}.pass{number}.json.gz")
    print(
        f"wrote {args.output}: {_summary(merged)}; {args.passes} passes in "
        f"{time.time() - start:.0f} s"
    )
    return 0


def collect_pass(kernels: list, args: argparse.Namespace, path: str, number: int) -> dict:
    """Measures every kernel once, in chunks saved to `<path>.partial` (resumable); writes `path`."""
    partial = path + ".partial"
    start = time.time()
    collected = None
    if args.resume and os.path.exists(partial):
        collected = read_dataset(partial)
        print(
            f"pass {number}: resuming after "
            f"{len(collected['samples']) + len(collected['failed'])} modules",
            flush=True,
        )
    done = 0 if collected is None else len(collected["samples"]) + len(collected["failed"])
    while done < len(kernels):
        chunk = kernels[done : done + args.chunk]
        dataset = collect_dataset(
            chunk,
            **collect_options(args),
            metadata={
                "corpus": "c_kernels",
                "corpus_seed": args.seed,
                "corpus_count": args.count,
                "families": sorted(FAMILIES),
                "generator": "scripts/build_c_corpus.py",
                "compiler": "clang -O0 -Xclang -disable-O0-optnone (keras_trainer.jit.data.c_corpus)",
            },
        )
        if collected is None:
            collected = dataset
        else:
            collected["samples"].extend(dataset["samples"])
            collected["failed"].extend(dataset["failed"])
        done += len(chunk)
        save_dataset(collected, partial)
        print(
            f"pass {number}: {done}/{len(kernels)} modules, {time.time() - start:.0f} s: "
            f"{_summary(collected)}",
            flush=True,
        )
    collected["metadata"]["collection_seconds"] = round(time.time() - start, 1)
    label_samples(collected, args.tie_tolerance, args.tie_break)
    save_dataset(collected, path)
    os.unlink(partial)
    return collected


if __name__ == "__main__":
    sys.exit(main())
