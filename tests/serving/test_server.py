"""`keras-trainer serve`: every family over real HTTP on a loopback port."""

import concurrent.futures
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_trainer.serving import ServedModel, ServingConfig
from tests.conftest import ROOT, subprocess_env
from tests.serving.conftest import request


@pytest.fixture(scope="module")
def jit_server(saved_models, start_server):
    return start_server(ServedModel(saved_models["jit"]))


def test_health_and_metadata_describe_the_model(jit_server):
    status, health = request(jit_server, "/health")
    assert status == 200 and health["status"] == "ok" and health["kind"] == "network"
    status, meta = request(jit_server, "/metadata")
    assert status == 200
    assert meta["task"] == "jit_strategy" and meta["head"] == "multiclass"
    assert meta["class_names"][:4] == ["O0", "O1", "O2", "O3"] and len(meta["class_names"]) == 5
    assert len(meta["feature_names"]) == 12
    assert meta["inputs"][0]["shape"] == ["batch", 12]


def test_predict_one_row_and_a_batch_match_the_keras_model(saved_models, jit_server):
    from keras_trainer import ModelTrainer

    trainer = ModelTrainer({})
    trainer.load_model(saved_models["jit"])
    x = saved_models["jit_x"][:6]
    expected = trainer.predict(x)
    status, one = request(jit_server, "/predict", {"inputs": x[0].tolist()})
    assert status == 200
    probabilities = list(one["prediction"]["probabilities"].values())
    np.testing.assert_allclose(probabilities, expected[0], atol=1e-5)
    assert one["prediction"]["label"] == trainer.class_names[int(np.argmax(expected[0]))]
    status, batch = request(
        jit_server,
        "/predict",
        {"inputs": x.tolist(), "ids": [f"k{i}" for i in range(6)]},
    )
    assert status == 200 and len(batch["predictions"]) == 6
    assert [p["id"] for p in batch["predictions"]] == [f"k{i}" for i in range(6)]
    got = np.array([list(p["probabilities"].values()) for p in batch["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_takes_rows_by_feature_name(saved_models, jit_server):
    _, meta = request(jit_server, "/metadata")
    row = dict(zip(meta["feature_names"], saved_models["jit_x"][0].tolist()))
    _, by_name = request(jit_server, "/predict", {"inputs": row})
    _, by_position = request(jit_server, "/predict", {"inputs": saved_models["jit_x"][0].tolist()})
    assert by_name["prediction"] == by_position["prediction"]
    del row[meta["feature_names"][3]]
    status, error = request(jit_server, "/predict", {"inputs": [row]})
    assert status == 422 and error["error"] == "DataError"
    assert f"missing feature(s) ['{meta['feature_names'][3]}']" in error["detail"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        (
            {"inputs": [[1.0] * 11]},
            422,
            "has shape (1, 11); the model expects (batch, 12)",
        ),
        ({"inputs": [["x"] * 12]}, 422, "request.inputs[0][0]: expected a number, got 'x'"),
        ({"rows": [[1.0] * 12]}, 422, "unknown key(s) ['rows']"),
        ({}, 422, "missing 'inputs'"),
        ([1, 2], 422, "expected a JSON object, got list"),
        ({"inputs": [[1.0] * 12], "ids": ["a", "b"]}, 422, "expected a list of 1 ids"),
    ],
)
def test_bad_requests_get_the_named_error(jit_server, body, status, message):
    got, answer = request(jit_server, "/predict", body)
    assert got == status
    assert message in answer["detail"], answer


def test_a_body_that_is_not_json_is_a_400(jit_server):
    got, answer = request(jit_server, "/predict", raw=b'{"inputs": [[1, 2')
    assert got == 400 and "not valid JSON" in answer["detail"]


def test_non_finite_values_are_refused(jit_server):
    got, answer = request(
        jit_server,
        "/predict",
        raw=b'{"inputs": [[NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]}',
    )
    assert got == 400 and "NaN is not a number JSON allows" in answer["detail"]


def test_concurrent_requests_each_get_their_own_answer(saved_models, jit_server):
    x = saved_models["jit_x"]
    _, reference = request(jit_server, "/predict", {"inputs": x[:32].tolist()})

    def one(i):
        return i, request(jit_server, "/predict", {"inputs": x[i].tolist(), "ids": i})

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(32)))
    for i, (status, answer) in answers:
        assert status == 200 and answer["prediction"]["id"] == i
        assert answer["prediction"]["label"] == reference["predictions"][i]["label"]
    _, health = request(jit_server, "/health")
    assert health["requests"] >= 33


def test_binary_head_labels_by_the_sigmoid_probability(saved_models, start_server):
    url = start_server(ServedModel(saved_models["binary"]))
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32") * 3
    p = np.asarray(saved_models["binary_model"].predict(x, verbose=0)).reshape(-1)
    _, meta = request(url, "/metadata")
    assert meta["head"] == "binary" and meta["class_names"] == ["benign", "malignant"]
    _, answer = request(url, "/predict", {"inputs": x.tolist()})
    for row, probability in zip(answer["predictions"], p):
        assert row["label"] == ("malignant" if probability > 0.5 else "benign")
        assert abs(row["probabilities"]["malignant"] - probability) < 1e-5
        assert abs(row["probabilities"]["benign"] - (1 - probability)) < 1e-5


