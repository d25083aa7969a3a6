"""A search whose trials train as populations (`tuning.population_size`).

The oracle hands out `population_size` trials at once, as it would to that many
KerasTuner workers (tuner ids `population-0`, `population-1`, ...). Trials that
share what changes the program (batch size, the optimizer's step, for which "adam" and
"adamw" are one, and whether dropout is on)
train together through `keras_trainer.core.training.population.fit_population`: on JAX as
one compiled program, on torch as one batched step per batch (one after another with
dropout), on TensorFlow one after another. Each trial is then reported to
the oracle, its best-epoch weights are written where KerasTuner keeps a trial's
checkpoint, and it enters the trial table like any other, so the oracle's next
choices, resume (a killed search gets the same unfinished trials back under the
same tuner ids), the trial table, `ensemble` and best-model retraining are those
of a one-by-one search. Every member equals the trial trained alone.

The trials handed out together are a wave; each wave is logged as one line
(`wave 3: 256 trials in 2 populations, 4.1 s`, printed by `keras-trainer tune`
with the line of each finished trial). `population_size: "auto"` sizes waves
from memory (`resolve_population_size`). Bayesian optimization fits its Gaussian
process on finished trials only, so within a wave it would propose points the
wave already holds: a wave gets its proposals until one repeats, then points not
yet tried drawn at random (`_distinct_proposals`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import keras_tuner
from keras_tuner.src.engine.trial import TrialStatus
from keras_tuner.src.tuners.bayesian import BayesianOptimizationOracle
from keras_tuner.src.tuners.gridsearch import GridSearchOracle

from keras_trainer.core.building.optimizers import build_optimizer, optimizer_step
from keras_trainer.core.saving.atomic import atomic_path
from keras_trainer.core.training.fused import free_device_memory, validation_batch_size
from keras_trainer.core.training.memory import variables_bytes
from keras_trainer.core.training.population import (
    PopulationMember,
    fit_populations,
    trains_members_together,
)
from keras_trainer.tuning.hypermodel import HYPERPARAMETERS, TunableModel

logger = logging.getLogger("keras_trainer.tuning")

#: Share of the free memory an "auto" wave may fill: the estimate leaves out XLA's
#: workspace and the data (shared by the members), and the device may be shared.
MEMORY_FRACTION = 0.5
#: Most members of an "auto" wave: past this, a bigger wave saves little (the
#: program is compiled once either way) and one failure fails more trials.
MAX_AUTO_POPULATION = 4096
#: Activations per training sample are counted this many times: the layer output
#: the backward pass keeps and its gradient (validation keeps one).
ACTIVATION_COPIES = 2


def auto_population_size(member_bytes: int, free_bytes: int, max_trials: int) -> int:
    """Members per wave for `population_size: "auto"`.

    As many members of `member_bytes` as fit in `MEMORY_FRACTION` of `free_bytes`,
    at most `max_trials` and `MAX_AUTO_POPULATION`, at least 1.
    """
    fits = int(free_bytes * MEMORY_FRACTION) // max(int(member_bytes), 1)
    return max(1, min(fits, int(max_trials), MAX_AUTO_POPULATION))


def member_bytes(
    model: keras.Model,
    optimizers: Sequence[keras.optimizers.Optimizer],
    batch_size: int,
    validation_rows: int = 0,
) -> int:
    """Estimated memory of one population member training `model` with batches of `batch_size`.

    The weights twice (theirs and the best epoch's copy that early stopping
    restores), the gradients of the trainable ones, the state of the largest of
    `optimizers` (built here on the model's trainable variables), and the
    activations of the larger of a training batch (`batch_size` samples x
    `ACTIVATION_COPIES`) and a validation batch (`validation_batch_size` rows of
    the `validation_rows`, without gradients), at the summed output widths of the
    layers x 4 bytes.
    """
    state = 0
    for optimizer in optimizers:
        optimizer.build(model.trainable_variables)
        state = max(state, variables_bytes(optimizer.variables))
    weights = 2 * variables_bytes(model.weights) + variables_bytes(model.trainable_weights)
    widths = sum(_output_width(layer) for layer in model.layers)
    validation = validation_batch_size(batch_size, validation_rows) if validation_rows else 0
    samples = max(int(batch_size) * ACTIVATION_COPIES, validation)
    return weights + state + samples * widths * 4


def _output_width(layer: keras.layers.Layer) -> int:
    try:
        outputs = keras.tree.flatten(layer.output)
    except (AttributeError, ValueError):  # a layer without one symbolic output
        return 0
    # Unknown dimensions (a variable sequence length) count as 1.
    return sum(math.prod(d or 1 for d in output.shape[1:]) for output in outputs)


def free_memory_bytes() -> int:
    """Free bytes of the device Keras trains on, else of the host.

    The host's on a CPU, or where the device reports no memory figures.
    """
    free = free_device_memory()
    if free is not None:
        return free
    try:
        import psutil
    except ImportError:  # not a dependency: the kernel's free pages (page cache excluded)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.virtual_memory().available)


def resolve_population_size(
    hypermodel: TunableModel,
    space: keras_tuner.HyperParameters,
    max_trials: int,
    validation_rows: int = 0,
) -> int:
    """The wave size `population_size: "auto"` stands for in this process.

    Where a population's members train together (`trains_members_together`: JAX
    and torch), `auto_population_size` of one member's `member_bytes` (the space's
    first model, its largest batch size and the optimizer with the most state) and
    `free_memory_bytes`. On TensorFlow 1: it trains a population's members one
    after another, so a wave would save nothing.
    """
    if not trains_members_together():
        logger.info(
            "population_size auto: 1 (on %s, populations train one member after another)",
            keras.backend.backend(),
        )
        return 1
    choices = hypermodel.config.hyperparameter_space.choices()
    first = {name: values[0] for name, values in choices.items()}
    optimizers = [
        build_optimizer(hypermodel.training_config({**first, "optimizer": name}, 1))
        for name in choices["optimizer"]
    ]
    per_member = member_bytes(
        hypermodel.build(space.copy()), optimizers, max(choices["batch_size"]), validation_rows
    )
    free = free_memory_bytes()
    size = auto_population_size(per_member, free, max_trials)
    logger.info(
        "population_size auto: %d trials per wave (%.3g MB per member, %.0f MB free, "
        "%d%% of it used; at most max_trials=%d and %d)",
        size,
        per_member / 1e6,
        free / 1e6,
        round(MEMORY_FRACTION * 100),
        max_trials,
        MAX_AUTO_POPULATION,
    )
    return size


def _program_key(values: dict) -> tuple:
    """What must match for trials to share one population; "adam" and "adamw" trials
    take the same step (`optimizer_step`)."""
    return (
        int(values["batch_size"]),
        optimizer_step(values["optimizer"]),
        float(values["dropout_rate"]) > 0,
    )


def population_search(tuner: Any, hypermodel: TunableModel, x, y, x_val, y_val, size: int) -> None:
    """Runs the search in waves of up to `size` trials until the oracle stops.

    Args:
        tuner: The search's KerasTuner tuner (its oracle hands out the trials).
        hypermodel: Builds the trials' models and training configs.
        x, y: Training arrays.
        x_val, y_val: Validation arrays (the objective is measured on them).
        size: Trials per wave (asked of the oracle at once).
    """
    tuner.on_search_begin()
    wave = 0
    stopped = False
    while not stopped:
        trials, stopped = _saving_once(tuner, draw_wave, tuner.oracle, size)
        if not trials:
            break
        wave += 1
        started = time.perf_counter()
        groups: dict[tuple, list] = {}
        for trial in trials:
            groups.setdefault(_program_key(_values(trial)), []).append(trial)
        for trial in trials:
            tuner.on_trial_begin(trial)
        populations = [
            _population(hypermodel, group, x, y, x_val, y_val) for group in groups.values()
        ]
        outcomes = iter(fit_populations([p for p in populations if isinstance(p, dict)]))
        for group, population in zip(groups.values(), populations):
            # In the order drawn, whichever population finished first: the oracle's next
            # choices are those of the same search trained one population at a time.
            outcome = next(outcomes) if isinstance(population, dict) else population
            _saving_once(tuner, _record_group, tuner, hypermodel, group, outcome, len(x))
        logger.info(
            "wave %d: %s in %s, %.1f s",
            wave,
            _count(len(trials), "trial"),
            _count(len(groups), "population"),
            time.perf_counter() - started,
        )
    tuner.on_search_end()


def _saving_once(tuner: Any, function, *args, **kwargs):
    """Calls `function`, saving the search's state once, at its end, instead of at every trial.

    KerasTuner writes `oracle.json` (and the tuner's file) each time a trial starts
    or ends, every time with all the trials' ids and hashes: over a wave that
    is time growing with the square of the trials done. Here those saves wait for
    the end of the wave's draw or of a population's results (each trial's
    `trial.json` and checkpoint are still written as it ends), then happen once;
    the tuner's records (`deferred_records`, where it has them) wait likewise. A
    search killed meanwhile resumes from the last save: the trials since come back
    unfinished, under the same tuner ids.
    """
    oracle = tuner.oracle
    own = {obj: vars(obj).get("save") for obj in (tuner, oracle)}
    defer = getattr(tuner, "deferred_records", contextlib.nullcontext)
    try:
        tuner.save = oracle.save = _no_save
        with defer():
            return function(*args, **kwargs)
    finally:
        for obj, save in own.items():
            if save is None:
                del obj.save  # the class's method again
            else:
                obj.save = save
        tuner.save()


def _no_save() -> None:
    """Stands for `save` while `_saving_once` defers it."""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def draw_wave(oracle: Any, size: int) -> tuple[list, bool]:
    """Up to `size` running trials from `oracle` (fewer once it stops or waits, none when
    done), and whether it stopped: then the search ends after them, where a one-by-one
    search ends (the budget is spent, or a random search drew only repeats)."""
    # KerasTuner's grid oracle derives the next grid point from a trial only once
    # that trial ends, in case it declares new hyperparameters while it runs, so
    # it would hand out one trial at a time. Ours are the five the hypermodel
    # declares when the tuner starts, so the next points may come from running
    # trials, and a wave gets `size` of them.
    grid = isinstance(oracle, GridSearchOracle)
    trials = []
    with _distinct_proposals(oracle):
        for slot in range(size):
            tuner_id = f"population-{slot}"
            trial = oracle.create_trial(tuner_id)
            while (
                trial.status != TrialStatus.RUNNING and oracle.ongoing_trials.get(tuner_id) is trial
            ):
                # A kill after the trial's end was written (its trial.json) but before the
                # state saved with it: the resumed oracle still holds it as running.
                oracle.end_trial(trial)
                trial = oracle.create_trial(tuner_id)
            if trial.status != TrialStatus.RUNNING:
                # Stopped, or idle (waiting for results): run what we have.
                return trials, trial.status == TrialStatus.STOPPED
            trials.append(trial)
            if grid and trial.trial_id not in oracle._populate_next:
                oracle._populate_next.append(trial.trial_id)
    return trials, False


@contextlib.contextmanager
def _distinct_proposals(oracle: Any) -> Iterator[None]:
    """Within one wave, a Bayesian oracle proposes each point once.

    Its Gaussian process is fitted on completed trials, which do not change
    during a wave, so it keeps proposing points the wave already holds (it never
    answers idle: a wave is never cut short, it repeats itself). Once its proposal repeats a point already tried, the rest of
    the wave is drawn at random among points not yet tried (KerasTuner's own
    start-up sampling), which also spares refitting the process for each slot.
    """
    if not isinstance(oracle, BayesianOptimizationOracle):
        yield
        return
    propose = oracle.populate_space
    exploit = True

    def populate_space(trial_id: str) -> dict:
        nonlocal exploit
        if exploit:
            response = propose(trial_id)
            if response["status"] != TrialStatus.RUNNING or not oracle._duplicate(
                response["values"]
            ):
                return response
            exploit = False
        return oracle._random_populate_space()

    oracle.populate_space = populate_space
    try:
        yield
    finally:
        del oracle.populate_space  # the class's method again


def _values(trial) -> dict:
    return {name: trial.hyperparameters.get(name) for name in HYPERPARAMETERS}


def _population(hypermodel: TunableModel, trials: list, x, y, x_val, y_val) -> dict | str:
    """`fit_population`'s arguments for `trials`, or why they could not be made."""
    objective = hypermodel.objective
    configs = [
        hypermodel.training_config(_values(trial), hypermodel.config.max_epochs).replace(
            early_stopping_patience=hypermodel.config.early_stopping_patience,
            early_stopping_monitor=objective.name,
            restore_best_weights=True,
        )
        for trial in trials
    ]
    try:
        first = hypermodel.build(trials[0].hyperparameters)
        loss, metrics = hypermodel.compile_arguments(first, y)
    except Exception:  # noqa: BLE001 - a failed population fails its trials, as a failed trial does
        return traceback.format_exc()
    models = [first] + [None] * (len(trials) - 1)

    def build(index: int) -> keras.Model:
        if models[index] is None:
            models[index] = hypermodel.build(trials[index].hyperparameters)
        return models[index]

    return dict(
        model_builder=build,
        x=x,
        y=y,
        configs=configs,
        validation_data=(x_val, y_val),
        loss=loss,
        metrics=metrics,
    )


def _record_group(tuner, hypermodel: TunableModel, trials: list, outcome, samples: int) -> None:
    """Reports each trial of a trained population (`outcome`: its future, or why it
    could not start) to the oracle, with its best-epoch weights, as a trial ends."""
    objective = hypermodel.objective
    members, message = None, outcome if isinstance(outcome, str) else None
    if message is None:
        try:
            members = outcome.result()
        except Exception as error:  # noqa: BLE001 - as above
            message = "".join(traceback.format_exception(error))
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
                _save_weights(tuner, trial.trial_id, members[index])
                tuner.oracle.update_trial(trial.trial_id, {objective.name: best})
                trial.status = TrialStatus.COMPLETED
                batch_size = members[index].config.batch_size
                hypermodel.last_fit = {
                    "epochs": len(history.epochs),
                    "steps_per_epoch": math.ceil(samples / batch_size),
                    "batch_size": batch_size,
                    "history": history,
                    # Its population's training time, which it shared with the others.
                    "seconds": sum(history.epoch_times),
                }
        tuner.on_trial_end(trial)


def _save_weights(tuner, trial_id: str, member: PopulationMember) -> None:
    # Where KerasTuner keeps a trial's best epoch (`Tuner.load_model` reads it back);
    # a member trained without a model of its own writes it without building one.
    path = os.path.join(tuner.get_trial_dir(trial_id), "checkpoint.weights.h5")
    with atomic_path(path) as temporary:
        member.save_weights(temporary)


__all__ = [
    "auto_population_size",
    "draw_wave",
    "free_memory_bytes",
    "member_bytes",
    "population_search",
    "resolve_population_size",
]
