"""The one training path every model family shares.

`fit` is Keras' `Model.fit` with what a config-driven trainer adds around it:
seeding, the optimizer and LR schedule from the config, early stopping that
restores the best weights, reproducible and resumable shuffling, crash-safe
checkpoints with exact resume, NaN detection, and CSV/JSON/TensorBoard logs.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.building.losses import get_loss
from keras_trainer.core.building.optimizers import build_optimizer
from keras_trainer.core.building.schedules import build_schedule_callbacks
from keras_trainer.core.inputs import streaming
from keras_trainer.core.inputs.data import (
    ShuffledArrays,
    check_same_length,
    shuffled_tf_dataset,
    split_validation,
)
from keras_trainer.core.recording.history import HistoryRecorder, TrainingHistory, monitor_mode
from keras_trainer.core.saving.atomic import write_text_atomic
from keras_trainer.core.saving.checkpoints import (
    CheckpointCallback,
    CheckpointManager,
    NanGuard,
    StepCheckpointCallback,
    early_stopping_weights,
    repair_best,
    stopped_early,
)
from keras_trainer.core.training import memory, precision
from keras_trainer.core.training.class_weights import class_sample_weights
from keras_trainer.core.training.determinism import enable_determinism
from keras_trainer.core.training.distribution import EvenBatches, copy_variables, plan_distribution
from keras_trainer.core.training.fused import choose_engine, fused_fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import (
    BackendNotSupportedError,
    CheckpointError,
    ConfigError,
    TrainingError,
)


def compile_model(
    model: keras.Model,
    config: TrainingConfig,
    loss: Any = None,
    metrics: Optional[Sequence[Any]] = None,
    total_steps: int = 1,
) -> keras.Model:
    """Compiles `model` with the optimizer, schedule, loss and metrics of `config`.

    Args:
        model: The Keras model.
        config: The `training` section.
        loss: A loss overriding `config.loss` (name, function or `keras.losses.Loss`).
        metrics: Metrics overriding `config.metrics`.
        total_steps: Optimizer steps of the whole run (for cosine schedules).

    Returns:
        The same model, compiled.
    """
    precision.check_model_policy(model, config.mixed_precision)
    if config.steps_per_execution > 1 and keras.backend.backend() == "torch":
        raise BackendNotSupportedError(
            f"training.steps_per_execution={config.steps_per_execution}: the torch backend runs "
            "one batch per call (a Keras limitation); set it to 1, or use the jax or tensorflow backend"
        )
    optimizer, loss = training_objects(config, loss, total_steps)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics) if metrics is not None else list(config.metrics),
        steps_per_execution=config.steps_per_execution,
    )
    return model


def training_objects(config: TrainingConfig, loss: Any = None, total_steps: int = 1) -> tuple:
    """The optimizer (unbuilt, schedule included) and the loss `compile_model` gives a model."""
    optimizer = precision.wrap_optimizer(
        build_optimizer(config, total_steps), config.mixed_precision
    )
    return optimizer, get_loss(loss if loss is not None else config.loss, config)


def _monitor(config_monitor: str, has_validation: bool) -> str:
    if config_monitor.startswith("val_") and not has_validation:
        return config_monitor[len("val_") :]
    return config_monitor


def _keep_csv_epochs(path: str, epochs: int) -> None:
    """Keeps the header and the complete rows of the first `epochs` epochs of a CSV log.

    A resumed run repeats the epochs after its checkpoint; their rows (and a row
    cut short by a kill) would otherwise appear twice or half.
    """
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().split("\n")
    header, rows = lines[0], lines[1:]
    width = header.count(",")
    kept = []
    for row in rows:
        cells = row.split(",")
        if len(cells) == width + 1 and cells[0].isdigit() and int(cells[0]) < epochs:
            kept.append(row)
    write_text_atomic(path, "\n".join([header, *kept]) + "\n" if header else "")


def _log_callbacks(
    config: TrainingConfig, resume_epoch: Optional[int]
) -> tuple[list, Optional[str]]:
    directory = config.logging.directory or config.checkpoint.directory
    if directory is None:
        return [], None
    os.makedirs(directory, exist_ok=True)
    callbacks = []
    if config.logging.csv:
        csv_path = os.path.join(directory, "history.csv")
        if resume_epoch is not None:
            _keep_csv_epochs(csv_path, resume_epoch)
        callbacks.append(keras.callbacks.CSVLogger(csv_path, append=resume_epoch is not None))
    if config.logging.tensorboard:
        try:
            import tensorboard  # noqa: F401
            import tensorflow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "training.logging.tensorboard: needs TensorFlow and TensorBoard installed "
                "(pip install 'keras-trainer[tensorflow]'), whatever the Keras backend"
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(directory, "tensorboard")))
    if config.logging.wandb:
        from keras_trainer.core.recording.wandb_logging import WandbLogger

        callbacks.append(WandbLogger(config, directory))
    json_path = os.path.join(directory, "history.json") if config.logging.json_history else None
    return callbacks, json_path


def progress_verbosity(verbose: int) -> int:
    """`verbose` for `model.fit`: a progress bar (1) becomes one line per epoch (2) when
    standard output is not a terminal or a notebook, so log files get no `\r` or ANSI codes."""
    if verbose != 1:
        return verbose
    interactive = getattr(sys.stdout, "isatty", lambda: False)() or "ipykernel" in sys.modules
    return 1 if interactive else 2


def fit(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    config: TrainingConfig,
    validation_data: Optional[tuple] = None,
    sample_weight: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    loss: Any = None,
    metrics: Optional[Sequence[Any]] = None,
    compile: bool = True,
    save_model_fn: Optional[Callable[[keras.Model, str], Any]] = None,
    last_good: Optional[memory.LastGoodState] = None,
) -> TrainingHistory:
    """Trains `model` on in-memory arrays or a stream of batches as `config` describes.

    Args:
        model: A built Keras model.
        x: Inputs: an array, or a list/tuple/dict of arrays; or a stream of
            `(x, y)` batches: a `keras.utils.PyDataset` (e.g. a
            `keras_trainer.core.inputs.streaming.ShardDataset`), a `tf.data.Dataset`, a
            torch `DataLoader`, a generator, or a folder/glob of shards (see
            `keras_trainer.core.inputs.streaming`).
        y: Targets, same number of rows as `x` (`None` for a stream).
        config: The `training` section of a config.
        validation_data: `(x_val, y_val)` or `(x_val, y_val, sample_weight_val)`;
            if `None`, the last `config.validation_split` of the data is held out.
        sample_weight: Optional per-sample weights.
        callbacks: Extra Keras callbacks, run after the built-in ones.
        loss: Overrides `config.loss` (e.g. a masked loss for sequences).
        metrics: Overrides `config.metrics`.
        compile: Set `False` to keep a compilation the caller made.
        save_model_fn: `fn(model, path)` writing the best checkpoint model
            (default: `persistence.save_model` without metadata).
        last_good: Used by `training.auto_batch_size`: the state to continue from.

    Returns:
        The `TrainingHistory` of the run (including epochs of a resumed run).

    Raises:
        DataError: mismatched or empty arrays.
        ConfigError: options that contradict each other or the model.
        CheckpointError: `resume` with a checkpoint of another model.
        TrainingError: the loss became NaN (the last good checkpoint is kept).
        OutOfMemoryError: the host or device ran out of memory (a `TrainingError`
            naming the batch size, the model size and what to try).

    Example:

    >>> history = fit(model, x, y, config=TrainingConfig(epochs=5))
    >>> history.best_epoch
    """
    options = dict(callbacks=callbacks, loss=loss, metrics=metrics, save_model_fn=save_model_fn)
    data = dict(validation_data=validation_data, sample_weight=sample_weight)
    if config.auto_batch_size and last_good is None:
        return _fit_with_auto_batch_size(model, x, y, config, **data, **options)
    run = TrainingRun(model, config, compile=compile, last_good=last_good, **options)
    return run.run(x, y, **data)


def _fit_with_auto_batch_size(
    model: keras.Model, x: Any, y: Any, config: TrainingConfig, **options: Any
) -> TrainingHistory:
    """`fit` retried with half the batch (and twice the accumulation) after out-of-memory."""
    if streaming.is_stream(x) and not isinstance(x, (str, os.PathLike, streaming.ShardDataset)):
        raise ConfigError(
            "training.auto_batch_size: needs arrays or a ShardDataset (fit cannot re-batch "
            f"a {type(x).__name__})"
        )

    def fit_once(attempt_config, state):
        return fit(model, x, y, config=attempt_config, compile=True, last_good=state, **options)

    return memory.fit_with_auto_batch_size(fit_once, config)


class TrainingRun:
    """One call of `fit`, as phases a reader can find by name.

    `run` goes through them in order: `prepare_data` (arrays or a stream, the
    validation split, steps per epoch), `compile` (on the devices of a data-parallel
    plan), `resume` (from a checkpoint or from `auto_batch_size`'s last good
    state), `build_callbacks`, `run_engine` (the fused engine or Keras'
    `Model.fit`) and `finish` (weights back to the caller's model, NaN report,
    early stopping). Each phase reads and sets the attributes the next ones need.

    Args:
        model: A built Keras model.
        config: The `training` section of a config.
        callbacks: Extra Keras callbacks, run after the built-in ones.
        loss: Overrides `config.loss`.
        metrics: Overrides `config.metrics`.
        compile: `False` keeps a compilation the caller made.
        save_model_fn: `fn(model, path)` writing the best checkpoint model.
        last_good: `training.auto_batch_size`'s state to continue from.
    """

    def __init__(
        self,
        model: keras.Model,
        config: TrainingConfig,
        *,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        loss: Any = None,
        metrics: Optional[Sequence[Any]] = None,
        compile: bool = True,
        save_model_fn: Optional[Callable[[keras.Model, str], Any]] = None,
        last_good: Optional[memory.LastGoodState] = None,
    ) -> None:
        self.model = self.caller_model = model
        self.config = config
        self.extra_callbacks = callbacks
        self.loss, self.metrics, self.compiles = loss, metrics, compile
        self.save_model_fn = save_model_fn
        self.last_good = last_good
        self.plan = None
        self.distributed = contextlib.nullcontext
        self.stream_callbacks: list = []
        self.manager: Optional[CheckpointManager] = None
        self.resume_from: Optional[tuple[dict, dict]] = None
        self.initial_epoch = self.first_step = 0

    def run(
        self, x: Any, y: Any = None, *, validation_data: Any = None, sample_weight: Any = None
    ) -> TrainingHistory:
        """Trains the model on `(x, y)`; see `fit` for the arguments and errors."""
        config = self.config
        if config.deterministic:
            enable_determinism()
        set_seed(config.seed)
        memory.apply_remat(self.model, config)
        # What a run resumed within an epoch hands back to `fit` once that epoch is done.
        continuation = dict(
            x=x,
            y=y,
            config=config,
            validation_data=validation_data,
            sample_weight=sample_weight,
            callbacks=self.extra_callbacks,
            loss=self.loss,
            metrics=self.metrics,
            compile=self.compiles,
            save_model_fn=self.save_model_fn,
        )
        self.prepare_data(x, y, validation_data, sample_weight)
        self.compile()
        self.resume()
        if self.resumed_finished_run() or self.initial_epoch >= config.epochs:
            return self.end_without_training()
        self.build_callbacks()
        self.run_engine()
        self.finish()
        if self.first_step:
            # The epoch resumed within is done and checkpointed: the rest of the run
            # resumes from that checkpoint, as after a kill at the epoch's end.
            resumed = fit(self.caller_model, **continuation)
            resumed.resumed_from_epoch, resumed.resumed_from_step = (
                self.initial_epoch,
                self.first_step,
            )
            return resumed
        return self.history

    def prepare_data(self, x: Any, y: Any, validation_data: Any, sample_weight: Any) -> None:
        """Opens a stream or checks and splits arrays; counts the steps of the run."""
        config = self.config
        self.stream = streaming.is_stream(x)
        if self.stream:
            x, validation_data, steps_per_epoch, self.stream_callbacks = streaming.open_stream(
                x, y, config, validation_data
            )
        else:
            check_same_length(x, y)
            if validation_data is None and config.validation_split > 0:
                (x, y, sample_weight), validation_data = split_validation(
                    x, y, sample_weight, config.validation_split
                )
            elif validation_data is not None:
                check_same_length(validation_data[0], validation_data[1])
            n_train = check_same_length(x, y)
            steps_per_epoch = math.ceil(n_train / config.batch_size)
            sample_weight = _with_class_weights(y, sample_weight, config.class_weights)
        if self.stream and config.class_weights is not None:
            raise ConfigError(
                "training.class_weights: needs the targets as arrays to count the classes, "
                f"not a stream ({type(x).__name__}); give the stream's batches sample weights instead"
            )
        if config.checkpoint.every_steps is not None and not hasattr(x, "from_step"):
            raise ConfigError(
                "checkpoint.every_steps: checkpoints within an epoch need a stream that can start "
                f"at a batch (ShardDataset, PairStream), not {type(x).__name__}; leave it null to "
                "checkpoint at epoch ends"
            )
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.validation_data, self.steps_per_epoch = validation_data, steps_per_epoch
        has_validation = validation_data is not None
        self.monitor = _monitor(config.early_stopping_monitor, has_validation)
        self.checkpoint_monitor = _monitor(config.checkpoint.monitor, has_validation)
        self.history = TrainingHistory(monitor=self.monitor, mode=monitor_mode(self.monitor))

    def compile(self) -> None:
        """Compiles the model (a replica on every device under a data-parallel plan)."""
        config = self.config
        total_steps = max(
            self.steps_per_epoch * config.epochs // config.gradient_accumulation_steps, 1
        )
        # Data parallelism trains a replica whose variables live on every device and
        # copies the weights back at the end; the caller's model stays single-device.
        self.plan = plan = plan_distribution(config.distribution)
        if plan is not None:
            self.distributed = plan.scope
            plan.check_batch_size(config.batch_size)
            if not self.compiles:
                raise ConfigError(
                    "training.distribution: fit(compile=False) cannot be distributed; the "
                    "optimizer must be created on the devices, so let fit compile the model"
                )
            self.model = plan.replicate(self.model)
        if self.compiles:
            with self.distributed():
                compile_model(
                    self.model,
                    config,
                    loss=self.loss,
                    metrics=self.metrics,
                    total_steps=total_steps,
                )
        elif self.model.optimizer is None:
            raise ConfigError("fit(compile=False) needs a model that was already compiled")

    def resume(self) -> None:
        """Restores the latest checkpoint (`training.resume`) or `auto_batch_size`'s state."""
        config, last_good = self.config, self.last_good
        if config.checkpoint.directory is not None:
            self.manager = CheckpointManager(
                config.checkpoint.directory, config.checkpoint.max_checkpoints
            )
            if config.resume:
                self._resume_from_checkpoint()
        if last_good is not None:
            if last_good.snapshot is not None:
                self.initial_epoch = last_good.restore(self.model)
                if last_good.snapshot.history is not None:
                    self.history = TrainingHistory.from_dict(last_good.snapshot.history)
            last_good.training_history = self.history

    def _resume_from_checkpoint(self) -> None:
        with self.distributed():
            found = self.manager.restore_latest(self.model)
        if found is None:
            warnings.warn(
                f"training.resume: no complete checkpoint in {self.manager.directory}; "
                "starting afresh",
                stacklevel=5,
            )
            return
        _, state, extra = found
        self.resume_from = (state, extra)
        self.initial_epoch = state["epoch"] + 1
        self.history = TrainingHistory.from_dict(state["history"])
        if state.get("step"):
            # Written within epoch `state["epoch"]`: finish that epoch from the
            # next batch, then go on as from the epoch's own checkpoint.
            if not hasattr(self.x, "from_step"):
                raise CheckpointError(
                    f"cannot resume from {found[0]}: it was written after batch "
                    f"{state['step']} of an epoch, and only a stream that can start at "
                    f"a batch (ShardDataset, PairStream) resumes there, not "
                    f"{type(self.x).__name__}"
                )
            self.initial_epoch, self.first_step = state["epoch"], state["step"]
            self.x, self.stream_callbacks = streaming.start_at_step(
                self.x, self.first_step, self.stream_callbacks
            )
            self.steps_per_epoch = len(self.x)
        self.history.resumed_from_epoch = self.initial_epoch
        self.history.resumed_from_step = self.first_step

    def resumed_finished_run(self) -> bool:
        """Whether the checkpoint resumed from ends the run (all epochs, or stopped early)."""
        return self.resume_from is not None and (
            self.initial_epoch >= self.config.epochs or stopped_early(self.resume_from[0])
        )

    def end_without_training(self) -> TrainingHistory:
        """Ends a run that has no epoch left, as an uninterrupted run would have ended."""
        if self.resumed_finished_run():
            # The run had finished (or was killed after its last checkpoint): end it as
            # an uninterrupted run ends, with early stopping's best weights.
            with self.distributed():
                self.history = _finish_resumed(
                    self.model,
                    self.config,
                    self.manager,
                    self.resume_from,
                    self.history,
                    self.monitor,
                    self.checkpoint_monitor,
                    self.save_model_fn,
                )
        if self.model is not self.caller_model:
            copy_variables(self.model, self.caller_model)
        return self.history

    def build_callbacks(self) -> None:
        """History, NaN guard, early stopping, schedules, logs, the caller's, checkpoints."""
        config = self.config
        log_callbacks, json_path = _log_callbacks(
            config, self.initial_epoch if self.resume_from is not None else None
        )
        self.nan_guard = NanGuard()
        self.stateful: list[keras.callbacks.Callback] = []
        if config.early_stopping_patience > 0:
            self.stateful.append(
                keras.callbacks.EarlyStopping(
                    monitor=self.monitor,
                    patience=config.early_stopping_patience,
                    min_delta=config.early_stopping_min_delta,
                    mode=monitor_mode(self.monitor),
                    restore_best_weights=config.restore_best_weights,
                )
            )
        self.stateful.extend(build_schedule_callbacks(config.lr_schedule, self.monitor))
        self.callbacks = [
            HistoryRecorder(self.history, json_path),
            self.nan_guard,
            *self.stateful,
            *log_callbacks,
            *self.extra_callbacks,
        ]
        if config.track_memory:
            self.callbacks.insert(0, memory.MemoryTracker())
        if self.last_good is not None:
            self.callbacks.append(self.last_good)
        if self.manager is not None:
            self.callbacks.append(self._checkpoint_callback())
        if self.first_step:
            self.callbacks.append(_StopAfterEpoch(self.initial_epoch))

    def _checkpoint_callback(self) -> keras.callbacks.Callback:
        checkpointing = dict(
            monitor=self.checkpoint_monitor,
            mode=self.config.checkpoint.mode,
            save_best=self.config.checkpoint.save_best,
            stateful_callbacks=tuple(self.stateful),
            resume_from=self.resume_from,
            save_model_fn=self.save_model_fn,
            nan_guard=self.nan_guard,
            save_best_only=self.config.checkpoint.save_best_only,
            every_epochs=self.config.checkpoint.every_epochs,
        )
        every_steps = self.config.checkpoint.every_steps
        if every_steps is None:
            return CheckpointCallback(self.manager, self.history, **checkpointing)
        return StepCheckpointCallback(
            self.manager,
            self.history,
            every_steps=every_steps,
            first_step=self.first_step,
            **checkpointing,
        )

    def run_engine(self) -> None:
        """Trains with the fused engine where it applies, else with Keras' `Model.fit`."""
        config = self.config
        arrays = (self.x, self.y, self.sample_weight, self.validation_data)
        use_fused = (
            not self.stream
            and self.plan is None
            and choose_engine(config.engine, self.model, arrays, self.callbacks) == "fused"
        )
        self.history.engine = "fused" if use_fused else "keras"
        try:
            with memory.device_scope(config.device):
                if use_fused:
                    fused_fit(
                        self.model,
                        self.x,
                        self.y,
                        self.sample_weight,
                        validation_data=self.validation_data,
                        epochs=config.epochs,
                        callbacks=self.callbacks,
                        verbose=progress_verbosity(config.verbose),
                        **self._feed(),
                    )
                else:
                    self._keras_fit()
        except Exception as error:
            if memory.is_out_of_memory(error):
                raise memory.out_of_memory_error(error, self.model, config) from error
            raise

    def _feed(self) -> dict[str, Any]:
        config = self.config
        return dict(
            batch_size=config.batch_size,
            shuffle=config.shuffle,
            seed=config.seed or 0,
            initial_epoch=self.initial_epoch,
        )

    def _keras_fit(self) -> None:
        batches, feeders, validation_data = self._keras_batches()
        if isinstance(validation_data, EvenBatches) or streaming.is_stream(validation_data):
            validation_batch_size = None
        else:
            validation_batch_size = self.config.batch_size
        with self.distributed():
            self.model.fit(
                batches,
                validation_data=validation_data,
                validation_batch_size=validation_batch_size,
                epochs=self.config.epochs,
                initial_epoch=self.initial_epoch,
                steps_per_epoch=self.steps_per_epoch if self.stream else None,
                callbacks=[*feeders, *self.callbacks],
                verbose=progress_verbosity(self.config.verbose),
                shuffle=False,
            )

    def _keras_batches(self) -> tuple[Any, list, Any]:
        """The training batches for `Model.fit`, the callbacks that feed them, the validation."""
        x, y, sample_weight, plan = self.x, self.y, self.sample_weight, self.plan
        validation_data, feed = self.validation_data, self._feed()
        if self.stream:
            if isinstance(x, streaming.ShardDataset):
                x.set_epoch(self.initial_epoch)
            return x, list(self.stream_callbacks), validation_data
        if keras.backend.backend() == "tensorflow":
            batches, feeder = shuffled_tf_dataset(x, y, sample_weight, **feed)
            return batches, [feeder], validation_data
        if plan is not None and plan.needs_even_batches:
            batches = ShuffledArrays(x, y, sample_weight, multiple_of=plan.num_replicas, **feed)
            if validation_data is not None:
                validation_data = EvenBatches(
                    validation_data, self.config.batch_size, plan.num_replicas
                )
            return batches, [batches.epoch_callback()], validation_data
        batches = ShuffledArrays(x, y, sample_weight, **feed)
        return batches, [batches.epoch_callback()], validation_data

    def finish(self) -> None:
        """Copies the weights to the caller's model; reports NaN; records early stopping."""
        if self.model is not self.caller_model:
            copy_variables(self.model, self.caller_model)
        if self.nan_guard.nan_at is not None:
            kept = self.manager.latest() if self.manager is not None else None
            raise TrainingError(
                "training stopped: the loss became NaN or infinite in epoch "
                f"{self.nan_guard.nan_at + 1}. Lower training.learning_rate, set "
                "training.gradient_clip_norm, or check the data for NaN/inf. Last good "
                f"checkpoint: {kept or 'none (checkpoint.directory not set)'}"
            )
        self.history.stopped_early = any(
            getattr(callback, "stopped_epoch", 0) > 0
            for callback in self.stateful
            if isinstance(callback, keras.callbacks.EarlyStopping)
        )


