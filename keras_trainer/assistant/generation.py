"""Compiled greedy and beam-search decoding for the assistant.

The encoder runs once per batch; every decoder step runs inside one
`keras.ops.while_loop` carrying the LSTM states, the tokens so far and the
finished flags. The loop sits in the `call` of a small `keras.Model`, so
`predict_on_batch` compiles it once per input shape (XLA on JAX and TensorFlow;
on torch it runs eagerly, step by step, inside the same loop).

`reference_greedy_decode` is the plain Python loop over the decoder-step model
that the compiled loop must agree with.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_trainer.assistant.layers import in_vocabulary
from keras_trainer.assistant.model import (
    LAYER_NAMES,
    build_decoder_step_model,
    build_encoder_model,
    copy_layer,
)
from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID
from keras_trainer.errors import DataError, ModelError

_NEG_INF = -1e9


def _ban(logits, banned):
    """Tokens in `banned` are never generated: their logits drop to -1e9."""
    vocab = ops.arange(ops.shape(logits)[-1], dtype="int32")
    hit = ops.zeros_like(vocab, dtype="bool")
    for token in banned:
        hit = ops.logical_or(hit, ops.equal(vocab, token))
    return ops.where(hit, _NEG_INF, logits)


class _Generator(keras.Model):
    """Holds the trained layers (tracked, so compiled calls read their current
    weights) and the math of one inference step."""

    # `<PAD>` and `<SOS>` are never generated.
    banned_tokens = (PAD_ID, SOS_ID)

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        try:
            layers = {name: model.get_layer(name) for name in LAYER_NAMES}
        except ValueError as error:
            raise ModelError(f"not an assistant model: {error}") from None
        self.embedding = layers["embedding"]
        self.encoder = layers["encoder"]
        self.decoder = layers["decoder"]
        self.output_hidden = layers["output_hidden"]
        self.output_logits = layers["output_logits"]
        self.copier = copy_layer(model)
        self.vocab_size = int(self.embedding.input_dim)
        self.output_size = self.vocab_size + (self.copier.extension if self.copier else 0)

    def _tokens(self, ids):
        """Fed-back tokens: a copied extended id reads as `<UNK>`."""
        return in_vocabulary(ids, self.vocab_size) if self.copier is not None else ids

    @staticmethod
    def split_inputs(inputs):
        """`(query, query_extended)` from `{"query", "query_extended"}` or a query array
        (whose copy ids are then its own ids: no extended vocabulary)."""
        if isinstance(inputs, dict):
            return inputs["query"], inputs.get("query_extended", inputs["query"])
        return inputs, inputs

    def encode(self, query, query_extended):
        """`(values, keys, mask, states, source)`; `source` is the one-hot of the copy
        ids over the extended vocabulary with copy attention, else None."""
        mask = ops.not_equal(query, PAD_ID)
        embedded = ops.take(self.embedding.embeddings, query, axis=0)
        outputs, states = self.encoder(embedded, padding_mask=mask, training=False)
        # Generation computes in the weights' dtype: a model trained in mixed
        # precision has a float16/bfloat16 encoder, whose outputs go back to float32.
        outputs = ops.cast(outputs, embedded.dtype)
        states = [ops.cast(state, embedded.dtype) for state in states]
        source = None
        if self.copier is not None:
            source = self.copier.source_one_hot(query_extended, outputs.dtype)
        return outputs, self.decoder.prepare(outputs), mask, list(states), source

    def step_logits(self, tokens, states, keys, values, mask, source=None):
        """One step: `(scores (batch, output_size), new states)`; scores are logits,
        or log-probabilities with copy attention."""
        embedded = ops.take(self.embedding.embeddings, self._tokens(tokens), axis=0)
        out, states, context, weights = self.decoder.step(
            self.decoder.project_embedding(embedded), states, keys, values, mask
        )
        hidden = ops.relu(ops.matmul(out, self.output_hidden.kernel) + self.output_hidden.bias)
        logits = ops.matmul(hidden, self.output_logits.kernel) + self.output_logits.bias
        if self.copier is not None:
            logits = self.copier.mix(logits, weights, context, out, embedded, source)
        return _ban(logits, self.banned_tokens), states


class GreedyGenerator(_Generator):
    """`query (batch, L) -> tokens (batch, max_length)` by greedy decoding in one loop.

    Args:
        model: The trained assistant model (weights are shared, not copied).
        max_length: Tokens to generate at most; rows end with `<EOS>` then `<PAD>`.
    """

    def __init__(self, model: keras.Model, max_length: int, **kwargs):
        super().__init__(model, **kwargs)
        self.max_length = int(max_length)

    def call(self, inputs):
        query, query_extended = self.split_inputs(inputs)
        if keras.backend.backend() == "torch":
            from keras_trainer.assistant import torch_kernels

            return torch_kernels.greedy_decode(
                self, query, query_extended, self.max_length, self.banned_tokens
            )
        parts = self
        values, keys, mask, states, source = parts.encode(query, query_extended)
        batch = ops.shape(query)[0]
        positions = ops.expand_dims(ops.arange(self.max_length, dtype="int32"), 0)

        def cond(i, tokens, previous, done, *states):
            return ops.logical_and(ops.less(i, self.max_length), ops.logical_not(ops.all(done)))

        def body(i, tokens, previous, done, *states):
            logits, states = parts.step_logits(previous, list(states), keys, values, mask, source)
            chosen = ops.cast(ops.argmax(logits, axis=-1), "int32")
            chosen = ops.where(done, PAD_ID, chosen)
            tokens = ops.where(ops.equal(positions, i), ops.expand_dims(chosen, 1), tokens)
            done = ops.logical_or(done, ops.equal(chosen, EOS_ID))
            return (i + 1, tokens, chosen, done, *states)

        init = (
            ops.convert_to_tensor(0, dtype="int32"),
            ops.zeros((batch, self.max_length), dtype="int32"),
            ops.full((batch,), SOS_ID, dtype="int32"),
            ops.zeros((batch,), dtype="bool"),
            *states,
        )
        return ops.while_loop(cond, body, init)[1]


class BeamSearchGenerator(_Generator):
    """`query (batch, L) -> tokens (batch, max_length)`: the best of `beam_width` beams.

    Beams are scored by the sum of token log-probabilities; a finished beam
    (it produced `<EOS>`) keeps its score and extends only with `<PAD>`.

    Args:
        model: The trained assistant model (weights are shared).
        max_length: Tokens to generate at most.
        beam_width: Beams kept per query.
    """

    def __init__(self, model: keras.Model, max_length: int, beam_width: int, **kwargs):
        super().__init__(model, **kwargs)
        self.max_length = int(max_length)
        self.beam_width = int(beam_width)

    def call(self, inputs):
        query, query_extended = self.split_inputs(inputs)
        parts = self
        k, length = self.beam_width, self.max_length
        vocab = self.output_size
        values, keys, mask, states, source = parts.encode(query, query_extended)
        batch = ops.shape(query)[0]
        values, keys, mask = (ops.repeat(t, k, axis=0) for t in (values, keys, mask))
        if source is not None:
            source = ops.repeat(source, k, axis=0)
        states = [ops.repeat(s, k, axis=0) for s in states]
        positions = ops.reshape(ops.arange(length, dtype="int32"), (1, 1, length))
        pad_only = ops.where(ops.equal(ops.arange(vocab, dtype="int32"), PAD_ID), 0.0, _NEG_INF)
        # Only beam 0 is live at the start, so the first step does not pick k copies.
        first_scores = ops.where(ops.equal(ops.arange(k), 0), 0.0, _NEG_INF)

        def cond(i, tokens, scores, previous, done, *states):
            return ops.logical_and(ops.less(i, length), ops.logical_not(ops.all(done)))

        def body(i, tokens, scores, previous, done, *states):
            logits, states = parts.step_logits(
                ops.reshape(previous, (-1,)), list(states), keys, values, mask, source
            )
            log_probs = ops.reshape(ops.log_softmax(logits, axis=-1), (batch, k, vocab))
            log_probs = ops.where(ops.expand_dims(done, -1), pad_only, log_probs)
            candidates = ops.reshape(ops.expand_dims(scores, -1) + log_probs, (batch, k * vocab))
            scores, flat = ops.top_k(candidates, k)
            flat = ops.cast(flat, "int32")
            beam = flat // vocab
            chosen = flat % vocab
            tokens = ops.take_along_axis(tokens, ops.expand_dims(beam, -1), axis=1)
            done = ops.take_along_axis(done, beam, axis=1)
            tokens = ops.where(ops.equal(positions, i), ops.expand_dims(chosen, -1), tokens)
            done = ops.logical_or(done, ops.equal(chosen, EOS_ID))
            rows = ops.reshape(
                beam + ops.expand_dims(ops.arange(batch, dtype="int32") * k, 1), (-1,)
            )
            states = [ops.take(s, rows, axis=0) for s in states]
            return (i + 1, tokens, scores, chosen, done, *states)

        init = (
            ops.convert_to_tensor(0, dtype="int32"),
            ops.zeros((batch, k, length), dtype="int32"),
            ops.repeat(ops.expand_dims(ops.cast(first_scores, "float32"), 0), batch, axis=0),
            ops.full((batch, k), SOS_ID, dtype="int32"),
            ops.zeros((batch, k), dtype="bool"),
            *states,
        )
        _, tokens, scores, *_ = ops.while_loop(cond, body, init)
        best = ops.expand_dims(ops.cast(ops.argmax(scores, axis=-1), "int32"), -1)
        return ops.squeeze(ops.take_along_axis(tokens, ops.expand_dims(best, -1), axis=1), 1)


def check_query(query, index: int | None = None) -> str:
    """Returns `query` if it is a non-empty string; otherwise raises `DataError`."""
    where = "query" if index is None else f"query {index}"
    if not isinstance(query, str):
        raise DataError(f"{where} must be a string, got {type(query).__name__}")
    if not query.strip():
        raise DataError(f"{where} is empty")
    return query


def reference_greedy_decode(model: keras.Model, inputs, max_length: int) -> np.ndarray:
    """Greedy decoding as a plain Python loop over the decoder-step model.

    Slow on purpose: one model call per token. The compiled `GreedyGenerator`
    must give the same tokens.

    Args:
        model: The trained assistant model.
        inputs: `(batch, L)` int32 query ids, or `Assistant.encode_queries`' dict.
        max_length: Tokens to generate.

    Returns:
        `(batch, max_length)` int32 tokens, `<PAD>` after `<EOS>`.
    """
    encoder, step = build_encoder_model(model), build_decoder_step_model(model)
    query, extended = (np.asarray(a, dtype="int32") for a in _Generator.split_inputs(inputs))
    sources = [query, extended] if copy_layer(model) is not None else [query]
    values, *states = [ops.convert_to_numpy(t) for t in encoder(query, training=False)]
    batch = query.shape[0]
    tokens = np.zeros((batch, max_length), dtype="int32")
    previous = np.full((batch, 1), SOS_ID, dtype="int32")
    done = np.zeros(batch, dtype=bool)
    for i in range(max_length):
        logits, *states = [
            ops.convert_to_numpy(t)
            for t in step([previous, *sources, values, *states], training=False)
        ]
        logits[:, [PAD_ID, SOS_ID]] = _NEG_INF
        chosen = np.where(done, PAD_ID, logits.argmax(-1)).astype("int32")
        tokens[:, i] = chosen
        done |= chosen == EOS_ID
        previous = chosen[:, None]
        if done.all():
            break
    return tokens
