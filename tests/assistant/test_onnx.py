"""ONNX export of the assistant and greedy generation through ONNX Runtime.

One export per module (the TensorFlow conversion subprocess costs seconds) of
the session's trained assistant; every test reads the same two files.
"""

import os

import numpy as np
import pytest

from keras_trainer.assistant.model import build_decoder_step_model
from keras_trainer.assistant.onnx import (
    DECODER_STEP_FILE,
    ENCODER_FILE,
    OnnxAssistant,
    export_assistant_onnx,
)
from keras_trainer.errors import DataError, InferenceError, QuantizationError
from keras_trainer.export import read_onnx_metadata
from tests.assistant.conftest import MAX_LENGTH, to_numpy

LOGIT_TOLERANCE = 1e-4
# Log-probabilities reach -20, where float32 sums of a few hundred terms differ
# by ~1e-4 between runtimes: a relative term of 1e-5 on top of the absolute one.
LOGIT_RTOL = 1e-5
UNSEEN_QUERY = "could keras_trainer explain dragons to a confused parrot?"


@pytest.fixture(scope="module")
def exported(trained_assistant, tmp_path_factory):
    directory = tmp_path_factory.mktemp("assistant_onnx")
    return directory, export_assistant_onnx(trained_assistant, directory)


@pytest.fixture(scope="module")
def onnx_assistant(exported):
    return OnnxAssistant.load(exported[0])


def test_export_writes_both_files_with_vocabulary_metadata(exported, trained_assistant):
    directory, paths = exported
    assert paths == {
        "encoder": os.path.join(str(directory), ENCODER_FILE),
        "decoder_step": os.path.join(str(directory), DECODER_STEP_FILE),
    }
    for part, path in paths.items():
        metadata = read_onnx_metadata(path)
        assert metadata["part"] == part
        assert metadata["tokenizer"] == trained_assistant.tokenizer.get_config()
        assert metadata["sizes"]["vocab_size"] == trained_assistant.tokenizer.vocab_size
        assert metadata["sizes"]["num_layers"] == 2
        assert metadata["sizes"]["copy_attention"] is True


def test_onnx_greedy_equals_keras_greedy_on_training_queries(
    onnx_assistant, query_inputs, greedy_ids
):
    onnx_ids = onnx_assistant.generate_ids(query_inputs, max_length=MAX_LENGTH)
    assert len(query_inputs["query"]) >= 10
    np.testing.assert_array_equal(onnx_ids, greedy_ids)


def test_onnx_greedy_equals_keras_greedy_on_unseen_query(onnx_assistant, trained_assistant):
    ids = trained_assistant.encode_queries([UNSEEN_QUERY])
    keras_answer = trained_assistant.generate_ids(ids, method="greedy", max_length=MAX_LENGTH)
    onnx_answer = onnx_assistant.generate_ids(ids, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(onnx_answer, keras_answer)
    # Copied words decode from the query's own out-of-vocabulary list.
    assert (
        onnx_assistant.generate_response(UNSEEN_QUERY, max_length=MAX_LENGTH)
        == (trained_assistant.generate_batch([UNSEEN_QUERY], max_length=MAX_LENGTH)[0])
    )


def test_onnx_generate_batch_answers_like_keras(onnx_assistant, trained_assistant, heldout_pairs):
    # Held-out queries: the answers copy words outside the vocabulary.
    queries = [q for q, _ in heldout_pairs[:4]]
    assert onnx_assistant.generate_batch(queries, max_length=MAX_LENGTH) == (
        trained_assistant.generate_batch(queries, max_length=MAX_LENGTH)
    )


def test_decoder_step_logits_match_keras_within_1e_4(
    onnx_assistant, trained_assistant, query_inputs
):
    ids, extended = query_inputs["query"][:8], query_inputs["query_extended"][:8]
    values, *states = onnx_assistant.encode(ids)
    tokens = np.asarray([[2], [5], [9], [3], [7], [1], [4], [6]], dtype="int32")
    onnx_logits, *onnx_states = onnx_assistant.step(tokens, ids, values, states, extended)
    step = build_decoder_step_model(trained_assistant.model)
    keras_logits, *keras_states = to_numpy(
        step([tokens, ids, extended, values, *states], training=False)
    )
    np.testing.assert_allclose(onnx_logits, keras_logits, atol=LOGIT_TOLERANCE, rtol=LOGIT_RTOL)
    for onnx_state, keras_state in zip(onnx_states, keras_states):
        np.testing.assert_allclose(onnx_state, keras_state, atol=LOGIT_TOLERANCE, rtol=0)


def test_load_missing_directory_raises_inference_error(tmp_path):
    with pytest.raises(InferenceError, match="directory not found"):
        OnnxAssistant.load(tmp_path / "nowhere")


def test_load_directory_without_decoder_step_raises_inference_error(tmp_path, exported):
    (tmp_path / ENCODER_FILE).write_bytes(open(exported[1]["encoder"], "rb").read())
    with pytest.raises(InferenceError, match=DECODER_STEP_FILE):
        OnnxAssistant.load(tmp_path)


@pytest.mark.parametrize("query", ["", "   ", None, 42])
def test_bad_query_raises_data_error(onnx_assistant, query):
    with pytest.raises(DataError):
        onnx_assistant.generate_response(query)


def test_long_query_is_cut_with_warning(onnx_assistant):
    with pytest.warns(UserWarning, match="cut to the first"):
        answer = onnx_assistant.generate_response("what " * 60, max_length=4)
    assert isinstance(answer, str)


@pytest.mark.one_backend  # the ONNX conversion and quantization are the same on every backend
def test_dynamic_int8_export_keeps_most_answers_and_shrinks_the_files(
    exported, trained_assistant, training_sample, tmp_path
):
    paths = export_assistant_onnx(trained_assistant, tmp_path, quantize="dynamic")
    for part, path in paths.items():
        assert read_onnx_metadata(path)["quantization"]["mode"] == "dynamic"
        assert os.path.getsize(path) < os.path.getsize(exported[1][part])
    queries = [q for q, _ in training_sample]
    float_answers = OnnxAssistant.load(exported[0]).generate_batch(queries, MAX_LENGTH)
    int8_answers = OnnxAssistant.load(tmp_path).generate_batch(queries, MAX_LENGTH)
    exact = [
        np.mean([a == r for a, (_, r) in zip(answers, training_sample)])
        for answers in (float_answers, int8_answers)
    ]
    print(
        f"exact match on {len(queries)} training queries: float {exact[0]:.3f}, int8 {exact[1]:.3f}"
    )
    assert exact[1] >= exact[0] - 0.15


def test_static_quantization_of_the_assistant_is_refused_before_writing(
    trained_assistant, tmp_path
):
    with pytest.raises(QuantizationError, match="'dynamic' mode only"):
        export_assistant_onnx(trained_assistant, tmp_path / "out", quantize="static")
    assert not (tmp_path / "out").exists()
