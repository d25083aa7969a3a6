"""Benchmark: `keras-trainer serve` at batch 1, requests/s and p50/p99 latency.

Serves a JIT strategy model (12 raw features -> 5 strategies, trained a few
epochs here) over HTTP on 127.0.0.1 and measures, in one run under the active
KERAS_BACKEND:

  - `ServedModel.predict` in-process (the reference: model, checks and labels,
    no HTTP),
  - HTTP `POST /predict` to `keras-trainer serve` in its own process, one client sending requests one after another,
  - HTTP `POST /predict`, `--clients` clients at once (keep-alive connections),

and prints requests/s, p50 and p99 latency, and the HTTP overhead as a ratio
to the in-process reference. With `--onnx`, the same through ONNX Runtime.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/serving.py [--requests 2000] [--clients 4]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer import ModelTrainer  # noqa: E402
from keras_trainer.serving import ServedModel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_model(path: str, rng) -> np.ndarray:
    trainer = ModelTrainer(
        {
            "model": {"input_dim": 12, "hidden_layers": [64, 32], "output_dim": 5},
            "training": {
                "batch_size": 32,
                "epochs": 3,
                "validation_split": 0.0,
                "verbose": 0,
            },
        }
    )
    x = (rng.normal(size=(512, 12)) * 3 + 2).astype("float32")
    labels = (x[:, 0] > 2).astype(int) + 2 * (x[:, 1] > 2).astype(int)
    trainer.fit_normalizer(x)
    trainer.train((trainer.normalize(x), labels))
    trainer.save_model(path)
    return x


def stats(latencies_s: list, seconds: float) -> dict:
    ms = np.asarray(latencies_s) * 1e3
    return {
        "requests_per_s": len(ms) / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def in_process(model: ServedModel, bodies: list) -> dict:
    for body in bodies[:50]:
        model.predict(body)
    latencies = []
    start = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        model.predict(body)
        latencies.append(time.perf_counter() - t)
    return stats(latencies, time.perf_counter() - start)


def http_client(port: int, payloads: list) -> list:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    for payload in payloads:
        t = time.perf_counter()
        connection.request("POST", "/predict", payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t)
        assert response.status == 200, response.status
    connection.close()
    return latencies


def over_http(model_path: str, bodies: list, clients: int) -> dict:
    """Starts `keras-trainer serve` in its own process (as in production: the client
    does not share the server's interpreter), then sends the requests."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_trainer", "serve", model_path, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        payloads = [json.dumps(body).encode() for body in bodies]
        http_client(port, payloads[:50])
        results = {}
        start = time.perf_counter()
        latencies = http_client(port, payloads)
        results["http_sequential"] = stats(latencies, time.perf_counter() - start)
        shares = [payloads[i::clients] for i in range(clients)]
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            parts = list(pool.map(lambda share: http_client(port, share), shares))
        results[f"http_{clients}_clients"] = stats(
            [t for part in parts for t in part], time.perf_counter() - start
        )
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--onnx", action="store_true", help="also serve the model exported to ONNX")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "jit.keras")
        x = train_model(path, rng)
        bodies = [{"inputs": x[i % len(x)].tolist()} for i in range(args.requests)]
        paths = {"keras": path}
        if args.onnx:
            from keras_trainer.export import export_onnx

            paths["onnx"] = export_onnx(path, os.path.join(directory, "jit.onnx"))
        rows = {}
        for engine, model_path in paths.items():
            model = ServedModel(model_path)
            rows[f"{engine}: in-process ServedModel.predict (reference)"] = reference = in_process(
                model, bodies
            )
            for name, row in over_http(model_path, bodies, args.clients).items():
                row["p50_vs_reference"] = row["p50_ms"] / reference["p50_ms"]
                rows[f"{engine}: {name}"] = row
    print(
        f"# serving benchmark, batch 1, {args.requests} requests, KERAS_BACKEND={keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print(f"{'':<55} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p50 / ref':>9}")
    for name, row in rows.items():
        ratio = f"{row['p50_vs_reference']:.1f}x" if "p50_vs_reference" in row else "1.0x"
        print(
            f"{name:<55} {row['requests_per_s']:>9.0f} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {ratio:>9}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
