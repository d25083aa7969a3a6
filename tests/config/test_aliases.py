"""The design documents' config names are aliases of ours (keras_trainer.config.aliases)."""

import pytest

from keras_trainer.config import load_config
from keras_trainer.config.aliases import apply_aliases
from keras_trainer.config.schema import TrainingConfig
from keras_trainer.errors import ConfigError

pytestmark = pytest.mark.one_backend  # no Keras code runs here


@pytest.mark.parametrize(
    "theirs, ours",
    [
        ({"use_mixed_precision": True}, {"mixed_precision": "float16"}),
        ({"gradient_clip_val": 1.0}, {"gradient_clip_norm": 1.0}),
        ({"scheduler": "plateau"}, {"lr_schedule": {"name": "reduce_on_plateau"}}),
        (
            {"scheduler": "warmup_cosine", "warmup_steps": 1000},
            {"lr_schedule": {"name": "warmup_cosine", "warmup_steps": 1000}},
        ),
        ({"loss_function": "CrossEntropyLoss"}, {"loss": "sparse_categorical_crossentropy"}),
        # The target key lands with training.checkpoint.save_best_only (issue 31, item 5).
        ({"save_best_only": True}, {"checkpoint": {"save_best_only": True}}),
        ({"optimizer": "AdamW"}, {"optimizer": {"name": "adamw"}}),
        ({"optimizer": {"name": "sgd"}}, {"optimizer": {"name": "sgd"}}),
        ({"device": "cuda"}, {"device": "gpu"}),
    ],
)
def test_alias_maps_to_the_current_key(theirs, ours):
    assert apply_aliases(TrainingConfig, theirs, "training") == ours


def test_the_documents_advanced_training_config_loads():
    training = {
        "epochs": 50,
        "batch_size": 16,
        "learning_rate": 5e-5,
        "optimizer": "adamw",
        "scheduler": "warmup_cosine",
        "warmup_steps": 1000,
        "gradient_clip_val": 1.0,
        "gradient_accumulation_steps": 2,
        "use_mixed_precision": True,
        "early_stopping_patience": 10,
    }
    config = load_config({"training": training}).training
    assert (config.optimizer.name, config.lr_schedule.name) == ("adamw", "warmup_cosine")
    assert (config.lr_schedule.warmup_steps, config.gradient_clip_norm) == (1000, 1.0)
    assert config.mixed_precision == "float16"


def test_alias_and_its_key_together_must_agree():
    with pytest.raises(ConfigError, match=r"training\.gradient_clip_val: alias of training\."):
        load_config({"training": {"gradient_clip_val": 1.0, "gradient_clip_norm": 2.0}})


def test_strict_alias_names_itself_for_a_bad_value():
    with pytest.raises(ConfigError, match=r"training\.use_mixed_precision: must be one of true"):
        load_config({"training": {"use_mixed_precision": "yes"}})
