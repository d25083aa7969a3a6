"""What JAX and torch populations share: members, config checks, the epoch loop.

`keras_trainer.core.training.population.fit_population` is the entry point; this
module holds the parts its backends share: `PopulationMember`, the check that
configs differ only in `MEMBER_OPTIONS`, training members one after another
(`_sequential`), and `_Population`, which builds the members, feeds their
per-member values as traced scalars (`_patched`), runs the epoch and
early-stopping loop and writes the results back; `population.py` (JAX) and
`population_torch.py` (torch) supply the compiled or batched steps.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import logging
import math
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.building.optimizers import optimizer_step
from keras_trainer.core.inputs.data import check_same_length, epoch_order, split_validation
from keras_trainer.core.recording.history import TrainingHistory, monitor_mode
from keras_trainer.core.saving.checkpoints import model_fingerprint
from keras_trainer.core.training.fit import _monitor, compile_model, fit, training_objects
from keras_trainer.core.training.fused import _split_rows, validation_batch_size
from keras_trainer.core.training.initial_weights import InitialWeights
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError, TrainingError

logger = logging.getLogger("keras_trainer.fit")

# Training options that may differ between the members of one population.
MEMBER_OPTIONS = (
    "learning_rate",
    "optimizer.weight_decay",
    "label_smoothing",
    "loss_weights",
    "seed",
)


class PopulationMember:
    """One trained member: its config, its history and its model (best weights restored).

    A member that trained without a model of its own (see `fit_population`) builds
    it when `model` is first read; `save_weights` writes its weights without that.
    """

    def __init__(
        self,
        config: TrainingConfig,
        model: keras.Model | Callable[[], keras.Model],
        history: TrainingHistory,
        save_weights: Optional[Callable[[str], None]] = None,
    ):
        self.config = config
        self.history = history
        self._model = model
        self._save_weights = save_weights

    @property
    def model(self) -> keras.Model:
        """The member's model, built on first read if the population trained it without one."""
        if not isinstance(self._model, keras.Model):
            self._model = self._model()
        return self._model

    def save_weights(self, path: str) -> None:
        """Writes the model's weights to `path` (a `.weights.h5` file), as `model.save_weights`."""
        if self._save_weights is None:
            self.model.save_weights(path)
        else:
            self._save_weights(path)

    def __repr__(self) -> str:
        return f"PopulationMember(config={self.config!r}, history={self.history!r})"


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _option(config: TrainingConfig, dotted: str) -> Any:
    """The value of one of `MEMBER_OPTIONS` ("optimizer.weight_decay") in `config`."""
    value: Any = config
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def check_population_configs(configs: Sequence[TrainingConfig]) -> None:
    """Raises `ConfigError` unless the configs differ only in `MEMBER_OPTIONS`, or in
    optimizer names that take the same step (`optimizer_step`: "adam" and "adamw")."""
    if not configs:
        raise ConfigError("fit_population: configs is empty; give at least one TrainingConfig")
    first = _flat(configs[0].to_dict())
    for index, config in enumerate(configs[1:], start=1):
        for key, value in _flat(config.to_dict()).items():
            if key not in MEMBER_OPTIONS and _step_value(key, value) != _step_value(
                key, first.get(key)
            ):
                raise ConfigError(
                    f"fit_population: configs[{index}].training.{key} is {value!r} but "
                    f"configs[0] has {first.get(key)!r}; members may differ only in "
                    f"{', '.join(MEMBER_OPTIONS)} (and the model's dropout rates)"
                )
    config = configs[0]
    if config.checkpoint.directory is not None or config.resume:
        raise ConfigError(
            "fit_population: training.checkpoint.directory / resume are not supported for "
            "populations; train the chosen member with fit to checkpoint it"
        )
    if config.lr_schedule.name == "reduce_on_plateau":
        raise ConfigError(
            "fit_population: training.lr_schedule 'reduce_on_plateau' is not supported for "
            "populations; use a step-based schedule (cosine, warmup_cosine, step, exponential)"
        )


def _step_value(key: str, value: Any) -> Any:
    """A config value as far as the members' shared step reads it."""
    return optimizer_step(value) if key == "optimizer.name" else value


