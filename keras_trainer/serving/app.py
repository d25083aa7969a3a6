"""The HTTP API of a served model, on FastAPI, run by uvicorn (`[serve]` extra).

Routes:

- `POST /predict`: the JSON body is a `ServedModel.predict` request
  (`{"inputs": ...}` for a network, `{"query": ...}` for an assistant); the
  answer is its JSON result.
- `GET /health`: `{"status": "ok", ...}` once the model is loaded.
- `GET /metadata`: `ServedModel.info()`: kind, inputs, head, class and
  feature names, the saved metadata.

A request the model cannot take is answered with HTTP 422 and
`{"error": "DataError", "detail": "<the library's message>"}`; a body that is
not JSON with 400; a model that fails to run with 500, the same shape.

Requests run one at a time per server process (models are small and the
compiled call is fastest alone); start several processes behind a load
balancer to use more cores.

Example:

```python
from keras_trainer.serving import ServedModel, create_app, serve

serve("models/jit_optimizer.keras", host="127.0.0.1", port=8000)  # blocks
```
"""

import json
import socket
import sys
from collections.abc import Callable
from typing import Any

from keras_trainer.errors import DataError, KerasTrainerError
from keras_trainer.serving.model import ServedModel


def _require_fastapi():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the environment
        from keras_trainer.errors import BackendNotSupportedError

        raise BackendNotSupportedError(
            f"serving needs FastAPI and uvicorn ({error.name} is missing): "
            "pip install 'keras-trainer[serve]'"
        ) from None


def create_app(model: ServedModel):
    """A FastAPI application answering for `model`."""
    _require_fastapi()
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(
        title=f"keras_trainer: {model.info()['model']}",
        version=model.info()["library_version"],
    )
    counters = {"requests": 0, "errors": 0}

    def error_response(status: int, error: Exception) -> JSONResponse:
        counters["errors"] += 1
        return JSONResponse(
            {"error": type(error).__name__, "detail": str(error)}, status_code=status
        )

    # No `from __future__ import annotations` in this module: FastAPI reads the
    # `Request` annotation at runtime to inject the request.
    @app.post("/predict")
    async def predict(request: Request):
        counters["requests"] += 1
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError as error:
            return error_response(400, DataError(f"request body is not valid JSON: {error}"))
        try:
            return model.predict(payload)
        except DataError as error:
            return error_response(422, error)
        except KerasTrainerError as error:
            return error_response(500, error)

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "model": model.info()["model"],
            "kind": model.kind,
            **counters,
        }

    @app.get("/metadata")
    async def metadata():
        return model.info()

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (`port=0` picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a small response written in two
    # parts (headers, body) waits ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve(
    model: "ServedModel | str",
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Serves `model` over HTTP until interrupted (Ctrl-C, SIGTERM).

    Args:
        model: A `ServedModel` or a model path.
        host: Interface to listen on; `127.0.0.1` (default) is this machine only,
            `0.0.0.0` every interface.
        port: TCP port; 0 picks a free one.
        log_level: uvicorn's log level (`warning` by default: no line per request).
        on_ready: Called with the server's URL once the socket listens.
    """
    _require_fastapi()
    import uvicorn

    if not isinstance(model, ServedModel):
        model = ServedModel(model)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    config = uvicorn.Config(
        create_app(model),
        log_level=log_level,
        access_log=log_level in ("info", "debug"),
    )
    server = uvicorn.Server(config)
    (on_ready or (lambda u: print(f"serving {model.path} at {u}", flush=True, file=sys.stdout)))(
        url
    )
    server.run(sockets=[sock])
