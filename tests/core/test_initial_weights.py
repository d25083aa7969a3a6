"""`InitialWeights`: a model's initial weights under another seed, without building it."""

import random

import keras
import numpy as np

from keras_trainer.config import ModelConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.initial_weights import InitialWeights
from keras_trainer.core.training.seeding import set_seed


def _mlp(dropout: float = 0.0) -> keras.Model:
    return build_model(ModelConfig(output_dim=5, hidden_layers=[8], dropout=dropout), (4,))


def test_replayed_weights_equal_a_build_under_that_seed():
    model, initial = InitialWeights.record(1, _mlp)
    assert initial is not None
    set_seed(7)
    rebuilt = _mlp()
    replayed = initial.values(7)
    assert len(replayed) == len(rebuilt.variables) == 4
    for value, variable in zip(replayed, rebuilt.variables):
        np.testing.assert_array_equal(value, keras.ops.convert_to_numpy(variable))
    # Another seed gives other kernels (and the same zero biases).
    assert not np.array_equal(replayed[0], keras.ops.convert_to_numpy(model.variables[0]))
    # The patched Keras internals are put back.
    assert "__init__" not in vars(type(model.variables[0]))


def test_what_cannot_be_replayed_is_refused():
    # A dropout layer's seed generator is made by a function, not an initializer.
    assert InitialWeights.record(1, lambda: _mlp(dropout=0.5))[1] is None

    def draws_its_own_random():
        random.random()  # not a seed draw: a member's layers would draw other seeds
        return _mlp()

    assert InitialWeights.record(1, draws_its_own_random)[1] is None

    def sets_a_weight():
        model = _mlp()
        model.variables[-1].assign(np.ones(5))
        return model

    assert InitialWeights.record(1, sets_a_weight)[1] is None
