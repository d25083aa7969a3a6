"""A search whose trials train as populations (`tuning.population_size`).

The oracle hands out `population_size` trials at once, as it would to that many
KerasTuner workers (tuner ids `population-0`, `population-1`, ...). Trials that
share what changes the program (batch size, optimizer, and whether dropout is on)
train together through `keras_trainer.core.training.population.fit_population`: on JAX as
one compiled program, on torch as one batched step per batch (one after another with
dropout), on TensorFlow one after another. Each trial is then reported to
the oracle, its best-epoch weights are written where KerasTuner keeps a trial's
checkpoint, and it enters the trial table like any other, so the oracle's next
choices, resume (a killed search gets the same unfinished trials back under the
same tuner ids), the trial table, `ensemble` and best-model retraining are those
of a one-by-one search. Every member equals the trial trained alone.
"""

from __future__ import annotations

import logging
import math
import os
import traceback
from typing import Any

import keras
from keras_tuner.src.engine.trial import TrialStatus
from keras_tuner.src.tuners.gridsearch import GridSearchOracle

from keras_trainer.core.saving.atomic import atomic_path
from keras_trainer.core.training.population import fit_population
from keras_trainer.tuning.hypermodel import HYPERPARAMETERS, TunableModel

logger = logging.getLogger("keras_trainer.tuning")


def _program_key(values: dict) -> tuple:
    """What must match for trials to share one population."""
    return (int(values["batch_size"]), values["optimizer"], float(values["dropout_rate"]) > 0)


def population_search(tuner: Any, hypermodel: TunableModel, x, y, x_val, y_val, size: int) -> None:
    """Runs the search in populations of up to `size` trials until the oracle stops.

    Args:
        tuner: The search's KerasTuner tuner (its oracle hands out the trials).
        hypermodel: Builds the trials' models and training configs.
        x, y: Training arrays.
        x_val, y_val: Validation arrays (the objective is measured on them).
        size: Trials per population.
    """
    oracle = tuner.oracle
    # KerasTuner's grid oracle derives the next grid point from a trial only once
    # that trial ends, in case it declares new hyperparameters while it runs, so
    # it would hand out one trial at a time. Ours are the five the hypermodel
    # declares when the tuner starts, so the next points may come from running
    # trials, and a population gets `size` of them.
    grid = isinstance(oracle, GridSearchOracle)
    tuner.on_search_begin()
    while True:
        trials = []
        for slot in range(size):
            trial = oracle.create_trial(f"population-{slot}")
            if trial.status != TrialStatus.RUNNING:
                break  # stopped (budget spent) or idle (waiting for results): run what we have
            trials.append(trial)
            if grid and trial.trial_id not in oracle._populate_next:
                oracle._populate_next.append(trial.trial_id)
        if not trials:
            break
        groups: dict[tuple, list] = {}
        for trial in trials:
            groups.setdefault(_program_key(_values(trial)), []).append(trial)
        for group in groups.values():
            _train_group(tuner, hypermodel, group, x, y, x_val, y_val)
    tuner.on_search_end()


def _values(trial) -> dict:
    return {name: trial.hyperparameters.get(name) for name in HYPERPARAMETERS}


def _train_group(tuner, hypermodel: TunableModel, trials: list, x, y, x_val, y_val) -> None:
    objective = hypermodel.objective
    # Each trial's time is the population's: they train together.
    for trial in trials:
        tuner.on_trial_begin(trial)
    configs = [
        hypermodel.training_config(_values(trial), hypermodel.config.max_epochs).replace(
            early_stopping_patience=hypermodel.config.early_stopping_patience,
            early_stopping_monitor=objective.name,
            restore_best_weights=True,
        )
        for trial in trials
    ]
    members = None
    try:
        first = hypermodel.build(trials[0].hyperparameters)
        loss, metrics = hypermodel.compile_arguments(first, y)
        models = [first] + [None] * (len(trials) - 1)

        def build(index: int) -> keras.Model:
            if models[index] is None:
                models[index] = hypermodel.build(trials[index].hyperparameters)
            return models[index]

        members = fit_population(
            build, x, y, configs, validation_data=(x_val, y_val), loss=loss, metrics=metrics
        )
    except Exception:  # noqa: BLE001 - a failed population fails its trials, as a failed trial does
        message = traceback.format_exc()
    steps = math.ceil(len(x) / configs[0].batch_size)
    for index, trial in enumerate(trials):
        hypermodel.last_fit = None
        if members is None:
            trial.status, trial.message = TrialStatus.FAILED, message
        else:
            history = members[index].history
            values = history.history.get(objective.name)
            best = objective.better(values) if values else float("nan")
            if math.isnan(best):
                trial.status = TrialStatus.FAILED
                trial.message = f"{objective.name} was NaN in every epoch or is not logged"
            else:
                _save_weights(tuner, trial.trial_id, members[index].model)
                tuner.oracle.update_trial(trial.trial_id, {objective.name: best})
                trial.status = TrialStatus.COMPLETED
                hypermodel.last_fit = {
                    "epochs": len(history.epochs),
                    "steps_per_epoch": steps,
                    "batch_size": configs[index].batch_size,
                    "history": history,
                }
        tuner.on_trial_end(trial)


def _save_weights(tuner, trial_id: str, model: keras.Model) -> None:
    # Where KerasTuner keeps a trial's best epoch (`Tuner.load_model` reads it back).
    path = os.path.join(tuner.get_trial_dir(trial_id), "checkpoint.weights.h5")
    with atomic_path(path) as temporary:
        model.save_weights(temporary)


__all__ = ["population_search"]
