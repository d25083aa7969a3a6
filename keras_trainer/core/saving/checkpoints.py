"""Crash-safe training checkpoints: the best model, the latest epochs, and resume.

Layout of a checkpoint directory:

    best.keras              the best model so far (by `checkpoint.monitor`), loadable
                            with `keras_trainer.core.saving.persistence.load_model`
    epoch-000004/           one folder per kept epoch (at most `max_checkpoints`):
        variables.npz       every model variable (weights, BN statistics, dropout
                            seed state) and every optimizer variable (iteration
                            count, learning rate, moments, gradient accumulators)
        extra.npz           arrays of callbacks (early stopping's best weights)
        state.json          epoch, history, callback states, model fingerprint
    epoch-000005-step-000000200/
                            with `checkpoint.every_steps`, the newest checkpoint
                            within an epoch: the same files after 200 batches of
                            epoch 5 (`state.json` has `"step": 200`); removed once
                            that epoch's own checkpoint is written

Each file and folder is written under a temporary name and renamed when complete
(`keras_trainer.core.saving.atomic`), so a kill at any instant leaves only complete
checkpoints; `latest()` skips leftovers. A checkpoint damaged afterwards (a
truncated copy, a disk error) is detected when resuming: `restore_latest` falls
back to the newest intact checkpoint and says which.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import warnings
import zipfile
import zlib
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.recording.history import TrainingHistory, monitor_mode
from keras_trainer.core.saving.atomic import atomic_path, remove_stale_temporaries
from keras_trainer.core.training.seeding import capture_rng_state, restore_rng_state
from keras_trainer.errors import CheckpointError

_CHECKPOINT_DIR = re.compile(r"^epoch-(\d{6})(?:-step-(\d{9}))?$")
STATE_FORMAT = "keras_trainer.checkpoint/1"


def model_fingerprint(model: keras.Model) -> list[list]:
    """Name and shape of every model variable, in order: what a checkpoint must match.

    Names, not paths: paths carry auto-numbered layer names (`dense_3`) that
    differ between two builds of the same model in one process.
    """
    return [[variable.name, list(variable.shape)] for variable in model.variables]


def _arrays(variables) -> dict[str, np.ndarray]:
    return {f"v{i:05d}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(variables)}


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files are missing, truncated or malformed (another one may be intact)."""


def _check_arrays(variables, arrays: dict[str, np.ndarray], what: str, path: str) -> list:
    """The values of `variables` in `arrays`, checked in full before anything is assigned."""
    if len(arrays) != len(variables):
        raise CorruptCheckpointError(
            f"{path}: holds {len(arrays)} {what} variables but the model has {len(variables)}"
        )
    values = []
    for i, variable in enumerate(variables):
        value = arrays.get(f"v{i:05d}")
        if value is None:
            raise CorruptCheckpointError(
                f"{path}: {what} variable #{i} ({variable.path}) is missing"
            )
        if tuple(value.shape) != tuple(variable.shape):
            raise CorruptCheckpointError(
                f"{path}: {what} variable {variable.path} has shape {tuple(variable.shape)} in the "
                f"model but {tuple(value.shape)} in the checkpoint"
            )
        values.append(value)
    return values


def _load_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        reason = (
            "missing"
            if isinstance(error, FileNotFoundError)
            else f"{type(error).__name__}: {error}"
        )
        raise CorruptCheckpointError(f"{path}: unreadable checkpoint file ({reason})") from None


# Keys of state.json and their types: a checkpoint lacking one is corrupt.
_STATE_SCHEMA = {"epoch": int, "history": dict, "rng": dict, "callbacks": list, "fingerprint": list}


