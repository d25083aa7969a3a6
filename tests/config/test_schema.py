import json
import os

import jsonschema
import pytest

from keras_trainer.config import TrainerConfig, json_schema, load_config
from keras_trainer.config.fields import json_schema_for
from keras_trainer.errors import ConfigError
from tests.conftest import ROOT

pytestmark = pytest.mark.one_backend  # no Keras code runs here

SEED_CONFIG = os.path.join(ROOT, "config", "model_config.json")


# The JIT design document's config, as the document prints it.
DOCUMENT_CONFIG = {
    "model": {
        "input_dim": 12,
        "hidden_layers": [64, 32],
        "output_dim": 5,
        "activation": "relu",
        "output_activation": "softmax",
    },
    "training": {
        "batch_size": 32,
        "epochs": 100,
        "validation_split": 0.2,
        "learning_rate": 0.001,
        "early_stopping_patience": 10,
    },
}


def test_seed_config_is_the_documents_config_and_valid_as_is():
    with open(SEED_CONFIG, encoding="utf-8") as handle:
        assert json.load(handle) == DOCUMENT_CONFIG
    config = load_config(SEED_CONFIG)
    assert (config.training.epochs, config.training.early_stopping_patience) == (100, 10)


def test_jit_configs_schedule_the_learning_rate_unless_they_say_otherwise():
    from keras_trainer.jit.config import load_jit_config

    # The document's `train` schedules the learning rate; its config names no schedule.
    assert load_jit_config(SEED_CONFIG).training.lr_schedule.name == "reduce_on_plateau"
    tuned = load_jit_config(os.path.join(ROOT, "config", "jit_tuned.json")).training
    assert (tuned.epochs, tuned.early_stopping_patience, tuned.lr_schedule.name) == (
        300,
        30,
        "none",
    )
    cosine = load_jit_config({"training": {"scheduler": "cosine"}}).training.lr_schedule
    assert cosine.name == "cosine"


def test_defaults_fill_what_the_seed_leaves_out():
    config = load_config(SEED_CONFIG)
    assert config.model.dropout == 0.0
    assert config.training.optimizer.name == "adam"
    assert config.training.lr_schedule.name == "none"
    assert config.training.loss == "categorical_crossentropy"
    assert config.training.seed == 42


def test_negative_layer_size_names_the_key_path_and_value():
    with pytest.raises(
        ConfigError, match=r"model\.hidden_layers\[1\]: must be a positive integer, got -3"
    ):
        load_config({"model": {"hidden_layers": [64, -3]}})


def test_unknown_key_suggests_the_closest_valid_key():
    with pytest.raises(
        ConfigError, match=r"model\.hiden_layers: unknown key; did you mean 'hidden_layers'"
    ):
        load_config({"model": {"hiden_layers": [8]}})


def test_wrong_type_names_the_key_path():
    with pytest.raises(ConfigError, match=r"training\.batch_size: must be an integer, got 'big'"):
        load_config({"training": {"batch_size": "big"}})


def test_bool_is_not_accepted_as_a_number():
    with pytest.raises(ConfigError, match=r"training\.epochs: must be an integer, got True"):
        load_config({"training": {"epochs": True}})


def test_out_of_range_value_is_rejected():
    with pytest.raises(ConfigError, match=r"training\.validation_split: must be less than 1"):
        load_config({"training": {"validation_split": 1.5}})


def test_misspelled_choice_suggests_a_valid_one():
    with pytest.raises(ConfigError, match=r"training\.optimizer\.name: .*did you mean 'adam'"):
        load_config({"training": {"optimizer": {"name": "adma"}}})


@pytest.mark.parametrize(
    "training, message",
    [
        ({"gradient_clip_norm": 1.0, "gradient_clip_value": 0.5}, "not both"),
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "momentum"),
        ({"lr_schedule": {"name": "warmup_cosine"}}, "warmup_steps"),
        ({"resume": True}, "checkpoint.directory"),
    ],
)
def test_contradictory_options_raise(training, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"training": training})


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "model": {\n    "input_dim": 12,\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"bad\.json:4:3: malformed JSON"):
        load_config(str(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.json"):
        load_config(str(tmp_path / "nope.json"))


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"output_dim": 0}}))
    with pytest.raises(
        ConfigError, match=r"c\.json: model\.output_dim: must be a positive integer, got 0"
    ):
        load_config(str(path))


def test_json_schema_accepts_the_seed_config_and_rejects_unknown_keys():
    schema = json_schema()
    with open(SEED_CONFIG) as handle:
        jsonschema.validate(json.load(handle), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"model": {"hidden_layer": [3]}}, schema)


def test_every_option_is_documented():
    def walk(schema, path):
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{path}.{name} has no description"
            walk(prop, f"{path}.{name}")

    walk(json_schema_for(TrainerConfig), "config")


def test_to_dict_round_trips():
    config = load_config({"training": {"optimizer": {"name": "sgd", "momentum": 0.9}}})
    assert TrainerConfig.from_dict(config.to_dict()) == config


def test_docs_config_md_is_generated_from_the_current_schema():
    from keras_trainer.config.docs import config_reference

    with open(os.path.join(ROOT, "docs", "config.md"), encoding="utf-8") as handle:
        assert handle.read() == config_reference(), (
            "run: python -m keras_trainer.config.docs > docs/config.md"
        )


@pytest.mark.one_backend
def test_output_dim_is_left_to_the_family_unless_the_config_sets_it():
    from keras_trainer.jit.config import load_jit_config

    assert TrainerConfig().model.output_dim is None
    # The JIT model has one output per strategy in its config.
    assert load_jit_config({}).model.output_dim == 5
    three = {"jit": {"strategies": [{"name": "O0"}, {"name": "O2"}, {"name": "O3"}]}}
    assert load_jit_config(three).model.output_dim == 3
    assert load_jit_config({"model": {"output_dim": 4}}).model.output_dim == 4


def test_building_a_model_without_output_dim_names_the_key():
    from keras_trainer.config import ModelConfig
    from keras_trainer.core.building.models import build_model

    with pytest.raises(ConfigError, match="model.output_dim: not set"):
        build_model(ModelConfig(), (12,))
