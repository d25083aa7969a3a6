"""`keras-trainer serve MODEL`: a saved model over HTTP.

keras-trainer serve models/jit_optimizer.keras --port 8000 --max-batch-size 64
curl -s localhost:8000/predict -d '{"inputs": [[12, 3, 40, 1, 2, 0, 8, 1, 1, 0.5, 1000, 3]]}'
"""

from __future__ import annotations

import argparse
import dataclasses


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
    serve.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        default="cpu",
        help="where the model runs (default cpu; auto takes a GPU when there is one)",
    )
    serve.add_argument(
        "--config",
        help="JSON file of serving options (keras-trainer schema --kind serving); "
        "the flags below override it",
    )
    _add_config_options(serve)
    serve.set_defaults(handler=run_serve)


def _add_config_options(parser) -> None:
    """One flag per `ServingConfig` option (`max_rows` -> `--max-rows`), default from the file."""
    from keras_trainer.serving.config import ServingConfig

    for field in dataclasses.fields(ServingConfig):
        flag = "--" + field.name.replace("_", "-")
        text = f"{field.metadata['description']} (default {field.default})"
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true", default=None, help=text)
        else:
            kind = int if field.type in (int, "int") else float
            parser.add_argument(flag, type=kind, default=None, metavar="N", help=text)


def serving_config(args: argparse.Namespace):
    """The `ServingConfig` of `--config` with the flags given applied, validated."""
    from keras_trainer.config import load_section
    from keras_trainer.serving.config import ServingConfig

    config = load_section(ServingConfig, args.config, "serving config")
    changes = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(ServingConfig)
        if getattr(args, field.name, None) is not None
    }
    return config.replace(**changes) if changes else config


def run_serve(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer serve`; returns when the server stops."""
    from keras_trainer.serving import ServedModel, serve
    from keras_trainer.serving.app import bind

    config = serving_config(args)
    bind(args.host, args.port).close()  # a bad or busy port is named before the model loads
    model = ServedModel(args.model, device=args.device, limits=config)
    serve(
        model,
        host=args.host,
        port=args.port,
        log_level="info" if getattr(args, "verbose", 0) else "warning",
        config=config,
    )
    return 0