def _read_state(path: str) -> dict:
    state_path = os.path.join(path, "state.json")
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise CorruptCheckpointError(
            f"{state_path}: unreadable checkpoint state ({error})"
        ) from None
    if not isinstance(state, dict):
        raise CorruptCheckpointError(
            f"{state_path}: must hold a JSON object, got {type(state).__name__}"
        )
    for key, kind in _STATE_SCHEMA.items():
        if key not in state:
            raise CorruptCheckpointError(f"{state_path}: missing key {key!r}")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise CorruptCheckpointError(
                f"{state_path}: {key!r} must be a {kind.__name__}, got {type(state[key]).__name__}"
            )
    return state


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
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise CheckpointError(
                f"training.checkpoint.directory: {self.directory!r} is a file, not a folder; "
                "choose another path"
            )
        self.max_checkpoints = max_checkpoints
        self.best_path = os.path.join(self.directory, "best.keras")

    def _complete_dirs(self) -> list[tuple[tuple[int, int], str]]:
        """Complete checkpoints as `(position, path)`, oldest first.

        The position is where training resumes: `(epoch + 1, 0)` after an epoch's
        checkpoint, `(epoch, step)` after a checkpoint within an epoch.
        """
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _CHECKPOINT_DIR.match(name)
            path = os.path.join(self.directory, name)
            if match and os.path.isfile(os.path.join(path, "state.json")):
                epoch, step = int(match.group(1)), match.group(2)
                found.append(((epoch, int(step)) if step else (epoch + 1, 0), path))
        return sorted(found)

    def epoch_dirs(self) -> list[tuple[int, str]]:
        """Complete epoch-end checkpoints as `(epoch, path)`, oldest first."""
        return [
            (position[0] - 1, path)
            for position, path in self._complete_dirs()
            if not _CHECKPOINT_DIR.match(os.path.basename(path)).group(2)
        ]

    def latest(self) -> Optional[str]:
        """Path of the newest complete checkpoint (of an epoch or within one), or `None`."""
        dirs = self._complete_dirs()
        return dirs[-1][1] if dirs else None

    def remove_leftovers(self) -> None:
        """Deletes temporary files of writes that a crash interrupted."""
        remove_stale_temporaries(self.directory)

    def save(
        self,
        model: keras.Model,
        epoch: int,
        state: dict,
        extra: dict[str, np.ndarray],
        step: Optional[int] = None,
    ) -> str:
        """Writes a checkpoint atomically and prunes old ones.

        Args:
            epoch: The epoch (0-based) that finished, or that is under way with `step`.
            step: Batches of `epoch` done, for a checkpoint within the epoch; None
                at the epoch's end.
        """
        name = f"epoch-{epoch:06d}" if step is None else f"epoch-{epoch:06d}-step-{step:09d}"
        path = os.path.join(self.directory, name)
        with atomic_path(path, directory=True) as temp:
            variables = _arrays(model.variables)
            optimizer_variables = _arrays(model.optimizer.variables)
            np.savez(
                os.path.join(temp, "variables.npz"),
                **{f"model_{k}": v for k, v in variables.items()},
                **{f"optimizer_{k}": v for k, v in optimizer_variables.items()},
            )
            np.savez(os.path.join(temp, "extra.npz"), **extra)
            state = dict(
                state, format=STATE_FORMAT, epoch=epoch, fingerprint=model_fingerprint(model)
            )
            if step is not None:
                state["step"] = step
            with open(os.path.join(temp, "state.json"), "w", encoding="utf-8") as handle:
                json.dump(state, handle)
        # Keep `max_checkpoints` epoch ends, and only the newest checkpoint within an
        # epoch, while it is newer than every epoch end.
        for _, old in self.epoch_dirs()[: -self.max_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        dirs = self._complete_dirs()
        for _, old in dirs[:-1]:
            if _CHECKPOINT_DIR.match(os.path.basename(old)).group(2):
                shutil.rmtree(old, ignore_errors=True)
        return path

    def restore(self, model: keras.Model, path: str) -> tuple[dict, dict[str, np.ndarray]]:
        """Loads a checkpoint into a compiled `model` and its optimizer.

        Returns:
            `(state, extra)`: the saved `state.json` and the callbacks' arrays.

        Raises:
            CorruptCheckpointError: a file of the checkpoint is missing, truncated
                or malformed (nothing is assigned then).
            CheckpointError: the checkpoint was written by a model with other
                layers or shapes than `model`.
        """
        state = _read_state(path)
        expected = model_fingerprint(model)
        saved = state["fingerprint"]
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
        extra = _load_npz(os.path.join(path, "extra.npz"))
        model_arrays = {k[len("model_") :]: v for k, v in arrays.items() if k.startswith("model_")}
        optimizer_arrays = {
            k[len("optimizer_") :]: v for k, v in arrays.items() if k.startswith("optimizer_")
        }
        model_values = _check_arrays(model.variables, model_arrays, "model", path)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        optimizer_values = _check_arrays(
            model.optimizer.variables, optimizer_arrays, "optimizer", path
        )
        for variable, value in zip(model.variables, model_values):
            variable.assign(value)
        for variable, value in zip(model.optimizer.variables, optimizer_values):
            variable.assign(value)
        return state, extra

    def restore_latest(
        self, model: keras.Model
    ) -> Optional[tuple[str, dict, dict[str, np.ndarray]]]:
        """Restores the newest intact checkpoint, skipping (and naming) corrupt ones.

        Returns:
            `(path, state, extra)`, or `None` when there is no checkpoint.

        Raises:
            CheckpointError: every checkpoint is corrupt (each is named), or the
                model differs from the one that wrote them.
        """
        dirs = self._complete_dirs()
        skipped = []
        for _, path in reversed(dirs):
            try:
                state, extra = self.restore(model, path)
            except CorruptCheckpointError as error:
                skipped.append(str(error))
                continue
            if skipped:
                warnings.warn(
                    f"resuming from the intact checkpoint {path} (epoch {state['epoch'] + 1}); "
                    f"skipped {len(skipped)} corrupt newer one(s): {'; '.join(skipped)}",
                    stacklevel=2,
                )
            return path, state, extra
        if skipped:
            raise CheckpointError(
                f"cannot resume: every checkpoint in {self.directory} is corrupt ({'; '.join(skipped)}). "
                "Delete the folder to start afresh."
            )
        return None

    def check_best(self) -> Optional[str]:
        """Removes a `best.keras` that does not load; returns why, or `None` if it is fine."""
        if not os.path.exists(self.best_path):
            return None
        from keras_trainer.core.saving.persistence import check_model_config, read_metadata

        try:
            read_metadata(self.best_path)
            check_model_config(self.best_path)
            with zipfile.ZipFile(self.best_path) as archive:
                damaged = archive.testzip()
            if damaged is not None:
                raise CheckpointError(f"{self.best_path}: entry {damaged!r} is damaged")
        except (CheckpointError, zipfile.BadZipFile, OSError, zlib.error) as error:
            shutil.rmtree(self.best_path) if os.path.isdir(self.best_path) else os.unlink(
                self.best_path
            )
            return str(error)
        return None


def early_stopping_weights(extra: dict[str, np.ndarray]) -> Optional[list[np.ndarray]]:
    """The best weights early stopping kept, as saved in a checkpoint's `extra.npz`."""
    weights = [extra[k] for k in sorted(k for k in extra if k.startswith("es_best_"))]
    return weights or None


def stopped_early(state: dict) -> bool:
    """Whether the run that wrote checkpoint `state` was stopped by early stopping."""
    return any((saved or {}).get("stopped_epoch") or 0 for saved in state.get("callbacks", []))


def repair_best(
    manager: CheckpointManager,
    model: keras.Model,
    best_weights: Optional[list] = None,
    save_model_fn=None,
) -> Optional[str]:
    """Replaces a corrupt `best.keras` before a resumed run relies on it.

    With `best_weights` (early stopping's, for the same monitor) the file is
    rewritten from them; without, it is removed and the next improvement
    writes it again.

    Returns:
        A message saying what was done, or `None` when `best.keras` was fine.
    """
    problem = manager.check_best()
    if problem is None:
        return None
    if best_weights is None:
        return f"removed corrupt {manager.best_path} ({problem}); the next improvement rewrites it"
    current = model.get_weights()
    model.set_weights(best_weights)
    try:
        _save_best(model, manager.best_path, save_model_fn)
    finally:
        model.set_weights(current)
    return f"rewrote corrupt {manager.best_path} ({problem}) from the checkpoint's best weights"


def _save_best(model: keras.Model, path: str, save_model_fn=None) -> None:
    if save_model_fn is not None:
        save_model_fn(model, path)
    else:
        from keras_trainer.core.saving.persistence import save_model

        save_model(model, path)


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
            `keras_trainer.core.saving.persistence.save_model` without metadata.
        nan_guard: The run's `NanGuard`: no checkpoint is written for an epoch
            whose loss became NaN.
        save_best_only: Write an epoch's checkpoint only when `monitor` improved
            (as Keras' `ModelCheckpoint(save_best_only=True)`); resuming then
            continues from the best epoch. Defaults to False.
        every_epochs: Write an epoch's checkpoint every N epochs (and at the last
            epoch or an early stop, so a finished run resumes as finished).
            Defaults to 1. `best.keras` is still checked at every epoch.
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
        nan_guard: Optional[NanGuard] = None,
        save_best_only: bool = False,
        every_epochs: int = 1,
    ):
        super().__init__()
        self.save_best_only = save_best_only
        self.every_epochs = every_epochs
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
        best_weights = None
        for callback, saved in zip(self.stateful_callbacks, state.get("callbacks", [])):
            for key, value in saved.items():
                setattr(callback, key, value)
            if isinstance(callback, keras.callbacks.EarlyStopping):
                callback.best_weights = early_stopping_weights(extra)
                if callback.monitor == self.monitor:
                    best_weights = callback.best_weights
        if self.save_best:
            message = repair_best(self.manager, self.model, best_weights, self.save_model_fn)
            if message is not None:
                if best_weights is None:
                    self.best = None
                warnings.warn(message, stacklevel=2)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.nan_guard is not None and self.nan_guard.nan_at is not None:
            return  # never checkpoint a model that produced NaN
        value = logs.get(self.monitor)
        improved = value is not None and not math.isnan(value) and self._improved(value)
        if self.save_best and improved:
            self.best = float(value)
            _save_best(self.model, self.manager.best_path, self.save_model_fn)
        if self._epoch_due(epoch, improved):
            self.manager.save(self.model, epoch, *self._snapshot())

    def _epoch_due(self, epoch: int, improved: bool) -> bool:
        """Whether epoch `epoch` gets its checkpoint (`save_best_only`, `every_epochs`)."""
        if self.save_best_only:
            return improved
        last = epoch + 1 >= self.params.get("epochs", epoch + 1)
        return (epoch + 1) % self.every_epochs == 0 or last or self.model.stop_training

    def _snapshot(self) -> tuple[dict, dict[str, np.ndarray]]:
        """`(state, extra)` of the run now: callback counters, RNG, history."""
        callback_states, extra = [], {}
        for callback in self.stateful_callbacks:
            keys = self._STATE_KEYS.get(type(callback).__name__, ())
            callback_states.append({key: _plain(getattr(callback, key, None)) for key in keys})
            best_weights = getattr(callback, "best_weights", None)
            if isinstance(callback, keras.callbacks.EarlyStopping) and best_weights is not None:
                extra.update(
                    {f"es_best_{i:05d}": np.asarray(w) for i, w in enumerate(best_weights)}
                )
        rng_state, rng_arrays = capture_rng_state()
        extra.update(rng_arrays)
        state = {
            "rng": rng_state,
            "best": self.best,
            "monitor": self.monitor,
            "callbacks": callback_states,
            "history": self.training_history.to_dict(),
        }
        return state, extra


class StepCheckpointCallback(CheckpointCallback):
    """A `CheckpointCallback` that also checkpoints every `every_steps` batches of an epoch.

    Its batch hook costs a host sync per step on JAX, so `fit` adds it only when
    `checkpoint.every_steps` is set, and only for streams that can resume at a step.

    Args:
        every_steps: Batches between checkpoints within an epoch.
        first_step: Batches of the first epoch done before this run (a run
            resumed within an epoch starts its batch count there).
        **kwargs: As `CheckpointCallback`.
    """

    def __init__(
        self,
        manager: CheckpointManager,
        history: TrainingHistory,
        *,
        every_steps: int,
        first_step: int = 0,
        **kwargs,
    ):
        super().__init__(manager, history, **kwargs)
        self.every_steps = every_steps
        self._epoch, self._offset = 0, first_step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._offset = 0  # only the first epoch of a resumed run starts within the epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._offset + batch + 1
        if step % self.every_steps or batch + 1 == self.params.get("steps"):
            return  # not due, or the epoch's own checkpoint follows at once
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # never checkpoint a model that produced NaN
        self.manager.save(self.model, self._epoch, *self._snapshot(), step=step)


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
