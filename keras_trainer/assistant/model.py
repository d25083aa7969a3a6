"""The seq2seq assistant network (question answering), its loss and metric, and export views.

`build_assistant_model` gives the teacher-forcing training model:
`{"query": (batch, L), "response_in": (batch, L)} -> logits (batch, L, vocab)`.
`build_encoder_model` and `build_decoder_step_model` are two further Keras models
over the SAME layers (shared weights) that split generation into "encode once"
and "one decoder step", the form ONNX export and external runtimes need.

Example:

>>> from keras_trainer.assistant.config import AssistantConfig
>>> model = build_assistant_model(AssistantConfig(embedding_dim=8, hidden_dim=8), vocab_size=20)
>>> model.output_shape
(None, None, 20)
"""

from __future__ import annotations

import keras
from keras import ops

from keras_trainer.assistant.config import AssistantConfig
from keras_trainer.assistant.layers import (
    AttentionDecoder,
    BidirectionalEncoder,
    CopyGenerator,
    in_vocabulary,
)
from keras_trainer.assistant.tokenizer import PAD_ID
from keras_trainer.errors import ModelError

NUM_LAYERS = 2
LAYER_NAMES = (
    "embedding",
    "embedding_dropout",
    "encoder",
    "decoder",
    "output_hidden",
    "output_dropout",
    "output_logits",
)
COPY_LAYER = "copy_gate"


def build_assistant_model(config: AssistantConfig, vocab_size: int) -> keras.Model:
    """Builds the training model: embedding, BiLSTM encoder, attention decoder, projection.

    With `config.copy_attention` a `CopyGenerator` mixes the projection with
    copying query tokens, and the model returns log-probabilities over the
    vocabulary extended by `max_length` slots for query words that are not one
    token, and takes a third input `query_extended` (`encode_query`'s copy ids);
    `response_in` may then hold extended ids (read as `<UNK>` by the embedding).
    Without it the model is the seed's, parameter for parameter, returning logits.

    Args:
        config: Sizes (`embedding_dim`, `hidden_dim`, `dropout`, `seed`,
            `copy_attention`, `max_length`).
        vocab_size: Tokens in the vocabulary, special tokens included.

    Returns:
        A functional `keras.Model` named "assistant": `{"query", "response_in"
        [, "query_extended"]} (batch, L) int32 -> (batch, L, vocab_size [+ max_length])`.
    """
    if vocab_size < 5:
        raise ModelError(f"vocab_size must be at least 5 (4 special tokens + 1), got {vocab_size}")
    hidden = config.hidden_dim
    seed = config.seed
    copy = config.copy_attention
    query = keras.Input((None,), dtype="int32", name="query")
    response_in = keras.Input((None,), dtype="int32", name="response_in")
    # PyTorch's nn.Embedding starts at N(0, 1), the seed's init; Keras' default
    # (uniform +-0.05) feeds the LSTMs inputs ~30x smaller and trains much slower.
    embedding = keras.layers.Embedding(
        vocab_size,
        config.embedding_dim,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed),
        name="embedding",
    )
    embedding_dropout = keras.layers.Dropout(config.dropout, seed=seed, name="embedding_dropout")
    encoder = BidirectionalEncoder(hidden, NUM_LAYERS, config.dropout, seed=seed, name="encoder")
    decoder = AttentionDecoder(
        2 * hidden,
        hidden,
        NUM_LAYERS,
        config.dropout,
        seed=seed,
        return_attention=copy,
        name="decoder",
    )
    output_hidden = keras.layers.Dense(hidden, activation="relu", name="output_hidden")
    output_dropout = keras.layers.Dropout(config.dropout, seed=seed, name="output_dropout")
    # The logits (and the copy mixture) stay float32 under mixed precision, for the loss.
    output_logits = keras.layers.Dense(vocab_size, dtype="float32", name="output_logits")

    inputs = {"query": query, "response_in": response_in}
    query_mask = ops.not_equal(query, PAD_ID)
    response_tokens = in_vocabulary(response_in, vocab_size) if copy else response_in
    encoder_outputs, states = encoder(embedding_dropout(embedding(query)), padding_mask=query_mask)
    embedded = embedding_dropout(embedding(response_tokens))
    decoded = decoder(embedded, encoder_outputs, query_mask, states)
    logits = output_logits(output_dropout(output_hidden(decoded[0])))
    if copy:
        inputs["query_extended"] = keras.Input((None,), dtype="int32", name="query_extended")
        _, _, contexts, weights = decoded
        copier = CopyGenerator(vocab_size, config.max_length, dtype="float32", name=COPY_LAYER)
        logits = copier(logits, weights, contexts, decoded[0], embedded, inputs["query_extended"])
    return keras.Model(inputs, logits, name="assistant")


