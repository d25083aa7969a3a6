"""The assistant's recurrences in native PyTorch, for the torch backend.

On torch, Keras runs `keras.ops.scan` and `while_loop` as Python loops of
Keras ops, each op a separate dispatch through Keras' conversion layer; the
encoder's 2 x T LSTM steps and the decoder's T attention steps then cost most of
a training step. These functions compute exactly what the layers compute, on the
layers' own weights (torch Parameters, so gradients reach them):

- `bidirectional_lstm`: one encoder layer, both directions, in ONE cuDNN (or ATen
  on CPU) `lstm` call over the packed batch (padding skipped as in the scan:
  queries are padded at the end);
- `decode_sequence`: the teacher-forced attention decoder as a plain loop of
  torch ops, the LSTM cells through `nn.LSTMCell`'s kernel (fused on CUDA);
- `greedy_decode`: greedy generation in the same loop, without a device sync per
  token (finished rows are checked every `_DONE_CHECK` tokens).

Only imported when `keras.backend.backend() == "torch"`.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID, UNK_ID

_NEG = -1e9
_DONE_CHECK = 8


def _value(variable, dtype=None):
    """The torch tensor of a Keras variable, cast to `dtype` (the compute dtype
    under mixed precision, where the variables stay float32)."""
    value = variable.value if hasattr(variable, "value") else variable
    return value if dtype is None else value.to(dtype)


def _masked(dtype) -> float:
    """A score that softmax turns into 0 and that `dtype` can hold (float16 ends at 65504)."""
    return -3e4 if dtype == torch.float16 else _NEG


def bidirectional_lstm(forward, backward, x, lengths, training: bool):
    """One bidirectional layer: `(outputs (B, T, 2u), h (B, 2u), c (B, 2u))`.

    Args:
        forward, backward: The two `DualBiasLSTMCell`s.
        x: `(B, T, features)`.
        lengths: `(B,)` int64 CPU tensor, tokens before the padding.
        training: Unused by the math (no dropout inside a layer); passed to torch.
    """
    batch, time = x.shape[0], x.shape[1]
    units = forward.units
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths, batch_first=True, enforce_sorted=False
    )
    weights = []
    for cell in (forward, backward):
        # cuDNN wants PyTorch's (4u, in) layout in contiguous memory.
        weights += [
            _value(cell.kernel, x.dtype).t().contiguous(),
            _value(cell.recurrent_kernel, x.dtype).t().contiguous(),
            _value(cell.input_bias, x.dtype),
            _value(cell.recurrent_bias, x.dtype),
        ]
    zeros = x.new_zeros(2, batch, units)
    with warnings.catch_warnings():
        # The weights are Keras variables, not one flat cuDNN buffer, so cuDNN packs
        # them on every call and says so; that copy is in the measured speed (H200:
        # 1.45x the plain PyTorch port, docs/benchmarks.md).
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single")
        output, h, c = torch._VF.lstm(
            packed.data, packed.batch_sizes, (zeros, zeros), weights, True, 1, 0.0, training, True
        )
    output = torch.nn.utils.rnn.PackedSequence(
        output, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
    )
    outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=time)
    order = packed.unsorted_indices
    h, c = h.index_select(1, order), c.index_select(1, order)
    return outputs, torch.cat([h[0], h[1]], -1), torch.cat([c[0], c[1]], -1)


def encode(encoder, x, padding_mask, training: bool):
    """`BidirectionalEncoder.call` in torch: `(outputs, [h_1, c_1, ..., h_n, c_n])`."""
    if padding_mask is None:
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
    else:
        lengths = padding_mask.sum(1).clamp(min=1).to("cpu", torch.int64)
    states = []
    for index, (forward, backward) in enumerate(
        zip(encoder.forward_layers, encoder.backward_layers)
    ):
        x, h, c = bidirectional_lstm(forward.cell, backward.cell, x, lengths, training)
        states += [h, c]
        if index < encoder.num_layers - 1 and training and encoder.dropout > 0:
            x = F.dropout(x, encoder.dropout, True)
    return x, states


class _DecoderWeights:
    """The decoder's weights in PyTorch's layout (transposed views, no copies), in
    `dtype` (the inputs' dtype: float16 or bfloat16 under mixed precision)."""

    def __init__(self, decoder, dtype=None):
        attention = decoder.attention
        split = attention.query_dim
        kernel = _value(attention.kernel, dtype)
        self.query_kernel = kernel[:split]
        self.key_kernel = kernel[split:]
        self.key_bias = _value(attention.bias, dtype)
        self.score = _value(attention.score_kernel, dtype)
        self.score_bias = _value(attention.score_bias, dtype)
        # nn.LSTMCell's parameters: (4u, in) and (4u, u) matrices, two biases.
        self.cells = [
            (
                _value(cell.kernel, dtype).t(),
                _value(cell.recurrent_kernel, dtype).t(),
                _value(cell.input_bias, dtype),
                _value(cell.recurrent_bias, dtype),
            )
            for cell in decoder.cells
        ]


def _step(w, embedded, states, keys, values, mask, dropout: float, training: bool):
    """One decoder step, as `AttentionDecoder.step`: `(out, states, context, weights)`.

    The cells run through `torch._VF.lstm_cell`, `nn.LSTMCell`'s kernel (one
    fused pointwise kernel on CUDA); the first reads `[embedding; context]`.
    """
    layers = len(states) // 2
    query = states[2 * layers - 2]
    energy = torch.tanh(keys + torch.mm(query, w.query_kernel).unsqueeze(1))
    if training and dropout > 0:
        energy = F.dropout(energy, dropout, True)
    scores = torch.matmul(energy, w.score).squeeze(-1) + w.score_bias
    weights = torch.softmax(scores.masked_fill(~mask, _masked(scores.dtype)), -1)
    context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)
    x = torch.cat([embedded, context], -1)
    new_states = []
    for index in range(layers):
        if index > 0 and training and dropout > 0:
            x = F.dropout(x, dropout, True)
        x, c = torch._VF.lstm_cell(x, (states[2 * index], states[2 * index + 1]), *w.cells[index])
        new_states += [x, c]
    return x, new_states, context, weights


