"""Benchmark: batch-1 latency and batch-1024 throughput of the seed JIT MLP.

Compares, in one run under the active KERAS_BACKEND:
  - ONNX Runtime `session.run` on the exported model (the raw engine),
  - `CompiledInferenceLayer(ONNX).predict` (the engine plus input checks),
  - the same on the int8 models of `export_onnx(quantize="dynamic" | "static")`
    (static calibrated on 512 rows like the inputs),
  - `CompiledInferenceLayer(TORCH).predict` (the `torch.export` program; with
    `--torch-compile` also through `torch.compile`),
  - `CompiledInferenceLayer(KERAS).predict` (compiled call of the backend),
  - `model(x)` (eager Keras call),
  - `model.predict(x)` (the reference).
and prints p50/p99 latencies with the speed-up over `model.predict`.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/inference.py [--iterations N]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time


def _threads_from_argv(default=1):
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
    return default


# Every engine gets the same number of CPU threads (set before the backends load):
# on a shared 2-core machine, torch's default thread pool oversubscribes the
# cores and a batch-1024 call became 30x slower than with one thread.
THREADS = _threads_from_argv()
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_cpu_multi_thread_eigen={'true' if THREADS > 1 else 'false'}"
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.export import (  # noqa: E402
    CompiledInferenceLayer,
    ExportRequest,
    InferenceBackend,
    export_onnx_many,
    export_torch,
)


def _limit_backend_threads(threads):
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def seed_mlp(rng):
    """The seed's JIT model: 12 raw features -> Normalization -> 64 -> 32 -> 5 softmax."""
    inputs = keras.Input((12,), name="features")
    x = keras.layers.Normalization(
        mean=rng.normal(5, 2, 12).astype("float32"),
        variance=rng.uniform(0.5, 4, 12).astype("float32"),
    )(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def measure(fn, x, iterations, warm_up):
    for _ in range(warm_up):
        fn(x)
    samples = np.empty(iterations, dtype=np.int64)
    for i in range(iterations):
        start = time.perf_counter_ns()
        fn(x)
        samples[i] = time.perf_counter_ns() - start
    return samples / 1e3  # microseconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--iterations", type=int, default=3000, help="batch-1 calls per fast engine"
    )
    parser.add_argument("--slow-iterations", type=int, default=300, help="calls for model.predict")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every engine")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument(
        "--torch-compile",
        action="store_true",
        help="also time the torch program under torch.compile",
    )
    args = parser.parse_args()
    _limit_backend_threads(args.threads)

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = seed_mlp(rng)
    workdir = tempfile.mkdtemp(prefix="bench_inference_")
    keras_path = os.path.join(workdir, "mlp.keras")
    model.save(keras_path)
    calibration = rng.normal(5, 2, (512, 12)).astype("float32")
    onnx_path, dynamic_path, static_path = export_onnx_many(
        [
            ExportRequest(keras_path, os.path.join(workdir, "mlp.onnx")),
            ExportRequest(
                keras_path, os.path.join(workdir, "mlp.dynamic.onnx"), quantize="dynamic"
            ),
            ExportRequest(
                keras_path,
                os.path.join(workdir, "mlp.static.onnx"),
                quantize="static",
                calibration_data=calibration,
            ),
        ]
    )
    torch_path = export_torch(keras_path, os.path.join(workdir, "mlp.pt2"))

    def onnx_layer_of(path):
        return CompiledInferenceLayer(
            InferenceBackend.ONNX, device="cpu", intra_op_num_threads=args.threads
        ).load_model(path)

    onnx_layer = onnx_layer_of(onnx_path)
    torch_layer = CompiledInferenceLayer(
        InferenceBackend.TORCH, device="cpu", torch_compile=False
    ).load_model(torch_path)
    keras_layer = CompiledInferenceLayer(InferenceBackend.KERAS, device="cpu").load_model(
        keras_path
    )
    session = onnx_layer._session  # The raw engine, to show the layer's own overhead.
    x1 = rng.normal(5, 2, (1, 12)).astype("float32")
    x1024 = rng.normal(5, 2, (1024, 12)).astype("float32")

    engines = {
        "onnxruntime session.run": (
            lambda x: session.run(["probabilities"], {"features": x}),
            args.iterations,
        ),
        "CompiledInferenceLayer(ONNX)": (onnx_layer.predict, args.iterations),
        "CompiledInferenceLayer(ONNX int8 dyn)": (
            onnx_layer_of(dynamic_path).predict,
            args.iterations,
        ),
        "CompiledInferenceLayer(ONNX int8 st.)": (
            onnx_layer_of(static_path).predict,
            args.iterations,
        ),
        "CompiledInferenceLayer(TORCH)": (torch_layer.predict, args.iterations),
        "CompiledInferenceLayer(KERAS)": (keras_layer.predict, args.iterations),
        "model(x)": (
            lambda x: keras.ops.convert_to_numpy(model(x, training=False)),
            args.slow_iterations,
        ),
        "model.predict": (lambda x: model.predict(x, verbose=0), args.slow_iterations),
    }
    if args.torch_compile:
        compiled = CompiledInferenceLayer(InferenceBackend.TORCH, device="cpu", torch_compile=True)
        started = time.perf_counter()
        compiled.load_model(torch_path).predict(x1)
        compiled.predict(x1024)
        print(f"torch.compile of the program: {time.perf_counter() - started:.1f} s (first calls)")
        engines["CompiledInferenceLayer(TORCH, compiled)"] = (compiled.predict, args.iterations)
    reference = model.predict(x1024, verbose=0)
    max_diff = {}
    for name, (fn, _) in engines.items():
        out = fn(x1024)
        out = out[0] if isinstance(out, list) else getattr(out, "prediction", out)
        max_diff[name] = float(np.max(np.abs(np.asarray(out) - reference)))
        # int8 models: within 0.15 of the float probabilities (untrained random weights, 1024 rows).
        assert max_diff[name] <= (0.15 if "int8" in name else 1e-5), (name, max_diff[name])

    # Engines take turns in rounds so that a change of machine load during the
    # run (other processes) affects them all alike and the ratios stay fair.
    rounds = 10
    for fn, iterations in engines.values():
        measure(fn, x1, 0, warm_up=max(20, iterations // 20))
        measure(fn, x1024, 0, warm_up=5)
    single = {name: [] for name in engines}
    batched = {name: [] for name in engines}
    for _ in range(rounds):
        for name, (fn, iterations) in engines.items():
            single[name].append(measure(fn, x1, iterations // rounds, warm_up=2))
            batched[name].append(measure(fn, x1024, max(2, iterations // 30 // rounds), warm_up=1))
    results = {}
    for name in engines:
        latencies = np.concatenate(single[name])
        batch = np.concatenate(batched[name])
        results[name] = {
            "p50_us": float(np.percentile(latencies, 50)),
            "p99_us": float(np.percentile(latencies, 99)),
            "throughput_1024_per_s": float(1024 / (np.median(batch) / 1e6)),
            "samples": int(latencies.size),
            "max_abs_diff_vs_keras": max_diff[name],
        }

    ref = results["model.predict"]
    print(
        f"backend={keras.backend.backend()} cpu={platform.processor() or platform.machine()} "
        f"cores={os.cpu_count()} threads per engine={args.threads}"
    )
    header = (
        f"{'engine':40s} {'p50 us':>9s} {'p99 us':>9s} {'p50 speed-up':>13s} {'batch-1024 rows/s':>18s} "
        f"{'thr. ratio':>10s} {'max |diff|':>10s}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:40s} {r['p50_us']:9.1f} {r['p99_us']:9.1f} {ref['p50_us'] / r['p50_us']:12.1f}x "
            f"{r['throughput_1024_per_s']:18,.0f} {r['throughput_1024_per_s'] / ref['throughput_1024_per_s']:9.1f}x "
            f"{r['max_abs_diff_vs_keras']:10.2g}"
        )
    print("speed-up and throughput ratio are relative to model.predict measured in this run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"backend": keras.backend.backend(), "threads": args.threads, "results": results},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
