import csv
import json
import os
import warnings

import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training import memory
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import BackendNotSupportedError, TrainingError
from tests.conftest import BACKEND


def _config(**overrides):
    data = {
        "epochs": 2,
        "verbose": 0,
        "early_stopping_patience": 0,
        "batch_size": 32,
        "validation_split": 0.0,
        "metrics": [],
        "optimizer": {"name": "sgd"},
    }
    data.update(overrides)
    return TrainingConfig.from_dict(data)


def _data(rng, n=64):
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, np.eye(5, dtype="float32")[(x[:, 0] > 0).astype(int)]


def _model(**model):
    set_seed(7)
    model.setdefault("hidden_layers", [16])
    model.setdefault("output_dim", 5)
    return build_model(ModelConfig(**model), (12,))


def _allocation_failure():
    """The exception the backend raises when an allocation fails on the device."""
    if BACKEND == "torch":
        import torch

        return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.errors.ResourceExhaustedError(
            None, None, "OOM when allocating tensor with shape[65536,4096]"
        )
    import jax

    return jax.errors.JaxRuntimeError(
        "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2147483648 bytes."
    )


class FailsWithBatchesLargerThan(keras.callbacks.Callback):
    """Simulates a device whose memory holds batches of at most `limit` samples of 64."""

    def __init__(self, limit, samples=64, from_epoch=0):
        super().__init__()
        self.limit, self.samples, self.from_epoch = limit, samples, from_epoch
        self.epoch, self.failures = 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        batch_size = -(-self.samples // self.params["steps"])
        if self.epoch >= self.from_epoch and batch_size > self.limit:
            self.failures += 1
            raise _allocation_failure()


class _HoldDuringFirstEpoch(keras.callbacks.Callback):
    """Holds `mib` MiB of written memory from the start of epoch 0 until the tracker has read
    that epoch's peak (it runs before this callback)."""

    def __init__(self, mib: int):
        super().__init__()
        self.mib, self.block = mib, None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            self.block = np.ones(self.mib * 2**20, dtype="uint8")

    def on_epoch_end(self, epoch, logs=None):
        self.block = None


def _resident_mb():
    """This process's resident memory now (MiB), or None where /proc is missing."""
    try:
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmRSS:"))
    except OSError:
        return None


def test_peak_memory_of_each_epoch_is_in_the_history_and_the_logs(tmp_path, rng):
    x, y = _data(rng)
    held_before = _resident_mb()
    history = fit(
        _model(),
        x,
        y,
        config=_config(logging={"directory": str(tmp_path)}),
        callbacks=[_HoldDuringFirstEpoch(512)],
    )
    peaks = history.history["peak_host_rss_mb"]
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    # Each epoch's peak: at least what the process held before fit, at most the machine's memory.
    assert len(peaks) == 2 and all(peak < physical for peak in peaks)
    if held_before is not None:  # Linux, where the peak is reset each epoch
        assert all(peak >= 0.9 * held_before for peak in peaks)
        assert peaks[0] - peaks[1] > 384  # epoch 0 held 512 MiB more, epoch 1 did not
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["peak_host_rss_mb"]) for r in rows] == pytest.approx(peaks)
    with open(tmp_path / "history.json") as handle:
        assert json.load(handle)["history"]["peak_host_rss_mb"] == pytest.approx(peaks)


def test_an_allocation_failure_becomes_a_training_error_naming_batch_and_model(rng):
    x, y = _data(rng)
    model = _model()
    with pytest.raises(
        TrainingError, match=r"batch_size=32.*293 parameters.*auto_batch_size"
    ) as caught:
        fit(model, x, y, config=_config(), callbacks=[FailsWithBatchesLargerThan(16)])
    assert isinstance(caught.value, memory.OutOfMemoryError)


def test_other_errors_pass_through(rng):
    class Broken(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise RuntimeError("not memory")

    x, y = _data(rng)
    with pytest.raises(RuntimeError, match="not memory"):
        fit(_model(), x, y, config=_config(), callbacks=[Broken()])


def test_auto_batch_size_halves_the_batch_keeps_the_effective_batch_and_resumes(rng):
    x, y = _data(rng)
    failing = FailsWithBatchesLargerThan(16, from_epoch=1)
    model = _model()
    with pytest.warns(
        UserWarning,
        match="batch_size=16 and gradient_accumulation_steps=2 from the end of epoch 1",
    ):
        history = fit(
            model,
            x,
            y,
            config=_config(epochs=3, auto_batch_size=True),
            callbacks=[failing],
        )
    assert failing.failures == 1
    assert history.epochs == [0, 1, 2]  # epoch 0 was kept, not retrained
    assert model.optimizer.gradient_accumulation_steps == 2


def test_auto_batch_size_gives_up_below_one_sample(rng):
    x, y = _data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(memory.OutOfMemoryError, match="batch_size=1 "):
            fit(
                _model(),
                x,
                y,
                config=_config(batch_size=4, auto_batch_size=True),
                callbacks=[FailsWithBatchesLargerThan(0)],
            )


def test_device_auto_falls_back_to_the_cpu_with_a_warning(rng, monkeypatch):
    monkeypatch.setattr(
        memory, "accelerator_usable", lambda: (False, "cudaErrorNoDevice (simulated)")
    )
    x, y = _data(rng)
    with pytest.warns(UserWarning, match="no usable accelerator.*simulated.*CPU"):
        history = fit(_model(), x, y, config=_config(device="auto"))
    assert len(history.epochs) == 2


@pytest.mark.skipif(BACKEND == "tensorflow", reason="Keras' remat fails in TF graph mode")
def test_remat_keeps_the_result(rng):
    x, y = _data(rng)
    plain = _model(activation="gelu")
    fit(plain, x, y, config=_config())
    rematerialized = _model(activation="gelu")
    fit(rematerialized, x, y, config=_config(remat="full"))
    assert memory.uses_remat(rematerialized) and not memory.uses_remat(plain)
    for a, b in zip(plain.get_weights(), rematerialized.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _backward_memory(model, x, y):
    """Bytes the backward pass keeps: XLA's temporary buffers (jax) or saved tensors (torch)."""
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def loss(trainable, non_trainable):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            return jnp.mean((out - y) ** 2)

        weights = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )
        return (
            jax.jit(jax.grad(loss)).lower(*weights).compile().memory_analysis().temp_size_in_bytes
        )
    import torch

    saved = [0]

    def pack(tensor):
        saved[0] += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = ((model(torch.from_numpy(x), training=True) - torch.from_numpy(y)) ** 2).mean()
    loss.backward()
    return saved[0]


@pytest.mark.skipif(
    BACKEND == "tensorflow", reason="TensorFlow reports no CPU memory of a gradient"
)
def test_remat_lowers_the_memory_of_the_backward_pass(rng):
    x = rng.normal(size=(256, 12)).astype("float32")
    y = np.zeros((256, 5), "float32")
    plain = _model(hidden_layers=[512, 512, 512], activation="gelu", batch_norm=True)
    rematerialized = _model(hidden_layers=[512, 512, 512], activation="gelu", batch_norm=True)
    assert memory.apply_remat(rematerialized, _config(remat="full")) > 0
    assert _backward_memory(rematerialized, x, y) < 0.8 * _backward_memory(plain, x, y)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow only")
def test_remat_on_tensorflow_says_what_to_use_instead(rng):
    x, y = _data(rng)
    with pytest.raises(BackendNotSupportedError, match="jax or torch"):
        fit(_model(), x, y, config=_config(remat="full"))
