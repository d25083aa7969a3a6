"""Shared test fixtures. Each test run uses the backend in KERAS_BACKEND."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def toy_classification(rng):
    """300 samples of 12 features; the class depends on two of them."""
    x = (rng.normal(size=(300, 12)) * 3 + 2).astype("float32")
    labels = (x[:, 0] > 2).astype(int) + 2 * (x[:, 1] > 2).astype(int)
    return x, labels


def subprocess_env(**extra):
    """Environment for a child Python that imports this checkout under the same backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("KERAS_BACKEND", BACKEND)
    env.update({k: str(v) for k, v in extra.items()})
    return env
