"""Fixtures of the assistant tests: tiny sizes, and torch on one thread.

Torch's default thread pool spins on tiny matmuls when the 2 CI cores are shared;
one thread is several times faster for these sizes, so the tests pin it.
"""

import keras
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY = {"embedding_dim": 8, "hidden_dim": 8, "max_length": 12, "dropout": 0.1, "epochs": 1}
