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

from keras_trainer.config import TrainingConfig
from keras_trainer.core import memory, precision, streaming
from keras_trainer.core.atomic import write_text_atomic
from keras_trainer.core.checkpoints import (
    CheckpointCallback,
    CheckpointManager,
    NanGuard,
    StepCheckpointCallback,
    early_stopping_weights,
    repair_best,
    stopped_early,
)
from keras_trainer.core.data import (
    ShuffledArrays,
    check_same_length,
    shuffled_tf_dataset,
    split_validation,
)
from keras_trainer.core.determinism import enable_determinism
from keras_trainer.core.distribution import EvenBatches, copy_variables, plan_distribution
from keras_trainer.core.fused import choose_engine, fused_fit
from keras_trainer.core.history import HistoryRecorder, TrainingHistory, monitor_mode
from keras_trainer.core.losses import get_loss
from keras_trainer.core.optimizers import build_optimizer
from keras_trainer.core.schedules import build_schedule_callbacks
from keras_trainer.core.seeding import set_seed
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
    model.compile(
        optimizer=precision.wrap_optimizer(
            build_optimizer(config, total_steps), config.mixed_precision
        ),
        loss=get_loss(loss if loss is not None else config.loss, config),
        metrics=list(metrics) if metrics is not None else list(config.metrics),
        steps_per_execution=config.steps_per_execution,
    )
    return model


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
        from keras_trainer.core.wandb_logging import WandbLogger

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
            `keras_trainer.core.streaming.ShardDataset`), a `tf.data.Dataset`, a
            torch `DataLoader`, a generator, or a folder/glob of shards (see
            `keras_trainer.core.streaming`).
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
    if config.auto_batch_size and last_good is None:
        if streaming.is_stream(x) and not isinstance(x, (str, os.PathLike, streaming.ShardDataset)):
            raise ConfigError(
                "training.auto_batch_size: needs arrays or a ShardDataset (fit cannot re-batch "
                f"a {type(x).__name__})"
            )

        def fit_once(attempt_config, state):
            return fit(
                model,
                x,
                y,
                config=attempt_config,
                validation_data=validation_data,
                sample_weight=sample_weight,
                callbacks=callbacks,
                loss=loss,
                metrics=metrics,
                compile=True,
                save_model_fn=save_model_fn,
                last_good=state,
            )

        return memory.fit_with_auto_batch_size(fit_once, config)
    if config.deterministic:
        enable_determinism()
    set_seed(config.seed)
    memory.apply_remat(model, config)
    # What a run resumed within an epoch hands back to `fit` once that epoch is done.
    continuation = dict(
        x=x,
        y=y,
        config=config,
        validation_data=validation_data,
        sample_weight=sample_weight,
        callbacks=callbacks,
        loss=loss,
        metrics=metrics,
        compile=compile,
        save_model_fn=save_model_fn,
    )
    stream = streaming.is_stream(x)
    if stream:
        x, validation_data, steps_per_epoch, stream_callbacks = streaming.open_stream(
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
    if config.checkpoint.every_steps is not None and not hasattr(x, "from_step"):
        raise ConfigError(
            "checkpoint.every_steps: checkpoints within an epoch need a stream that can start "
            f"at a batch (ShardDataset, PairStream), not {type(x).__name__}; leave it null to "
            "checkpoint at epoch ends"
        )
    total_steps = max(steps_per_epoch * config.epochs // config.gradient_accumulation_steps, 1)

    # Data parallelism trains a replica whose variables live on every device and
    # copies the weights back at the end; the caller's model stays single-device.
    plan = plan_distribution(config.distribution)
    caller_model = model
    distributed = plan.scope if plan is not None else contextlib.nullcontext
    if plan is not None:
        plan.check_batch_size(config.batch_size)
        if not compile:
            raise ConfigError(
                "training.distribution: fit(compile=False) cannot be distributed; the "
                "optimizer must be created on the devices, so let fit compile the model"
            )
        model = plan.replicate(model)
    if compile:
        with distributed():
            compile_model(model, config, loss=loss, metrics=metrics, total_steps=total_steps)
    elif model.optimizer is None:
        raise ConfigError("fit(compile=False) needs a model that was already compiled")

    has_validation = validation_data is not None
    monitor = _monitor(config.early_stopping_monitor, has_validation)
    checkpoint_monitor = _monitor(config.checkpoint.monitor, has_validation)
    history = TrainingHistory(monitor=monitor, mode=monitor_mode(monitor))

    manager, resume_from, initial_epoch, first_step = None, None, 0, 0
    if config.checkpoint.directory is not None:
        manager = CheckpointManager(config.checkpoint.directory, config.checkpoint.max_checkpoints)
        if config.resume:
            with distributed():
                found = manager.restore_latest(model)
            if found is None:
                warnings.warn(
                    f"training.resume: no complete checkpoint in {manager.directory}; starting afresh",
                    stacklevel=2,
                )
            else:
                _, state, extra = found
                resume_from = (state, extra)
                initial_epoch = state["epoch"] + 1
                history = TrainingHistory.from_dict(state["history"])
                if state.get("step"):
                    # Written within epoch `state["epoch"]`: finish that epoch from the
                    # next batch, then go on as from the epoch's own checkpoint.
                    if not hasattr(x, "from_step"):
                        raise CheckpointError(
                            f"cannot resume from {found[0]}: it was written after batch "
                            f"{state['step']} of an epoch, and only a stream that can start at "
                            f"a batch (ShardDataset, PairStream) resumes there, not "
                            f"{type(x).__name__}"
                        )
                    initial_epoch, first_step = state["epoch"], state["step"]
                    x, stream_callbacks = streaming.start_at_step(x, first_step, stream_callbacks)
                    steps_per_epoch = len(x)
                history.resumed_from_epoch, history.resumed_from_step = initial_epoch, first_step
    if last_good is not None:
        if last_good.snapshot is not None:
            initial_epoch = last_good.restore(model)
            if last_good.snapshot.history is not None:
                history = TrainingHistory.from_dict(last_good.snapshot.history)
        last_good.training_history = history
    finished = resume_from is not None and (
        initial_epoch >= config.epochs or stopped_early(resume_from[0])
    )
    if finished or initial_epoch >= config.epochs:
        if finished:
            # The run had finished (or was killed after its last checkpoint): end it as
            # an uninterrupted run ends, with early stopping's best weights.
            with distributed():
                history = _finish_resumed(
                    model,
                    config,
                    manager,
                    resume_from,
                    history,
                    monitor,
                    checkpoint_monitor,
                    save_model_fn,
                )
        if model is not caller_model:
            copy_variables(model, caller_model)
        return history

    log_callbacks, json_path = _log_callbacks(
        config, initial_epoch if resume_from is not None else None
    )
    nan_guard = NanGuard()
    stateful: list[keras.callbacks.Callback] = []
    if config.early_stopping_patience > 0:
        stateful.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=config.early_stopping_patience,
                min_delta=config.early_stopping_min_delta,
                mode=monitor_mode(monitor),
                restore_best_weights=config.restore_best_weights,
            )
        )
    stateful.extend(build_schedule_callbacks(config.lr_schedule, monitor))
    all_callbacks = [
        HistoryRecorder(history, json_path),
        nan_guard,
        *stateful,
        *log_callbacks,
        *callbacks,
    ]
    if config.track_memory:
        all_callbacks.insert(0, memory.MemoryTracker())
    if last_good is not None:
        all_callbacks.append(last_good)
    if manager is not None:
        every_steps = config.checkpoint.every_steps
        checkpointing = dict(
            monitor=checkpoint_monitor,
            mode=config.checkpoint.mode,
            save_best=config.checkpoint.save_best,
            stateful_callbacks=tuple(stateful),
            resume_from=resume_from,
            save_model_fn=save_model_fn,
            nan_guard=nan_guard,
        )
        if every_steps is None:
            all_callbacks.append(CheckpointCallback(manager, history, **checkpointing))
        else:
            all_callbacks.append(
                StepCheckpointCallback(
                    manager,
                    history,
                    every_steps=every_steps,
                    first_step=first_step,
                    **checkpointing,
                )
            )
    if first_step:
        all_callbacks.append(_StopAfterEpoch(initial_epoch))

    feed = dict(
        batch_size=config.batch_size,
        shuffle=config.shuffle,
        seed=config.seed or 0,
        initial_epoch=initial_epoch,
    )
    arrays = (x, y, sample_weight, validation_data)
    use_fused = (
        not stream
        and plan is None
        and choose_engine(config.engine, model, arrays, all_callbacks) == "fused"
    )
    history.engine = "fused" if use_fused else "keras"
    try:
        with memory.device_scope(config.device):
            if use_fused:
                fused_fit(
                    model,
                    x,
                    y,
                    sample_weight,
                    validation_data=validation_data,
                    epochs=config.epochs,
                    callbacks=all_callbacks,
                    verbose=progress_verbosity(config.verbose),
                    **feed,
                )
            else:
                feeders = []
                if stream:
                    batches = x
                    if isinstance(x, streaming.ShardDataset):
                        x.set_epoch(initial_epoch)
                    feeders = list(stream_callbacks)
                elif keras.backend.backend() == "tensorflow":
                    batches, feeder = shuffled_tf_dataset(x, y, sample_weight, **feed)
                    feeders = [feeder]
                elif plan is not None and plan.needs_even_batches:
                    batches = ShuffledArrays(
                        x, y, sample_weight, multiple_of=plan.num_replicas, **feed
                    )
                    feeders = [batches.epoch_callback()]
                    if validation_data is not None:
                        validation_data = EvenBatches(
                            validation_data, config.batch_size, plan.num_replicas
                        )
                else:
                    batches = ShuffledArrays(x, y, sample_weight, **feed)
                    feeders = [batches.epoch_callback()]
                if isinstance(validation_data, EvenBatches) or streaming.is_stream(validation_data):
                    validation_batch_size = None
                else:
                    validation_batch_size = config.batch_size
                with distributed():
                    model.fit(
                        batches,
                        validation_data=validation_data,
                        validation_batch_size=validation_batch_size,
                        epochs=config.epochs,
                        initial_epoch=initial_epoch,
                        steps_per_epoch=steps_per_epoch if stream else None,
                        callbacks=[*feeders, *all_callbacks],
                        verbose=progress_verbosity(config.verbose),
                        shuffle=False,
                    )
    except Exception as error:
        if memory.is_out_of_memory(error):
            raise memory.out_of_memory_error(error, model, config) from error
        raise
    if model is not caller_model:
        copy_variables(model, caller_model)
    if nan_guard.nan_at is not None:
        kept = manager.latest() if manager is not None else None
        raise TrainingError(
            f"training stopped: the loss became NaN or infinite in epoch {nan_guard.nan_at + 1}. "
            "Lower training.learning_rate, set training.gradient_clip_norm, or check the data for "
            f"NaN/inf. Last good checkpoint: {kept or 'none (checkpoint.directory not set)'}"
        )
    history.stopped_early = any(
        getattr(callback, "stopped_epoch", 0) > 0
        for callback in stateful
        if isinstance(callback, keras.callbacks.EarlyStopping)
    )
    if first_step:
        # The epoch resumed within is done and checkpointed: the rest of the run
        # resumes from that checkpoint, as after a kill at the epoch's end.
        resumed = fit(caller_model, **continuation)
        resumed.resumed_from_epoch, resumed.resumed_from_step = initial_epoch, first_step
        return resumed
    return history


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
