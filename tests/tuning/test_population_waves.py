"""Waves of a population search: `population_size: "auto"`, whole waves, one line each."""

import logging
import re

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.src.tuners.bayesian import BayesianOptimizationOracle

from keras_trainer.cli import main
from keras_trainer.config.tuning import TuningConfig
from keras_trainer.errors import ConfigError
from keras_trainer.tuning import population
from keras_trainer.tuning.hypermodel import TunableModel
from keras_trainer.tuning.metrics import resolve_objective
from tests.tuning.test_auto_trainer import NET
from tests.tuning.test_cli import CONFIG


@pytest.mark.one_backend
def test_auto_size_is_what_fits_in_half_the_free_memory():
    auto = population.auto_population_size
    assert auto(member_bytes=1_000, free_bytes=1_000_000, max_trials=10_000) == 500
    assert auto(member_bytes=1_000, free_bytes=1_001_999, max_trials=10_000) == 500  # floor
    assert auto(member_bytes=1_000, free_bytes=1_000_000, max_trials=7) == 7
    assert auto(member_bytes=1, free_bytes=10**12, max_trials=10**6) == 4096
    assert auto(member_bytes=10**9, free_bytes=10**6, max_trials=50) == 1  # never 0


def test_member_bytes_counts_weights_optimizer_state_and_a_batch_of_activations():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(4)(inputs)))
    optimizers = [keras.optimizers.SGD(), keras.optimizers.Adam()]
    # 21 float32 weights: twice (and the best epoch's copy) plus their gradients.
    weights = 3 * 21 * 4
    # Adam, the larger state: two slots per weight, its float32 rate and its step
    # counter (int32 under JAX without x64, int64 elsewhere).
    step = np.dtype(keras.backend.standardize_dtype(optimizers[1].iterations.dtype)).itemsize
    adam = 2 * 21 * 4 + 4 + step
    # Input 3 + Dense 4 + Dense 1 values per sample, kept and differentiated.
    activations = 8 * (3 + 4 + 1) * 4 * 2
    assert population.member_bytes(model, optimizers, 8) == weights + adam + activations
    # Validation batches (all 100 rows at once, no gradients) may hold more than training's.
    validation = 100 * (3 + 4 + 1) * 4
    assert population.member_bytes(model, optimizers, 8, 100) == weights + adam + validation
    assert population.member_bytes(model, optimizers, 8, 10) == weights + adam + activations


def test_auto_sizes_waves_from_memory_where_members_train_together_and_is_one_elsewhere(caplog):
    config = TuningConfig(population_size="auto")
    hypermodel = TunableModel(NET.replace(input_size=30), config, resolve_objective("loss", None))
    space = keras_tuner.HyperParameters()
    hypermodel.declare(space)
    with caplog.at_level(logging.INFO, logger="keras_trainer.tuning"):
        size = population.resolve_population_size(hypermodel, space, max_trials=50)
    if keras.backend.backend() in ("jax", "torch"):
        # A 16-unit network needs well under a megabyte a member: the budget caps it.
        assert size == 50 and "population_size auto: 50 trials per wave" in caplog.text
    else:
        assert size == 1 and "one member after another" in caplog.text


@pytest.mark.one_backend
def test_a_bayesian_wave_proposes_each_point_once(tmp_path):
    space = keras_tuner.HyperParameters()
    space.Choice("a", list(range(8)))
    space.Choice("b", list(range(4)))
    oracle = BayesianOptimizationOracle(
        objective=keras_tuner.Objective("score", "min"),
        max_trials=20,
        num_initial_points=2,
        hyperparameters=space,
        seed=1,
    )
    oracle._set_project_dir(str(tmp_path), "bayesian")
    oracle.verbose = 0
    for _ in range(2):  # past the random start-up: the Gaussian process proposes now
        trial = oracle.create_trial("first")
        oracle.update_trial(trial.trial_id, {"score": float(trial.hyperparameters.get("a"))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    wave, stopped = population.draw_wave(oracle, 6)
    points = {tuple(sorted(trial.hyperparameters.values.items())) for trial in wave}
    assert len(wave) == 6 and len(points) == 6 and not stopped  # KerasTuner alone repeats
    assert "populate_space" not in vars(oracle)  # the oracle's own method again


@pytest.mark.one_backend
def test_a_wave_ends_a_trial_that_ended_before_a_kill_and_goes_on(tmp_path):
    # Killed between a trial's end (its trial.json) and the next save of the search's
    # state: the resumed oracle hands the ended trial back to its tuner id.
    space = keras_tuner.HyperParameters()
    space.Choice("a", list(range(8)))
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "min"), max_trials=5, hyperparameters=space
    )
    oracle._set_project_dir(str(tmp_path), "resumed")
    ended = oracle.create_trial("population-0")
    oracle.update_trial(ended.trial_id, {"score": 1.0})
    ended.status = "COMPLETED"
    wave, _ = population.draw_wave(oracle, 3)
    assert len(wave) == 3 and ended not in wave
    assert all(trial.status == "RUNNING" for trial in wave)
    assert ended.trial_id in oracle.end_order


