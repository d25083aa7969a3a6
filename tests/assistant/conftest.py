"""Fixtures of the assistant tests: ONE assistant trained once per session.

Training is the expensive part on every backend (and on JAX every new shape is
a new compilation), so every test that needs a trained model shares this one,
and the compiled greedy answers to all training queries are computed once.

Torch's default thread pool spins on tiny matmuls when the 2 CI cores are shared;
one thread is several times faster for these sizes, so the tests pin it.
"""

import keras
import numpy as np
import pytest

from keras_trainer.assistant.assistant import train_assistant
from keras_trainer.assistant.data import load_pairs

# Small, no dropout and a high learning rate: memorizes the 80 bundled pairs in
# 150 steps (the seed's sizes need far longer).
FAST_CONFIG = {
    "embedding_dim": 128,
    "hidden_dim": 128,
    "max_length": 24,
    "dropout": 0.0,
    "learning_rate": 0.01,
    "batch_size": 16,
    "epochs": 30,
    "seed": 42,
    "verbose": 0,
}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def bundled_pairs():
    return load_pairs()


@pytest.fixture(scope="session")
def trained(_one_torch_thread):
    """`(assistant, history)` trained on the bundled dataset with FAST_CONFIG."""
    return train_assistant(FAST_CONFIG)


@pytest.fixture(scope="session")
def trained_assistant(trained):
    return trained[0]


@pytest.fixture(scope="session")
def query_ids(trained_assistant, bundled_pairs):
    """All training queries encoded `(80, max_length)`."""
    return trained_assistant.encode_queries([q for q, _ in bundled_pairs])


@pytest.fixture(scope="session")
def greedy_ids(trained_assistant, query_ids):
    """The compiled greedy answers to every training query (compiled once)."""
    return trained_assistant.generate_ids(query_ids, method="greedy", max_length=24)


def to_numpy(tensors):
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in tensors]
