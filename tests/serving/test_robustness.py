"""`serve` under attack and load: JSON for every answer, limits, timeouts, busy, batching.

Over real HTTP on a loopback port, with a tiny binary classifier (4 features).
"""

import concurrent.futures
import http.client
import json
import logging
import socket
import time

import numpy as np
import pytest

from keras_trainer.errors import ConfigError, ServingError
from keras_trainer.serving import ServedModel, ServingConfig
from tests.serving.conftest import _head_model, request


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("robust") / "binary.keras")
    _head_model(path, "sigmoid", 1, ["benign", "malignant"])
    return path


@pytest.fixture(scope="module")
def tiny_server(tiny_path, start_server):
    return start_server(ServedModel(tiny_path))


class SlowModel(ServedModel):
    """A served model whose calls take `delay_s` (a long request) and are counted."""

    delay_s = 0.0

    def run(self, arrays):
        self.calls = getattr(self, "calls", 0) + 1
        time.sleep(self.delay_s)
        return super().run(arrays)


def slow_server(start_server, tiny_path, delay_s, **options):
    model = SlowModel(tiny_path, limits=ServingConfig(**options))
    model.delay_s = delay_s
    return model, start_server(model)


def post(connection, body: bytes):
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read()), response


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
        (b'{"inputs": null}', 422, "request.inputs: expected a list of numbers"),
        (b'{"inputs": 3}', 422, "request.inputs: expected a list of numbers"),
        (b'{"inputs": ["1.5", 1, 2, 3]}', 422, "request.inputs[0]: expected a number, got '1.5'"),
        (b'{"inputs": [true, 1, 2, 3]}', 422, "request.inputs[0]: expected a number, got True"),
        (b'{"inputs": [1e38, 1, 2, 3]}', 422, "beyond +-1e+18"),
        (b'{"inputs": [1e400, 1, 2, 3]}', 422, "beyond +-1e+18"),
        (b'{"inputs": [NaN, 1, 2, 3]}', 400, "NaN is not a number JSON allows"),
        (b'{"inputs": "\xc3\x28"}', 400, "not UTF-8"),
        (b'{"inputs": [[1, 2, 3, 4], [1, 2]]}', 422, "rows of different lengths"),
    ],
    ids=["deep", "null", "number", "string", "boolean", "1e38", "1e400", "NaN", "bytes", "ragged"],
)
def test_bad_bodies_get_named_json_errors_on_a_connection_that_stays_open(
    tiny_server, body, status, message
):
    connection = http.client.HTTPConnection("127.0.0.1", int(tiny_server.rsplit(":", 1)[1]))
    got, answer, response = post(connection, body)
    sock = connection.sock
    assert got == status and message in answer["detail"], answer
    assert answer["request_id"] == response.getheader("x-request-id")
    got, answer, _ = post(connection, b'{"inputs": [1, 2, 3, 4]}')
    assert got == 200 and "label" in answer["prediction"]
    assert connection.sock is sock  # the same connection answered both
    connection.close()


def test_an_error_quotes_only_a_short_prefix_of_what_was_sent(tiny_server):
    huge = "A" * 1_000_000
    status, answer = request(tiny_server, "/predict", {"inputs": [huge, 1, 2, 3]})
    assert status == 422 and len(answer["detail"]) < 200 and "AAAA..." in answer["detail"]
    status, answer = request(tiny_server, "/predict", {huge: 1})
    assert status == 422 and len(answer["detail"]) < 300


def test_unknown_routes_and_methods_are_json(tiny_server):
    status, answer = request(tiny_server, "/nothing")
    assert status == 404 and answer["error"] == "DataError" and "routes:" in answer["detail"]
    status, answer = request(tiny_server, "/health", raw=b"{}")
    assert status == 405 and answer["error"] == "DataError"


