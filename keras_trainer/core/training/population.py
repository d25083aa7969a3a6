"""Population training: many copies of one architecture trained as one program.

`fit_population` trains P members that differ only in values that do not
change a shape: the learning rate, the weight decay, dropout rates, label
smoothing, loss weights, the seed (initial weights, dropout masks, batch
order), and "adam" against "adamw" (Keras' AdamW is its Adam with a weight
decay). Every member is exactly the run `fit` would make alone with its own
config: its own optimizer state, history, early stopping with best weights;
a member that stops early is frozen while the others go on.

* JAX: the fused engine's epoch (`lax.scan` over Keras' stateless
  `train_step`) under `jax.vmap`, so one compiled call trains all members. The
  members' differing Python-level values (weight decay, dropout rate, label
  smoothing, loss weights, a schedule's peak learning rate) are fed as traced
  per-member scalars while the step is traced (the weight decay and dropout rates
  always, so that the compiled programs serve later populations of other values:
  `_Programs`); a plain learning rate is an optimizer variable already.
* torch (`population_torch`): the stacked states go through one
  `torch.func.vmap`-ed step per batch, built from Keras' stateless call, loss,
  metrics and optimizer; the same per-member scalars are fed. A population whose
  step torch cannot batch (a layer that draws random numbers in training, such as
  dropout above rate 0; gradient accumulation; loss scaling; a step `torch.func`
  refuses) is trained one after another through `fit`, and the
  `keras_trainer.fit` logger says why.
* TensorFlow: the members are trained one after another through `fit` (same
  results; no speed-up). Keras' TensorFlow train step updates variables in place,
  and nothing in TensorFlow batches a step over stacked states the way `vmap` does.

On GPUs, JAX runs float32 matrix products in TF32 by default, and the batched
program uses other kernels than a solo run; set
`JAX_DEFAULT_MATMUL_PRECISION=highest` for members equal to their solo runs
(at high learning rates the TF32 differences grow over epochs).

Not supported in a population (`ConfigError`): checkpoints and resume, the
`reduce_on_plateau` schedule, and members whose configs differ in anything else.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.building.optimizers import optimizer_step
from keras_trainer.core.training.fused import sharing_parts
from keras_trainer.core.training.host import usable_cpu_count
from keras_trainer.core.training.population_members import (  # noqa: F401 (re-exported)
    MEMBER_OPTIONS,
    PopulationMember,
    _dropout_layers,
    _Population,
    _sequential,
    check_population_configs,
)


def trains_members_together() -> bool:
    """Whether this backend trains a population's members together: JAX (one compiled
    program) and torch (one batched step per batch; one after another when a layer
    draws random numbers, see `population_torch`).

    On TensorFlow `fit_population` trains them one after another: no faster than
    trials one by one (`tuning.population_size: "auto"` is then 1).
    """
    return keras.backend.backend() in ("jax", "torch")


def fit_population(
    model_builder: Callable[[int], keras.Model],
    x: Any,
    y: Any,
    configs: Sequence[TrainingConfig],
    *,
    validation_data: Optional[tuple] = None,
    loss: Any = None,
    metrics: Optional[Sequence[Any]] = None,
) -> list[PopulationMember]:
    """Trains one member per config; on JAX all members in one compiled program, on torch
    all members in one batched step per batch (see the module's docstring).

    Args:
        model_builder: `fn(index) -> keras.Model` building member `index`'s
            model. It runs right after `set_seed(configs[index].seed)`, as a solo
            run would build it, and may vary only dropout rates between members.
            On JAX and torch it runs for member 0 and the last member; for the
            others only if the model has dropout layers, or when a member's `model`
            is first read: the others start from their initial weights replayed
            under their seeds (`InitialWeights`), the same weights without
            building and compiling a model each.
        x: Training inputs (arrays).
        y: Training targets.
        configs: One `TrainingConfig` per member, differing only in `MEMBER_OPTIONS`.
        validation_data: `(x_val, y_val)`; if `None`, `validation_split` holds out data.
        loss: Overrides `config.loss` (as for `fit`).
        metrics: Overrides `config.metrics`.

    Returns:
        The members, in the order of `configs`.

    Example:

    >>> configs = [TrainingConfig(learning_rate=lr, epochs=20) for lr in (1e-3, 3e-3, 1e-2)]
    >>> members = fit_population(lambda i: build_model(ModelConfig(output_dim=5), (12,)), x, y, configs)
    >>> [m.history.best_value for m in members]
    """
    return _prepared(model_builder, x, y, configs, validation_data, loss, metrics)()


def _prepared(
    model_builder, x, y, configs, validation_data=None, loss=None, metrics=None, *, batch_one=False
) -> Callable[[], list[PopulationMember]]:
    """What trains the population; on JAX with its members already built. A population
    of one trains through `fit` (its fused engine) unless `batch_one`."""
    configs = list(configs)
    check_population_configs(configs)
    arguments = (model_builder, x, y, configs, validation_data, loss, metrics)
    if keras.backend.backend() == "torch" and len(configs) > 1:
        from keras_trainer.core.training.population_torch import fit_torch_population

        return functools.partial(fit_torch_population, *arguments)
    if not trains_members_together() or (len(configs) == 1 and not batch_one):
        return functools.partial(_sequential, *arguments)
    return _PopulationRun(*arguments).run


def population_workers() -> int:
    """Threads `fit_populations` uses by default: half the CPU cores this process may use,
    at most 8; 1 (one population after another) on two cores, where the members'
    arithmetic needs the cores the compiles would take."""
    return max(1, min(8, usable_cpu_count() // 2))


def fit_populations(
    populations: Sequence[Mapping[str, Any]], *, workers: Optional[int] = None
) -> list[concurrent.futures.Future]:
    """Trains several populations, each as `fit_population(**population)` would; on JAX
    `workers` of them compile and train at once.

    A small population spends most of its time compiling its programs, and XLA
    compiles without holding Python's GIL, so a search's wave (one population per
    batch size and optimizer) compiles its populations side by side on the CPU's
    cores. The members are built on the calling thread, one population after another
    while the populations before compile and train: a build draws from Python's global
    random numbers after `set_seed` (a population's compiling and training draws none),
    and Keras keeps its settings (dtype policy, distribution) per thread. Each member
    still equals its solo run. On JAX a population of one trains as a population, not
    through `fit`: its build stays on the calling thread, and it reuses the programs of
    an earlier population of one of its step (`_Programs`), as a search's waves do.

    Args:
        populations: `fit_population`'s arguments for each population, by name.
        workers: Threads training populations at once; default `population_workers()`.
            With 1, or on another backend than JAX, the populations train one after
            another.

    Returns:
        One finished future per population, in order: `result()` gives its members,
        or raises what failed it.
    """
    workers = population_workers() if workers is None else workers
    jax = keras.backend.backend() == "jax"
    if workers <= 1 or not jax:
        return [
            _finished(lambda p=population: _prepared(**p, batch_one=jax)())
            for population in populations
        ]
    settings = _keras_settings()
    futures = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for population in populations:  # each builds while the ones before it compile
            prepared = _finished(_prepared, **population, batch_one=True)
            if not prepared.exception():
                prepared = pool.submit(_with_settings, settings, prepared.result())
            futures.append(prepared)
    return futures


def _finished(function: Callable, *args, **kwargs) -> concurrent.futures.Future:
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - the caller reads it from the future
        future.set_exception(error)
    return future


# Keras keeps these in `global_state`, a `threading.local`: a new thread has the defaults.
_THREAD_SETTINGS = ("dtype_policy", "distribution", "nnx_enabled")


def _keras_settings() -> dict:
    from keras.src.backend.common import global_state

    return {
        name: global_state.get_global_attribute(name)
        for name in _THREAD_SETTINGS
        if global_state.get_global_attribute(name) is not None
    }


def _with_settings(settings: dict, run: Callable[[], list[PopulationMember]]):
    from keras.src.backend.common import global_state

    for name, value in settings.items():
        global_state.set_global_attribute(name, value)
    return run()


#: Programs kept for populations to come (`_Programs.checkout`): a search's waves train
#: populations of the same batch size and optimizer again, with new members.
SHARED_PROGRAMS_KEPT = 64
_SHARED_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
_SHARED_LOCK = threading.Lock()


class _Programs:
    """A JAX population's compiled programs, traced for the population in `run`.

    They read the template (its step, and `_patched` for the members' traced values)
    only while tracing, so populations whose templates take the same step
    (`programs_key`) use the same programs, one after another: `jax.jit` compiles once
    per member count and batch shape. A later population points `run` at itself, so no
    earlier template is kept alive; while one population trains, another of the same
    key gets its own.
    """

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.run: Optional[_PopulationRun] = None

        def scan(step, state, arrays, rows):
            def body(state, batch_rows):
                batch = tuple(jnp.take(a, batch_rows, axis=0) for a in arrays)
                return step(state, batch)[1], None

            return jax.lax.scan(body, state, rows)[0]

        def train_member(state, arrays, rows, hyper, active):
            with self.run._patched(hyper):
                new = scan(self.run.template.train_step, state, arrays, rows)
            return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state)

        def test_member(state, arrays, rows, hyper):
            with self.run._patched(hyper):
                return scan(self.run.template.test_step, state, arrays, rows)

        def results(metrics_values, optimizer_values, hyper):
            with self.run._patched(hyper):
                return self.run._results_of(metrics_values, optimizer_values)

        self.train = jax.jit(jax.vmap(train_member, in_axes=(0, None, 0, 0, 0)))
        self.test = jax.jit(jax.vmap(test_member, in_axes=(0, None, None, 0)))
        self.results = jax.jit(jax.vmap(results))
        self.select = jax.jit(
            lambda mask, new, old: jax.tree.map(
                lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old
            )
        )

    @classmethod
    def checkout(cls, run: _PopulationRun) -> _Programs:
        """Programs for `run`: those an earlier population of its key left, or new ones."""
        key = programs_key(run.template, run.hyper)
        with _SHARED_LOCK:
            programs = _SHARED_PROGRAMS.pop(key, None) if key is not None else None
        programs = programs or cls()
        programs.run, programs.key = run, key
        return programs

    def checkin(self) -> None:
        """Leaves the programs to the next population of their key."""
        self.run = None
        if self.key is None:
            return
        with _SHARED_LOCK:
            _SHARED_PROGRAMS[self.key] = self
            _SHARED_PROGRAMS.move_to_end(self.key)
            while len(_SHARED_PROGRAMS) > SHARED_PROGRAMS_KEPT:
                _SHARED_PROGRAMS.popitem(last=False)


def programs_key(template: keras.Model, traced: Mapping[str, Any]) -> Optional[str]:
    """What must be equal for two populations to run the same programs, or None.

    `fused.sharing_parts` of the template, less what the population feeds as traced
    per-member values (`traced`, `_Population._member_values`): those are arguments of
    the programs, not constants in them. So a wave's population of Adam members and the
    next wave's whose first member is an AdamW of another weight decay share programs.
    """
    parts = sharing_parts(template)
    if parts is None:
        return None
    _, model_config, compile_config, _ = parts
    optimizer = compile_config.get("optimizer")
    settings = optimizer.get("config", {}) if isinstance(optimizer, dict) else {}
    if "weight_decay" in traced and settings:
        settings.pop("weight_decay", None)
        optimizer["class_name"] = optimizer_step(str(optimizer.get("class_name")).lower())
    schedule = settings.get("learning_rate")
    for key in traced:
        if key.startswith("schedule_") and isinstance(schedule, dict):
            schedule.get("config", {}).pop(key[len("schedule_") :], None)
    if "label_smoothing" in traced:
        _drop(compile_config.get("loss"), "label_smoothing")
    if "loss_weights" in traced:
        compile_config.pop("loss_weights", None)
    dropout = {
        layer.name for j, layer in enumerate(_dropout_layers(template)) if f"keep_{j}" in traced
    }
    _drop(model_config, "rate", names=dropout)
    return json.dumps(parts + [sorted(traced)], sort_keys=True)


def _drop(config: Any, field: str, names: Optional[set] = None) -> None:
    """Removes `field` from every dict in `config` (those named `names`, if given)."""
    if isinstance(config, dict):
        if names is None or config.get("name") in names:
            config.pop(field, None)
        for value in config.values():
            _drop(value, field, names)
    elif isinstance(config, list):
        for value in config:
            _drop(value, field, names)


def padded_count(members: int) -> int:
    """Members a JAX population of `members` trains: the next power of two up to 8, then
    the next multiple of 8. The programs compile per member count, so populations of a
    search's next waves (whose sizes vary with the draw) find them compiled more often;
    the added members repeat the last one and are dropped from the results."""
    if members <= 8:
        return 1 << (members - 1).bit_length()
    return -(-members // 8) * 8


class _PopulationRun(_Population):
    """The JAX population: stacked states, one vmapped epoch per compiled call."""

    def __init__(self, model_builder, x, y, configs, validation_data, loss, metrics):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        count = len(configs)
        padded = list(configs) + [configs[-1]] * (padded_count(count) - count)
        super().__init__(model_builder, x, y, padded, validation_data, loss, metrics, members=count)
        self.programs = _Programs.checkout(self)
        programs = self.programs
        self._train, self._test, self._results = programs.train, programs.test, programs.results
        self._select_program = programs.select

    def run(self) -> list[PopulationMember]:
        try:
            return super().run()[: self.members]
        finally:
            self.programs.checkin()

    def _select(self, mask: np.ndarray, new: Any, old: Any) -> Any:
        return self._select_program(mask, new, old)

    def _member_values(self) -> dict:
        """`_Population`'s, with the weight decay and dropout rates fed as traced values even
        where the members agree: the programs then do not depend on them
        (`programs_key`), and a later population of other values finds them compiled. A
        zero decay (x - x * 0 * lr) and a traced keep probability (`_traced_dropout`)
        compute what Keras computes without them."""
        values = super()._member_values()
        count = len(self.configs)
        if "weight_decay" not in values:
            decay = self.template.optimizer.weight_decay
            values["weight_decay"] = np.full(count, decay or 0.0, "float32")
        for j, layer in enumerate(_dropout_layers(self.template)):
            if f"keep_{j}" not in values and layer.rate > 0:  # rate 0 draws no mask in Keras
                values[f"keep_{j}"] = np.full(count, 1.0 - layer.rate, "float32")
        return values

    # Training ------------------------------------------------------------------------------
    def _start(self) -> list:
        jnp = self.jnp
        self.template.reset_metrics()
        # Broadcast on the host: on the device each new member count compiles a program.
        self.fresh_metrics = [
            jnp.asarray(np.broadcast_to(np.asarray(v.value), (len(self.configs),) + v.shape))
            for v in self.template.metrics_variables
        ]
        self.train_arrays = self.jax.device_put(self.train)
        self.validation_arrays = (
            None if self.validation is None else self.jax.device_put(self.validation)
        )
        self.hyper_values = {k: jnp.asarray(v) for k, v in self.hyper.items()}
        # Stacked on the host, then one transfer per variable.
        return [[jnp.asarray(v) for v in group] for group in self._stacked_start()] + [
            self.fresh_metrics
        ]

    def _train_epoch(self, state: list, rows: list, active: np.ndarray) -> list:
        state[3] = self.fresh_metrics
        mask = self.jnp.asarray(active)
        for part in rows:
            if part.size:
                state = list(
                    self._train(tuple(state), self.train_arrays, part, self.hyper_values, mask)
                )
        return state

    def _epoch_logs(self, state: list) -> dict:
        hyper = self.hyper_values
        logs = {k: np.asarray(v) for k, v in self._results(state[3], state[2], hyper).items()}
        if self.validation_arrays is not None:
            val_state = (state[0], state[1], self.fresh_metrics)
            for rows in self.val_rows:
                if rows.size:
                    val_state = self._test(val_state, self.validation_arrays, rows, hyper)
            val_logs = self._results(val_state[2], state[2], hyper)
            logs.update(
                {f"val_{k}": np.asarray(v) for k, v in val_logs.items() if k != "learning_rate"}
            )
        return logs
