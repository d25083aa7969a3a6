"""Serving limits: assistant request sizes, the config file and its flags, strict inputs."""

import argparse
import json

import numpy as np
import pytest

from keras_trainer.errors import ConfigError, DataError, LimitError
from keras_trainer.export.input_checks import InputSpec
from keras_trainer.serving import ServedModel, ServingConfig
from keras_trainer.serving.inputs import request_arrays


@pytest.fixture(scope="module")
def limited_assistant(saved_models):
    limits = ServingConfig(max_queries=3, max_query_chars=50, max_length=20, max_beam_width=2)
    return ServedModel(saved_models["assistant"], limits=limits)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"queries": ["hi"] * 4}, "4 queries; this server takes at most 3"),
        ({"query": "a" * 51}, "request.query: 51 characters; this server takes at most 50"),
        ({"queries": ["hi", "b" * 60]}, "request.queries[1]: 60 characters"),
        ({"query": "hi", "max_length": 21}, "request.max_length: 21; this server takes at most 20"),
        ({"query": "hi", "method": "beam", "beam_width": 3}, "request.beam_width: 3"),
    ],
)
def test_assistant_requests_over_a_limit_are_limit_errors(limited_assistant, body, message):
    with pytest.raises(LimitError, match=message.replace("[", r"\[").replace("]", r"\]")):
        limited_assistant.check_queries(body)


def test_assistant_requests_within_the_limits_are_answered(limited_assistant):
    answer = limited_assistant.predict({"queries": ["hi", "train"], "max_length": 20})
    assert len(answer["responses"]) == 2


def test_a_beam_width_of_zero_is_a_data_error(limited_assistant):
    with pytest.raises(DataError, match="request.beam_width: expected an integer from 1 to 2"):
        limited_assistant.check_queries({"query": "hi", "method": "beam", "beam_width": 0})


def test_serving_config_names_the_bad_key():
    with pytest.raises(ConfigError, match="max_rows"):
        ServingConfig.from_dict({"max_rows": 0})
    with pytest.raises(ConfigError, match="max_batch_sise"):
        ServingConfig.from_dict({"max_batch_sise": 8})


def parse_serve(argv):
    from keras_trainer.serving.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", "model.keras", *argv])


def test_flags_override_the_config_file_and_every_option_has_a_flag(tmp_path):
    from keras_trainer.serving.cli import serving_config

    path = tmp_path / "serving.json"
    path.write_text(json.dumps({"max_rows": 7, "max_batch_size": 16, "quiet": True}))
    config = serving_config(parse_serve(["--config", str(path), "--max-batch-size", "4"]))
    assert (config.max_rows, config.max_batch_size, config.quiet) == (7, 4, True)
    assert serving_config(parse_serve([])) == ServingConfig()
    with pytest.raises(ConfigError, match="max_concurrent"):
        serving_config(parse_serve(["--max-concurrent", "0"]))


def test_the_serve_command_names_a_bad_port_before_loading_the_model(capsys):
    from keras_trainer.cli import main

    assert main(["serve", "missing.keras", "--port", "99999"]) == 2
    assert "--port: expected a TCP port from 0 to 65535, got 99999" in capsys.readouterr().err


def test_rows_of_a_sequence_model_are_checked_leaf_by_leaf():
    spec = InputSpec("window", (None, 2, 2), np.dtype("float32"))
    arrays, single = request_arrays([[1, 2], [3, 4]], [spec], [], 10)
    assert single and arrays[0].shape == (1, 2, 2)
    with pytest.raises(
        DataError, match=r"request.inputs\[1\]\[0\]\[1\]: expected a number, got None"
    ):
        request_arrays([[[1, 2], [3, 4]], [[1, None], [3, 4]]], [spec], [], 10)
    with pytest.raises(LimitError, match="3 rows; this server takes at most 2"):
        request_arrays([[[1, 2], [3, 4]]] * 3, [spec], [], 2)
