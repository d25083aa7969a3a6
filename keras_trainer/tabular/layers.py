"""`CategoryEmbedding`: learned vectors for the one-hot blocks of embedded category columns.

A `TablePreprocessor` writes every category as a one-hot block (slot 0 out of
vocabulary); for a column with `encoding="embedding"` this layer multiplies its
block by a `(values + 1, size)` kernel, which is exactly an embedding lookup,
and passes the other features through. The saved network thus still reads one
float matrix, so ONNX export and serving need no second input.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_trainer")
class CategoryEmbedding(keras.layers.Layer):
    """Replaces one-hot blocks of the input by learned embeddings.

    Args:
        blocks: `[start, width, size]` per embedded column (`TablePreprocessor.embedding_blocks()`),
            in increasing `start` order.

    Example:

    >>> layer = CategoryEmbedding([[1, 4, 3]])  # features 1..4 are one column's one-hot block
    >>> layer(np.zeros((2, 6))).shape
    (2, 5)
    """

    def __init__(self, blocks: list[list[int]], **kwargs):
        super().__init__(**kwargs)
        self.blocks = [[int(v) for v in block] for block in blocks]

    def build(self, input_shape):
        self.kernels = [
            self.add_weight(
                shape=(width, size), initializer="glorot_uniform", name=f"embedding_{i}"
            )
            for i, (_, width, size) in enumerate(self.blocks)
        ]
        self.width = int(input_shape[-1])

    def call(self, inputs):
        parts, position = [], 0
        for (start, width, _), kernel in zip(self.blocks, self.kernels):
            if start > position:
                parts.append(inputs[:, position:start])
            parts.append(ops.matmul(inputs[:, start : start + width], kernel))
            position = start + width
        if position < self.width:
            parts.append(inputs[:, position:])
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        width = int(input_shape[-1]) + sum(size - width for _, width, size in self.blocks)
        return (input_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "blocks": self.blocks}


def with_embeddings(network_builder, blocks: list[list[int]], width: int) -> keras.Model:
    """`encoded features -> CategoryEmbedding -> network`, or the network alone without blocks.

    Args:
        network_builder: `input_width -> keras.Model` (the feed-forward body).
        blocks: `TablePreprocessor.embedding_blocks()`.
        width: Encoded features per row.
    """
    if not blocks:
        return network_builder(width)
    inputs = keras.Input((width,), name="encoded_features")
    embedded = CategoryEmbedding(blocks, name="category_embedding")(inputs)
    network = network_builder(int(embedded.shape[-1]))
    return keras.Model(inputs, network(embedded), name="typed_table_model")