def _sequential(
    model_builder, x, y, configs, validation_data, loss, metrics
) -> list[PopulationMember]:
    members = []
    for index, config in enumerate(configs):
        set_seed(config.seed)
        model = model_builder(index)
        history = fit(
            model, x, y, config=config, validation_data=validation_data, loss=loss, metrics=metrics
        )
        members.append(PopulationMember(config, model, history))
    return members


def _dropout_layers(model: keras.Model) -> list:
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Dropout)
    ]


class _Population(abc.ABC):
    """What the batched populations share: the members' starting states, as their solo
    runs would start, their per-member values, and the writing back of the results.

    Only member 0's model (the template, whose step every member runs) is built for
    sure. Where its initial weights can be replayed under another seed
    (`InitialWeights`) and it has no dropout layer (whose rates `model_builder` may
    vary), the others start from replayed weights and a fresh optimizer, and their
    models are built when first read: building and compiling a Keras model per member
    was the cost that grew with the population (17 ms a member on a 2-core CPU). The
    last member is built too, to check the replay on a second seed.
    """

    def __init__(self, model_builder, x, y, configs, validation_data, loss, metrics, members=None):
        self.configs = configs
        # The members given; `configs` may repeat the last after them (`padded_count`).
        self.members = len(configs) if members is None else members
        config = configs[0]
        check_same_length(x, y)
        if validation_data is None and config.validation_split > 0:
            (x, y, _), validation_data = split_validation(x, y, None, config.validation_split)
        self.train = (x, y)
        self.validation = None if validation_data is None else tuple(validation_data[:2])
        self.size = check_same_length(x, y)
        self.batch_size = config.batch_size
        steps = math.ceil(self.size / config.batch_size)
        total_steps = max(steps * config.epochs // config.gradient_accumulation_steps, 1)
        self.loss = loss
        self.total_steps = total_steps
        first_batch = tuple(np.asarray(a)[: config.batch_size] for a in self.train)
        self.builds = [
            functools.partial(
                _build_member,
                model_builder,
                self._builder_index(index),
                member,
                loss,
                metrics,
                total_steps,
                first_batch,
            )
            for index, member in enumerate(configs)
        ]

        self._build_members()
        self.trainers = [self._trainer(index) for index in range(len(configs))]
        self.hyper = self._member_values()
        self.has_validation = self.validation is not None
        self.monitor = _monitor(config.early_stopping_monitor, self.has_validation)
        self.mode = monitor_mode(self.monitor)
        if self.validation is not None:
            n_val = len(self.validation[0])
            self.val_rows = _split_rows(
                np.arange(n_val), validation_batch_size(self.batch_size, n_val)
            )

    def _build_members(self) -> None:
        """The template, and the members' starting states: replayed where possible."""
        configs, count = self.configs, len(self.configs)
        self.models: list[Optional[keras.Model]] = [None] * count
        self._fresh: dict[tuple, tuple] = {}  # member options -> (optimizer, loss, values)
        self.replayed: Optional[list] = None  # stacked starting states of every member
        replay = None
        if all(isinstance(c.seed, int) for c in configs):
            self.models[0], replay = InitialWeights.record(configs[0].seed, self.builds[0])
        else:
            self.models[0] = self.builds[0]()
        template = self.template = self.models[0]
        self.fingerprint = model_fingerprint(template)
        template_start = _values_of(template)  # before any step
        self._template_optimizer_start = template_start[2]
        if count > 1 and replay is not None and not _dropout_layers(template):
            last = count - 1
            self.models[last] = self.builds[last]()
            self._check_fingerprint(last, self.models[last])
            replayed = self._replayed_starts(replay)
            if all(
                _same_values([[v[i] for v in g] for g in replayed], start)
                for i, start in ((0, template_start), (last, _values_of(self.models[last])))
            ):
                self.replayed = replayed
            else:  # slower, not wrong: say so, since the build time grows with the count
                logger.info(
                    "fit_population: replayed initial weights differ from a build; "
                    "building all %d members",
                    count,
                )
        for index in range(1, count):
            if self.models[index] is None and self.replayed is None:
                self.models[index] = self.builds[index]()
                self._check_fingerprint(index, self.models[index])

    def _builder_index(self, index: int) -> int:
        """The `model_builder` index of member `index`: padded members repeat the last."""
        return min(index, self.members - 1)

    def _check_fingerprint(self, index: int, model: keras.Model) -> None:
        template = self.template
        if model_fingerprint(model) != self.fingerprint or len(model.optimizer.variables) != len(
            template.optimizer.variables
        ):
            raise ConfigError(
                f"fit_population: model_builder({self._builder_index(index)}) built a model "
                "whose variables differ "
                "from model_builder(0)'s (layers, shapes, or a dropout layer present in one "
                "and not the other); members may differ only in shape-free values"
            )

    # Starting states ------------------------------------------------------------------------
    def _replayed_starts(self, replay: InitialWeights) -> list[list[np.ndarray]]:
        """Every member's starting state without its model, stacked: replayed initial
        weights, and the template's optimizer state with the variables a fresh optimizer
        of the member's config makes before building (the iteration, the learning rate)."""
        template = self.template
        seeds = [c.seed for c in self.configs]
        values = dict(zip(map(id, template.variables), replay.stacked_values(seeds)))
        optimizer = [self._fresh_trainer(config)[2] for config in self.configs]
        return [
            [values[id(v)] for v in template.trainable_variables],
            [values[id(v)] for v in template.non_trainable_variables],
            [np.stack(column) for column in zip(*optimizer)],
        ]

    def _fresh_trainer(self, config: TrainingConfig) -> tuple:
        """(optimizer, loss, the optimizer's starting values) for a member without a model;
        one per distinct set of member options (a search repeats them across seeds)."""
        key = tuple(repr(_option(config, name)) for name in MEMBER_OPTIONS if name != "seed")
        if key not in self._fresh:
            optimizer, loss = training_objects(config, self.loss, self.total_steps)
            values = list(self._template_optimizer_start)
            for position, variable in enumerate(optimizer.variables):
                values[position] = np.asarray(keras.ops.convert_to_numpy(variable.value))
            self._fresh[key] = (optimizer, loss, values)
        return self._fresh[key]

    def _trainer(self, index: int) -> tuple:
        """Member `index`'s optimizer and loss: its model's, or fresh ones from its config."""
        model = self.models[index]
        if model is not None:
            return model.optimizer, model.loss
        return self._fresh_trainer(self.configs[index])[:2]

    def _stacked_start(self) -> list[list[np.ndarray]]:
        """Every member's starting state [trainable, non-trainable, optimizer], each
        variable stacked on the host along a new member axis (one transfer each)."""
        if self.replayed is not None:
            return self.replayed
        starts = [_values_of(model) for model in self.models]
        return [
            [np.stack(values) for values in zip(*[start[group] for start in starts])]
            for group in range(3)
        ]

    # Per-member Python-level values, fed as traced scalars -------------------------------
    def _member_values(self) -> dict:
        values: dict[str, np.ndarray] = {}
        optimizers, losses = zip(*self.trainers)
        # A dropout layer means every member's model is built (`__init__`).
        dropout = [_dropout_layers(model) for model in filter(None, self.models)]
        for j in range(len(dropout[0])):
            rates = [layers[j].rate for layers in dropout]
            if len(set(rates)) > 1:
                values[f"keep_{j}"] = np.asarray([1.0 - r for r in rates], "float32")
        decays = [optimizer.weight_decay for optimizer in optimizers]
        if len(set(decays)) > 1:
            values["weight_decay"] = np.asarray([d or 0.0 for d in decays], "float32")
        schedules = [optimizer._learning_rate for optimizer in optimizers]
        if isinstance(schedules[0], keras.optimizers.schedules.LearningRateSchedule):
            for name in ("initial_learning_rate", "warmup_target"):
                found = [getattr(s, name, None) for s in schedules]
                if found[0] is not None and len(set(found)) > 1:
                    values[f"schedule_{name}"] = np.asarray(found, "float32")
        smoothing = [c.label_smoothing for c in self.configs]
        if len(set(smoothing)) > 1:
            if self.template.loss.__class__.__name__ not in (
                "CategoricalCrossentropy",
                "BinaryCrossentropy",
            ):
                raise ConfigError(
                    "fit_population: training.label_smoothing may differ between members only "
                    "with categorical_crossentropy or binary_crossentropy, not "
                    f"{self.template.loss!r}"
                )
            values["label_smoothing"] = np.asarray(smoothing, "float32")
        weights = [getattr(loss, "weights", None) for loss in losses]
        if weights[0] is not None and any(w != weights[0] for w in weights):
            values["loss_weights"] = np.asarray(weights, "float32")
        return values

    @contextlib.contextmanager
    def _patched(self, hyper: dict):
        """Inside, the template's optimizer, loss and dropout read `hyper`'s traced values."""
        template = self.template
        undo = []

        def patch(obj, name, value):
            undo.append((obj, name, obj.__dict__.get(name, _MISSING)))
            object.__setattr__(obj, name, value)

        for j, layer in enumerate(_dropout_layers(template)):
            if f"keep_{j}" in hyper:
                patch(layer, "call", _traced_dropout(layer, hyper[f"keep_{j}"]))
        if "weight_decay" in hyper:
            patch(template.optimizer, "weight_decay", hyper["weight_decay"])
        for key, value in hyper.items():
            if key.startswith("schedule_"):
                patch(template.optimizer._learning_rate, key[len("schedule_") :], value)
        if "label_smoothing" in hyper:
            loss = template.loss
            smoothing = hyper["label_smoothing"]
            original = loss.fn
            binary = loss.__class__.__name__ == "BinaryCrossentropy"

            def smoothed(y_true, y_pred, **kwargs):
                y_true = keras.ops.cast(y_true, y_pred.dtype)
                if binary:
                    y_true = y_true * (1.0 - smoothing) + 0.5 * smoothing
                else:
                    classes = keras.ops.cast(keras.ops.shape(y_true)[-1], y_pred.dtype)
                    y_true = y_true * (1.0 - smoothing) + (smoothing / classes)
                return original(y_true, y_pred, **dict(kwargs, label_smoothing=0.0))

            patch(loss, "fn", smoothed)
        if "loss_weights" in hyper:
            patch(template.loss, "weights", hyper["loss_weights"])
        try:
            yield
        finally:
            for obj, name, old in reversed(undo):
                if old is _MISSING:
                    object.__delattr__(obj, name)
                else:
                    object.__setattr__(obj, name, old)

    def _results_of(self, metrics_values: list, optimizer_values: list) -> dict:
        """One member's metric results and learning rate, from its variables' values."""
        template = self.template
        mapping = list(zip(template.metrics_variables, metrics_values))
        mapping += list(zip(template.optimizer.variables, optimizer_values))
        with keras.StatelessScope(state_mapping=mapping):
            logs = dict(template.get_metrics_result())
            logs["learning_rate"] = template.optimizer.learning_rate
            return {k: keras.ops.cast(v, "float32") for k, v in logs.items()}

    # Training ------------------------------------------------------------------------------
    @abc.abstractmethod
    def _start(self) -> list:
        """The stacked states [trainable, non-trainable, optimizer, metrics], member axis first."""

    @abc.abstractmethod
    def _train_epoch(self, state: list, rows: list, active: np.ndarray) -> list:
        """One epoch of every active member; `rows` are the (members, steps, batch) full
        batches and the (members, 1, rest) last batch. Inactive members keep their state."""

    @abc.abstractmethod
    def _epoch_logs(self, state: list) -> dict:
        """Per-member arrays of the epoch's metrics, `learning_rate` and `val_` metrics."""

    @abc.abstractmethod
    def _select(self, mask: np.ndarray, new: Any, old: Any) -> Any:
        """Stacked `new` where `mask` (one bool per member) is set, else `old`."""

    def run(self) -> list[PopulationMember]:
        config, count = self.configs[0], len(self.configs)
        state = self._start()
        histories = [TrainingHistory(monitor=self.monitor, mode=self.mode) for _ in self.configs]
        patience = config.early_stopping_patience
        active = np.ones(count, bool)
        best_value: list[Optional[float]] = [None] * count
        wait = np.zeros(count, int)
        stopped = np.zeros(count, bool)
        best = (
            None  # stacked model variables (trainable, non-trainable) of each member's best epoch
        )
        restore = patience > 0 and config.restore_best_weights
        min_delta = config.early_stopping_min_delta

        for epoch in range(config.epochs):
            started = time.perf_counter()
            orders = [
                epoch_order(self.size, c.seed or 0, epoch, config.shuffle) for c in self.configs
            ]
            parts = [_split_rows(order, self.batch_size) for order in orders]
            rows = [np.stack([p[which] for p in parts]) for which in (0, 1)]
            state = self._train_epoch(state, rows, active)
            logs = self._epoch_logs(state)
            seconds = time.perf_counter() - started
            improved = np.zeros(count, bool)
            for i in np.flatnonzero(active):
                member_logs = {k: float(v[i]) for k, v in logs.items() if k != "learning_rate"}
                histories[i].record(epoch, member_logs, float(logs["learning_rate"][i]), seconds)
                if not math.isfinite(member_logs.get("loss", 0.0)):
                    active[i] = False  # the NaN guard: this member stops; best weights are kept
                    continue
                if patience <= 0:
                    continue
                current = member_logs.get(self.monitor)
                if current is None:
                    continue
                wait[i] += 1
                reference = best_value[i]
                delta_value = current - min_delta if self.mode == "max" else current + min_delta
                better = reference is None or (
                    delta_value > reference if self.mode == "max" else delta_value < reference
                )
                if better:
                    best_value[i], wait[i], improved[i] = current, 0, True
                elif wait[i] >= patience and epoch > 0:
                    active[i], stopped[i] = False, True
            if restore:
                weights = (state[0], state[1])
                first = best is None
                best = weights if first else self._select(improved, weights, best)
            if not active.any():
                break
        final = (best[0], best[1]) if restore and best is not None else (state[0], state[1])
        return self._members(histories, final, state[2], stopped)

    def _members(
        self, histories: list, final: tuple, optimizer_state: Any, stopped: np.ndarray
    ) -> list[PopulationMember]:
        """Each member's final (or best) state, written into its model where it has one;
        one member per config."""
        if histories and all(
            not math.isfinite(h.history.get("loss", [0.0])[-1]) for h in histories
        ):
            raise TrainingError(
                "fit_population: the loss became NaN or infinite for every member; lower "
                "training.learning_rate or set training.gradient_clip_norm"
            )
        # One copy to the host per stacked variable, not one device slice per member
        # and variable (thousands of dispatches for a large population).
        groups = [
            [keras.ops.convert_to_numpy(v) for v in group] for group in (*final, optimizer_state)
        ]
        members = []
        for i, member_config in enumerate(self.configs):
            values = [[value[i] for value in group] for group in groups]
            histories[i].stopped_early = bool(stopped[i])
            model = self.models[i]
            if model is not None:
                _assign(model, values)
                save = functools.partial(_save_model_through, self.template, model)
                members.append(PopulationMember(member_config, model, histories[i], save))
                continue
            members.append(
                PopulationMember(
                    member_config,
                    functools.partial(self._model_of, i, values),
                    histories[i],
                    save_weights=functools.partial(_save_through, self.template, values),
                )
            )
        return members

    def _model_of(self, index: int, values: list) -> keras.Model:
        """Member `index`'s model, built after training, holding its final `values`."""
        model = self.builds[index]()
        self._check_fingerprint(index, model)
        _assign(model, values)
        return model


def _build_member(
    model_builder, index, config, loss, metrics, total_steps, first_batch
) -> keras.Model:
    """Member `index`'s model, built and compiled as its solo run would (with its
    optimizer's slots and, for the template, its metrics)."""
    set_seed(config.seed)
    model = model_builder(index)
    compile_model(model, config, loss=loss, metrics=metrics, total_steps=total_steps)
    # The template's metrics and compiled loss are used; the other members need only
    # their weights and optimizer slots, which a built model's optimizer makes without
    # a symbolic pass.
    if index == 0 or not model.built:
        model._symbolic_build(data_batch=first_batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return model


def _model_variables(model: keras.Model) -> tuple:
    return model.trainable_variables, model.non_trainable_variables, model.optimizer.variables


def _assign(model: keras.Model, values: list) -> None:
    for variables, group in zip(_model_variables(model), values):
        for variable, value in zip(variables, group):
            variable.assign(value)


def _save_through(template: keras.Model, values: list, path: str) -> None:
    """Writes `values` as the weights file of a model like `template`: a member's
    weights without building its model.

    The first call for a template writes its file through Keras (`_WeightsLayout`);
    later calls copy that file and overwrite its datasets with `values`, which
    spares Keras walking the model for every member (tens of ms each). Where the
    layout cannot be read off the file, each call writes through `template`
    (whose own values are put back).
    """
    layout = _WEIGHTS_LAYOUTS.get(template)
    if layout is None:
        layout = _WEIGHTS_LAYOUTS[template] = _WeightsLayout.of(template)
    if layout.file is not None:
        layout.write(values, path)
        return
    own = _values_of(template)
    _assign(template, values)
    try:
        template.save_weights(path)
    finally:
        _assign(template, own)


def _save_model_through(template: keras.Model, model: keras.Model, path: str) -> None:
    """`model.save_weights(path)` for a member's model, as `_save_through` writes it
    (the same file: a member's structure is the template's)."""
    _save_through(template, _values_of(model), path)


def _values_of(model: keras.Model) -> list:
    """Host copies of the model's [trainable, non-trainable, optimizer] variables (copies:
    on torch's CPU a NumPy view would change with the next `assign`)."""
    return [[np.array(keras.ops.convert_to_numpy(v)) for v in g] for g in _model_variables(model)]


class _WeightsLayout:
    """Where each variable of a template lands in its Keras weights file.

    Read off one file that Keras writes while the template's variable number `k`
    (trainable, non-trainable, optimizer, in that order) holds `k` everywhere:
    each dataset must be one variable's, whole, stored contiguously in the file.
    `file` is that file's bytes (None where some dataset is not such a variable's:
    the layout is unknown) and `datasets` maps dataset paths to (byte offset,
    dtype, group, index in a member's `values`): a member's file is `file` with
    its values' bytes written there.
    """

    def __init__(self, file: Optional[bytes], datasets: dict):
        self.file = file
        self.datasets = datasets

    @classmethod
    def of(cls, template: keras.Model) -> _WeightsLayout:
        import os
        import tempfile

        import h5py

        own = _values_of(template)
        flat = [(g, i) for g, group in enumerate(own) for i in range(len(group))]
        markers = []
        for k, (g, i) in enumerate(flat):
            marker = np.full(own[g][i].shape, k, dtype=own[g][i].dtype)
            if marker.size == 0 or marker.ravel()[0] != k:  # k not exact in this dtype
                return cls(None, {})
            markers.append(marker)
        remaining = iter(markers)
        groups = [[next(remaining) for _ in group] for group in own]
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "layout.weights.h5")
            _assign(template, groups)
            try:
                template.save_weights(path)
            finally:
                _assign(template, own)
            datasets = {}
            with h5py.File(path, "r") as handle:
                handle.visititems(lambda name, item: _mapped(name, item, markers, flat, datasets))
            if None in datasets.values():
                return cls(None, {})
            with open(path, "rb") as handle:
                return cls(handle.read(), datasets)

    def write(self, values: list, path: str) -> None:
        """Writes the weights file of a model like the template's holding `values`."""
        data = bytearray(self.file)
        for offset, dtype, g, i in self.datasets.values():
            raw = np.ascontiguousarray(values[g][i], dtype=dtype).tobytes()
            data[offset : offset + len(raw)] = raw
        with open(path, "wb") as handle:
            handle.write(data)


def _mapped(name: str, item: Any, markers: list, flat: list, datasets: dict) -> None:
    """Records where dataset `name` of a marker file lives (None: not a variable's, whole)."""
    import h5py

    if not isinstance(item, h5py.Dataset):
        return
    datasets[name] = None
    offset = item.id.get_offset()
    if offset is None or item.chunks is not None or item.compression:
        return  # not stored as one run of bytes
    value = np.asarray(item[()])
    if value.size == 0 or not np.issubdtype(value.dtype, np.number):
        return
    k = int(value.ravel()[0])
    if 0 <= k < len(markers) and np.array_equal(value, markers[k]):  # shape and values
        datasets[name] = (offset, item.dtype, *flat[k])


#: Each template's `_WeightsLayout`, while the template lives.
_WEIGHTS_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _same_values(a: list, b: list) -> bool:
    return all(
        len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y)) for x, y in zip(a, b)
    )


_MISSING = object()


def _traced_dropout(layer, keep):
    """`layer.call` with a traced keep probability; the same mask as Keras' JAX dropout."""
    import jax
    from keras.src.backend.jax.random import _get_concrete_noise_shape, jax_draw_seed

    def call(inputs, training=False):
        if not training:
            return inputs
        seed = jax_draw_seed(layer.seed_generator)
        noise_shape = _get_concrete_noise_shape(inputs, layer.noise_shape)
        mask = jax.random.bernoulli(seed, p=keep, shape=noise_shape)
        mask = jax.numpy.broadcast_to(mask, inputs.shape)
        return jax.lax.select(
            mask, inputs / keep.astype(inputs.dtype), jax.numpy.zeros_like(inputs)
        )

    return call
