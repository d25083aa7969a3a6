"""The HTTP API of a served model, on FastAPI, run by uvicorn (`[serve]` extra).

Routes:

- `POST /predict`: the JSON body is a `ServedModel.predict` request
  (`{"inputs": ...}` for a network, `{"query": ...}` for an assistant); the
  answer is its JSON result.
- `GET /health`: `{"status": "ok", ...}` once the model is loaded; answered
  at once even while long requests run (model calls run in their own thread).
- `GET /metadata`: `ServedModel.info()`: kind, inputs, head, class and
  feature names, the saved metadata.
- `GET /metrics`: counters and histograms in the Prometheus text format.
- `GET /docs`, `GET /openapi.json`: only with `ServingConfig(docs=True)`.

Every answer is JSON, errors included: `{"error": "<library error type>",
"detail": "<its message>", "request_id": "..."}`, where the message quotes
at most a short prefix of what was sent. A body that is not JSON (or nested
too deeply) is a 400; a request over a limit (`ServingConfig`) a 413; a
request the model cannot take a 422; a body slower than `request_timeout_s`
a 408; more than `max_concurrent` requests at once, or a model call slower
than `request_timeout_s`, a 503 with `Retry-After`; only a fault of the
server itself is a 500, logged with its request id. Connections stay open
after every answer but a 413 with an unread body.

Concurrent network requests are batched into one model call
(`DynamicBatcher`, up to `max_batch_size` rows).

Example:

```python
from keras_trainer.serving import ServedModel, ServingConfig, create_app, serve

serve("models/jit_optimizer.keras", host="127.0.0.1", port=8000)  # blocks
```
"""

import asyncio
import contextlib
import errno
import json
import logging
import socket
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from keras_trainer.errors import (
    ConfigError,
    DataError,
    KerasTrainerError,
    LimitError,
    ServingError,
)
from keras_trainer.serving.batching import DynamicBatcher, QueryBatcher
from keras_trainer.serving.config import ServingConfig
from keras_trainer.serving.model import ASSISTANT, ServedModel

access_log = logging.getLogger("keras_trainer.serving.access")
error_log = logging.getLogger("keras_trainer.serving")

# Bodies up to this size are checked on the event loop; larger ones in a thread,
# so that converting thousands of rows never delays `/health`.
_INLINE_BODY_BYTES = 64 * 1024

_PREDICT_EXAMPLE = {"inputs": [[12, 3, 40, 1, 2, 0, 8, 1, 1, 0.5, 1000, 3]]}


def _require_fastapi():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the environment
        from keras_trainer.errors import BackendNotSupportedError

        raise BackendNotSupportedError(
            f"serving needs FastAPI, uvicorn and prometheus-client ({error.name} is missing): "
            "pip install 'keras-trainer[serve]'"
        ) from None


def _refuse_constant(name: str):
    raise DataError(f"request body: {name} is not a number JSON allows; send finite numbers")


