"""`ServingConfig`: the limits, timeouts and batching of `keras-trainer serve`.

Every limit is on by default: a server started with no options refuses a request
too large, too slow or too many at once with a named JSON error instead of
spending its memory and time on it. Each option is also a `serve` command-line
flag (`max_rows` is `--max-rows`); flags given override the `--config` file.

Example:

>>> config = ServingConfig.from_dict({"max_rows": 1000, "max_batch_size": 32})
>>> config.max_body_bytes
8388608
"""

from __future__ import annotations

import dataclasses

from keras_trainer.config.fields import ConfigSection, option


@dataclasses.dataclass
class ServingConfig(ConfigSection):
    """Limits, timeouts, batching and pages of the HTTP server (`keras-trainer serve`)."""

    max_body_bytes: int = option(
        8 * 1024 * 1024,
        minimum=1,
        description="Largest request body in bytes; a larger one is answered 413.",
    )
    max_rows: int = option(
        10_000, minimum=1, description="Most rows (or windows) one network request may send."
    )
    max_queries: int = option(
        64, minimum=1, description="Most assistant queries one request may send."
    )
    max_query_chars: int = option(
        2_000, minimum=1, description="Longest assistant query, in characters."
    )
    max_length: int = option(
        256,
        minimum=1,
        maximum=4096,
        description="Largest `max_length` (tokens to generate) an assistant request may ask for.",
    )
    max_beam_width: int = option(
        8,
        minimum=1,
        maximum=256,
        description="Largest `beam_width` an assistant request may ask for.",
    )
    max_concurrent: int = option(
        64,
        minimum=1,
        description=(
            "Most prediction requests in progress at once; one more is answered 503 with "
            "Retry-After instead of waiting in a queue without end."
        ),
    )
    request_timeout_s: float = option(
        30.0,
        exclusive_minimum=0,
        description=(
            "Seconds a request may take from its first body byte to its answer: a slower "
            "body is answered 408, a slower model call 503."
        ),
    )
    header_timeout_s: float = option(
        10.0,
        exclusive_minimum=0,
        description="Seconds a connection may take to send a request's headers before it is closed.",
    )
    keep_alive_s: float = option(
        5.0, exclusive_minimum=0, description="Seconds an idle keep-alive connection is kept open."
    )
    max_batch_size: int = option(
        64,
        minimum=1,
        description=(
            "Most rows one model call gathers from concurrent network requests (dynamic "
            "batching); 1 turns batching off."
        ),
    )
    max_batch_delay_ms: float = option(
        0.0,
        minimum=0,
        maximum=1000,
        description=(
            "Milliseconds a model call waits for more requests to join its batch; at 0 it "
            "takes the requests already waiting (those that arrived while the last call ran)."
        ),
    )
    quiet: bool = option(False, description="No access log line per request.")
    docs: bool = option(
        False, description="Serve the OpenAPI pages (/docs, /openapi.json); off by default."
    )
