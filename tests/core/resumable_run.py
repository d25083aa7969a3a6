"""A training run for the resume tests, run as a child process.

    python resumable_run.py CHECKPOINT_DIR OUT.npz [--kill-at-epoch E] [--resume] [--engine fused]

With --kill-at-epoch, the process SIGKILLs itself in the middle of epoch E
(after two batches), as a crash or an out-of-memory kill would. The fused
engine calls batch hooks once, after the epoch's steps and before its
checkpoint, so there the kill comes after the steps of epoch E.
"""

import os
import signal
import sys

import keras
import numpy as np

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from tests.conftest import EpochCounter


class KillMidEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch, self.epoch = epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch >= 1:
            os.kill(os.getpid(), signal.SIGKILL)


def main():
    directory, out = sys.argv[1], sys.argv[2]
    kill_at = (
        int(sys.argv[sys.argv.index("--kill-at-epoch") + 1])
        if "--kill-at-epoch" in sys.argv
        else None
    )
    config = TrainingConfig.from_dict(
        {
            "epochs": 6,
            "batch_size": 32,
            "verbose": 0,
            "early_stopping_patience": 3,
            "optimizer": {"name": "adamw", "weight_decay": 0.01},
            "lr_schedule": {"name": "warmup_cosine", "warmup_steps": 10},
            "checkpoint": {"directory": directory, "max_checkpoints": 2},
            "resume": "--resume" in sys.argv,
            "engine": sys.argv[sys.argv.index("--engine") + 1]
            if "--engine" in sys.argv
            else "keras",
        }
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[(x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)]
    set_seed(config.seed)
    model = build_model(ModelConfig(output_dim=5, dropout=0.2, batch_norm=True), (12,))
    trained = EpochCounter()
    callbacks = [trained, KillMidEpoch(kill_at)] if kill_at is not None else [trained]
    history = fit(model, x, y, config=config, callbacks=callbacks)
    np.savez(
        out,
        *[np.asarray(w) for w in model.get_weights()],
        epochs=np.asarray(history.epochs),
        # Where a resumed run started (-1: it did not resume) and how many epochs it trained.
        resumed_from=np.asarray([history.resumed_from_epoch, history.resumed_from_step])
        if history.resumed_from_epoch is not None
        else np.asarray([-1, -1]),
        epochs_trained=np.asarray(trained.count),
        engine=np.asarray(history.engine),
    )


if __name__ == "__main__":
    main()