def parse_body(body: bytes) -> Any:
    """The decoded JSON of a request body, or a `DataError` that quotes none of it."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise DataError(
            f"request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(f"request body is not UTF-8 text (byte {error.start})") from None
    except RecursionError:
        raise DataError("request body: JSON nested too deeply") from None


class _Refusal(Exception):
    """A library error to answer with a given HTTP status (and headers)."""

    def __init__(self, status: int, error: KerasTrainerError, headers: dict | None = None):
        super().__init__(str(error))
        self.status, self.error, self.headers = status, error, headers


class _Server:
    """The state behind the routes: model, limits, batcher, counters, metrics."""

    def __init__(self, model: ServedModel, config: ServingConfig):
        from keras_trainer.serving.metrics import ServerMetrics

        self.model = model
        self.config = config
        self.in_flight = 0
        self.counters = {"requests": 0, "errors": 0}
        info = model.info()
        self.metrics = ServerMetrics(
            {
                "model": info["model"],
                "version": str(model.store_version or ""),
                "engine": model.engine,
                "kind": model.kind,
            },
            model.load_seconds,
        )
        batcher, run = (
            (QueryBatcher, model.answer_queries)
            if model.kind == ASSISTANT
            else (DynamicBatcher, model.run)
        )
        self.batcher = batcher(
            run,
            config.max_batch_size,
            config.max_batch_delay_ms / 1e3,
            on_batch=self.metrics.batch_rows.observe,
        )

    def error(self, request, status: int, error: Exception, headers=None):
        from fastapi.responses import JSONResponse

        self.counters["errors"] += 1
        return JSONResponse(
            {
                "error": type(error).__name__,
                "detail": str(error),
                "request_id": request.state.request_id,
            },
            status_code=status,
            headers=headers,
        )

    async def predict(self, request):
        from fastapi.responses import JSONResponse

        self.counters["requests"] += 1
        if self.in_flight >= self.config.max_concurrent:
            busy = LimitError(
                f"server busy: {self.in_flight} requests in progress (serving option "
                "max_concurrent, --max-concurrent); retry shortly"
            )
            return self.error(request, 503, busy, {"Retry-After": "1"})
        self.in_flight += 1
        self.metrics.in_progress.inc()
        try:
            answer = await self._answer(request)
        except _Refusal as refusal:
            return self.error(request, refusal.status, refusal.error, refusal.headers)
        except LimitError as error:
            return self.error(request, 413, error)
        except DataError as error:
            return self.error(request, 422, error)
        except KerasTrainerError as error:
            error_log.error("request %s failed: %s", request.state.request_id, error)
            return self.error(request, 500, error)
        finally:
            self.in_flight -= 1
            self.metrics.in_progress.dec()
        return JSONResponse(answer)

    async def _answer(self, request) -> dict:
        start = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.config.request_timeout_s
        try:
            body = await asyncio.wait_for(self._read_body(request), self.config.request_timeout_s)
        except asyncio.TimeoutError:
            raise _Refusal(
                408,
                ServingError(
                    f"request body not received within {self.config.request_timeout_s} s "
                    "(serving option request_timeout_s)"
                ),
            ) from None
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
        try:
            answer = await asyncio.wait_for(self._run(request, body), remaining)
        except asyncio.TimeoutError:
            raise _Refusal(
                503,
                ServingError(
                    f"the model did not answer within {self.config.request_timeout_s} s "
                    "(serving option request_timeout_s); retry, or send fewer rows"
                ),
                {"Retry-After": "1"},
            ) from None
        answer["latency_ms"] = round((time.perf_counter() - start) * 1e3, 3)
        return answer

    async def _read_body(self, request) -> bytes:
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise LimitError(_too_large(int(length), limit))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise LimitError(_too_large(size, limit))
            chunks.append(chunk)
        return b"".join(chunks)

    async def _run(self, request, body: bytes) -> dict:
        from starlette.concurrency import run_in_threadpool

        def check(body):
            try:
                payload = parse_body(body)
            except DataError as error:
                raise _Refusal(400, error) from None
            if self.model.kind == ASSISTANT:
                return self.model.check_queries(payload)
            return self.model.prepare(payload)

        inline = len(body) <= _INLINE_BODY_BYTES
        checked = check(body) if inline else await run_in_threadpool(check, body)
        if self.model.kind == ASSISTANT:
            responses = await self.batcher.answer(checked.queries, checked.settings)
            answer = self.model.describe_answers(checked, responses)
            self.metrics.tokens.inc(self.model.count_tokens(answer))
            request.state.rows = len(checked.queries)
            return answer
        output = await self.batcher.submit(checked.arrays)
        request.state.rows = checked.rows
        self.metrics.rows.inc(checked.rows)
        self.metrics.count_unseen(checked.unseen)
        return self.model.describe(checked, output)


def _too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size} bytes; this server takes at most {limit} "
        "(serving option max_body_bytes, --max-body-bytes)"
    )


class _Guard:
    """ASGI middleware: a request id, a JSON 500 for any fault, metrics, the access log."""

    def __init__(self, app, server: _Server):
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        sent = {"status": 500}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:  # a fault of the server: JSON, logged, connection kept
            error_log.exception("request %s: server fault", request_id)
            if "started" not in sent:
                sent["status"] = 500
                body = json.dumps(
                    {
                        "error": "ServerError",
                        "detail": f"internal error ({type(error).__name__}); see the server log",
                        "request_id": request_id,
                    }
                ).encode()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - start
        route = scope["path"] if scope["path"] in _ROUTES else "other"
        self.server.metrics.observe(route, sent["status"], seconds)
        if not self.server.config.quiet:
            access_log.info(
                '%s "%s %s" %d rows=%s %.1fms id=%s',
                (scope.get("client") or ("-",))[0],
                scope["method"],
                route,
                sent["status"],
                scope["state"].get("rows", "-"),
                seconds * 1e3,
                request_id,
            )


_ROUTES = ("/predict", "/health", "/metadata", "/metrics", "/docs", "/openapi.json")


def create_app(model: ServedModel, config: ServingConfig | None = None):
    """A FastAPI application answering for `model` under `config`'s limits.

    Args:
        model: The served model.
        config: Limits, timeouts, batching and pages; defaults to `model.limits`.
    """
    _require_fastapi()
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    config = config or model.limits
    server = _Server(model, config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.batcher.close()

    app = FastAPI(
        title=f"keras_trainer: {model.info()['model']}",
        version=model.info()["library_version"],
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if config.docs else None,
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(_Guard, server=server)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        problem = DataError(
            f"{request.method} {request.url.path[:40]}: {error.detail}; routes: "
            "POST /predict, GET /health, GET /metadata, GET /metrics"
        )
        return server.error(request, error.status_code, problem)

    # No `from __future__ import annotations` in this module: FastAPI reads the
    # `Request` annotation at runtime to inject the request.
    @app.post(
        "/predict",
        description="Predictions for the JSON request (see GET /metadata for its shape).",
        openapi_extra={
            "requestBody": {"content": {"application/json": {"example": _PREDICT_EXAMPLE}}}
        },
    )
    async def predict(request: Request):
        return await server.predict(request)

    @app.get("/health", description="Whether the model is loaded, with request counters.")
    async def health():
        return {
            "status": "ok",
            "model": model.info()["model"],
            "kind": model.kind,
            "in_flight": server.in_flight,
            **server.counters,
        }

    @app.get("/metadata", description="The model's kind, inputs, head and saved metadata.")
    async def metadata():
        return JSONResponse(model.info())

    @app.get("/metrics", description="Counters and histograms in the Prometheus text format.")
    async def metrics():
        content, content_type = server.metrics.exposition()
        return Response(content, media_type=content_type)

    if config.docs:
        from keras_trainer.serving.pages import docs_page

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return HTMLResponse(docs_page(app.openapi()))

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (`port=0` picks a free port).

    Raises:
        ConfigError: the port is not a number from 0 to 65535.
        ServingError: the address is in use or cannot be bound.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port: expected a TCP port from 0 to 65535, got {port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a small response written in two
    # parts (headers, body) waits ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as error:
        sock.close()
        reason = (
            "is in use" if getattr(error, "errno", None) == errno.EADDRINUSE else "cannot be bound"
        )
        raise ServingError(
            f"--host {host} --port {port}: the address {reason} ({getattr(error, 'strerror', None) or error}); "
            "pick another port, or --port 0 for a free one"
        ) from None
    sock.listen(2048)
    return sock


def server_config(app, config: ServingConfig, log_level: str = "warning"):
    """The `uvicorn.Config` that runs `app` with `config`'s timeouts."""
    import uvicorn

    from keras_trainer.serving.protocol import header_timeout_protocol

    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,  # the application writes its own line (method, status, rows, ms)
        http=header_timeout_protocol(config.header_timeout_s),
        timeout_keep_alive=config.keep_alive_s,
    )


