import numpy as np
import pytest
import keras

from keras_trainer.assistant.config import AssistantConfig
from keras_trainer.assistant.generation import BeamSearchGenerator, GreedyGenerator, reference_greedy_decode
from keras_trainer.assistant.model import (
    MaskedTokenAccuracy,
    build_assistant_model,
    build_decoder_step_model,
    build_encoder_model,
    seed_parameter_count,
)


def _model(dropout=0.0, vocab=23):
    keras.utils.set_random_seed(0)
    model = build_assistant_model(AssistantConfig(embedding_dim=6, hidden_dim=5, dropout=dropout), vocab)
    # Zero-initialized biases behind a dead ReLU give exactly tied logits, and
    # argmax and top_k may break ties differently; random biases rule ties out.
    for name in ("output_hidden", "output_logits"):
        bias = model.get_layer(name).bias
        bias.assign(np.random.default_rng(2).normal(size=bias.shape).astype("float32"))
    return model


def _queries():
    rng = np.random.default_rng(0)
    q = rng.integers(4, 23, (3, 7)).astype("int32")
    q[0, 4:] = 0
    return q


def test_parameter_count_equals_seed_layer_shapes():
    model = _model(vocab=40)
    assert model.count_params() == seed_parameter_count(40, 6, 5)


def test_parameter_count_equals_seed_pytorch_module():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class GenshinAssistant(nn.Module):  # the seed's __init__, verbatim
        def __init__(self, vocab_size, embedding_dim=128, hidden_dim=256):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.embedding_dropout = nn.Dropout(0.1)
            self.encoder = nn.LSTM(embedding_dim, hidden_dim, num_layers=2, batch_first=True,
                                   bidirectional=True, dropout=0.1)
            self.decoder = nn.LSTM(embedding_dim + hidden_dim * 2, hidden_dim * 2, num_layers=2,
                                   batch_first=True, dropout=0.1)
            self.attention = nn.Sequential(nn.Linear(hidden_dim * 4, hidden_dim), nn.Tanh(),
                                           nn.Dropout(0.1), nn.Linear(hidden_dim, 1))
            self.output_layer = nn.Sequential(nn.Linear(hidden_dim * 2, hidden_dim), nn.ReLU(),
                                              nn.Dropout(0.1), nn.Linear(hidden_dim, vocab_size))

    for vocab, e, h in ((40, 6, 5), (300, 128, 256)):
        seed = GenshinAssistant(vocab, e, h)
        count = sum(p.numel() for p in seed.parameters() if p.requires_grad)
        assert seed_parameter_count(vocab, e, h) == count
    model = build_assistant_model(AssistantConfig(embedding_dim=128, hidden_dim=256), 300)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == count


def test_decoder_step_model_matches_teacher_forcing_logits():
    model = _model()
    q = _queries()
    r = np.random.default_rng(1).integers(4, 23, (3, 5)).astype("int32")
    r[:, 0] = 2
    full = keras.ops.convert_to_numpy(model({"query": q, "response_in": r}))
    values, *states = [keras.ops.convert_to_numpy(t) for t in build_encoder_model(model)(q)]
    step = build_decoder_step_model(model)
    for t in range(5):
        logits, *states = [keras.ops.convert_to_numpy(o) for o in step([r[:, t : t + 1], q, values, *states])]
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)


def test_padding_does_not_change_encoder_outputs():
    model = _model()
    encoder = build_encoder_model(model)
    q = _queries()[:1, :4]
    short = [keras.ops.convert_to_numpy(t) for t in encoder(q)]
    padded = [keras.ops.convert_to_numpy(t) for t in encoder(np.pad(q, ((0, 0), (0, 5))))]
    np.testing.assert_allclose(short[0], padded[0][:, :4], atol=1e-5)
    for a, b in zip(short[1:], padded[1:]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_compiled_greedy_equals_reference_decode():
    model = _model()
    q = _queries()
    compiled = keras.ops.convert_to_numpy(GreedyGenerator(model, 9).predict_on_batch(q))
    np.testing.assert_array_equal(compiled, reference_greedy_decode(model, q, 9))


def test_beam_width_one_equals_greedy():
    model = _model()
    q = _queries()
    greedy = keras.ops.convert_to_numpy(GreedyGenerator(model, 6).predict_on_batch(q))
    beam = keras.ops.convert_to_numpy(BeamSearchGenerator(model, 6, 1).predict_on_batch(q))
    np.testing.assert_array_equal(beam, greedy)


def test_model_round_trips_through_keras_file(tmp_path):
    model = _model(dropout=0.1)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = {"query": _queries(), "response_in": _queries()}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )


def test_masked_token_accuracy_ignores_padding():
    metric = MaskedTokenAccuracy()
    y_true = np.array([[5, 6, 0, 0]])
    logits = np.zeros((1, 4, 8), "float32")
    logits[0, 0, 5] = 1  # right
    logits[0, 1, 7] = 1  # wrong
    logits[0, 2, 0] = 1  # padding: not counted even though "right"
    metric.update_state(y_true, logits)
    assert float(metric.result()) == pytest.approx(0.5)
