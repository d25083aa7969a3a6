"""Shared test fixtures. Each test run uses the backend in KERAS_BACKEND."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests._jax_compilation import speed_up_jax_compilation  # noqa: E402

speed_up_jax_compilation()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()


# `tests/run_all_backends.py` names one backend here: tests marked `one_backend`
# then run under that backend only. Either no Keras code runs in them (IR
# parsing, config schemas, layering), so the backend cannot change the result, or
# they run the documentation (README/docs examples, notebooks) end to end, whose
# features the rest of the suite tests on every backend. A plain `pytest` runs them.
# `one_backend(backend="torch")` asks for a backend by name when the run includes it
# (run_all_backends lists them in KERAS_TRAINER_BACKENDS): the heavy documentation
# runs go where they cost least, so that the backends' runs end together.
ONE_BACKEND = os.environ.get("KERAS_TRAINER_ONE_BACKEND")
RUN_BACKENDS = os.environ.get("KERAS_TRAINER_BACKENDS", "").split(",")
# In CI (`CI=true`, where .ci/run installs clang) a missing compiler fails the tests that
# need it instead of skipping them, so an untested C path cannot pass as green.
IN_CI = os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config, items):
    if not ONE_BACKEND:
        return
    for item in items:
        marker = item.get_closest_marker("one_backend")
        if marker is None:
            continue
        wanted = marker.kwargs.get("backend")
        runs_under = wanted if wanted in RUN_BACKENDS else ONE_BACKEND
        if runs_under != BACKEND:
            reason = f"one_backend: run_all_backends runs it under {runs_under}"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def toy_classification(rng):
    """300 samples of 12 features; the class depends on two of them."""
    x = (rng.normal(size=(300, 12)) * 3 + 2).astype("float32")
    labels = (x[:, 0] > 2).astype(int) + 2 * (x[:, 1] > 2).astype(int)
    return x, labels


class EpochCounter(keras.callbacks.Callback):
    """Counts the epochs a `fit` call trains. It has no batch hook, so `engine: "auto"`
    still picks the fused engine; a resumed run trains only the epochs after its checkpoint."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.count += 1


class BatchCounter(keras.callbacks.Callback):
    """Counts batch-hook calls: one per batch, or per compiled call with steps_per_execution.
    A batch hook makes `engine: "auto"` pick the Keras engine."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1


def subprocess_env(**extra):
    """Environment for a child Python that imports this checkout under the same backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("KERAS_BACKEND", BACKEND)
    env.update({k: str(v) for k, v in extra.items()})
    return env
