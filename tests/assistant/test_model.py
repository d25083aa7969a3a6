import keras
import numpy as np
import pytest

from keras_trainer.assistant.generation import reference_greedy_decode
from keras_trainer.assistant.layers import BidirectionalEncoder
from keras_trainer.assistant.model import (
    MaskedTokenAccuracy,
    build_decoder_step_model,
    build_encoder_model,
    seed_parameter_count,
)
from tests.assistant.conftest import FAST_CONFIG, MAX_LENGTH, to_numpy

E, H = FAST_CONFIG["embedding_dim"], FAST_CONFIG["hidden_dim"]


def _seed_torch_module(vocab_size, embedding_dim, hidden_dim):
    pytest.importorskip("torch")
    from benchmarks.seed_assistant_torch import GenshinAssistant

    return GenshinAssistant(vocab_size, embedding_dim, hidden_dim)


def test_parameter_count_equals_seed_layer_shapes(trained_plain):
    vocab = trained_plain.tokenizer.vocab_size
    assert trained_plain.model.count_params() == seed_parameter_count(vocab, E, H)


def test_parameter_count_equals_seed_pytorch_module(trained_plain):
    vocab = trained_plain.tokenizer.vocab_size
    for v, e, h in ((40, 6, 5), (300, 128, 256), (vocab, E, H)):
        seed = _seed_torch_module(v, e, h)
        count = sum(p.numel() for p in seed.parameters() if p.requires_grad)
        assert seed_parameter_count(v, e, h) == count
    weights = trained_plain.model.trainable_weights
    assert sum(int(np.prod(w.shape)) for w in weights) == count


@pytest.mark.parametrize("which", ["copy", "plain"])
def test_decoder_step_model_matches_teacher_forcing_logits(which, request, bundled_pairs):
    assistant = request.getfixturevalue("trained_assistant" if which == "copy" else "trained_plain")
    model = assistant.model
    inputs = assistant.encode_queries([q for q, _ in bundled_pairs[:6]])
    q = inputs["query"][:3]
    sources = [q] + ([inputs["query_extended"][:3]] if "query_extended" in inputs else [])
    r = inputs["query"][3:6, :5].copy()
    r[:, 0] = 2
    x = {"query": q, "response_in": r}
    if len(sources) > 1:
        x["query_extended"] = sources[1]
    full = to_numpy([model(x)])[0]
    values, *states = to_numpy(build_encoder_model(model)(q))
    step = build_decoder_step_model(model)
    for t in range(5):
        logits, *states = to_numpy(step([r[:, t : t + 1], *sources, values, *states]))
        np.testing.assert_allclose(logits, full[:, t], atol=1e-4)


def test_padding_does_not_change_encoder_outputs(trained_assistant, query_inputs):
    encoder = build_encoder_model(trained_assistant.model)
    query_ids = query_inputs["query"]
    length = int((query_ids[0] != 0).sum())
    q = query_ids[:1, :length]
    short = to_numpy(encoder(q))
    padded = to_numpy(encoder(np.pad(q, ((0, 0), (0, 5)))))
    np.testing.assert_allclose(short[0], padded[0][:, :length], atol=1e-5)
    for a, b in zip(short[1:], padded[1:]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fused_encoder_equals_separate_directions():
    # The encoder runs both directions in one loop; each direction's own layer
    # (a plain scan, run backwards for the backward one) must agree with it.
    encoder = BidirectionalEncoder(5, 2, 0.0)
    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")
    mask = np.ones((3, 7), bool)
    mask[0, 4:] = False
    outputs, states = encoder(x, padding_mask=mask)
    h, expected_states = x, []
    for forward, backward in zip(encoder.forward_layers, encoder.backward_layers):
        out_f, h_f, c_f = forward(h, padding_mask=mask)
        out_b, h_b, c_b = backward(h, padding_mask=mask)
        h = keras.ops.concatenate([out_f, out_b], -1)
        expected_states += [
            keras.ops.concatenate([h_f, h_b], -1),
            keras.ops.concatenate([c_f, c_b], -1),
        ]
    np.testing.assert_allclose(*to_numpy([outputs, h]), atol=1e-5)
    for a, b in zip(to_numpy(states), to_numpy(expected_states)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_compiled_greedy_equals_reference_decode(trained_assistant, query_inputs, greedy_ids):
    reference = reference_greedy_decode(trained_assistant.model, query_inputs, MAX_LENGTH)
    np.testing.assert_array_equal(greedy_ids, reference)


def test_beam_width_one_equals_greedy(trained_assistant, query_inputs, greedy_ids):
    beam = trained_assistant.generate_ids(
        query_inputs, method="beam", max_length=MAX_LENGTH, beam_width=1
    )
    np.testing.assert_array_equal(beam, greedy_ids)


def test_masked_token_accuracy_ignores_padding():
    metric = MaskedTokenAccuracy()
    y_true = np.array([[5, 6, 0, 0]])
    logits = np.zeros((1, 4, 8), "float32")
    logits[0, 0, 5] = 1  # right
    logits[0, 1, 7] = 1  # wrong
    logits[0, 2, 0] = 1  # padding: not counted even though "right"
    metric.update_state(y_true, logits)
    assert float(metric.result()) == pytest.approx(0.5)
