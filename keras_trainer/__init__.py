"""keras_trainer: config-driven training, tuning, export and serving of Keras 3 models."""

from keras_trainer.errors import (
    BackendNotSupportedError,
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    InferenceError,
    IRParseError,
    KerasTrainerError,
    ModelError,
    TrainingError,
    TuningError,
)
from keras_trainer.version import __version__