def test_tune_prints_one_line_per_wave_and_per_trial(tmp_path, capsys):
    code = main(
        [
            "tune",
            CONFIG,
            "--directory",
            str(tmp_path / "search"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--max-trials",
            "3",
            "--max-epochs",
            "1",
            "--set",
            "tuning.population_size=2",
            "--set",
            "tuning.search_method=random",
            "--set",
            "tuning.retrain_best=false",
            "--set",
            'tuning.hyperparameter_space.optimizers=["adam"]',
            "--set",
            "tuning.hyperparameter_space.batch_sizes=[64]",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    progress = [line for line in lines if re.match(r"(wave|trial) ", line)]
    # Waves of 2 then 1 (the budget), each line after its trials'; one population each.
    shape = [re.sub(r"[0-9.]+ s$|in [0-9.]+s:.*", "", line) for line in progress]
    assert shape == [
        "trial 0 COMPLETED ",
        "trial 1 COMPLETED ",
        "wave 1: 2 trials in 1 population, ",
        "trial 2 COMPLETED ",
        "wave 2: 1 trial in 1 population, ",
    ]


@pytest.mark.one_backend
@pytest.mark.parametrize("value", ["big", 0, -1, 2.5, True])
def test_a_bad_population_size_names_the_key(value):
    with pytest.raises(ConfigError, match=r"^tuning\.population_size: must be"):
        TuningConfig(population_size=value)
    with pytest.raises(ConfigError, match=r"^tuning\.population_size: must be"):
        TuningConfig.from_dict({"population_size": value})


@pytest.mark.one_backend
def test_auto_asks_for_populations_so_it_meets_their_limits():
    assert TuningConfig.from_dict({"population_size": "auto"}).population_size == "auto"
    with pytest.raises(ConfigError, match="population_size: auto does not go with search_method"):
        TuningConfig(population_size="auto", search_method="hyperband")


@pytest.fixture
def trained_groups(monkeypatch):
    """`population_search` without training: each population's trials score their
    learning rate. Holds the number of trials of each population, in order."""
    groups = []

    def record_group(tuner, hypermodel, trials, outcome, samples):  # ends trials as it would
        groups.append(len(trials))
        for trial in trials:
            tuner.oracle.update_trial(
                trial.trial_id, {"score": trial.hyperparameters.get("learning_rate")}
            )
            trial.status = "COMPLETED"
            tuner.on_trial_end(trial)

    monkeypatch.setattr(population, "_population", lambda hypermodel, trials, *data: {})
    monkeypatch.setattr(
        population, "fit_populations", lambda populations: [None] * len(populations)
    )
    monkeypatch.setattr(population, "_record_group", record_group)
    return groups


@pytest.mark.one_backend
def test_the_search_state_is_saved_once_per_draw_and_population_and_resumes(
    tmp_path, monkeypatch, trained_groups
):
    def build(hp):
        hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2, 3e-2])
        hp.Choice("batch_size", [8, 16])
        hp.Choice("optimizer", ["adam"])
        hp.Choice("dropout_rate", [0.0])
        hp.Choice("weight_decay", [0.0])
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def make_tuner():
        return keras_tuner.RandomSearch(
            build,
            objective=keras_tuner.Objective("score", "min"),
            max_trials=4,
            seed=3,
            directory=str(tmp_path),
            project_name="saves",
        )

    saves = []
    save = keras_tuner.Oracle.save
    monkeypatch.setattr(keras_tuner.Oracle, "save", lambda self: saves.append(1) or save(self))
    tuner = make_tuner()
    tuner.oracle.verbose = 0
    saves.clear()
    population.population_search(tuner, None, [], None, None, None, size=4)
    draws = 2  # the wave's, and the one that finds the budget spent
    assert sum(trained_groups) == 4 and len(saves) == draws + len(trained_groups)  # not 3 each
    assert "save" not in vars(tuner) and "save" not in vars(tuner.oracle)
    resumed = make_tuner()  # what a resumed search reads back
    assert sorted(resumed.oracle.trials) == sorted(tuner.oracle.trials)
    assert {str(t.status) for t in resumed.oracle.trials.values()} == {"COMPLETED"}
    assert resumed.oracle.end_order == tuner.oracle.end_order and not resumed.oracle.ongoing_trials


@pytest.mark.one_backend
def test_waves_end_where_the_one_by_one_search_ends(tmp_path, trained_groups):
    # A random search stops at its first draw that finds only repeats, before its
    # budget is spent; a search in waves stops there too instead of drawing on.
    def build(hp):
        hp.Choice("learning_rate", [float(rate) for rate in range(1, 13)])
        for name, value in (("batch_size", 8), ("optimizer", "adam"), ("dropout_rate", 0.0)):
            hp.Choice(name, [value])
        hp.Choice("weight_decay", [0.0])
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def make_tuner(project):
        tuner = keras_tuner.RandomSearch(
            build,
            objective=keras_tuner.Objective("score", "min"),
            max_trials=12,
            seed=3,
            directory=str(tmp_path),
            project_name=project,
        )
        tuner.oracle.verbose, tuner.oracle._max_collisions = 0, 0
        return tuner

    one_by_one = make_tuner("one")
    drawn = []
    while (trial := one_by_one.oracle.create_trial("tuner0")).status == "RUNNING":
        drawn.append(trial.hyperparameters.get("learning_rate"))
        one_by_one.oracle.update_trial(trial.trial_id, {"score": 1.0})
        trial.status = "COMPLETED"
        one_by_one.oracle.end_trial(trial)
    waves = make_tuner("waves")
    population.population_search(waves, None, [], None, None, None, size=4)
    tried = [
        waves.oracle.trials[t].hyperparameters.get("learning_rate") for t in waves.oracle.end_order
    ]
    assert tried == drawn and len(drawn) < 12
