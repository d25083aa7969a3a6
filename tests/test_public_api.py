"""Every public name of keras_trainer imports, and the older names still resolve."""

import keras_trainer
from keras_trainer import compat


def test_every_public_name_imports():
    missing = [name for name in keras_trainer.__all__ if getattr(keras_trainer, name, None) is None]
    assert missing == []


def test_model_trainer_lives_in_the_jit_wing_and_imports_from_the_top():
    from keras_trainer import ModelTrainer
    from keras_trainer.jit.model.trainer import ModelTrainer as JITModelTrainer

    assert ModelTrainer is JITModelTrainer


def test_compat_aliases_are_the_current_objects():
    from keras_trainer.config import TuningConfig
    from keras_trainer.jit.config import FeatureConfig
    from keras_trainer.tabular import ModelFactory, TabularModelConfig

    assert compat.ModelConfig is TabularModelConfig
    assert compat.KerasModelFactory is ModelFactory
    assert compat.AutoTrainerConfig is TuningConfig
    assert compat.FeatureConfig is FeatureConfig
    assert sorted(dir(compat)) == sorted(compat.ALIASES)
