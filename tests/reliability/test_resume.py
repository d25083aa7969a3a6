"""Resume keeps the best model and survives damaged checkpoints (issue 12, items 3-5)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_trainer.config import TrainingConfig
from keras_trainer.core.saving.checkpoints import CheckpointManager
from keras_trainer.core.saving.persistence import load_model, save_model
from keras_trainer.core.training.fit import fit
from keras_trainer.errors import CheckpointError
from tests.conftest import EpochCounter


def _data():
    """Validation labels are the opposite rule of the training labels, so the
    validation loss is best early and the last epoch's weights are not the best."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 0).astype(int), 2)
    x_val = rng.normal(size=(32, 4)).astype("float32")
    y_val = keras.utils.to_categorical((x_val[:, 0] <= 0).astype(int), 2)
    return x, y, (x_val, y_val)


def _model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


def _config(directory, **overrides):
    settings = dict(
        epochs=5,
        batch_size=32,
        learning_rate=0.1,
        seed=1,
        verbose=0,
        early_stopping_patience=10,
        checkpoint={"directory": str(directory)},
        logging={"csv": True},
    )
    settings.update(overrides)
    return TrainingConfig.from_dict(settings)


def _train(directory, callbacks=(), **overrides):
    x, y, validation = _data()
    model = _model()
    config = _config(directory, **overrides)
    history = fit(model, x, y, config=config, validation_data=validation, callbacks=callbacks)
    return model, history


def _resume(directory, **overrides):
    """Resumes the run in `directory`; returns the model, its history and the epochs it trained."""
    epochs = EpochCounter()
    model, history = _train(directory, callbacks=[epochs], resume=True, **overrides)
    return model, history, epochs.count


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_resume_of_a_finished_run_keeps_the_best_weights(tmp_path):
    finished, history = _train(tmp_path)
    assert history.best_epoch < 4  # the last epoch is not the best one
    resumed, resumed_history, trained = _resume(tmp_path)
    # It started after the last epoch's checkpoint and trained nothing.
    assert (resumed_history.resumed_from_epoch, resumed_history.resumed_from_step) == (5, 0)
    assert trained == 0
    assert _same(resumed, finished)


def test_resume_after_a_kill_past_the_last_checkpoint_keeps_the_best_weights(tmp_path):
    finished, _ = _train(tmp_path / "a")
    _train(tmp_path / "b")  # the same run, "killed" after its last checkpoint: no final save
    resumed, history, trained = _resume(tmp_path / "b")
    assert (history.resumed_from_epoch, trained) == (5, 0)
    assert _same(resumed, finished)


def test_resume_of_an_early_stopped_run_does_not_train_on(tmp_path):
    stopped, history = _train(tmp_path, early_stopping_patience=1)
    assert history.stopped_early and len(history.epochs) < 5
    resumed, resumed_history, trained = _resume(tmp_path, early_stopping_patience=1)
    assert resumed_history.resumed_from_epoch == len(history.epochs) and trained == 0
    assert _same(resumed, stopped) and len(resumed_history.epochs) == len(history.epochs)


def _corrupt_newest(directory, damage):
    manager = CheckpointManager(str(directory))
    newest = manager.latest()
    damage(newest)
    return newest


def _truncate_variables(path):
    target = os.path.join(path, "variables.npz")
    data = open(target, "rb").read()
    open(target, "wb").write(data[: len(data) // 2])


def _drop_state_key(path):
    import json

    target = os.path.join(path, "state.json")
    state = json.load(open(target))
    del state["history"]
    json.dump(state, open(target, "w"))


@pytest.mark.parametrize(
    "damage", [_truncate_variables, _drop_state_key], ids=["truncated-npz", "state-key"]
)
def test_resume_falls_back_to_the_newest_intact_checkpoint_and_says_which(tmp_path, damage):
    _train(tmp_path, epochs=3, early_stopping_patience=0)
    broken = _corrupt_newest(tmp_path, damage)
    with pytest.warns(
        UserWarning,
        match=r"resuming from the intact checkpoint .*epoch-000001.*skipped.*epoch-000002",
    ):
        _, history, trained = _resume(tmp_path, epochs=4, early_stopping_patience=0)
    assert len(history.epochs) == 4
    assert history.resumed_from_epoch == 2 and trained == 2  # after epoch 1's checkpoint
    assert broken  # the damaged one was rewritten by the resumed run's epoch 3
    CheckpointManager(str(tmp_path)).restore(_model_compiled(), broken)


def _model_compiled():
    model = _model()
    model.compile("adam", "categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    return model


def test_every_checkpoint_corrupt_is_a_named_error(tmp_path):
    _train(tmp_path, epochs=2, early_stopping_patience=0)
    for _, path in CheckpointManager(str(tmp_path)).epoch_dirs():
        _truncate_variables(path)
    with pytest.raises(CheckpointError, match="every checkpoint .* is corrupt.*variables.npz"):
        _train(tmp_path, epochs=3, early_stopping_patience=0, resume=True)


def test_checkpoint_directory_that_is_a_file_is_a_named_error(tmp_path):
    path = tmp_path / "ckpt"
    path.write_text("not a folder")
    with pytest.raises(CheckpointError, match="checkpoint.directory: .*ckpt.* is a file"):
        _train(path)


def test_resume_replaces_a_corrupt_best_model(tmp_path):
    finished, _ = _train(tmp_path)
    best = tmp_path / "best.keras"
    best.write_bytes(best.read_bytes()[:200])
    with pytest.warns(UserWarning, match="rewrote corrupt .*best.keras"):
        _train(tmp_path, resume=True)
    loaded, _ = load_model(best)
    assert _same(loaded, finished)


def test_resume_does_not_repeat_rows_of_the_csv_log(tmp_path):
    _train(tmp_path, epochs=2, early_stopping_patience=0)
    csv = tmp_path / "history.csv"
    # A kill after epoch 2's CSV row but before its checkpoint, then a row cut short.
    header = csv.read_text().splitlines()[0]
    full_row = ",".join(["2"] + ["0.5"] * header.count(","))
    csv.write_text(csv.read_text() + full_row + "\n" + "3,0.5,0.1")
    _train(tmp_path, epochs=3, early_stopping_patience=0, resume=True)
    epochs = [line.split(",")[0] for line in csv.read_text().strip().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]


def test_a_killed_save_leaves_no_temporary_file_after_the_next_save(tmp_path):
    path = tmp_path / "model.keras"
    dead = tmp_path / ".model.tmp-abcd1234.keras"  # a leftover from before process ids
    dead.write_bytes(b"")
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = tmp_path / f".model.tmp-{finished.stdout.strip()}-x1y2.keras"
    dead_pid.write_bytes(b"")
    alive = tmp_path / f".model.tmp-{os.getppid()}-z9.keras"  # a live writer's file stays
    alive.write_bytes(b"")
    save_model(_model(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "model.keras"])