def test_eight_clients_mixing_good_and_bad_requests_see_no_connection_reset(tiny_server):
    port = int(tiny_server.rsplit(":", 1)[1])
    bodies = [b'{"inputs": [1, 2, 3, 4]}', b'{"inputs": null}', b"[" * 3000, b'{"inputs": 3}']

    def client(k):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        statuses = [post(connection, bodies[(k + i) % 4])[0] for i in range(20)]
        connection.close()
        return statuses

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = [s for part in pool.map(client, range(8)) for s in part]  # raises on a reset
    assert statuses.count(200) == 40 and set(statuses) == {200, 400, 422}


def test_requests_over_each_limit_are_refused_at_once_while_health_answers(tiny_path, start_server):
    _, url = slow_server(
        start_server, tiny_path, 0.0, max_body_bytes=4096, max_rows=5, max_concurrent=4
    )
    too_many_rows = {"inputs": [[1, 2, 3, 4]] * 6}
    for body, message in [
        (b'{"inputs": [' + b"1," * 5000 + b"1]}", "at most 4096 (serving option max_body_bytes"),
        (json.dumps(too_many_rows).encode(), "6 rows; this server takes at most 5"),
    ]:
        start = time.perf_counter()
        status, answer = request(url, "/predict", raw=body)
        assert status == 413 and answer["error"] == "LimitError" and message in answer["detail"]
        assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    assert request(url, "/health")[0] == 200
    assert time.perf_counter() - start < 0.1


def test_a_long_model_call_never_blocks_health(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 3.0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(request, url, "/predict", {"inputs": [1, 2, 3, 4]})
        time.sleep(0.3)
        start = time.perf_counter()
        status, health = request(url, "/health")
        waited = time.perf_counter() - start
        assert status == 200 and health["in_flight"] == 1 and waited < 1.0  # the call takes 3 s
        assert slow.result()[0] == 200


def test_more_requests_than_max_concurrent_get_503_with_retry_after(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 1.5, max_concurrent=1)
    port = int(url.rsplit(":", 1)[1])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(request, url, "/predict", {"inputs": [1, 2, 3, 4]})
        time.sleep(0.4)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        status, answer, response = post(connection, b'{"inputs": [1, 2, 3, 4]}')
        assert status == 503 and response.getheader("Retry-After") == "1"
        assert "max_concurrent" in answer["detail"]
        assert first.result()[0] == 200


def test_a_model_call_past_the_request_timeout_is_a_503(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 2.0, request_timeout_s=0.3)
    status, answer = request(url, "/predict", {"inputs": [1, 2, 3, 4]})
    assert status == 503 and answer["error"] == "ServingError"
    assert "request_timeout_s" in answer["detail"]


def test_a_body_slower_than_the_request_timeout_is_a_408(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 0.0, request_timeout_s=0.3)
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        answer = b""
        while b"}" not in answer and (part := sock.recv(4096)):  # headers, then the body
            answer += part
    assert answer.startswith(b"HTTP/1.1 408") and b"ServingError" in answer


def test_a_connection_that_never_finishes_its_headers_is_closed(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 0.0, header_timeout_s=0.3)
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost:")
        start = time.perf_counter()
        assert sock.recv(4096) == b""  # closed by the server, not by this 5 s timeout
        assert time.perf_counter() - start < 4


def test_concurrent_requests_are_batched_into_fewer_calls_with_identical_answers(
    tiny_path, start_server
):
    model, url = slow_server(
        start_server, tiny_path, 0.2, max_batch_size=64, max_batch_delay_ms=100
    )
    rows = np.random.default_rng(0).normal(size=(16, 4)).round(3).tolist()
    alone = ServedModel(tiny_path)
    expected = [
        alone.predict({"inputs": row, "ids": i})["prediction"] for i, row in enumerate(rows)
    ]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda i: request(url, "/predict", {"inputs": rows[i], "ids": i}), range(16))
        )
    for (_, answer), alone_answer in zip(answers, expected):
        got = answer["prediction"]
        assert (got["id"], got["label"]) == (alone_answer["id"], alone_answer["label"])
        # Equal up to float32 rounding: a batched matmul may sum in another order (torch).
        np.testing.assert_allclose(
            list(got["probabilities"].values()),
            list(alone_answer["probabilities"].values()),
            rtol=0,
            atol=1e-6,
        )
    assert model.calls < 16
    _, metrics = request_text(url, "/metrics")
    assert "keras_trainer_batch_rows_count" in metrics


