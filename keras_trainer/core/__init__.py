"""The training core: fit, persistence, checkpoints, schedules. It knows no model family.

Names are imported on first use, so that modules of the core that need only
NumPy (`core.evaluating.predictions`, `core.recording.runs`) load without Keras.
"""

from keras_trainer.registry import lazy_exports

_EXPORTS = {
    "CheckpointManager": "keras_trainer.core.saving.checkpoints",
    "compile_model": "keras_trainer.core.training.fit",
    "fit": "keras_trainer.core.training.fit",
    "TrainingRun": "keras_trainer.core.training.fit",
    "TrainingHistory": "keras_trainer.core.recording.history",
    "build_model": "keras_trainer.core.building.models",
    "model_types": "keras_trainer.core.building.models",
    "register_model_builder": "keras_trainer.core.building.models",
    "load_model": "keras_trainer.core.saving.persistence",
    "read_metadata": "keras_trainer.core.saving.persistence",
    "save_model": "keras_trainer.core.saving.persistence",
    "set_seed": "keras_trainer.core.training.seeding",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
