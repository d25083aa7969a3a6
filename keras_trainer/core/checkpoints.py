"""Crash-safe training checkpoints: the best model, the latest epochs, and resume.

Layout of a checkpoint directory:

    best.keras              the best model so far (by `checkpoint.monitor`), loadable
                            with `keras_trainer.core.persistence.load_model`
    epoch-000004/           one folder per kept epoch (at most `max_checkpoints`):
        variables.npz       every model variable (weights, BN statistics, dropout
                            seed state) and every optimizer variable (iteration
                            count, learning rate, moments, gradient accumulators)
        extra.npz           arrays of callbacks (early stopping's best weights)
        state.json          epoch, history, callback states, model fingerprint

Each file and folder is written under a temporary name and renamed when complete
(`keras_trainer.core.atomic`), so a kill at any instant leaves only complete
checkpoints; `latest()` skips leftovers.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.atomic import atomic_path, is_temporary
from keras_trainer.core.history import TrainingHistory, monitor_mode
from keras_trainer.core.seeding import capture_rng_state, restore_rng_state
from keras_trainer.errors import CheckpointError

_EPOCH_DIR = re.compile(r"^epoch-(\d{6})$")
STATE_FORMAT = "keras_trainer.checkpoint/1"


def model_fingerprint(model: keras.Model) -> list[list]:
    """Name and shape of every model variable, in order: what a checkpoint must match.

    Names, not paths: paths carry auto-numbered layer names (`dense_3`) that
    differ between two builds of the same model in one process.
    """
    return [[variable.name, list(variable.shape)] for variable in model.variables]


def _arrays(variables) -> dict[str, np.ndarray]:
    return {f"v{i:05d}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(variables)}


def _assign(variables, arrays: dict[str, np.ndarray], what: str, path: str) -> None:
    if len(arrays) != len(variables):
        raise CheckpointError(
            f"{path}: holds {len(arrays)} {what} variables but the model has {len(variables)}"
        )
    for i, variable in enumerate(variables):
        value = arrays[f"v{i:05d}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(
                f"{path}: {what} variable {variable.path} has shape {tuple(variable.shape)} in the "
                f"model but {tuple(value.shape)} in the checkpoint"
            )
        variable.assign(value)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint file ({error})") from None


class CheckpointManager:
    """Writes, lists, prunes and restores the checkpoints of one training run.

    Args:
        directory: The checkpoint directory (created if missing).
        max_checkpoints: How many epoch checkpoints to keep (oldest go first).

    Example:

    >>> manager = CheckpointManager("runs/exp1/checkpoints")
    >>> manager.latest()  # None before the first epoch ends
    """

    def __init__(self, directory: str, max_checkpoints: int = 3):
        self.directory = os.fspath(directory)
        self.max_checkpoints = max_checkpoints
        self.best_path = os.path.join(self.directory, "best.keras")

    def epoch_dirs(self) -> list[tuple[int, str]]:
        """Complete epoch checkpoints as `(epoch, path)`, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _EPOCH_DIR.match(name)
            path = os.path.join(self.directory, name)
            if match and os.path.isfile(os.path.join(path, "state.json")):
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> Optional[str]:
        """Path of the newest complete epoch checkpoint, or `None`."""
        dirs = self.epoch_dirs()
        return dirs[-1][1] if dirs else None

    def remove_leftovers(self) -> None:
        """Deletes temporary files of writes that a crash interrupted."""
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if is_temporary(name):
                    path = os.path.join(self.directory, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)

    def save(self, model: keras.Model, epoch: int, state: dict, extra: dict[str, np.ndarray]) -> str:
        """Writes the checkpoint of a finished epoch, atomically; prunes old ones."""
        path = os.path.join(self.directory, f"epoch-{epoch:06d}")
        with atomic_path(path, directory=True) as temp:
            variables = _arrays(model.variables)
            optimizer_variables = _arrays(model.optimizer.variables)
            np.savez(
                os.path.join(temp, "variables.npz"),
                **{f"model_{k}": v for k, v in variables.items()},
                **{f"optimizer_{k}": v for k, v in optimizer_variables.items()},
            )
            np.savez(os.path.join(temp, "extra.npz"), **extra)
            state = dict(state, format=STATE_FORMAT, epoch=epoch, fingerprint=model_fingerprint(model))
            with open(os.path.join(temp, "state.json"), "w", encoding="utf-8") as handle:
                json.dump(state, handle)
        for _, old in self.epoch_dirs()[: -self.max_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def restore(self, model: keras.Model, path: str) -> tuple[dict, dict[str, np.ndarray]]:
        """Loads a checkpoint into a compiled `model` and its optimizer.

        Returns:
            `(state, extra)`: the saved `state.json` and the callbacks' arrays.

        Raises:
            CheckpointError: the checkpoint is unreadable or was written by a
                model with other layers or shapes than `model`.
        """
        try:
            with open(os.path.join(path, "state.json"), encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: unreadable checkpoint state ({error})") from None
        expected = model_fingerprint(model)
        saved = state.get("fingerprint", [])
        if saved != expected:
            differences = [
                f"variable #{i} {model.variables[i].path if i < len(expected) else '?'}: "
                f"{tuple(old[1]) if old else 'absent'} in checkpoint, "
                f"{tuple(new[1]) if new else 'absent'} in model"
                for i, (old, new) in enumerate(itertools.zip_longest(saved, expected))
                if old != new
            ]
            raise CheckpointError(
                f"cannot resume from {path}: the configured model differs from the one that "
                f"wrote the checkpoint ({'; '.join(differences[:4])}). Use the original model "
                "config, or start a fresh run in another checkpoint directory."
            )
        arrays = _load_npz(os.path.join(path, "variables.npz"))
        model_arrays = {k[len("model_") :]: v for k, v in arrays.items() if k.startswith("model_")}
        optimizer_arrays = {
            k[len("optimizer_") :]: v for k, v in arrays.items() if k.startswith("optimizer_")
        }
        _assign(model.variables, model_arrays, "model", path)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        _assign(model.optimizer.variables, optimizer_arrays, "optimizer", path)
        return state, _load_npz(os.path.join(path, "extra.npz"))


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the best model and the latest epochs; restores callback state on resume.

    It must come after every callback whose state it saves (early stopping, LR
    plateau), so that on resume it restores them after their `on_train_begin`
    has reset them.

    Args:
        manager: Where checkpoints go.
        history: The run's `TrainingHistory` (saved into each checkpoint).
        monitor: Metric deciding the best model.
        mode: 'min', 'max' or 'auto'.
        save_best: Whether to write `best.keras`.
        stateful_callbacks: Callbacks whose counters are saved and restored.
        resume_from: `(state, extra)` of the checkpoint being resumed, or `None`.
        save_model_fn: `fn(model, path)` writing the best model; defaults to
            `keras_trainer.core.persistence.save_model` without metadata.
        nan_guard: The run's `NanGuard`: no checkpoint is written for an epoch
            whose loss became NaN.
    """

    _STATE_KEYS = {
        "EarlyStopping": ("wait", "best", "best_epoch", "stopped_epoch"),
        "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    }

    def __init__(
        self,
        manager: CheckpointManager,
        history: TrainingHistory,
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best: bool = True,
        stateful_callbacks: tuple = (),
        resume_from: Optional[tuple[dict, dict]] = None,
        save_model_fn=None,
        nan_guard: Optional["NanGuard"] = None,
    ):
        super().__init__()
        self.manager = manager
        self.training_history = history
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        self.save_best = save_best
        self.stateful_callbacks = list(stateful_callbacks)
        self.resume_from = resume_from
        self.best: Optional[float] = None
        self.save_model_fn = save_model_fn
        self.nan_guard = nan_guard

    def on_train_begin(self, logs=None):
        self.manager.remove_leftovers()
        if self.resume_from is None:
            return
        state, extra = self.resume_from
        self.best = state.get("best")
        restore_rng_state(state["rng"], extra)
        for callback, saved in zip(self.stateful_callbacks, state.get("callbacks", [])):
            for key, value in saved.items():
                setattr(callback, key, value)
            if isinstance(callback, keras.callbacks.EarlyStopping):
                weights = [extra[k] for k in sorted(k for k in extra if k.startswith("es_best_"))]
                callback.best_weights = weights or None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.nan_guard is not None and self.nan_guard.nan_at is not None:
            return  # never checkpoint a model that produced NaN
        value = logs.get(self.monitor)
        if self.save_best and value is not None and not math.isnan(value) and self._improved(value):
            self.best = float(value)
            if self.save_model_fn is not None:
                self.save_model_fn(self.model, self.manager.best_path)
            else:
                from keras_trainer.core.persistence import save_model

                save_model(self.model, self.manager.best_path)
        callback_states, extra = [], {}
        for callback in self.stateful_callbacks:
            keys = self._STATE_KEYS.get(type(callback).__name__, ())
            callback_states.append({key: _plain(getattr(callback, key, None)) for key in keys})
            best_weights = getattr(callback, "best_weights", None)
            if isinstance(callback, keras.callbacks.EarlyStopping) and best_weights is not None:
                extra.update({f"es_best_{i:05d}": np.asarray(w) for i, w in enumerate(best_weights)})
        rng_state, rng_arrays = capture_rng_state()
        extra.update(rng_arrays)
        state = {
            "rng": rng_state,
            "best": self.best,
            "monitor": self.monitor,
            "callbacks": callback_states,
            "history": self.training_history.to_dict(),
        }
        self.manager.save(self.model, epoch, state, extra)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and not getattr(value, "shape", None):
        return float(keras.ops.convert_to_numpy(value))
    return value


class NanGuard(keras.callbacks.Callback):
    """Stops training after the first epoch whose loss is NaN or infinite.

    It checks at epoch end, not after every batch: a per-batch check forces a
    device sync each step and made training 5x slower on the JAX backend. The
    epoch's reported loss is a running mean, so one NaN batch makes it NaN.
    `fit` turns the stop into a `TrainingError` that names the epoch and points
    at the last good checkpoint, which `CheckpointCallback` never overwrites with
    the NaN epoch.
    """

    def __init__(self):
        super().__init__()
        self.nan_at: Optional[int] = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_at = epoch
            self.model.stop_training = True
