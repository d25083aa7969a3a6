"""Small models shaped like the library's families, for the export tests.

Each builder returns `(model, example_inputs)`; the example is a list of
arrays (one per model input). Weights are random (seeded) and BatchNorm
statistics are set to non-trivial values so that inference mode matters.
"""

import keras
import numpy as np
from keras import layers, ops

VOCAB = 40
UNITS = 8


@keras.saving.register_keras_serializable(package="keras_trainer_tests")
class DotAttention(layers.Layer):
    """Luong dot attention of a decoder state over encoder outputs."""

    def call(self, query, values):
        scores = ops.einsum("bd,btd->bt", query, values)
        weights = ops.softmax(scores, axis=-1)
        return ops.einsum("bt,btd->bd", weights, values)


@keras.saving.register_keras_serializable(package="keras_trainer_tests")
class ScaledResidual(layers.Layer):
    """x + scale * y with a trainable scale: a custom layer with a weight."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x, y):
        return x + self.scale * y


def _set_batchnorm_stats(model, rng):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, size).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size).astype("float32"))


def jit_mlp(rng):
    """The JIT strategy serving model: raw 12 features -> 5-class softmax."""
    mean = rng.normal(5.0, 2.0, 12).astype("float32")
    variance = rng.uniform(0.5, 4.0, 12).astype("float32")
    inputs = keras.Input((12,), name="features")
    x = layers.Normalization(mean=mean, variance=variance)(inputs)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(5, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="jit_mlp")
    return model, [rng.normal(5.0, 2.0, (9, 12)).astype("float32")]


def tabular_feed_forward(rng):
    inputs = keras.Input((10,), name="features")
    x = inputs
    for units in (16, 8):
        x = layers.Dense(units)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, name="prediction")(x)
    model = keras.Model(inputs, outputs, name="tabular_feed_forward")
    _set_batchnorm_stats(model, rng)
    return model, [rng.normal(size=(9, 10)).astype("float32")]


def tabular_lstm(rng):
    inputs = keras.Input((6, 4), name="sequence")
    x = layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True))(inputs)
    x = layers.LSTM(UNITS)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1, name="prediction")(x)
    model = keras.Model(inputs, outputs, name="tabular_lstm")
    _set_batchnorm_stats(model, rng)
    return model, [rng.normal(size=(9, 6, 4)).astype("float32")]


def tabular_cnn_lstm(rng):
    inputs = keras.Input((10, 3), name="sequence")
    x = layers.Conv1D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Conv1D(8, 3, padding="valid", activation="relu")(x)
    x = layers.LSTM(UNITS)(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="tabular_cnn_lstm")
    _set_batchnorm_stats(model, rng)
    return model, [rng.normal(size=(9, 10, 3)).astype("float32")]


def seq2seq_encoder(rng):
    """Embedding + 2-layer bidirectional LSTM; outputs sequence and states."""
    tokens = keras.Input((None,), dtype="int32", name="source_tokens")
    x = layers.Embedding(VOCAB, UNITS)(tokens)
    x = layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True))(x)
    sequence, fh, fc, bh, bc = layers.Bidirectional(
        layers.LSTM(UNITS, return_sequences=True, return_state=True)
    )(x)
    state_h = layers.Concatenate(name="state_h")([fh, bh])
    state_c = layers.Concatenate(name="state_c")([fc, bc])
    encoded = layers.Identity(name="encoder_outputs")(sequence)
    model = keras.Model(tokens, [encoded, state_h, state_c], name="seq2seq_encoder")
    return model, [rng.integers(0, VOCAB, (9, 7)).astype("int32")]


def seq2seq_decoder_step(rng):
    """One decoding step with attention: 4 inputs, 3 outputs, custom layers."""
    token = keras.Input((1,), dtype="int32", name="previous_token")
    state_h = keras.Input((2 * UNITS,), name="state_h")
    state_c = keras.Input((2 * UNITS,), name="state_c")
    encoded = keras.Input((None, 2 * UNITS), name="encoder_outputs")
    x = layers.Embedding(VOCAB, UNITS)(token)
    output, new_h, new_c = layers.LSTM(2 * UNITS, return_state=True)(
        x, initial_state=[state_h, state_c]
    )
    context = DotAttention()(output, encoded)
    mixed = ScaledResidual()(output, context)
    probabilities = layers.Dense(VOCAB, activation="softmax", name="next_token")(mixed)
    new_h = layers.Identity(name="new_state_h")(new_h)
    new_c = layers.Identity(name="new_state_c")(new_c)
    model = keras.Model(
        [token, state_h, state_c, encoded],
        [probabilities, new_h, new_c],
        name="seq2seq_decoder_step",
    )
    example = [
        rng.integers(0, VOCAB, (9, 1)).astype("int32"),
        rng.normal(size=(9, 2 * UNITS)).astype("float32"),
        rng.normal(size=(9, 2 * UNITS)).astype("float32"),
        rng.normal(size=(9, 5, 2 * UNITS)).astype("float32"),
    ]
    return model, example


def trained_jit_strategy_model(rng, path):
    """The library's real JIT model: trained 2 epochs by ModelTrainer, saved
    with its metadata (feature names, class names, normalization) by the
    core persistence. Returns `(serving_model, example)`."""
    from keras_trainer.jit.model.trainer import ModelTrainer

    config = {
        "model": {"input_dim": 12, "hidden_layers": [64, 32], "output_dim": 5},
        "training": {"batch_size": 32, "epochs": 2, "validation_split": 0.0, "verbose": 0},
    }
    trainer = ModelTrainer(config)
    x = (rng.normal(size=(96, 12)) * 3 + 2).astype("float32")
    labels = (x[:, 0] > 2).astype(int) + 2 * (x[:, 1] > 2).astype(int)
    trainer.fit_normalizer(x)
    trainer.train((trainer.normalize(x), labels))
    trainer.save_model(path)
    return trainer.serving_model(), [x[:9]]


def jit_ensemble(rng):
    """Three JIT MLPs averaged by `build_ensemble` (weighted 1:2:1)."""
    from keras_trainer.core.evaluating.ensemble import build_ensemble

    members = [jit_mlp(rng)[0] for _ in range(3)]
    model = build_ensemble(members, member_weights=[1.0, 2.0, 1.0], name="jit_ensemble")
    return model, [rng.normal(5.0, 2.0, (9, 12)).astype("float32")]


def factory_feed_forward(rng):
    """The tabular factory's network, exported through `ModelFactory.onnx_request`
    (the ML-framework document's `factory.export_to_onnx(model, input_shape, path)`)."""
    from keras_trainer.tabular import ModelFactory, TabularModelConfig

    config = TabularModelConfig(input_size=6, hidden_sizes=[8], use_batch_norm=False)
    return ModelFactory(seed=3).create_model(config), [rng.normal(size=(9, 6)).astype("float32")]


BUILDERS = {
    "jit_mlp": jit_mlp,
    "tabular_feed_forward": tabular_feed_forward,
    "tabular_lstm": tabular_lstm,
    "tabular_cnn_lstm": tabular_cnn_lstm,
    "seq2seq_encoder": seq2seq_encoder,
    "seq2seq_decoder_step": seq2seq_decoder_step,
    "jit_ensemble": jit_ensemble,
    "factory_feed_forward": factory_feed_forward,
}


def keras_outputs(model, example):
    """The model's outputs (training=False) on `example`, as NumPy arrays."""
    inputs = example if len(example) > 1 else example[0]
    return [
        np.asarray(ops.convert_to_numpy(o))
        for o in keras.tree.flatten(model(inputs, training=False))
    ]
