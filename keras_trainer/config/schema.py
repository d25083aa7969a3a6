"""The config schema: every option of keras_trainer, declared once.

A config is a JSON object with the sections below, shared by every model family
(families add their own sections, e.g. the JIT family's `features` and `output`, in
their `config` module). `config/model_config.json` (only `model` and `training`, a
handful of keys) is a valid config as is: everything it leaves out has the
documented default.

Example:

>>> config = TrainerConfig.from_dict({"model": {"input_dim": 12}})
>>> config.model.hidden_layers
[64, 32]
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal, Optional, Union

from keras_trainer.config.aliases import MODEL_ALIASES, TRAINING_ALIASES, Alias
from keras_trainer.config.columns import ColumnConfig
from keras_trainer.config.fields import ConfigSection, option
from keras_trainer.config.tuning import TuningConfig
from keras_trainer.errors import ConfigError

Activation = Literal[
    "relu", "tanh", "sigmoid", "gelu", "elu", "selu", "swish", "silu", "leaky_relu", "linear"
]
OutputActivation = Literal["softmax", "sigmoid", "linear"]
Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "glorot",
    "xavier",
    "he_uniform",
    "he_normal",
    "he",
    "orthogonal",
    "lecun_normal",
]
# Other names for Keras initializers, accepted wherever a config names one
# (`model.kernel_initializer`, the tabular factory's `weight_init`).
INITIALIZER_ALIASES = {"xavier": "glorot_uniform", "glorot": "glorot_uniform", "he": "he_normal"}


@dataclasses.dataclass
class ModelConfig(ConfigSection):
    """The network: its type, its sizes and its layers."""

    # The design documents' names for these keys (`keras_trainer.config.aliases`).
    aliases: ClassVar[tuple[Alias, ...]] = MODEL_ALIASES

    type: str = option(
        "mlp",
        description=(
            "Model builder name. 'mlp' is a dense network on flat features (the JIT strategy network); "
            "families register more (e.g. 'feed_forward', 'lstm', 'cnn_lstm')."
        ),
    )
    input_dim: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description="Number of input features; null takes it from the data.",
    )
    hidden_layers: list[int] = option(
        default_factory=lambda: [64, 32],
        exclusive_minimum=0,
        description="Units of each hidden Dense layer, input side first.",
    )
    output_dim: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description=(
            "Number of outputs (classes); null lets the family set it: one per strategy for "
            "the JIT model, one per class (or 1) from the labels for tabular nets."
        ),
    )
    activation: Activation = option("relu", description="Activation of the hidden layers.")
    output_activation: OutputActivation = option(
        "softmax", description="Activation of the output layer."
    )
    dropout: float = option(
        0.0, minimum=0.0, exclusive_maximum=1.0, description="Dropout rate after each hidden layer."
    )
    batch_norm: bool = option(
        False, description="Batch normalization after each hidden Dense layer (before activation)."
    )
    kernel_initializer: Initializer = option(
        "glorot_uniform",
        description=(
            "Weight initializer of Dense layers ('xavier' and 'glorot' = glorot_uniform, "
            "'he' = he_normal)."
        ),
    )
    lstm_hidden_size: int = option(
        64, exclusive_minimum=0, description="LSTM units (sequence models only)."
    )
    lstm_num_layers: int = option(
        2, exclusive_minimum=0, description="Stacked LSTM layers (sequence models only)."
    )
    lstm_bidirectional: bool = option(
        False, description="Bidirectional LSTM layers (sequence models only)."
    )
    cnn_channels: list[int] = option(
        default_factory=lambda: [32, 64],
        exclusive_minimum=0,
        description="Filters of each Conv1D layer (cnn_lstm only).",
    )
    cnn_kernel_sizes: list[int] = option(
        default_factory=lambda: [3, 3],
        exclusive_minimum=0,
        description="Kernel size of each Conv1D layer (cnn_lstm only).",
    )
    sequence_length: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description="Time steps per input window (sequence models); null takes it from the data.",
    )

    def validate(self, path: str) -> None:
        if len(self.cnn_channels) != len(self.cnn_kernel_sizes):
            raise ConfigError(
                f"{_at(path, 'cnn_kernel_sizes')}: must have one entry per cnn_channels entry "
                f"({len(self.cnn_channels)}), got {len(self.cnn_kernel_sizes)}"
            )


@dataclasses.dataclass
class OptimizerConfig(ConfigSection):
    """The Keras optimizer and its settings."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = option(
        "adam", description="Keras optimizer."
    )
    weight_decay: float = option(
        0.0,
        minimum=0.0,
        description="Decoupled weight decay applied by the optimizer; 0 means none.",
    )
    momentum: float = option(
        0.0, minimum=0.0, exclusive_maximum=1.0, description="Momentum (sgd and rmsprop)."
    )
    nesterov: bool = option(False, description="Nesterov momentum (sgd).")
    beta_1: float = option(
        0.9, exclusive_minimum=0.0, exclusive_maximum=1.0, description="Adam beta_1."
    )
    beta_2: float = option(
        0.999, exclusive_minimum=0.0, exclusive_maximum=1.0, description="Adam beta_2."
    )
    epsilon: float = option(1e-7, exclusive_minimum=0.0, description="Numerical epsilon.")

    def validate(self, path: str) -> None:
        if self.nesterov and self.name != "sgd":
            raise ConfigError(
                f"{_at(path, 'nesterov')}: only the 'sgd' optimizer has Nesterov momentum"
            )
        if self.momentum and self.name not in ("sgd", "rmsprop"):
            raise ConfigError(
                f"{_at(path, 'momentum')}: only 'sgd' and 'rmsprop' take momentum, "
                f"optimizer is {self.name!r}"
            )


