"""`keras-trainer serve MODEL`: a saved model over HTTP.

keras-trainer serve models/jit_optimizer.keras --port 8000
curl -s localhost:8000/predict -d '{"inputs": [[12, 3, 40, 1, 2, 0, 8, 1, 1, 0.5, 1000, 3]]}'
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Adds the `serve` subcommand."""
    serve = subparsers.add_parser(
        "serve",
        help="serve a saved model over HTTP (POST /predict, GET /health, GET /metadata)",
        description=(
            "Loads a .keras, .h5 or .onnx model, an assistant (.keras or ONNX folder), or a "
            "model store version (STORE@production, STORE@3), and answers JSON requests over "
            "HTTP until interrupted. Needs the [serve] extra."
        ),
    )
    serve.add_argument(
        "model",
        help=".keras, .h5 or .onnx file, an assistant ONNX folder, or STORE@ALIAS / STORE@VERSION",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default 127.0.0.1; 0.0.0.0 for all)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8000,
        help="TCP port (default 8000; 0 picks a free one)",
    )
    serve.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer serve`; returns when the server stops."""
    from keras_trainer.serving import ServedModel, serve

    model = ServedModel(args.model, device=args.device)
    serve(
        model,
        host=args.host,
        port=args.port,
        log_level="info" if getattr(args, "verbose", 0) else "warning",
    )
    return 0