def _with_class_weights(y: Any, sample_weight: Any, scheme: Any) -> Any:
    """`sample_weight` times the weight of each row's class under `training.class_weights`."""
    weights = class_sample_weights(y, scheme)
    if weights is None:
        return sample_weight
    if sample_weight is None:
        return weights
    return np.asarray(sample_weight, dtype="float32") * weights


class _StopAfterEpoch(keras.callbacks.Callback):
    """Ends `model.fit` after `epoch` (a run resumed within an epoch finishes that epoch alone)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.epoch:
            self.model.stop_training = True


def _finish_resumed(
    model: keras.Model,
    config: TrainingConfig,
    manager: CheckpointManager,
    resume_from: tuple[dict, dict],
    history: TrainingHistory,
    monitor: str,
    checkpoint_monitor: str,
    save_model_fn: Optional[Callable[[keras.Model, str], Any]],
) -> TrainingHistory:
    state, extra = resume_from
    uses_early_stopping = config.early_stopping_patience > 0
    best_weights = early_stopping_weights(extra) if uses_early_stopping else None
    if config.checkpoint.save_best:
        message = repair_best(
            manager, model, best_weights if monitor == checkpoint_monitor else None, save_model_fn
        )
        if message is not None:
            warnings.warn(message, stacklevel=3)
    if best_weights is not None and config.restore_best_weights:
        model.set_weights(best_weights)
    history.stopped_early = stopped_early(state)
    return history