@dataclasses.dataclass
class LRScheduleConfig(ConfigSection):
    """How the learning rate changes during training."""

    name: Literal["none", "reduce_on_plateau", "cosine", "step", "exponential", "warmup_cosine"] = (
        option("none", description="Schedule kind.")
    )
    factor: float = option(
        0.5,
        exclusive_minimum=0.0,
        exclusive_maximum=1.0,
        description="reduce_on_plateau: multiply the LR by this on a plateau.",
    )
    patience: int = option(
        5, minimum=0, description="reduce_on_plateau: epochs without improvement first."
    )
    min_lr: float = option(1e-6, minimum=0.0, description="reduce_on_plateau: lowest LR.")
    decay_steps: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description=(
            "step/exponential: optimizer steps per decay; cosine/warmup_cosine: steps "
            "of the decay (null: all training steps)."
        ),
    )
    decay_rate: float = option(
        0.5,
        exclusive_minimum=0.0,
        maximum=1.0,
        description="step/exponential: LR multiplier per decay_steps.",
    )
    alpha: float = option(
        0.0, minimum=0.0, maximum=1.0, description="cosine: final LR as a fraction of the initial."
    )
    warmup_steps: int = option(
        0, minimum=0, description="warmup_cosine: optimizer steps of linear warm-up from 0."
    )

    def validate(self, path: str) -> None:
        if self.name == "warmup_cosine" and self.warmup_steps == 0:
            raise ConfigError(
                f"{_at(path, 'warmup_steps')}: warmup_cosine needs warmup_steps > 0, got 0"
            )
        if self.name == "step" and self.decay_steps is None:
            raise ConfigError(f"{_at(path, 'decay_steps')}: the 'step' schedule needs decay_steps")


@dataclasses.dataclass
class CheckpointConfig(ConfigSection):
    """Crash-safe checkpoints of the best and the latest epoch."""

    directory: Optional[str] = option(
        None, description="Where checkpoints go; null turns checkpointing off."
    )
    monitor: str = option("val_loss", description="Metric that decides the best checkpoint.")
    mode: Literal["auto", "min", "max"] = option(
        "auto", description="Whether lower or higher `monitor` is better ('auto' guesses)."
    )
    max_checkpoints: int = option(
        3, exclusive_minimum=0, description="How many latest-epoch checkpoints to keep."
    )
    save_best: bool = option(True, description="Keep a separate best checkpoint.")
    save_best_only: bool = option(
        False,
        description=(
            "Write an epoch's checkpoint only when `monitor` improved (as Keras' "
            "ModelCheckpoint); resuming then continues from the best epoch."
        ),
    )
    every_epochs: int = option(
        1,
        exclusive_minimum=0,
        description=(
            "Write the epoch checkpoint every N epochs (and at the last epoch or an early "
            "stop); best.keras is still checked every epoch."
        ),
    )
    every_steps: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description=(
            "Also checkpoint every N batches within an epoch, so that a killed run resumes at "
            "that batch (streams that can start at a batch: ShardDataset, PairStream); null: "
            "at epoch ends only."
        ),
    )

    def validate(self, path: str) -> None:
        if self.save_best_only and not self.save_best:
            raise ConfigError(
                f"{_at(path, 'save_best_only')}: needs save_best (the best checkpoint is what it "
                "keeps); set save_best: true or save_best_only: false"
            )
        if self.save_best_only and self.every_epochs != 1:
            raise ConfigError(
                f"{_at(path, 'every_epochs')}: give either save_best_only or every_epochs, not both"
            )