def decode_sequence(decoder, embedded, values, mask, states, training: bool):
    """`AttentionDecoder.call` with teacher forcing, as one torch loop.

    Returns:
        `(outputs (B, T, units), states, contexts (B, T, value_dim), weights (B, T, L))`.
    """
    w = _DecoderWeights(decoder, embedded.dtype)
    keys = torch.matmul(values, w.key_kernel) + w.key_bias
    mask = mask.bool()
    outputs, contexts, all_weights = [], [], []
    for t in range(embedded.shape[1]):
        out, states, context, weights = _step(
            w, embedded[:, t], states, keys, values, mask, decoder.dropout, training
        )
        outputs.append(out)
        contexts.append(context)
        all_weights.append(weights)
    return (
        torch.stack(outputs, 1),
        states,
        torch.stack(contexts, 1),
        torch.stack(all_weights, 1),
    )


def greedy_decode(generator, query, query_extended, max_length: int, banned=(PAD_ID, SOS_ID)):
    """`GreedyGenerator.call` in torch: `(batch, max_length)` int32 tokens.

    Args:
        generator: The `GreedyGenerator` (its layers hold the weights).
        query: `(batch, L)` int32 query ids.
        query_extended: `(batch, L)` copy ids (used with copy attention).
        max_length: Tokens to generate at most.
        banned: Token ids never generated.
    """
    with torch.no_grad():
        decoder = generator.decoder
        vocab = generator.vocab_size
        query = query.long()
        mask = query != PAD_ID
        embeddings = _value(generator.embedding.embeddings)
        values, states = encode(generator.encoder, embeddings[query], mask, False)
        w = _DecoderWeights(decoder)
        keys = torch.matmul(values, w.key_kernel) + w.key_bias
        hidden_kernel = _value(generator.output_hidden.kernel)
        hidden_bias = _value(generator.output_hidden.bias)
        logits_kernel = _value(generator.output_logits.kernel)
        logits_bias = _value(generator.output_logits.bias)
        copier = generator.copier
        source = None
        if copier is not None:
            source = F.one_hot(query_extended.long(), generator.output_size).to(values.dtype)
        batch = query.shape[0]
        banned_mask = torch.zeros(generator.output_size, dtype=torch.bool, device=query.device)
        banned_mask[list(banned)] = True
        result = torch.zeros(batch, max_length, dtype=torch.int32, device=query.device)
        previous = torch.full((batch,), SOS_ID, dtype=torch.long, device=query.device)
        done = torch.zeros(batch, dtype=torch.bool, device=query.device)
        for i in range(max_length):
            embedded = embeddings[previous.masked_fill(previous >= vocab, UNK_ID)]
            out, states, context, weights = _step(
                w, embedded, states, keys, values, mask, 0.0, False
            )
            hidden = torch.relu(torch.addmm(hidden_bias, out, hidden_kernel))
            logits = torch.addmm(logits_bias, hidden, logits_kernel)
            if copier is not None:
                logits = copier.mix(logits, weights, context, out, embedded, source)
            chosen = logits.masked_fill(banned_mask, _masked(logits.dtype)).argmax(-1)
            chosen = chosen.masked_fill(done, PAD_ID)
            result[:, i] = chosen.to(torch.int32)
            done = done | (chosen == EOS_ID)
            previous = chosen
            if (i + 1) % _DONE_CHECK == 0 and bool(done.all()):
                break
        return result
