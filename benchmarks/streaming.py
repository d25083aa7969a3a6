"""Streaming more data than the process may hold, against in-memory arrays.

Writes `--gigabytes` of `.npy` shards (64 float32 columns: 63 features and a
binary target), then trains one epoch of the same MLP in two child processes:

* streaming: `fit` on a `ShardDataset` of all shards, in a process whose
  address space is capped (RLIMIT_AS) at what it uses after start-up plus
  `--cap-mb`, less than the data: the data cannot be loaded, only streamed;
* in memory: `fit` on NumPy arrays of `--memory-rows` rows (what fits).

Prints samples/s of both, their ratio, and the streaming run's peak RSS.

    KERAS_BACKEND=jax python benchmarks/streaming.py --gigabytes 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

COLUMNS = 64


def write_shards(folder: str, gigabytes: float, shard_rows: int) -> int:
    rows = int(gigabytes * 2**30 / (COLUMNS * 4))
    rng = np.random.default_rng(0)
    weights = rng.normal(size=COLUMNS - 1)
    for index, start in enumerate(range(0, rows, shard_rows)):
        x = rng.normal(size=(min(shard_rows, rows - start), COLUMNS - 1)).astype("float32")
        y = (x @ weights > 0).astype("float32")[:, None]
        np.save(os.path.join(folder, f"part-{index:04d}.npy"), np.hstack([x, y]))
    return rows


def _vm_size_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    import keras

    from keras_trainer.config import ModelConfig, TrainingConfig
    from keras_trainer.core.building.models import build_model
    from keras_trainer.core.inputs.streaming import ShardDataset
    from keras_trainer.core.training.fit import fit
    from keras_trainer.core.training.memory import peak_host_rss_mb

    model = build_model(
        ModelConfig(hidden_layers=[64, 32], output_dim=1, output_activation="sigmoid"),
        (COLUMNS - 1,),
    )
    config = TrainingConfig(
        epochs=1,
        batch_size=args.batch_size,
        verbose=0,
        early_stopping_patience=0,
        validation_split=0.0,
        loss="binary_crossentropy",
        metrics=[],
        track_memory=False,
    )
    # Compile and run one step outside the measured epoch.
    warm = (
        np.zeros((args.batch_size, COLUMNS - 1), "float32"),
        np.zeros((args.batch_size,), "float32"),
    )
    fit(model, *warm, config=config)
    result = {"mode": args.child, "backend": keras.backend.backend()}
    if args.child == "stream":
        data = ShardDataset(
            args.folder,
            batch_size=args.batch_size,
            num_workers=args.workers,
            prefetch=8,
        )
        limit = int((_vm_size_mb() + args.cap_mb) * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result["address_space_cap_mb"] = limit / 2**20
        rows = data.size
        started = time.perf_counter()
        fit(model, data, config=config)
    else:
        files = sorted(os.listdir(args.folder))
        table = np.concatenate([np.load(os.path.join(args.folder, f)) for f in files[:2]])[
            : args.memory_rows
        ]
        rows = len(table)
        started = time.perf_counter()
        fit(model, table[:, :-1], table[:, -1], config=config)
    seconds = time.perf_counter() - started
    result.update(
        rows=rows,
        seconds=seconds,
        samples_per_second=rows / seconds,
        peak_rss_mb=peak_host_rss_mb(),
    )
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--cap-mb", type=float, default=512)
    parser.add_argument("--memory-rows", type=int, default=400_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as folder:
        rows = write_shards(folder, args.gigabytes, shard_rows=131_072)
        print(f"data: {rows:,} rows, {rows * COLUMNS * 4 / 2**20:,.0f} MiB of .npy shards")
        results = {}
        for mode in ("memory", "stream"):
            command = [sys.executable, __file__, "--child", mode, "--folder", folder]
            for key in ("cap_mb", "memory_rows", "batch_size", "workers"):
                command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            output = subprocess.run(command, capture_output=True, text=True, check=False)
            line = [text for text in output.stdout.splitlines() if text.startswith("RESULT ")]
            if not line:
                sys.exit(f"{mode} run failed:\n{output.stderr[-3000:]}")
            results[mode] = json.loads(line[0][len("RESULT ") :])
            print(results[mode])
        ratio = results["stream"]["samples_per_second"] / results["memory"]["samples_per_second"]
        print(
            f"streaming {rows * COLUMNS * 4 / 2**20:,.0f} MiB under a {args.cap_mb:.0f} MiB address-space "
            f"margin: {results['stream']['samples_per_second']:,.0f} samples/s, peak RSS "
            f"{results['stream']['peak_rss_mb']:,.0f} MiB; in-memory arrays: "
            f"{results['memory']['samples_per_second']:,.0f} samples/s; ratio {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