@dataclasses.dataclass
class LoggingConfig(ConfigSection):
    """Training logs written next to the checkpoints."""

    directory: Optional[str] = option(
        None, description="Log folder; null uses the checkpoint directory, or no logs."
    )
    tensorboard: bool = option(False, description="Write TensorBoard event files.")
    csv: bool = option(True, description="Write history.csv (one row per epoch).")
    json_history: bool = option(True, description="Write history.json after each epoch.")
    wandb: bool = option(
        False,
        description=(
            "Log the same per-epoch metrics as history.csv to Weights & Biases "
            "(pip install 'keras-trainer[wandb]')."
        ),
    )
    wandb_project: str = option("keras-trainer", description="W&B project of the run.")
    wandb_mode: Literal["offline", "online", "disabled"] = option(
        "offline",
        description="W&B mode; 'offline' writes the run under the log folder and needs no network.",
    )


@dataclasses.dataclass
class DistributionConfig(ConfigSection):
    """`training.distribution`: data-parallel training over several devices."""

    strategy: Literal["none", "data_parallel"] = option(
        "none",
        description=(
            "`data_parallel` replicates the model on every device and splits each batch "
            "between them (Keras' `DataParallel` on JAX, `tf.distribute.MirroredStrategy` on "
            "TensorFlow; torch is not supported)."
        ),
    )
    devices: Union[Literal["all"], int] = option(
        "all",
        description=(
            "How many local devices to use: `all`, or a positive count (the first N "
            "accelerators, or CPU devices when there is no accelerator)."
        ),
    )

    def validate(self, path: str) -> None:
        if not isinstance(self.devices, str) and self.devices < 1:
            raise ConfigError(
                f"{_at(path, 'devices')}: must be 'all' or a positive integer, got {self.devices}"
            )


