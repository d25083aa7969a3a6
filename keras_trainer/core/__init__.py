"""The training core: fit, persistence, checkpoints, schedules. It knows no model family."""

from keras_trainer.core.checkpoints import CheckpointManager
from keras_trainer.core.fit import compile_model, fit
from keras_trainer.core.history import TrainingHistory
from keras_trainer.core.models import build_model, model_types, register_model_builder
from keras_trainer.core.persistence import load_model, read_metadata, save_model
from keras_trainer.core.seeding import set_seed
