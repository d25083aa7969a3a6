"""`fit_population`: every member equals the same run trained alone."""

import threading

import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training import population
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.population import (
    fit_population,
    fit_populations,
    trains_members_together,
)
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError

DROPOUT = [0.1, 0.2, 0.3]


def _builder(index):
    return build_model(ModelConfig(output_dim=5, dropout=DROPOUT[index]), (12,))


def _configs():
    base = {"epochs": 5, "verbose": 0, "early_stopping_patience": 1, "batch_size": 32}
    members = [
        {
            "learning_rate": 1e-3,
            "seed": 1,
            "label_smoothing": 0.0,
            # Adam and AdamW take one step (Keras' AdamW is Adam with a weight decay).
            "optimizer": {"name": "adam", "weight_decay": 0.0},
        },
        {
            "learning_rate": 3e-2,
            "seed": 2,
            "label_smoothing": 0.1,
            "optimizer": {"name": "adamw", "weight_decay": 0.01},
        },
        {
            "learning_rate": 1e-1,
            "seed": 3,
            "label_smoothing": 0.2,
            "optimizer": {"name": "adamw", "weight_decay": 0.1},
        },
    ]
    return [TrainingConfig.from_dict({**base, **member}) for member in members]


def toy_data(rng) -> tuple[np.ndarray, np.ndarray]:
    """200 rows of 12 features; five classes from the signs of two of them."""
    x = rng.normal(size=(200, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[(x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)]
    return x, y


def assert_members_equal_solo_runs(
    members, builder, x, y, configs, weights_atol: float = 1e-5
) -> None:
    """Each member's history, early stop and weights are those of `fit` alone with its config;
    at least one member stopped while another went on."""
    epochs = []
    for index, (config, member) in enumerate(zip(configs, members)):
        set_seed(config.seed)
        solo = builder(index)
        history = fit(solo, x, y, config=config)
        assert member.history.epochs == history.epochs
        assert member.history.stopped_early == history.stopped_early
        assert member.history.best_epoch == history.best_epoch
        for name, values in history.history.items():
            if name.startswith("peak_"):  # memory measurements of the run, not results
                continue
            np.testing.assert_allclose(member.history.history[name], values, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(member.history.learning_rates, history.learning_rates, rtol=1e-6)
        for a, b in zip(member.model.get_weights(), solo.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=weights_atol)
        epochs.append(len(history.epochs))
    assert min(epochs) < max(epochs)  # one member stopped while another went on


def test_members_equal_solo_runs_and_stop_early_on_their_own(rng):
    x, y = toy_data(rng)
    configs = _configs()
    members = fit_population(_builder, x, y, configs)
    assert_members_equal_solo_runs(members, _builder, x, y, configs)


def test_members_may_not_differ_in_shapes_or_batching():
    configs = _configs()
    configs[1] = configs[1].replace(batch_size=64)
    with pytest.raises(ConfigError, match=r"configs\[1\].training.batch_size"):
        fit_population(_builder, np.zeros((10, 12)), np.zeros((10, 5)), configs)


@pytest.mark.skipif(
    not trains_members_together(), reason="members train one after another, each built"
)
def test_members_start_from_replayed_weights_and_build_their_models_when_read(rng, tmp_path):
    # Without dropout layers only the template (member 0) and the last member (the
    # replay's check) are built to train; the others start from weights replayed
    # under their seeds, save their weights without a model, and build it when read.
    built = []

    def builder(index):
        built.append(index)
        return build_model(ModelConfig(output_dim=5), (12,))

    x, y = toy_data(rng)
    configs = _configs()
    members = fit_population(builder, x, y, configs)
    assert built == [0, 2]
    path = str(tmp_path / "member.weights.h5")
    members[1].save_weights(path)
    assert built == [0, 2]
    saved = builder(1)
    saved.load_weights(path)
    # At learning rates up to 0.1 the batched program's float rounding moves a weight
    # by up to about 4e-5 in 5 epochs (the histories agree to 1e-4).
    assert_members_equal_solo_runs(members, builder, x, y, configs, weights_atol=1e-4)
    assert 1 in built[3:]  # member 1's model was built when read
    for a, b in zip(saved.get_weights(), members[1].model.get_weights()):
        np.testing.assert_array_equal(a, b)

    def other_last(index):
        return build_model(ModelConfig(output_dim=5, hidden_layers=[8 + index // 2]), (12,))

    with pytest.raises(ConfigError, match=r"model_builder\(2\) built a model"):
        fit_population(other_last, x, y, configs)


@pytest.mark.skipif(not trains_members_together(), reason="members train one after another")
def test_populations_train_side_by_side_each_as_it_would_alone(rng, monkeypatch):
    # On JAX two threads compile and train a population of two and one of one; each
    # member's history is that of its population trained by itself (the one alone: by
    # `fit`), and a population that cannot train fails alone.
    x, y = toy_data(rng)

    def builder(index):
        return build_model(ModelConfig(output_dim=5, hidden_layers=[8]), (12,))

    base = {"epochs": 2, "verbose": 0}
    pair = [TrainingConfig(learning_rate=r, seed=s, **base) for r, s in ((1e-3, 1), (1e-2, 2))]
    single = [TrainingConfig(batch_size=64, seed=3, **base)]
    bad = [pair[0], pair[1].replace(batch_size=16)]
    threads = set()
    run = population._PopulationRun.run

    def spy(self):
        threads.add(threading.current_thread())
        return run(self)

    monkeypatch.setattr(population._PopulationRun, "run", spy)
    futures = fit_populations(
        [dict(model_builder=builder, x=x, y=y, configs=c) for c in (pair, single, bad)], workers=2
    )
    with pytest.raises(ConfigError, match=r"configs\[1\].training.batch_size"):
        futures[2].result()
    if keras.backend.backend() == "jax":
        assert threads and threading.main_thread() not in threads
    for future, configs in zip(futures, (pair, single)):
        for member, alone in zip(future.result(), fit_population(builder, x, y, configs)):
            assert member.history.epochs == alone.history.epochs
            for name, values in alone.history.history.items():
                if not name.startswith("peak_"):
                    np.testing.assert_allclose(
                        member.history.history[name], values, rtol=1e-4, atol=1e-6
                    )


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="compiled programs are JAX's")
def test_a_population_reuses_the_programs_of_an_earlier_one_of_its_step(rng):
    # A search's next wave trains populations of the same step again: the programs the
    # first left are reused without compiling, and give what new ones give.
    x, y = toy_data(rng)

    def builder(index):
        return build_model(ModelConfig(output_dim=5, hidden_layers=[8]), (12,))

    def configs(rates, seeds):
        return [
            TrainingConfig(epochs=2, verbose=0, learning_rate=r, seed=s)
            for r, s in zip(rates, seeds)
        ]

    population._SHARED_PROGRAMS.clear()
    fit_population(builder, x, y, configs((1e-3, 3e-3), (1, 2)))
    (programs,) = population._SHARED_PROGRAMS.values()
    compiled = programs.train._cache_size()
    later = configs((1e-2, 3e-2), (3, 4))
    shared = fit_population(builder, x, y, later)
    assert list(population._SHARED_PROGRAMS.values()) == [programs]
    assert programs.train._cache_size() == compiled  # nothing traced or compiled again
    population._SHARED_PROGRAMS.clear()
    for member, fresh in zip(shared, fit_population(builder, x, y, later)):
        assert member.history.history == fresh.history.history
    assert list(population._SHARED_PROGRAMS.values()) != [programs]  # new ones ran