@dataclasses.dataclass
class TrainingConfig(ConfigSection):
    """How `fit` trains: batches, epochs, optimizer, schedule, loss and safety nets."""

    # The design documents' names for these keys (`keras_trainer.config.aliases`).
    aliases: ClassVar[tuple[Alias, ...]] = TRAINING_ALIASES

    batch_size: int = option(32, exclusive_minimum=0, description="Samples per batch.")
    epochs: int = option(100, exclusive_minimum=0, description="Maximum number of epochs.")
    validation_split: float = option(
        0.2,
        minimum=0.0,
        exclusive_maximum=1.0,
        description="Fraction of training data held out for validation when none is given.",
    )
    learning_rate: float = option(
        0.001, exclusive_minimum=0.0, description="Initial learning rate."
    )
    early_stopping_patience: int = option(
        10, minimum=0, description="Epochs without improvement before stopping; 0 turns it off."
    )
    early_stopping_monitor: str = option(
        "val_loss", description="Metric watched by early stopping."
    )
    early_stopping_min_delta: float = option(
        0.0, minimum=0.0, description="Smallest change that counts as an improvement."
    )
    restore_best_weights: bool = option(
        True, description="After early stopping, restore the weights of the best epoch."
    )
    optimizer: OptimizerConfig = option(
        default_factory=OptimizerConfig, description="Optimizer settings."
    )
    lr_schedule: LRScheduleConfig = option(
        default_factory=LRScheduleConfig, description="Learning-rate schedule."
    )
    loss: str = option(
        "categorical_crossentropy",
        description=(
            "Loss by name: categorical_crossentropy, sparse_categorical_crossentropy, "
            "binary_crossentropy, focal, mse, mae, l1, huber, expected_slowdown (cost-aware: "
            "targets are per-alternative speeds t_min / t_k), or a registered custom loss."
        ),
    )
    label_smoothing: float = option(
        0.0,
        minimum=0.0,
        exclusive_maximum=1.0,
        description="Label smoothing (cross-entropy, focal).",
    )
    focal_gamma: float = option(
        2.0, minimum=0.0, description="Focusing parameter of the focal loss."
    )
    cross_entropy_weight: float = option(
        0.0,
        minimum=0.0,
        description="expected_slowdown: weight of the cross-entropy term mixed into the loss.",
    )
    huber_delta: float = option(1.0, exclusive_minimum=0.0, description="Delta of the Huber loss.")
    loss_weights: Optional[list[float]] = option(
        None,
        minimum=0.0,
        description="Per-output weights of a multi-task loss (one per output column).",
    )
    metrics: list[str] = option(
        default_factory=lambda: ["accuracy"], description="Keras metrics reported during training."
    )
    class_weights: Union[Literal["balanced", "sqrt"], dict[Union[int, str], float], None] = option(
        None,
        minimum=0.0,
        description=(
            "Loss weight of each class, for imbalanced classification: 'balanced' "
            "(n / (classes * count), as scikit-learn), 'sqrt' (its square root, averaging 1 "
            "per sample) or {class: weight} (class index, or name where the family knows "
            "the names; others weigh 1). Applies to the training rows; null: unweighted."
        ),
    )
    seed: Optional[int] = option(
        42, minimum=0, description="Seeds Python, NumPy and the backend; null leaves them random."
    )
    shuffle: bool = option(True, description="Shuffle training data each epoch.")
    verbose: Literal[0, 1, 2] = option(
        1, description="0 silent, 1 progress bar, 2 one line per epoch."
    )
    gradient_clip_norm: Optional[float] = option(
        None, exclusive_minimum=0.0, description="Clip each gradient to this L2 norm."
    )
    gradient_clip_value: Optional[float] = option(
        None, exclusive_minimum=0.0, description="Clip gradient elements to [-value, value]."
    )
    steps_per_execution: int = option(
        1,
        exclusive_minimum=0,
        description=(
            "Batches run per compiled call (Keras `steps_per_execution`); raise it for "
            "small models, where per-step dispatch dominates. Batch-level callbacks then "
            "see every N-th batch. Not available on the torch backend (Keras runs one step "
            "per call there)."
        ),
    )
    gradient_accumulation_steps: int = option(
        1,
        exclusive_minimum=0,
        description="Batches whose gradients are averaged per optimizer step.",
    )
    mixed_precision: Literal["off", "float16", "bfloat16"] = option(
        "off", description="Compute dtype policy; float16 uses loss scaling."
    )
    checkpoint: CheckpointConfig = option(
        default_factory=CheckpointConfig, description="Checkpoint settings."
    )
    logging: LoggingConfig = option(default_factory=LoggingConfig, description="Log settings.")
    resume: bool = option(
        False, description="Continue from the latest checkpoint in checkpoint.directory."
    )
    engine: Literal["auto", "keras", "fused"] = option(
        "auto",
        description=(
            "Training loop: 'keras' (Keras fit, one compiled call per batch), 'fused' (the "
            "arrays on the device, a whole epoch per compiled call; callbacks see epochs), "
            "or 'auto' (fused when the data fits in device memory and no callback needs "
            "every batch; logs why not)."
        ),
    )
    steps_per_epoch: Optional[int] = option(
        None,
        exclusive_minimum=0,
        description=(
            "Batches per epoch of a stream without a length (a generator); null uses "
            "the stream's length."
        ),
    )
    auto_batch_size: bool = option(
        False,
        description=(
            "On out-of-memory, halve batch_size and double gradient_accumulation_steps "
            "(the effective batch stays the same), then resume from the last good epoch."
        ),
    )
    device: Optional[Literal["auto", "cpu", "gpu"]] = option(
        None,
        description=(
            "Where to train: null lets Keras choose; 'auto' uses an accelerator when one "
            "is usable and otherwise falls back to the CPU with a warning."
        ),
    )
    track_memory: bool = option(
        True,
        description=(
            "Record peak host RSS (peak_host_rss_mb) and, on an accelerator, peak device "
            "memory (peak_device_memory_mb) of each epoch in the history and logs."
        ),
    )
    remat: Literal["off", "full", "activations", "larger_than"] = option(
        "off",
        description=(
            "Gradient checkpointing (keras.RematScope mode) for layers built by the "
            "trainers: recompute activations in the backward pass to save memory."
        ),
    )
    remat_size_threshold: int = option(
        1048576,
        exclusive_minimum=0,
        description="remat='larger_than': rematerialize layers whose output has more elements.",
    )
    deterministic: bool = option(
        False,
        description=(
            "Turn on every backend's determinism switches (TF op determinism, torch "
            "deterministic algorithms, XLA deterministic ops): bit-identical reruns, "
            "slower on GPUs (see docs/training.md)."
        ),
    )
    distribution: DistributionConfig = option(
        default_factory=DistributionConfig,
        description="Multi-device data-parallel training (`batch_size` is the global batch).",
    )

    def validate(self, path: str) -> None:
        if self.gradient_clip_norm is not None and self.gradient_clip_value is not None:
            raise ConfigError(
                f"{_at(path, 'gradient_clip_value')}: set either gradient_clip_norm or "
                "gradient_clip_value, not both"
            )
        if self.resume and self.checkpoint.directory is None:
            raise ConfigError(f"{_at(path, 'resume')}: resume needs checkpoint.directory to be set")


