"""Weights & Biases logging of the shared fit (`training.logging.wandb`, `--wandb`).

`fit` adds a `WandbLogger` when `training.logging.wandb` is true. It logs, for
each epoch, exactly the values `history.csv` gets (loss, metrics, validation
metrics, learning rate, peak memory), with the epoch as W&B's step. The mode
is `offline` by default: the run is written under `<log folder>/wandb` and
needs no network or account; upload it later with `wandb sync <run folder>`.
Install with `pip install 'keras-trainer[wandb]'`.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_trainer.config import to_dict
from keras_trainer.errors import ConfigError


class WandbLogger(keras.callbacks.Callback):
    """Logs each epoch's logs to a W&B run.

    Args:
        config: The `training` section (its `logging.wandb_project` and
            `logging.wandb_mode` choose the project and mode; the whole section
            becomes the run's config).
        directory: Folder for W&B's files (the run's log folder), or `None`
            for W&B's default.

    Example:

    >>> fit(model, x, y, config=TrainingConfig(logging={"wandb": True, "directory": "runs/a"}))
    """

    def __init__(self, config: Any, directory: str | None = None):
        super().__init__()
        try:
            import wandb
        except ImportError:
            raise ConfigError(
                "training.logging.wandb: needs the wandb package (pip install 'keras-trainer[wandb]')"
            ) from None
        self._wandb = wandb
        self.config = config
        self.directory = directory
        self.run = None

    def on_train_begin(self, logs=None):
        if self.run is not None:
            return
        if self.directory:
            os.makedirs(self.directory, exist_ok=True)
        self.run = self._wandb.init(
            project=self.config.logging.wandb_project,
            mode=self.config.logging.wandb_mode,
            dir=self.directory,
            config=to_dict(self.config),
            reinit="finish_previous",
        )

    def on_epoch_end(self, epoch, logs=None):
        if self.run is not None and logs:
            self.run.log({key: float(value) for key, value in logs.items()}, step=epoch)

    def on_train_end(self, logs=None):
        if self.run is not None:
            self.run.finish()
            self.run = None