def test_max_batch_size_one_runs_every_request_alone(tiny_path, start_server):
    model, url = slow_server(start_server, tiny_path, 0.05, max_batch_size=1)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: request(url, "/predict", {"inputs": [1, 2, 3, i]}), range(6)))
    assert model.calls == 6


def request_text(url, path):
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    connection.request("GET", path)
    response = connection.getresponse()
    answer = response.status, response.read().decode()
    connection.close()
    return answer


def test_metrics_are_prometheus_text_by_route_and_status(tiny_path, start_server):
    from prometheus_client.parser import text_string_to_metric_families

    _, url = slow_server(start_server, tiny_path, 0.0)
    request(url, "/predict", {"inputs": [[1, 2, 3, 4], [4, 3, 2, 1]]})
    request(url, "/predict", {"inputs": None})
    status, text = request_text(url, "/metrics")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert status == 200
    assert (
        samples[("keras_trainer_requests_total", (("route", "/predict"), ("status", "200")))] == 1
    )
    assert (
        samples[("keras_trainer_requests_total", (("route", "/predict"), ("status", "422")))] == 1
    )
    assert samples[("keras_trainer_rows_total", ())] == 2
    assert samples[("keras_trainer_batch_rows_sum", ())] == 2
    assert ("keras_trainer_request_seconds_count", (("route", "/predict"),)) in samples
    assert any(name == "keras_trainer_model_info" for name, _ in samples)
    assert samples[("keras_trainer_model_load_seconds", ())] > 0


def test_each_request_writes_an_access_log_line_unless_quiet(tiny_path, start_server, caplog):
    _, url = slow_server(start_server, tiny_path, 0.0)
    _, quiet_url = slow_server(start_server, tiny_path, 0.0, quiet=True)
    with caplog.at_level(logging.INFO, logger="keras_trainer.serving.access"):
        request(url, "/predict", {"inputs": [[1, 2, 3, 4]] * 3})
        request(quiet_url, "/predict", {"inputs": [1, 2, 3, 4]})
    lines = [r.getMessage() for r in caplog.records if r.name == "keras_trainer.serving.access"]
    assert len(lines) == 1 and '"POST /predict" 200 rows=3' in lines[0]


def test_docs_are_off_by_default_and_load_nothing_from_outside(tiny_path, start_server):
    _, url = slow_server(start_server, tiny_path, 0.0)
    assert request(url, "/docs")[0] == 404 and request(url, "/openapi.json")[0] == 404
    _, docs_url = slow_server(start_server, tiny_path, 0.0, docs=True)
    status, page = request_text(docs_url, "/docs")
    assert status == 200 and "POST /predict" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert request(docs_url, "/openapi.json")[1]["paths"]["/predict"]


def test_a_bad_or_busy_port_is_a_named_error():
    from keras_trainer.serving.app import bind

    with pytest.raises(ConfigError, match="--port: expected a TCP port from 0 to 65535, got 99999"):
        bind("127.0.0.1", 99999)
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ServingError, match="is in use"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


class BrokenModel(ServedModel):
    """A served model whose calls fail as a server fault would."""

    def run(self, arrays):
        raise RuntimeError("the model's memory was corrupted")


def test_a_server_fault_is_a_logged_json_500_and_the_connection_stays_usable(
    tiny_path, start_server, caplog
):
    url = start_server(BrokenModel(tiny_path))
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    with caplog.at_level(logging.ERROR, logger="keras_trainer.serving"):
        status, answer, _ = post(connection, b'{"inputs": [1, 2, 3, 4]}')
    assert status == 500 and answer["error"] == "ServerError"
    assert "corrupted" not in answer["detail"]  # the cause goes to the log, not the client
    assert any(answer["request_id"] in record.getMessage() for record in caplog.records)
    connection.request("GET", "/health")
    assert connection.getresponse().status == 200
    connection.close()