@dataclasses.dataclass
class DataConfig(ConfigSection):
    """Where the command line reads its dataset, and how much of it is held out."""

    path: Optional[str] = option(
        None, description="Dataset JSON; null uses the bundled sample dataset."
    )
    test_split: float = option(
        0.2,
        minimum=0.0,
        exclusive_maximum=1.0,
        description=(
            "Fraction held out for the final evaluation: rows drawn at random with "
            "`training.seed`, stratified (each class in its share) for classification; "
            "the last rows when `time_series` is true."
        ),
    )
    time_series: bool = option(
        False,
        description=(
            "The rows are in time order: tables are split by position (the first rows "
            "train, the next validate, the last are the test) instead of shuffled. "
            "Sequence models (lstm, cnn_lstm) always split by time."
        ),
    )
    shards: Optional[str] = option(
        None,
        description=(
            "A folder or glob of CSV, Parquet or .npy shards streamed lazily through "
            "fit (`keras_trainer.core.inputs.streaming.ShardDataset`)."
        ),
    )
    target_columns: list[str] = option(
        default_factory=lambda: ["-1"],
        min_items=1,
        description=(
            "Target columns of the shards: names for CSV/Parquet, column indices "
            '("-1" = last) for .npy; every other column is a feature.'
        ),
    )
    num_workers: int = option(
        1, exclusive_minimum=0, description="Threads loading shard batches in parallel."
    )
    prefetch: int = option(
        4, exclusive_minimum=0, description="Batches loaded ahead of training (queue size)."
    )
    shuffle_buffer: int = option(
        10000,
        exclusive_minimum=0,
        description="Rows shuffled together within the stream (shard order is shuffled too).",
    )
    columns: dict[str, ColumnConfig] = option(
        default_factory=dict,
        description=(
            "Typed table columns by name (type number, category, binary, id or ignore, and "
            "their preprocessing); columns left out are inferred from the training rows."
        ),
    )


@dataclasses.dataclass
class TrainerConfig(ConfigSection):
    """A whole keras_trainer config file: the sections every model family shares.

    Families extend it with their own sections (`keras_trainer.jit.config.JITConfig`
    adds `features` and `output`); `keras_trainer.registry.CONFIG_FILES` lists them.
    """

    model: ModelConfig = option(default_factory=ModelConfig, description="The network.")
    training: TrainingConfig = option(default_factory=TrainingConfig, description="Training.")
    data: DataConfig = option(default_factory=DataConfig, description="Dataset location.")
    tuning: TuningConfig = option(
        default_factory=TuningConfig, description="Hyperparameter search (keras-trainer tune)."
    )


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
