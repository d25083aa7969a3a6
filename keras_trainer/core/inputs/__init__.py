"""Inputs: the data a model is fed, checked and shaped before training.

Feature matrices, `(x, y)` pairs, validation splits and reproducible, resumable
shuffling (`data`), streams of batches from shards, `tf.data`, torch loaders and
generators (`streaming`), and the standardization statistics that travel inside
the saved model (`normalization`).
"""
