"""Fixtures of the assistant tests: two small assistants, each trained once per session.

Training is the expensive part on every backend (and on JAX every new shape is
a new compilation), so every test that needs a trained model shares one of these:
`trained` (copy attention, the default) and `trained_plain` (without: the seed's
model, trained briefly), both on the bundled training split with the same small sizes. Answers to
the held-out split and to the training queries are computed once.

Torch's default thread pool spins on tiny matmuls when the 2 CI cores are shared;
one thread is several times faster for these sizes, so the tests pin it.
"""

import keras
import numpy as np
import pytest

from keras_trainer.assistant.assistant import train_assistant
from keras_trainer.assistant.data import load_pairs
from keras_trainer.assistant.evaluation import evaluate_assistant

MAX_LENGTH = 48
# Small, no dropout and a high learning rate: learns the bundled templates in a
# few hundred steps (the seed's sizes need far longer). A random tenth is held out
# as shipped and the best epoch on it kept, but every run trains all epochs (a
# fixed test time; the small held-out tenth is too noisy to stop this early on).
FAST_CONFIG = {
    "embedding_dim": 32,
    "hidden_dim": 48,
    "max_length": MAX_LENGTH,
    "dropout": 0.0,
    "training": {
        "learning_rate": 0.01,
        "batch_size": 32,
        "epochs": 24,
        "validation_split": 0.1,
        "early_stopping_patience": 0,
        "seed": 42,
        "verbose": 0,
    },
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
def heldout_pairs():
    return load_pairs(split="heldout")


@pytest.fixture(scope="session")
def trained(_one_torch_thread):
    """`(assistant, history)` with copy attention, trained on the bundled training split."""
    return train_assistant(FAST_CONFIG)


@pytest.fixture(scope="session")
def trained_assistant(trained):
    return trained[0]


@pytest.fixture(scope="session")
def trained_plain(_one_torch_thread):
    """The same without copy attention (the seed's model), trained 3 epochs.

    Its tests check shapes, parameter counts, step-by-step decoding and that it
    cannot answer held-out questions: their answers name words outside its
    vocabulary, which no amount of training puts there. Longer training would
    only cost time (it was a quarter of the assistant tests' setup).
    """
    training = {**FAST_CONFIG["training"], "epochs": 3}
    return train_assistant({**FAST_CONFIG, "copy_attention": False, "training": training})[0]


@pytest.fixture(scope="session")
def heldout_scores(trained_assistant, trained_plain, heldout_pairs):
    """Held-out exact match and token F1, `{"copy": ..., "plain": ...}`."""
    return {
        "copy": evaluate_assistant(trained_assistant, heldout_pairs),
        "plain": evaluate_assistant(trained_plain, heldout_pairs),
    }


@pytest.fixture(scope="session")
def training_sample(bundled_pairs):
    """64 training pairs: the entity questions at the end of the training split."""
    return bundled_pairs[-64:]


@pytest.fixture(scope="session")
def query_inputs(trained_assistant, training_sample):
    """The sample's queries encoded (copy ids included)."""
    return trained_assistant.encode_queries([q for q, _ in training_sample])


@pytest.fixture(scope="session")
def greedy_ids(trained_assistant, query_inputs):
    """The compiled greedy answers to those queries (compiled once)."""
    return trained_assistant.generate_ids(query_inputs, method="greedy", max_length=MAX_LENGTH)


def to_numpy(tensors):
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in tensors]
