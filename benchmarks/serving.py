"""Benchmark: `keras-trainer serve`, requests/s and p50/p99 latency, batching on and off.

Serves a JIT strategy model (12 raw features -> 5 strategies, trained a few
epochs here) over HTTP on 127.0.0.1 and measures, in one run under the active
KERAS_BACKEND:

  - `ServedModel.predict` in-process (the reference: model, checks and labels,
    no HTTP),
  - HTTP `POST /predict` of one row each to `keras-trainer serve` in its own
    process, from 1, 8 and 32 concurrent clients (keep-alive connections,
    asyncio in this process), once with dynamic batching (`--max-batch-size 64`,
    the default) and once without (`--max-batch-size 1`),

and prints requests/s, p50 and p99 latency, and batching's requests/s as a
ratio to the unbatched server at the same number of clients. With `--onnx`,
the same through ONNX Runtime. With `--assistant MODEL`, the same for a saved
assistant answering the bundled held-out questions, one query per request (greedy):
there the model call (a decoding loop) is most of a request, and batching gathers the
queries of concurrent requests into one loop (`QueryBatcher`).

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/serving.py [--requests 1000]
"""

import argparse
import asyncio
import contextlib
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


async def _client(port: int, payloads: list) -> list:
    """One keep-alive connection sending `payloads` one after another; their latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    for payload in payloads:
        start = time.perf_counter()
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
    writer.close()
    return latencies


async def _clients(port: int, payloads: list, clients: int) -> list:
    parts = await asyncio.gather(*(_client(port, payloads[i::clients]) for i in range(clients)))
    return [t for part in parts for t in part]


@contextlib.contextmanager
def running_server(model_path: str, batch_size: int):
    """`keras-trainer serve` in its own process (as in production: the client does not
    share the server's interpreter); yields its port."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-m", "keras_trainer", "serve", model_path, "--port", "0"]
    command += ["--quiet", "--max-batch-size", str(batch_size)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        yield int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def over_http(model_path: str, bodies: list, clients_list: list, rounds: int) -> dict:
    """Both servers (unbatched, batched) up at once; the settings take turns, `rounds`
    times each, so that a change in the machine's load hits both alike. Each row is
    the round with the median requests/s."""
    payloads = [json.dumps(body).encode() for body in bodies]
    measured = {}
    with running_server(model_path, 1) as unbatched, running_server(model_path, 64) as batched:
        ports = {"unbatched": unbatched, "batched (64 rows)": batched}
        for port in ports.values():
            asyncio.run(_clients(port, payloads[:200], max(clients_list)))  # warm-up
        for _ in range(rounds):
            for clients in clients_list:
                for name, port in ports.items():
                    start = time.perf_counter()
                    latencies = asyncio.run(_clients(port, payloads, clients))
                    row = stats(latencies, time.perf_counter() - start)
                    measured.setdefault((clients, name), []).append(row)
    return {
        key: sorted(rows, key=lambda r: r["requests_per_s"])[len(rows) // 2]
        for key, rows in measured.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3, help="turns of each setting")
    parser.add_argument("--onnx", action="store_true", help="also serve the model exported to ONNX")
    parser.add_argument(
        "--assistant", metavar="MODEL", help="serve this assistant .keras file instead"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = {}
    with tempfile.TemporaryDirectory() as directory:
        if args.assistant:
            from keras_trainer.assistant.data import load_pairs

            questions = [query for query, _ in load_pairs(split="heldout")]
            bodies = [{"query": questions[i % len(questions)]} for i in range(args.requests)]
            paths = {"assistant": args.assistant}
        else:
            path = os.path.join(directory, "jit.keras")
            x = train_model(path, rng)
            bodies = [{"inputs": x[i % len(x)].tolist()} for i in range(args.requests)]
            paths = {"keras": path}
        if args.onnx and not args.assistant:
            from keras_trainer.export import export_onnx

            paths["onnx"] = export_onnx(path, os.path.join(directory, "jit.onnx"))
        for engine, model_path in paths.items():
            rows[f"{engine}: in-process ServedModel.predict (reference)"] = in_process(
                ServedModel(model_path), bodies
            )
            results = over_http(model_path, bodies, args.clients, args.rounds)
            for clients in args.clients:
                reference = results[(clients, "unbatched")]
                for name in ("unbatched", "batched (64 rows)"):
                    row = results[(clients, name)]
                    row["vs_unbatched"] = row["requests_per_s"] / reference["requests_per_s"]
                    rows[f"{engine}: HTTP, {clients} clients, {name}"] = row
    print(
        f"# serving benchmark, one row per request, {args.requests} requests per setting and round "
        f"(median of {args.rounds} rounds), "
        f"KERAS_BACKEND={keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"{'':<50} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s vs unbatched':>19}")
    for name, row in rows.items():
        ratio = f"{row['vs_unbatched']:.1f}x" if "vs_unbatched" in row else ""
        print(
            f"{name:<50} {row['requests_per_s']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {ratio:>19}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
