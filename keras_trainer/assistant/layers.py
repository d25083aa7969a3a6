"""Layers of the seq2seq assistant: PyTorch-shaped LSTMs, additive attention, decoder.

The seed model is PyTorch; its LSTMs carry two bias vectors (`b_ih`, `b_hh`) and
order gates input, forget, cell, output. `DualBiasLSTMCell` keeps exactly those
parameters so the parameter count (and a weight copy from the seed) match.
Recurrences run in `keras.ops.scan`, so they compile to one loop on JAX and
TensorFlow; the input projections of all steps are one matmul outside the loop,
and the encoder runs both directions of a layer in the same loop.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_trainer.assistant.tokenizer import UNK_ID

_NEG = -1e9


def _masked(dtype) -> float:
    """A score that softmax turns into 0 and that `dtype` can hold (float16 ends at 65504)."""
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else _NEG


def _scan(step, init, xs, y_init, reverse=False):
    """`keras.ops.scan` returning `(final_carry, stacked_y)` on every backend.

    `y_init` (a tensor or a tuple of tensors) gives the structure of each step's
    output. TensorFlow's scan wants each step's output shaped like the carry, so
    it gets its own loop (`_tf_scan`).
    """

    if keras.backend.backend() == "tensorflow":
        return _tf_scan(step, init, xs, y_init, reverse)

    def body(carry, x):
        new_state, y = step(carry[0], x)
        return (new_state, y), (new_state, y)

    (final, _), (_, ys) = ops.scan(body, (init, y_init), xs, reverse=reverse)
    return final, ys


def _tf_scan(step, init, xs, y_init, reverse=False):
    """The TensorFlow form of `_scan`: a `tf.while_loop` over plain tensor carries.

    Keras' TensorFlow `ops.scan` keeps its carry in a one-slot TensorArray that
    tf2onnx cannot convert; this loop (the pattern of Keras 2's LSTM) converts to
    an ONNX `Loop`, so the encoder and decoder step export to ONNX.
    """
    import tensorflow as tf

    xs_flat = [tf.convert_to_tensor(x) for x in keras.tree.flatten(xs)]
    n = tf.shape(xs_flat[0])[0]
    y_flat = keras.tree.flatten(y_init)
    arrays = tuple(tf.TensorArray(y.dtype, size=n, element_shape=y.shape) for y in y_flat)

    def body(i, carry, arrays):
        t = n - 1 - i if reverse else i
        x = keras.tree.pack_sequence_as(xs, [x[t] for x in xs_flat])
        carry, y = step(carry, x)
        arrays = tuple(a.write(t, v) for a, v in zip(arrays, keras.tree.flatten(y)))
        return i + 1, carry, arrays

    _, final, arrays = tf.while_loop(lambda i, *_: i < n, body, (tf.constant(0), init, arrays))
    stacked = []
    for array, y in zip(arrays, y_flat):
        value = array.stack()
        value.set_shape(xs_flat[0].shape[:1].concatenate(y.shape))
        stacked.append(value)
    return final, keras.tree.pack_sequence_as(y_init, stacked)


def _dropout_mask(generator, shape, rate, dtype):
    """A 0 or 1/(1-rate) mask drawn outside any loop (RNG state cannot live in one)."""
    keep = ops.greater_equal(keras.random.uniform(shape, seed=generator), rate)
    return ops.cast(keep, dtype) / (1.0 - rate)


@keras.saving.register_keras_serializable(package="keras_trainer")
class DualBiasLSTMCell(keras.layers.Layer):
    """One LSTM cell with PyTorch's parameters: `W_ih`, `W_hh`, `b_ih`, `b_hh`.

    Args:
        units: State width.

    Example:

    >>> cell = DualBiasLSTMCell(8)
    >>> cell.build((None, 4))
    >>> len(cell.trainable_weights)
    4
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        bound = 1.0 / self.units**0.5
        # PyTorch's LSTM init: every parameter uniform in +-1/sqrt(units).
        init = keras.initializers.RandomUniform(-bound, bound)
        gates = 4 * self.units
        self.kernel = self.add_weight(shape=(input_dim, gates), initializer=init, name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, gates), initializer=init, name="recurrent_kernel"
        )
        self.input_bias = self.add_weight(shape=(gates,), initializer=init, name="input_bias")
        self.recurrent_bias = self.add_weight(
            shape=(gates,), initializer=init, name="recurrent_bias"
        )

    def project(self, inputs, kernel_rows=None):
        """Input part of the gates, both biases included: `x @ W_ih + b_ih + b_hh`.

        Args:
            inputs: `(..., input_dim)`, or a slice of the input features.
            kernel_rows: `(start, stop)` rows of the kernel matching a feature slice;
                the biases are then left out (add them once with `project_bias`).
        """
        if kernel_rows is not None:
            return ops.matmul(inputs, self.kernel[kernel_rows[0] : kernel_rows[1]])
        return ops.matmul(inputs, self.kernel) + self.input_bias + self.recurrent_bias

    def step(self, projected, h, c):
        """One step from the projected input and the previous `(h, c)`."""
        gates = projected + ops.matmul(h, self.recurrent_kernel)
        i, f, g, o = ops.split(gates, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, c

    def call(self, inputs, states):
        return self.step(self.project(inputs), *states)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_trainer")
class DualBiasLSTM(keras.layers.Layer):
    """A whole-sequence LSTM over `DualBiasLSTMCell`, skipping padded steps.

    At a padded step (mask False) the state is carried unchanged and the output
    is zero, so results do not depend on how much padding follows a text.

    Args:
        units: State width.
        go_backwards: Run from the last step to the first (outputs stay in order).

    Returns (from `call`):
        `(outputs (batch, time, units), h, c)`.
    """

    def __init__(self, units: int, go_backwards: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.go_backwards = bool(go_backwards)
        self.cell = DualBiasLSTMCell(units, name="cell")

    def build(self, input_shape):
        self.cell.build(input_shape)

    def call(self, inputs, padding_mask=None):
        batch = ops.shape(inputs)[0]
        projected = ops.transpose(self.cell.project(inputs), (1, 0, 2))
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.transpose(ops.cast(padding_mask, "bool"), (1, 0)), -1)
        zeros = ops.zeros((batch, self.units), dtype=inputs.dtype)

        def body(carry, xs):
            h, c = carry
            x_t, k_t, m_t = xs
            h_new, c_new = self.cell.step(x_t, h, c)
            h = ops.where(k_t, h_new, h)
            c = ops.where(k_t, c_new, c)
            return (h, c), m_t * h_new

        (h, c), outputs = _scan(
            body,
            (zeros, zeros),
            (projected, keep, ops.cast(keep, inputs.dtype)),
            zeros,
            reverse=self.go_backwards,
        )
        return ops.transpose(outputs, (1, 0, 2)), h, c

    def compute_output_spec(self, inputs, padding_mask=None):
        batch, time = inputs.shape[0], inputs.shape[1]
        seq = keras.KerasTensor((batch, time, self.units), dtype=inputs.dtype)
        # Distinct objects: a functional graph tells outputs apart by identity.
        h = keras.KerasTensor((batch, self.units), dtype=inputs.dtype)
        c = keras.KerasTensor((batch, self.units), dtype=inputs.dtype)
        return seq, h, c

    def get_config(self):
        return {**super().get_config(), "units": self.units, "go_backwards": self.go_backwards}


@keras.saving.register_keras_serializable(package="keras_trainer")
class BidirectionalEncoder(keras.layers.Layer):
    """Stacked bidirectional LSTM encoder, like `nn.LSTM(bidirectional=True, num_layers=n)`.

    Args:
        units: Width per direction.
        num_layers: Stacked layers (seed: 2).
        dropout: Dropout on the outputs of every layer but the last (PyTorch's rule).
        seed: Seed of the dropout RNG.

    Returns (from `call(embedded, padding_mask)`):
        `(outputs (batch, time, 2*units), states)` where `states` is a list
        `[h_1, c_1, ..., h_n, c_n]`, each `(batch, 2*units)`: the last forward and
        backward states of each layer side by side, the decoder's initial state.
    """

    def __init__(self, units: int, num_layers: int = 2, dropout: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.seed = seed
        self.forward_layers = [
            DualBiasLSTM(units, name=f"forward_{i}") for i in range(self.num_layers)
        ]
        self.backward_layers = [
            DualBiasLSTM(units, go_backwards=True, name=f"backward_{i}")
            for i in range(self.num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for forward, backward in zip(self.forward_layers, self.backward_layers):
            forward.build(shape)
            backward.build(shape)
            shape = shape[:-1] + (2 * self.units,)

    def call(self, inputs, padding_mask=None, training=None):
        if keras.backend.backend() == "torch":
            from keras_trainer.assistant import torch_kernels

            return torch_kernels.encode(self, inputs, padding_mask, bool(training))
        states = []
        x = inputs
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        # Time-major masks; the backward direction reads time reversed.
        keep = ops.expand_dims(ops.transpose(ops.cast(padding_mask, "bool"), (1, 0)), -1)
        keep = ops.stack([keep, ops.flip(keep, axis=0)], axis=1)  # (time, 2, batch, 1)
        keep_float = ops.cast(keep, inputs.dtype)
        for index, (forward, backward) in enumerate(zip(self.forward_layers, self.backward_layers)):
            outputs, h, c = self._bidirectional_layer(
                forward.cell, backward.cell, x, keep, keep_float
            )
            x = outputs
            states += [h, c]
            if index < self.num_layers - 1:
                x = self.dropout_layer(x, training=training)
        return x, states

    def _bidirectional_layer(self, forward, backward, x, keep, keep_float):
        """Both directions of one layer in ONE scan: half the sequential steps.

        The two cells' weights are stacked on a leading axis of 2 and the state is
        `(2, batch, units)`; step t runs the forward cell on time t and the
        backward cell on time T-1-t. A padded step carries the state unchanged
        and outputs zero, so the backward cell starts at each text's last token.
        """
        units = self.units
        projected = ops.stack(
            [
                ops.transpose(forward.project(x), (1, 0, 2)),
                ops.flip(ops.transpose(backward.project(x), (1, 0, 2)), axis=0),
            ],
            axis=1,
        )  # (time, 2, batch, 4*units)
        # expand + concatenate, not ops.stack: TensorFlow's stack rejects variables.
        recurrent = ops.concatenate(
            [ops.expand_dims(cell.recurrent_kernel, 0) for cell in (forward, backward)]
        )
        zeros = ops.zeros((2, ops.shape(x)[0], units), dtype=x.dtype)

        def body(carry, xs):
            h, c = carry
            x_t, keep_t, keep_float_t = xs
            gates = x_t + ops.matmul(h, recurrent)
            i, f, g, o = ops.split(gates, 4, axis=-1)
            c_new = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            h_new = ops.sigmoid(o) * ops.tanh(c_new)
            h = ops.where(keep_t, h_new, h)
            c = ops.where(keep_t, c_new, c)
            return (h, c), keep_float_t * h_new

        (h, c), outputs = _scan(body, (zeros, zeros), (projected, keep, keep_float), zeros)
        # outputs (time, 2, batch, units): un-reverse the backward half, go batch-major.
        outputs = ops.concatenate([outputs[:, 0], ops.flip(outputs[:, 1], axis=0)], axis=-1)
        outputs = ops.transpose(outputs, (1, 0, 2))
        return outputs, ops.concatenate([h[0], h[1]], -1), ops.concatenate([c[0], c[1]], -1)

    def compute_output_spec(self, inputs, padding_mask=None, training=None):
        batch, time = inputs.shape[0], inputs.shape[1]
        width = 2 * self.units
        return (
            keras.KerasTensor((batch, time, width), dtype=inputs.dtype),
            [
                keras.KerasTensor((batch, width), dtype=inputs.dtype)
                for _ in range(2 * self.num_layers)
            ],
        )

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="keras_trainer")
class AdditiveAttention(keras.layers.Layer):
    """The seed's attention: `Dense(4h->h), tanh, Dropout, Dense(h->1)`, softmax over steps.

    The first Dense reads `[decoder_state; encoder_output]`; its kernel is split in
    two so the encoder half is applied once per text (`project_keys`) instead of
    once per decoder step. Same parameters, same result.

    Args:
        units: The hidden width `h` (the seed's `hidden_dim`).
        dropout: Dropout rate after the tanh.
    """

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.dropout = float(dropout)

    def build(self, query_shape, value_shape=None):
        query_dim = query_shape[-1]
        value_dim = value_shape[-1] if value_shape is not None else query_dim
        self.query_dim = query_dim
        self.kernel = self.add_weight(
            shape=(query_dim + value_dim, self.units),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.score_kernel = self.add_weight(
            shape=(self.units, 1), initializer="glorot_uniform", name="score_kernel"
        )
        self.score_bias = self.add_weight(shape=(1,), initializer="zeros", name="score_bias")

    def project_keys(self, values):
        """Encoder half of the first Dense, bias included: `(batch, steps, units)`."""
        return ops.matmul(values, self.kernel[self.query_dim :]) + self.bias

    def attend(self, query, keys, values, mask, dropout_mask=None):
        """Context vector and weights for one decoder state.

        Args:
            query: Decoder state `(batch, query_dim)`.
            keys: `project_keys(values)`.
            values: Encoder outputs `(batch, steps, value_dim)`.
            mask: `(batch, steps)` bool, False at padding (weight exactly 0 there).
            dropout_mask: Optional `(batch, steps, units)` scale after the tanh.

        Returns:
            `(context (batch, value_dim), weights (batch, steps))`.
        """
        q = ops.matmul(query, self.kernel[: self.query_dim])
        energy = ops.tanh(keys + ops.expand_dims(q, 1))
        if dropout_mask is not None:
            energy = energy * dropout_mask
        scores = ops.squeeze(ops.matmul(energy, self.score_kernel), -1) + self.score_bias
        scores = ops.where(mask, scores, _masked(scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), values), 1)
        return context, weights

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="keras_trainer")
class AttentionDecoder(keras.layers.Layer):
    """Stacked LSTM decoder fed `[token embedding; attention context]` at every step.

    The seed's `nn.LSTM(embedding_dim + 2h, 2h, num_layers=2, dropout)` run one step
    at a time: attention reads the top layer's previous state. With teacher forcing
    all steps run inside one `keras.ops.scan`; a length-1 input runs one step
    without a loop (the decoder-step model used for export and generation).

    Args:
        units: Decoder width (the seed's `2 * hidden_dim`).
        attention_units: Attention hidden width (`hidden_dim`).
        num_layers: Stacked layers (seed: 2).
        dropout: Between the LSTM layers and inside the attention.
        seed: Seed of the dropout RNG.
        return_attention: Also return every step's attention context and weights
            (what copy attention needs).

    Returns (from `call(embedded, encoder_outputs, encoder_mask, states)`):
        `(outputs (batch, time, units), new_states)`, and with `return_attention`
        also `contexts (batch, time, value_dim)` and `weights (batch, time, steps)`.
    """

    def __init__(
        self,
        units: int,
        attention_units: int,
        num_layers: int = 2,
        dropout: float = 0.0,
        seed=None,
        return_attention: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.attention_units = int(attention_units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.seed = seed
        self.return_attention = bool(return_attention)
        self.cells = [DualBiasLSTMCell(units, name=f"cell_{i}") for i in range(self.num_layers)]
        self.attention = AdditiveAttention(attention_units, dropout, name="attention")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, embedded_shape, encoder_outputs_shape, encoder_mask_shape, states_shape):
        self.embedding_dim = embedded_shape[-1]
        self.value_dim = encoder_outputs_shape[-1]
        self.attention.build((None, self.units), (None, None, self.value_dim))
        self.cells[0].build((None, self.embedding_dim + self.value_dim))
        for cell in self.cells[1:]:
            cell.build((None, self.units))

    def prepare(self, encoder_outputs):
        """Per-text work done once: the attention keys."""
        return self.attention.project_keys(encoder_outputs)

    def project_embedding(self, embedded):
        """Embedding half of the first cell's input projection, both biases included."""
        cell = self.cells[0]
        return (
            cell.project(embedded, (0, self.embedding_dim)) + cell.input_bias + cell.recurrent_bias
        )

    def step(self, projected_embedding, states, keys, values, mask, dropout_masks=None):
        """One decoder step.

        Args:
            projected_embedding: `project_embedding(embedded token)`, `(batch, 4*units)`.
            states: `[h_1, c_1, ..., h_n, c_n]`.
            keys, values, mask: from `prepare`, the encoder outputs and padding mask.
            dropout_masks: None, or `(attention (batch, steps, att), between-layer
                (batch, n-1, units))` scales.

        Returns:
            `(top output (batch, units), new states, context (batch, value_dim),
            attention weights (batch, steps))`.
        """
        attention_drop, layer_drop = dropout_masks if dropout_masks is not None else (None, None)
        query = states[2 * self.num_layers - 2]
        context, weights = self.attention.attend(query, keys, values, mask, attention_drop)
        first = self.cells[0]
        x = projected_embedding + first.project(context, (self.embedding_dim, None))
        new_states = []
        for index, cell in enumerate(self.cells):
            if index > 0:
                if layer_drop is not None:
                    h = h * layer_drop[:, index - 1]  # noqa: F821  h: the previous cell's output
                x = cell.project(h)
            h, c = cell.step(x, states[2 * index], states[2 * index + 1])
            new_states += [h, c]
        return h, new_states, context, weights

    def dropout_masks(self, embedded, encoder_outputs):
        """Every step's dropout scales, drawn in ONE random call outside the loop.

        One draw instead of one per mask: on JAX each distinct random shape is a
        separate compilation, and on torch each is a separate kernel.

        Returns:
            `(attention (batch, time, steps, attention_units), between-layer
            (batch, time, max(num_layers - 1, 1), units))` scales, 0 or 1/(1-rate).
        """
        batch, time = ops.shape(embedded)[0], ops.shape(embedded)[1]
        steps = ops.shape(encoder_outputs)[1]
        layers = max(self.num_layers - 1, 1)
        attention_size = steps * self.attention_units
        mask = _dropout_mask(
            self.seed_generator,
            (batch, time, attention_size + layers * self.units),
            self.dropout,
            embedded.dtype,
        )
        attention = ops.reshape(
            mask[..., :attention_size], (batch, time, steps, self.attention_units)
        )
        layer = ops.reshape(mask[..., attention_size:], (batch, time, layers, self.units))
        return attention, layer

    def call(self, embedded, encoder_outputs, encoder_mask, states, training=None):
        if keras.backend.backend() == "torch" and embedded.shape[1] != 1:
            from keras_trainer.assistant import torch_kernels

            result = torch_kernels.decode_sequence(
                self, embedded, encoder_outputs, encoder_mask, list(states), bool(training)
            )
            return result if self.return_attention else result[:2]
        masks = None
        if training and self.dropout > 0:
            masks = self.dropout_masks(embedded, encoder_outputs)
        keys = self.prepare(encoder_outputs)
        projected = self.project_embedding(embedded)
        states = list(states)
        if embedded.shape[1] == 1:
            step_masks = None if masks is None else (masks[0][:, 0], masks[1][:, 0])
            out, states, context, weights = self.step(
                projected[:, 0], states, keys, encoder_outputs, encoder_mask, step_masks
            )
            result = [ops.expand_dims(t, 1) for t in (out, context, weights)]
            return (
                (result[0], states, result[1], result[2])
                if self.return_attention
                else (result[0], states)
            )

        def body(carry, xs):
            if masks is None:
                x_t, step_masks = xs, None
            else:
                x_t, step_masks = xs[0], (xs[1], xs[2])
            out, new, context, weights = self.step(
                x_t, list(carry), keys, encoder_outputs, encoder_mask, step_masks
            )
            if self.return_attention:
                return tuple(new), (out, context, weights)
            return tuple(new), out

        xs = ops.transpose(projected, (1, 0, 2))
        if masks is not None:
            xs = (
                xs,
                ops.transpose(masks[0], (1, 0, 2, 3)),
                ops.transpose(masks[1], (1, 0, 2, 3)),
            )
        y_init = ops.zeros_like(states[-2])
        if self.return_attention:
            y_init = (
                y_init,
                ops.zeros_like(encoder_outputs[:, 0]),
                ops.zeros_like(ops.cast(encoder_mask, y_init.dtype)),
            )
        final, ys = _scan(body, tuple(states), xs, y_init)
        if not self.return_attention:
            return ops.transpose(ys, (1, 0, 2)), list(final)
        outputs, contexts, weights = (ops.transpose(y, (1, 0, 2)) for y in ys)
        return outputs, list(final), contexts, weights

    def compute_output_spec(self, embedded, encoder_outputs, encoder_mask, states, training=None):
        batch, time = embedded.shape[0], embedded.shape[1]
        outputs = keras.KerasTensor((batch, time, self.units), dtype=embedded.dtype)
        states = [
            keras.KerasTensor((batch, self.units), dtype=embedded.dtype)
            for _ in range(2 * self.num_layers)
        ]
        if not self.return_attention:
            return outputs, states
        contexts = keras.KerasTensor((batch, time, encoder_outputs.shape[-1]), dtype=embedded.dtype)
        weights = keras.KerasTensor((batch, time, encoder_outputs.shape[1]), dtype=embedded.dtype)
        return outputs, states, contexts, weights

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "attention_units": self.attention_units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "seed": self.seed,
            "return_attention": self.return_attention,
        }


@keras.saving.register_keras_serializable(package="keras_trainer")
class CopyGenerator(keras.layers.Layer):
    """Copy attention (pointer-generator): mixes generating a token with copying one.

    At every decoder step a gate `p_gen = sigmoid(w . [context; output; input
    embedding] + b)` weighs the vocabulary distribution `softmax(logits)` against
    the attention weights over the query, each weight added to the query token at
    that position. Query tokens outside the vocabulary carry extended ids
    `vocab_size + k` (see `AssistantTokenizer.encode_extended`), so the result is a
    distribution over `vocab_size + extension` tokens and an unknown word of the
    query can be produced.

    Args:
        vocab_size: Tokens of the vocabulary.
        extension: Extended-vocabulary slots (the longest query, `max_length`).

    Returns (from `call(logits, weights, contexts, outputs, embedded, source_ids)`):
        Log-probabilities `(..., vocab_size + extension)`.
    """

    def __init__(self, vocab_size: int, extension: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.extension = int(extension)

    def build(
        self,
        logits_shape,
        weights_shape,
        contexts_shape,
        outputs_shape,
        embedded_shape,
        source_ids_shape,
    ):
        width = contexts_shape[-1] + outputs_shape[-1] + embedded_shape[-1]
        self.kernel = self.add_weight(shape=(width, 1), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def source_one_hot(self, source_ids, dtype="float32"):
        """`(batch, steps, vocab_size + extension)` one-hot of the query's extended ids."""
        return ops.one_hot(source_ids, self.vocab_size + self.extension, dtype=dtype)

    def mix(self, logits, weights, contexts, outputs, embedded, one_hot):
        """The log-probabilities, given `source_one_hot(source_ids)`.

        `logits (..., vocab)`, `weights (..., steps)`, the rest `(..., width)`, with
        `...` either `(batch,)` (one step) or `(batch, time)`.
        """
        features = ops.concatenate([contexts, outputs, embedded], axis=-1)
        p_gen = ops.sigmoid(ops.matmul(features, self.kernel) + self.bias)
        generate = p_gen * ops.softmax(logits, axis=-1)
        generate = ops.pad(generate, [[0, 0]] * (len(generate.shape) - 1) + [[0, self.extension]])
        if len(weights.shape) == 2:
            copy = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), one_hot), 1)
        else:
            copy = ops.matmul(weights, one_hot)
        return ops.log(generate + (1.0 - p_gen) * copy + 1e-9)

    def call(self, logits, weights, contexts, outputs, embedded, source_ids):
        one_hot = self.source_one_hot(source_ids, logits.dtype)
        return self.mix(logits, weights, contexts, outputs, embedded, one_hot)

    def compute_output_spec(self, logits, weights, contexts, outputs, embedded, source_ids):
        return keras.KerasTensor(
            logits.shape[:-1] + (self.vocab_size + self.extension,), dtype=logits.dtype
        )

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "extension": self.extension}


def in_vocabulary(ids, vocab_size: int):
    """Extended ids (copied unknown words) read as `<UNK>` where a layer needs a vocabulary id."""
    return ops.where(ops.greater_equal(ids, vocab_size), UNK_ID, ids)
