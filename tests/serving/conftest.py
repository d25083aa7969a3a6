"""Fixtures of the serving tests: small saved models of every family, and a
server on a loopback port in a background thread (real HTTP, real sockets).

Every model is trained or built under the active backend once per session.
"""

import json
import threading
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

import keras_trainer.tabular  # noqa: F401  (registers the lstm model type)
from keras_trainer.config import ModelConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.saving.persistence import save_model

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TINY_ASSISTANT = {
    "embedding_dim": 16,
    "hidden_dim": 16,
    "max_length": 12,
    "dropout": 0.0,
    "learning_rate": 0.01,
    "batch_size": 32,
    "epochs": 1,
    "seed": 1,
    "verbose": 0,
}


def _head_model(path, activation, output_dim, class_names=None):
    """An mlp with the given head, saved with the config that says so."""
    keras.utils.set_random_seed(3)
    config = ModelConfig(
        type="mlp",
        input_dim=4,
        hidden_layers=[8],
        output_dim=output_dim,
        output_activation=activation,
    )
    model = build_model(config, (4,))
    metadata = {
        "task": "tabular",
        "config": {"model": config.to_dict()},
        "feature_names": ["a", "b", "c", "d"],
    }
    if class_names:
        metadata["class_names"] = class_names
    save_model(model, path, metadata)
    return model


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """Paths of saved models: JIT (.keras), binary and regression heads, an LSTM, an assistant."""
    from keras_trainer import ModelTrainer
    from keras_trainer.assistant import train_assistant

    directory = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(5)
    trainer = ModelTrainer(
        {
            "model": {"input_dim": 12, "hidden_layers": [16], "output_dim": 5},
            "training": {
                "batch_size": 32,
                "epochs": 1,
                "validation_split": 0.0,
                "verbose": 0,
            },
        }
    )
    x = (rng.normal(size=(64, 12)) * 3 + 2).astype("float32")
    labels = (x[:, 0] > 2).astype(int) + 2 * (x[:, 1] > 2).astype(int)
    trainer.class_names = ["O0", "O1", "O2", "O3", "O3_no_vectorize"]
    trainer.fit_normalizer(x)
    trainer.train((trainer.normalize(x), labels))
    paths = {"jit": str(directory / "jit.keras"), "jit_x": x}
    trainer.save_model(paths["jit"])
    paths["binary"] = str(directory / "binary.keras")
    paths["binary_model"] = _head_model(paths["binary"], "sigmoid", 1, ["benign", "malignant"])
    paths["regression"] = str(directory / "regression.keras")
    paths["regression_model"] = _head_model(paths["regression"], "linear", 1)
    lstm = build_model(
        ModelConfig(
            type="lstm",
            output_dim=1,
            output_activation="linear",
            lstm_hidden_size=4,
            hidden_layers=[4],
        ),
        (5, 3),
    )
    paths["lstm"] = str(directory / "lstm.keras")
    save_model(lstm, paths["lstm"], {"task": "tabular"})
    assistant, _ = train_assistant(TINY_ASSISTANT)
    paths["assistant"] = str(directory / "assistant.keras")
    assistant.save(paths["assistant"])
    paths["assistant_object"] = assistant
    return paths


class RunningServer:
    """A uvicorn server for one `ServedModel`, in a thread, on 127.0.0.1:<free port>."""

    def __init__(self, model, config=None):
        import uvicorn

        from keras_trainer.serving.app import bind, create_app, server_config

        config = config or model.limits
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(server_config(create_app(model, config), config))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def request(url, path, body=None, raw=None):
    """`(status, decoded JSON)` of a GET (no body) or POST (JSON body) over HTTP."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="session")
def start_server():
    servers = []

    def start(model, config=None):
        server = RunningServer(model, config)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()