def test_regression_head_returns_values_not_labels(saved_models, start_server):
    url = start_server(ServedModel(saved_models["regression"]))
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    expected = np.asarray(saved_models["regression_model"].predict(x, verbose=0)).reshape(-1)
    _, answer = request(url, "/predict", {"inputs": x.tolist()})
    assert [set(p) for p in answer["predictions"]] == [{"value"}] * 3
    np.testing.assert_allclose([p["value"] for p in answer["predictions"]], expected, atol=1e-5)


def test_sequence_model_takes_one_window_or_a_batch_of_windows(saved_models, start_server):
    url = start_server(ServedModel(saved_models["lstm"]))
    windows = np.random.default_rng(2).normal(size=(4, 5, 3))
    status, one = request(url, "/predict", {"inputs": windows[0].tolist()})
    assert status == 200 and "value" in one["prediction"]
    status, batch = request(url, "/predict", {"inputs": windows.tolist()})
    assert status == 200 and len(batch["predictions"]) == 4
    assert abs(batch["predictions"][0]["value"] - one["prediction"]["value"]) < 1e-5


def test_assistant_answers_queries(saved_models, start_server):
    url = start_server(ServedModel(saved_models["assistant"]))
    assistant = saved_models["assistant_object"]
    _, meta = request(url, "/metadata")
    assert meta["kind"] == "assistant" and "beam" in meta["methods"]
    status, one = request(url, "/predict", {"query": "what is keras_trainer?"})
    assert status == 200
    assert one["response"] == assistant.generate_batch(["what is keras_trainer?"], max_length=12)[0]
    status, many = request(url, "/predict", {"queries": ["hello", "how do I train?"]})
    assert status == 200 and len(many["responses"]) == 2
    status, error = request(url, "/predict", {"query": "   "})
    assert status == 422 and error["detail"] == "query is empty"
    status, error = request(url, "/predict", {"query": "hi", "method": "sample"})
    assert status == 422 and "request.method" in error["detail"]


class CountingAssistant(ServedModel):
    """Counts decoding loops; each one waits so that concurrent requests queue up."""

    calls = 0

    def answer_queries(self, queries, settings, batch_size=None):
        self.calls += 1
        time.sleep(0.2)
        return super().answer_queries(queries, settings, batch_size)


def test_concurrent_assistant_queries_share_decoding_loops_with_identical_answers(
    saved_models, start_server
):
    # The first loop of each batch size compiles (jax, XLA): a long request timeout.
    limits = ServingConfig(max_batch_delay_ms=100, request_timeout_s=300)
    model = CountingAssistant(saved_models["assistant"], limits=limits)
    url = start_server(model)
    queries = ["what is keras_trainer?", "hello", "how do I train?", "what is Zig?"] * 2
    greedy = {"max_length": 12}
    # Beam requests decode with beam requests only: their settings differ.
    bodies = [{"query": q, **greedy} for q in queries] + [
        {"query": queries[0], "method": "beam", "beam_width": 2, **greedy}
    ]
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: request(url, "/predict", body), bodies))
    assistant = saved_models["assistant_object"]
    alone = [assistant.generate_batch([q], **greedy)[0] for q in queries]
    assert [answer["response"] for _, answer in answers[:-1]] == alone
    beam = assistant.generate_batch([queries[0]], method="beam", beam_width=2, **greedy)[0]
    assert answers[-1][1]["response"] == beam
    assert 2 <= model.calls < len(bodies)


def test_serve_command_listens_on_loopback_and_stops_on_sigterm(saved_models):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_trainer",
            "serve",
            saved_models["regression"],
            "--port",
            "0",
        ],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        assert match, line + process.stderr.read()
        status, answer = request(match.group(1), "/predict", {"inputs": [0.1, 0.2, 0.3, 0.4]})
        assert status == 200 and "value" in answer["prediction"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in process.stderr.read()


def test_serves_a_model_store_version_by_alias(saved_models, start_server, tmp_path):
    from keras_trainer.export.store import ModelStore

    store = ModelStore(tmp_path / "store")
    store.add(saved_models["regression"])
    store.promote(store.add(saved_models["binary"]).version)
    served = ServedModel(f"{tmp_path / 'store'}@production")
    assert served.path == store.path("production")
    _, meta = request(start_server(served), "/metadata")
    assert meta["head"] == "binary"
    assert ServedModel(tmp_path / "store").path == served.path  # the folder: its production
    assert ServedModel(f"{tmp_path / 'store'}@1").path == store.path("1")


def test_serving_a_missing_file_is_an_inference_error(tmp_path):
    from keras_trainer.errors import InferenceError

    with pytest.raises(InferenceError, match="model not found"):
        ServedModel(tmp_path / "nothing.keras")
    with pytest.raises(InferenceError, match="folder without encoder.onnx"):
        ServedModel(tmp_path)
