import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.saving.checkpoints import CheckpointManager
from keras_trainer.core.saving.persistence import load_model
from keras_trainer.core.training.fit import fit
from keras_trainer.errors import CheckpointError, TrainingError
from tests.conftest import subprocess_env

SCRIPT = os.path.join(os.path.dirname(__file__), "resumable_run.py")


def _run(*args):
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )


def _weights(path):
    with np.load(path) as data:
        return [data[k] for k in data.files if k.startswith("arr_")], data["epochs"]


def _run_facts(path):
    """Where the run of `resumable_run.py` resumed from, the epochs it trained, its engine."""
    with np.load(path) as data:
        return data["resumed_from"].tolist(), int(data["epochs_trained"]), str(data["engine"])


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole = _run(tmp_path / "whole", tmp_path / "whole.npz")
    assert whole.returncode == 0, whole.stderr
    killed = _run(tmp_path / "ckpt", tmp_path / "never.npz", "--kill-at-epoch", 3)
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "never.npz").exists()
    assert [e for e, _ in CheckpointManager(str(tmp_path / "ckpt")).epoch_dirs()] == [1, 2]
    resumed = _run(tmp_path / "ckpt", tmp_path / "resumed.npz", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected, expected_epochs = _weights(tmp_path / "whole.npz")
    actual, actual_epochs = _weights(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(actual_epochs, expected_epochs)
    assert max(np.abs(a - b).max() for a, b in zip(actual, expected)) <= 1e-5
    # It resumed after epoch 2's checkpoint and trained only the epochs after it.
    assert _run_facts(tmp_path / "resumed.npz")[:2] == ([3, 0], len(expected_epochs) - 3)


def _config(tmp_path, **overrides):
    data = {
        "epochs": 4,
        "verbose": 0,
        "early_stopping_patience": 0,
        "checkpoint": {"directory": str(tmp_path / "ckpt"), "max_checkpoints": 2},
    }
    data.update(overrides)
    return TrainingConfig.from_dict(data)


def _data(rng, n=128):
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, np.eye(5, dtype="float32")[rng.integers(0, 5, n)]


def test_keeps_best_model_and_at_most_max_checkpoints(tmp_path, rng):
    x, y = _data(rng)
    history = fit(build_model(ModelConfig(output_dim=5), (12,)), x, y, config=_config(tmp_path))
    manager = CheckpointManager(str(tmp_path / "ckpt"))
    assert [epoch for epoch, _ in manager.epoch_dirs()] == [2, 3]
    model, _ = load_model(manager.best_path)
    assert model.output_shape == (None, 5)
    assert (tmp_path / "ckpt" / "history.json").exists()
    header = (tmp_path / "ckpt" / "history.csv").read_text().splitlines()[0]
    assert "learning_rate" in header and "val_loss" in header
    assert len(history.learning_rates) == 4


def _checkpointed_epochs(tmp_path):
    return [epoch for epoch, _ in CheckpointManager(str(tmp_path / "ckpt")).epoch_dirs()]


def test_every_epochs_checkpoints_every_nth_epoch_and_the_last(tmp_path, rng):
    x, y = _data(rng, n=32)
    checkpoint = {"directory": str(tmp_path / "ckpt"), "max_checkpoints": 9, "every_epochs": 2}
    config = _config(tmp_path, epochs=5, batch_size=16, checkpoint=checkpoint)
    fit(build_model(ModelConfig(output_dim=5, hidden_layers=[4]), (12,)), x, y, config=config)
    assert _checkpointed_epochs(tmp_path) == [1, 3, 4]


def test_save_best_only_checkpoints_only_the_epochs_that_improved(tmp_path, rng):
    x, y = _data(rng, n=48)  # random labels: the validation loss rises as it memorizes
    checkpoint = {"directory": str(tmp_path / "ckpt"), "max_checkpoints": 9, "save_best_only": True}
    config = _config(tmp_path, epochs=6, batch_size=16, learning_rate=0.05, checkpoint=checkpoint)
    model = build_model(ModelConfig(output_dim=5, hidden_layers=[32]), (12,))
    history = fit(model, x, y, config=config)
    losses = history.history["val_loss"]
    improved = [e for e, v in enumerate(losses) if v < min(losses[:e], default=np.inf)]
    assert len(improved) < len(losses)
    assert _checkpointed_epochs(tmp_path) == improved


def test_incomplete_checkpoints_are_ignored_and_cleaned(tmp_path, rng):
    x, y = _data(rng)
    directory = tmp_path / "ckpt"
    fit(build_model(ModelConfig(output_dim=5), (12,)), x, y, config=_config(tmp_path, epochs=2))
    leftover = directory / ".epoch-000009.tmp-abc"
    leftover.mkdir()
    (leftover / "variables.npz").write_bytes(b"half")
    manager = CheckpointManager(str(directory))
    assert manager.latest().endswith("epoch-000001")
    fit(
        build_model(ModelConfig(output_dim=5), (12,)),
        x,
        y,
        config=_config(tmp_path, epochs=3, resume=True),
    )
    assert not leftover.exists()
    assert manager.latest().endswith("epoch-000002")


def test_resume_with_a_different_model_says_so(tmp_path, rng):
    x, y = _data(rng)
    fit(build_model(ModelConfig(output_dim=5), (12,)), x, y, config=_config(tmp_path, epochs=2))
    other = build_model(ModelConfig(output_dim=5, hidden_layers=[64, 16]), (12,))
    with pytest.raises(CheckpointError, match="configured model differs"):
        fit(other, x, y, config=_config(tmp_path, epochs=3, resume=True))


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, rng):
    x, y = _data(rng)
    model = build_model(ModelConfig(output_dim=5), (12,))

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                for variable in self.model.trainable_variables:
                    variable.assign(np.full(variable.shape, np.nan, dtype="float32"))

    with pytest.raises(TrainingError, match=r"NaN or infinite in epoch 3.*epoch-000001"):
        fit(model, x, y, config=_config(tmp_path, epochs=5), callbacks=[Poison()])
    manager = CheckpointManager(str(tmp_path / "ckpt"))
    assert manager.latest().endswith("epoch-000001")
    best, _ = load_model(manager.best_path)
    assert all(np.isfinite(w).all() for w in best.get_weights())