def copy_layer(model: keras.Model):
    """The model's `CopyGenerator`, or None for a model without copy attention."""
    try:
        return model.get_layer(COPY_LAYER)
    except ValueError:
        return None


def _layers(model: keras.Model):
    try:
        return [model.get_layer(name) for name in LAYER_NAMES]
    except ValueError as error:
        raise ModelError(
            f"not an assistant model (built by build_assistant_model): {error}"
        ) from None


def build_encoder_model(model: keras.Model) -> keras.Model:
    """The encoder half of `model`, sharing its weights.

    Args:
        model: A model from `build_assistant_model` (or `load_assistant`).

    Returns:
        `query (batch, L) int32 -> [encoder_outputs (batch, L, 2h), h_1, c_1, h_2, c_2]`.
    """
    embedding, _, encoder, *_ = _layers(model)
    query = keras.Input((None,), dtype="int32", name="query")
    outputs, states = encoder(embedding(query), padding_mask=ops.not_equal(query, PAD_ID))
    return keras.Model(query, [outputs, *states], name="assistant_encoder")


def build_decoder_step_model(model: keras.Model) -> keras.Model:
    """One decoder step of `model`, sharing its weights.

    Args:
        model: A model from `build_assistant_model` (or `load_assistant`).

    Returns:
        `[token (batch, 1), query (batch, L), encoder_outputs, h_1, c_1, h_2, c_2]
        -> [logits (batch, vocab), h_1, c_1, h_2, c_2]`; `query` supplies the
        padding mask. With copy attention a `query_extended` input follows `query`
        and the logits are log-probabilities over the extended vocabulary.
    """
    embedding, _, encoder, decoder, output_hidden, _, output_logits = _layers(model)
    copier = copy_layer(model)
    width = decoder.units
    token = keras.Input((1,), dtype="int32", name="token")
    query = keras.Input((None,), dtype="int32", name="query")
    extended = [keras.Input((None,), dtype="int32", name="query_extended")] if copier else []
    encoder_outputs = keras.Input((None, 2 * encoder.units), name="encoder_outputs")
    states = [
        keras.Input((width,), name=f"{kind}_{i + 1}")
        for i in range(decoder.num_layers)
        for kind in ("h", "c")
    ]
    embedded = embedding(in_vocabulary(token, embedding.input_dim) if copier else token)
    decoded = decoder(embedded, encoder_outputs, ops.not_equal(query, PAD_ID), states)
    logits = output_logits(output_hidden(decoded[0][:, 0]))
    if copier is not None:
        _, _, contexts, weights = decoded
        logits = copier(
            logits, weights[:, 0], contexts[:, 0], decoded[0][:, 0], embedded[:, 0], extended[0]
        )
    return keras.Model(
        [token, query, *extended, encoder_outputs, *states],
        [logits, *decoded[1]],
        name="assistant_decoder_step",
    )


def assistant_loss() -> keras.losses.Loss:
    """Token cross-entropy on logits that ignores `<PAD>` targets."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)


@keras.saving.register_keras_serializable(package="keras_trainer")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Share of non-`<PAD>` target tokens whose argmax prediction is right.

    Args:
        name: Metric name (default "token_accuracy").
    """

    def __init__(self, name: str = "token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        weight = ops.cast(ops.not_equal(y_true, PAD_ID), self.dtype)
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, self.dtype)
        hits = ops.cast(ops.equal(y_true, predicted), self.dtype) * weight
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def seed_parameter_count(vocab_size: int, embedding_dim: int, hidden_dim: int) -> int:
    """Trainable parameters of the seed's PyTorch `GenshinAssistant`, from its layer shapes."""
    e, h, v = embedding_dim, hidden_dim, vocab_size

    def lstm(inputs: int, units: int) -> int:  # W_ih, W_hh, b_ih, b_hh
        return 4 * units * inputs + 4 * units * units + 8 * units

    encoder = 2 * lstm(e, h) + 2 * lstm(2 * h, h)
    decoder = lstm(e + 2 * h, 2 * h) + lstm(2 * h, 2 * h)
    attention = (4 * h * h + h) + (h + 1)
    output = (2 * h * h + h) + (h * v + v)
    return v * e + encoder + decoder + attention + output
