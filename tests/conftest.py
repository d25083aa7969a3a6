"""Shared test fixtures. Each test run uses the backend in KERAS_BACKEND."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()


# `tests/run_all_backends.py` names one backend here: tests marked
# `backend_independent` (no Keras model, layer or op runs in them, e.g. IR
# parsing, config schemas, the JIT sandbox) then run under that backend only,
# since their result cannot depend on it. A plain `pytest` runs them all.
BACKEND_INDEPENDENT_ON = os.environ.get("KERAS_TRAINER_BACKEND_INDEPENDENT_ON")


def pytest_collection_modifyitems(config, items):
    if not BACKEND_INDEPENDENT_ON or BACKEND_INDEPENDENT_ON == BACKEND:
        return
    skip = pytest.mark.skip(
        reason=f"backend-independent; run_all_backends runs it under {BACKEND_INDEPENDENT_ON}"
    )
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


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
