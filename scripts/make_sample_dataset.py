"""Generates the bundled JIT sample dataset with the real pipeline.

Generates a seeded corpus of IR kernels (keras_trainer.jit.corpus), measures
each under the five strategies in a worker subprocess (keras_trainer.jit.collect)
and writes keras_trainer/jit/data/sample_dataset.json.

Usage:
    PYTHONPATH=. python scripts/make_sample_dataset.py [--count 1000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

from keras_trainer.jit.cli import collect_options
from keras_trainer.jit.collect import collect_dataset, label_samples, read_dataset, save_dataset
from keras_trainer.jit.corpus import generate_corpus

DEFAULT_OUTPUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "keras_trainer",
    "jit",
    "data",
    "sample_dataset.json",
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--tie-tolerance", type=float, default=0.02)
    parser.add_argument("--tie-break", choices=["overall", "cheapest"], default="overall")
    parser.add_argument(
        "--relabel-only",
        action="store_true",
        help="recompute the labels of --output from its recorded timings",
    )
    args = parser.parse_args(argv)
    if args.relabel_only:
        dataset = label_samples(read_dataset(args.output), args.tie_tolerance, args.tie_break)
        save_dataset(dataset, args.output)
        labels = collections.Counter(s["label_name"] for s in dataset["samples"])
        print(
            f"relabelled {args.output}: labels {dict(labels)}, "
            f"tie preference {dataset['metadata']['tie_preference']}"
        )
        return 0
    kernels = generate_corpus(args.count, seed=args.seed)
    start = time.time()

    def progress(done, total, record):
        if done % 20 == 0 or done == total:
            print(f"{done}/{total} modules, {time.time() - start:.0f} s", flush=True)

    dataset = collect_dataset(
        kernels,
        progress=progress,
        **collect_options(args),
        metadata={
            "corpus_seed": args.seed,
            "corpus_count": args.count,
            "generator": "scripts/make_sample_dataset.py",
            "collection_seconds": None,
        },
    )
    dataset["metadata"]["collection_seconds"] = round(time.time() - start, 1)
    save_dataset(dataset, args.output)
    labels = collections.Counter(s["label_name"] for s in dataset["samples"])
    print(
        f"wrote {args.output}: {len(dataset['samples'])} samples, "
        f"{len(dataset['failed'])} failed, labels {dict(labels)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
