"""Feature extraction throughput and collection time per module.

Feature extraction: modules per second for the "default" and "autophase"
static sets over the IR of the bundled sample dataset, against parsing and
verifying alone (the llvmlite floor) measured in the same run.
Collection: seconds per module of `collect_dataset` (5 strategies, worker
subprocess per module) on freshly generated corpus kernels, against the same
measurement done in-process (`worker.measure`), whose difference is the
subprocess cost of crash/hang isolation.

Usage:
    PYTHONPATH=. python benchmarks/jit_features.py [--modules 24] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    import llvmlite.binding as llvm

    from keras_trainer.jit import SAMPLE_DATASET_PATH
    from keras_trainer.jit.collect import collect_dataset, read_dataset
    from keras_trainer.jit.corpus import generate_corpus
    from keras_trainer.jit.features import FeatureExtractor
    from keras_trainer.jit.ir import initialize_llvm
    from keras_trainer.jit.worker import measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=24, help="modules to collect")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    texts = [s["ir"] for s in read_dataset(SAMPLE_DATASET_PATH)["samples"]]
    initialize_llvm()
    start = time.perf_counter()
    for text in texts:
        llvm.parse_assembly(text).verify()
    parse_rate = len(texts) / (time.perf_counter() - start)
    print(f"{len(texts)} modules (mean {sum(map(len, texts)) / len(texts):.0f} chars of IR)")
    print(f"parse+verify only:            {parse_rate:8.1f} modules/s (reference)")
    for name in ("default", "extended", "autophase"):
        extractor = FeatureExtractor({"static_features": name})
        start = time.perf_counter()
        for text in texts:
            extractor.extract_static(text)
        rate = len(texts) / (time.perf_counter() - start)
        print(f"extract_static[{name:9s}]:    {rate:8.1f} modules/s  ({rate / parse_rate:.2f}x parse)")

    kernels = generate_corpus(args.modules, seed=12345)
    start = time.perf_counter()
    for kernel in kernels:
        measure({"ir": kernel.ir, "entry": kernel.entry, "args": kernel.args,
                 "repeats": args.repeats})
    in_process = (time.perf_counter() - start) / len(kernels)
    start = time.perf_counter()
    dataset = collect_dataset(kernels, repeats=args.repeats, timeout_s=60)
    collected = (time.perf_counter() - start) / len(kernels)
    print(f"in-process measure:           {in_process:8.3f} s/module (reference)")
    print(f"collect_dataset (subprocess): {collected:8.3f} s/module  "
          f"({collected / in_process:.2f}x in-process; {len(dataset['failed'])} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