def serve(
    model: "ServedModel | str",
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    on_ready: Callable[[str], Any] | None = None,
    config: ServingConfig | None = None,
) -> None:
    """Serves `model` over HTTP until interrupted (Ctrl-C, SIGTERM).

    Args:
        model: A `ServedModel` or a model path.
        host: Interface to listen on; `127.0.0.1` (default) is this machine only,
            `0.0.0.0` every interface.
        port: TCP port; 0 picks a free one.
        log_level: uvicorn's log level (`warning` by default).
        on_ready: Called with the server's URL once the socket listens.
        config: Limits, timeouts, batching, pages and the access log (one line per
            request on stderr unless `quiet`); `ServingConfig()` when left out.

    Raises:
        ConfigError: a bad port. ServingError: the address is in use.
    """
    _require_fastapi()
    import uvicorn

    config = config or (model.limits if isinstance(model, ServedModel) else ServingConfig())
    sock = bind(host, port)
    if not isinstance(model, ServedModel):
        model = ServedModel(model, limits=config)
    model.warm_up(config.max_batch_size)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    if not config.quiet and not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    server = uvicorn.Server(server_config(create_app(model, config), config, log_level))
    (on_ready or (lambda u: print(f"serving {model.path} at {u}", flush=True, file=sys.stdout)))(
        url
    )
    server.run(sockets=[sock])
