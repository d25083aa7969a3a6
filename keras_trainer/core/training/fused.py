"""The fused training engine: many optimizer steps per compiled call, data on the device.

For the small models this library trains, Keras `fit` is dispatch-bound: each
batch goes through a Python data adapter, one compiled call and the callback
machinery, so the device idles between tiny kernels. The fused engine keeps
the training and validation arrays on the device and runs Keras' own
`train_step` (the same loss, metrics, optimizer, loss scaling, clipping,
gradient accumulation and per-step learning-rate schedules) inside a device
loop:

* JAX: `train_step` is stateless there (`stateless_call` +
  `optimizer.stateless_apply`); one `jax.jit`-compiled `jax.lax.scan` runs every
  full batch of an epoch, gathering its rows on the device.
* TensorFlow: one `tf.function` whose `tf.while_loop` runs the epoch's steps.
* torch: the steps run on device tensors without the data adapter or per-batch
  callbacks; on a CUDA device they are captured once per batch size into CUDA
  graphs (16 steps and 1 step) and replayed, which removes the Python cost of
  every step. Elsewhere (a CPU) each batch size's step is traced once into a
  graph of ATen operations (`torch.fx`) and replayed, which removes Keras'
  Python layer code; after `COMPILE_AFTER_STEPS` steps (at once when the model
  is compiled with `jit_compile=True`) that graph is compiled by `torch.compile`.

The batches are exactly the Keras engine's: the order of epoch `e` comes from
`keras_trainer.core.inputs.data.epoch_order` (host) or the same `tf.data` shuffle
(TensorFlow), the rows are gathered on the device, and the last, smaller batch
runs as its own step. So both engines give the same loss curve up to float
rounding, and a run resumed from a checkpoint continues exactly.

Callbacks see whole epochs: `on_epoch_begin`/`on_epoch_end` as usual, and the
batch hooks once per epoch (with the epoch's last batch index), which is why
`engine: "auto"` uses the Keras engine when a callback overrides a batch hook.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.inputs.data import epoch_order, tf_epoch_order

logger = logging.getLogger("keras_trainer.fit")

ENGINES = ("auto", "keras", "fused")
# At most this share of the free device memory may hold the training arrays.
DEVICE_MEMORY_SHARE = 0.5
# Validation batches: large ones (rows do not interact in inference mode).
EVAL_BATCH_SIZE = 4096


def validation_batch_size(batch_size: int, validation_rows: int) -> int:
    """Rows per validation batch of the fused engine and of populations."""
    return max(batch_size, min(validation_rows, EVAL_BATCH_SIZE))


_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


def batch_hook_callbacks(callbacks: Sequence[keras.callbacks.Callback]) -> list[str]:
    """Names of the callbacks that override a batch-level hook (`Class.hook`).

    TensorBoard logging per epoch (its default) only profiles in its batch
    hooks, which the fused engine does not support anyway, so it does not count.
    """
    found = []
    for callback in callbacks:
        per_epoch = getattr(callback, "update_freq", None) == "epoch"
        if (
            isinstance(callback, keras.callbacks.TensorBoard)
            and per_epoch
            and not getattr(callback, "_profile_batch", 0)
        ):
            continue
        if _forwards_to_idle_tuner(callback):
            continue
        for hook in _BATCH_HOOKS:
            if getattr(type(callback), hook, None) is not getattr(keras.callbacks.Callback, hook):
                found.append(f"{type(callback).__name__}.{hook}")
                break
    return found


def _forwards_to_idle_tuner(callback: keras.callbacks.Callback) -> bool:
    # KerasTuner adds a `TunerCallback` to every trial; its batch hooks call the
    # tuner's `on_batch_begin/end`, which do nothing unless a tuner overrides them.
    tuner = getattr(callback, "tuner", None)
    if type(callback).__name__ != "TunerCallback" or tuner is None:
        return False
    return all(
        getattr(type(tuner), hook).__qualname__ == f"Tuner.{hook}"
        for hook in ("on_batch_begin", "on_batch_end")
    )


def _nbytes(data: Any) -> int:
    return sum(np.asarray(leaf).nbytes for leaf in keras.tree.flatten(data) if leaf is not None)


def free_device_memory() -> Optional[int]:
    """Free bytes on the device Keras trains on, or `None` for host memory (CPU)."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            stats = device.memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.mem_get_info()[0])
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                info = tf.config.experimental.get_memory_info("GPU:0")
                total = tf.config.experimental.get_device_details(
                    tf.config.list_physical_devices("GPU")[0]
                ).get("memory_limit")
                if total:
                    return int(total - info["current"])
    except Exception:  # noqa: BLE001 - no memory figure: treat as unknown, keep host rule
        return None
    return None


def fused_unsupported_reason(model: keras.Model, arrays: Sequence[Any]) -> Optional[str]:
    """Why the fused engine cannot train this run (`None` when it can)."""
    if model.run_eagerly:
        return "the model is compiled with run_eagerly=True"
    for data in arrays:
        for leaf in keras.tree.flatten(data):
            if leaf is None:
                continue
            dtype = np.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype
            kind = getattr(np.dtype(dtype) if not hasattr(dtype, "kind") else dtype, "kind", "f")
            if kind not in "biuf":
                return f"an input array has dtype {dtype} (the fused engine takes numeric arrays)"
    needed = sum(_nbytes(data) for data in arrays)
    free = free_device_memory()
    if free is not None and needed > DEVICE_MEMORY_SHARE * free:
        return (
            f"the data needs {needed / 2**20:.0f} MiB on the device but only "
            f"{free / 2**20:.0f} MiB are free (at most {DEVICE_MEMORY_SHARE:.0%} may be used)"
        )
    return None


def choose_engine(
    engine: str,
    model: keras.Model,
    arrays: Sequence[Any],
    callbacks: Sequence[keras.callbacks.Callback],
) -> str:
    """Resolves `training.engine` to "keras" or "fused"; logs why "auto" falls back.

    "fused" runs callbacks' batch hooks once per epoch; "auto" then prefers the
    Keras engine, which calls them after every batch.
    """
    if engine == "keras":
        return "keras"
    reason = fused_unsupported_reason(model, arrays)
    hooks = batch_hook_callbacks(callbacks)
    if reason is None and hooks and engine == "auto":
        reason = (
            f"callback {hooks[0]} runs on every batch "
            "(the fused engine calls batch hooks once per epoch)"
        )
    if reason is None:
        return "fused"
    if engine == "fused":
        from keras_trainer.errors import ConfigError

        raise ConfigError(
            f"training.engine='fused': cannot be used here: {reason}; use 'auto' or 'keras'"
        )
    logger.info("training.engine='auto': using the Keras engine because %s", reason)
    return "keras"


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# JAX programs shared by models of one structure and compilation (the trials of a
# search): the newest few, since each keeps its first model alive.
_SHARED_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
SHARED_PROGRAMS_KEPT = 4


def _programs(model: keras.Model, build, share: bool = False):
    """The compiled epoch programs of `model`, reused while its compilation is unchanged.

    Like Keras' own `train_function`, a second `fit` of the same compiled model
    (new data of the same shapes) reuses them instead of compiling again. With
    `share` (JAX, where a step is a pure function of the state it is given), a
    new model whose architecture and compile settings equal an earlier one's
    (`sharing_key`) reuses that model's programs: a search's trials differing only
    in the learning rate compile once.
    """
    key = (
        id(model.optimizer),
        id(getattr(model, "_compile_loss", None)),
        id(getattr(model, "_compile_metrics", None)),
    )
    cached = _PROGRAMS.get(model)
    if cached is None or cached[0] != key:
        shared = sharing_key(model) if share else None
        programs = _SHARED_PROGRAMS.get(shared) if shared is not None else None
        if programs is None:
            programs = build()
            if shared is not None:
                _SHARED_PROGRAMS[shared] = programs
                while len(_SHARED_PROGRAMS) > SHARED_PROGRAMS_KEPT:
                    _SHARED_PROGRAMS.popitem(last=False)
        else:
            _SHARED_PROGRAMS.move_to_end(shared)
        cached = (key, programs)
        _PROGRAMS[model] = cached
    return cached[1]


def sharing_key(model: keras.Model) -> Optional[str]:
    """What must be equal for two models to run the same compiled step, or None.

    The model's config, its compile config (optimizer, loss, metrics, ...) and the
    layers' rematerialization modes. A plain learning rate is left out: it is an
    optimizer variable, part of the state each call is given; so is the optimizer's
    instance name. Anything that does not serialize to plain JSON (a lambda loss,
    a custom object) gives None: no sharing.
    """
    parts = sharing_parts(model)
    return None if parts is None else json.dumps(parts, sort_keys=True)


def sharing_parts(model: keras.Model) -> Optional[list]:
    """`sharing_key`'s parts before they are written as JSON: the model's class, its
    config, its compile config (optimizer config without its name and a plain
    learning rate) and the layers' rematerialization modes; None where they do not
    serialize to plain JSON."""
    try:
        compile_config = model.get_compile_config()
        if compile_config is None:
            return None
        optimizer = compile_config.get("optimizer")
        if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
            settings = dict(optimizer["config"])
            settings.pop("name", None)  # numbered per instance ("adam_1"); computes nothing
            if isinstance(settings.get("learning_rate"), float):
                settings.pop("learning_rate")
            compile_config = {**compile_config, "optimizer": {**optimizer, "config": settings}}
        remat = [str(getattr(layer, "_remat_mode", None)) for layer in model._flatten_layers()]
        parts = [type(model).__qualname__, model.get_config(), compile_config, remat]
        return json.loads(json.dumps(parts))  # plain JSON, or TypeError/ValueError
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None


def _split_rows(order: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    full = len(order) // batch_size
    return (
        order[: full * batch_size].reshape(full, batch_size).astype("int32"),
        order[full * batch_size :].reshape(1, -1).astype("int32"),
    )


class _JaxLoop:
    """Epochs as `jax.lax.scan` over Keras' stateless `train_step`.

    One compiled call runs the epoch's full batches, its last smaller batch and
    the metric results, starting from fresh metric values, so an epoch costs
    one dispatch and one read-back. On accelerators the scan is unrolled
    (`UNROLL` steps per loop iteration): each iteration of an XLA loop there
    costs a round trip for its condition.
    """

    UNROLL = 8
    MAX_WASTED = 2

    def __init__(self, model: keras.Model, train: tuple, validation: Optional[tuple]):
        import jax
        import jax.numpy as jnp

        self.jax, self.model = jax, model
        self.train = jax.device_put(train)
        self.validation = None if validation is None else jax.device_put(validation)
        model.reset_metrics()
        self.fresh_metrics = [v.value for v in model.metrics_variables]
        unroll = 1 if jax.devices()[0].platform == "cpu" else self.UNROLL

        def build():
            def results(metrics_values):
                mapping = list(zip(model.metrics_variables, metrics_values))
                with keras.StatelessScope(state_mapping=mapping):
                    return dict(model.get_metrics_result())

            def run(step, state, arrays, full, rest):
                def body(state, batch_rows):
                    batch = keras.tree.map_structure(
                        lambda a: jnp.take(a, batch_rows, axis=0), arrays
                    )
                    return step(state, batch)[1], None

                if full.shape[0]:
                    state = jax.lax.scan(body, state, full, unroll=min(unroll, full.shape[0]))[0]
                if rest.shape[1]:
                    state = body(state, rest[0])[0]
                return state, results(state[-1])

            return (
                jax.jit(lambda *args: run(model.train_step, *args)),
                jax.jit(lambda *args: run(model.test_step, *args)),
            )

        self._train, self._test = _programs(model, build, share=True)
        self.pending: Optional[dict] = None  # the next epoch, started early
        self.wasted = 0  # epochs in a row started early for nothing

    def train_epoch(self, full: np.ndarray, rest: np.ndarray, following=None) -> dict:
        """Runs an epoch; with `following` (the next epoch's rows), starts that one too.

        The next epoch starts from this one's end state before the host reads
        this epoch's logs and runs the callbacks, so the device does not idle
        while they run (about 2 ms an epoch on the H200). The state is a value,
        not the variables: the next call uses that epoch only if the variables
        still hold the state it started from, i.e. no callback assigned to a
        weight, optimizer variable or learning rate; otherwise it runs again from
        the variables. A run that stops discards it. After `MAX_WASTED` epochs
        in a row started for nothing (a callback that sets the learning rate
        every epoch), epochs start after the callbacks again.
        """
        model = self.model
        groups = (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
        start = tuple([v.value for v in group] for group in groups[:3])
        pending, self.pending = self.pending, None
        if (
            pending is not None
            and pending["full"] is full
            and _same_arrays(pending["start"], start)
        ):
            state, logs = pending["result"]
            self.wasted = 0
        else:
            self.wasted += pending is not None
            state, logs = self._train(start + (self.fresh_metrics,), self.train, full, rest)
        if following is not None and self.wasted < self.MAX_WASTED:
            self.pending = {
                "full": following[0],
                "start": state[:3],
                "result": self._train(state[:3] + (self.fresh_metrics,), self.train, *following),
            }
        self._assign(groups, state)
        return logs

    def evaluate(self, full: np.ndarray, rest: np.ndarray) -> dict:
        model = self.model
        groups = (model.trainable_variables, model.non_trainable_variables, model.metrics_variables)
        state = tuple([v.value for v in group] for group in groups[:2]) + (self.fresh_metrics,)
        state, logs = self._test(state, self.validation, full, rest)
        self._assign(groups[2:], state[2:])
        return logs

    @staticmethod
    def _assign(groups, values) -> None:
        # The values come from the model's own step: same shapes and dtypes.
        for group, new in zip(groups, values):
            for variable, value in zip(group, new):
                variable._direct_assign(value)


def _same_arrays(a, b) -> bool:
    """Whether two state trees hold the very same arrays (not merely equal ones)."""
    a, b = keras.tree.flatten(a), keras.tree.flatten(b)
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _tensorflow_xla(model: keras.Model) -> bool:
    """Whether the TensorFlow epoch program is compiled with XLA.

    Keras' `jit_compile="auto"` leaves XLA off on a CPU-only machine, which
    suits its one step per call; a whole epoch of small ops in one
    `tf.while_loop` is what XLA fuses best (the seed MLP at batch 32 on 2 CPU
    cores: 3.2x Keras `fit` without it, 20x with it). Off for a layer without
    XLA support or with random numbers. Keras also turns XLA off whenever op
    determinism is on (which `set_seed` turns on) because some XLA GPU kernels
    are not deterministic; on a CPU, XLA runs a compiled program the same way
    every time, so there only a GPU with op determinism keeps it off.
    """
    import tensorflow as tf

    from keras_trainer.core.training.determinism import determinism_enabled

    if model.jit_compile:
        return True
    layers = list(model._flatten_layers())
    if not all(layer.supports_jit for layer in layers):
        return False
    # Random layers (dropout, noise) draw other numbers under XLA than
    # TensorFlow's own kernels do, so the engines would train different models
    # from one seed and a checkpoint would not resume the same on both.
    if any(getattr(layer, "_seed_generators", None) for layer in layers):
        return False
    return not (determinism_enabled() and tf.config.list_physical_devices("GPU"))


class _NoRetracingNotice(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    The epoch program is traced once per input signature (`reduce_retracing`); a
    search's trials bring new batch sizes and step counts, so they trace it again by
    design, and TensorFlow's notice then fills notebooks and logs with advice that
    does not apply.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


_RETRACING_FILTER = _NoRetracingNotice()


class _TensorFlowLoop:
    """Epochs as one `tf.function` running a `tf.while_loop` of `train_step`."""

    def __init__(self, model: keras.Model, train: tuple, validation: Optional[tuple]):
        import tensorflow as tf

        tf.get_logger().addFilter(_RETRACING_FILTER)  # adding it again is a no-op
        self.tf, self.model = tf, model
        self.train = keras.tree.map_structure(tf.convert_to_tensor, train)
        self.validation = (
            None
            if validation is None
            else keras.tree.map_structure(tf.convert_to_tensor, validation)
        )

        def make(step):
            def run(arrays, rows):
                def body(i):
                    batch = keras.tree.map_structure(lambda a: tf.gather(a, rows[i]), arrays)
                    step(batch)
                    return (i + 1,)

                tf.while_loop(lambda i: i < tf.shape(rows)[0], body, (tf.constant(0),))
                return tf.constant(0)

            def program(xla: bool):
                return tf.function(
                    tf.autograph.experimental.do_not_convert(run),
                    jit_compile=xla,
                    reduce_retracing=True,
                )

            if not _tensorflow_xla(model):
                return program(False)
            current = {"program": program(True), "xla": True}

            def call(*args):
                try:
                    return current["program"](*args)
                except tf.errors.OpError as error:
                    # XLA compiles before anything runs, so no state changed.
                    if not current["xla"] or "xla" not in str(error).lower():
                        raise
                    logger.info(
                        "training.engine='fused': XLA cannot compile this model's epoch "
                        "(%s); running it without XLA",
                        _first_line(error),
                    )
                    current.update(program=program(False), xla=False)
                    return current["program"](*args)

            return call

        self._train, self._test = _programs(
            model, lambda: (make(model.train_step), make(model.test_step))
        )

    def train_epoch(self, full, rest, following=None) -> dict:
        self.model.reset_metrics()
        for rows in (full, rest):
            if rows.size:
                self._train(self.train, self.tf.constant(rows))
        return self.model.get_metrics_result()

    def evaluate(self, full, rest) -> dict:
        self.model.reset_metrics()
        for rows in (full, rest):
            if rows.size:
                self._test(self.validation, self.tf.constant(rows))
        return self.model.get_metrics_result()


def _gather(arrays, rows):
    return keras.tree.map_structure(lambda a: a.index_select(0, rows), arrays)


class _TorchLoop:
    """Epochs of Keras' torch `train_step` on device tensors, replayed without Python.

    On a CUDA device the steps are captured once per batch size into CUDA graphs
    (`GRAPH_STEPS` steps, and one step for the remainder), which are replayed with
    the epoch's rows copied into their input buffer: no Python or kernel launch
    per step. Elsewhere, once a batch size has run `TRACE_AFTER_STEPS` eager steps
    (tracing costs about 80 of them), its step is traced into a graph of the ATen
    operations it runs and replayed: the same operations in the same order, so
    the same numbers, without Keras' Python layer, loss, metric and optimizer
    code (the seed MLP at batch 32 on 2 CPU cores: 3.7x Keras `fit`). From the epoch in which
    the optimizer has taken `COMPILE_AFTER_STEPS` steps, a graph of at most
    `COMPILE_MAX_NODES` nodes runs compiled by `torch.compile` (any graph, at
    once, when the model is compiled with `jit_compile=True`): another 4x, for
    a compile of 3-8 s and float rounding within 1e-7 of the eager step. The
    switch depends on the step count only, so a resumed run switches where the
    whole run would.
    A step that cannot be captured, traced or compiled runs the way before, and
    a log line says why.
    """

    GRAPH_STEPS = 16
    TRACE_AFTER_STEPS = 64
    # About as many steps as the compile takes time (seed MLP, 2 CPU cores: replay
    # 1.1 ms a step, compile 7.5 s), so a run that ends right after the switch
    # takes at most about twice as long as one that never compiled.
    COMPILE_AFTER_STEPS = 10_000
    COMPILE_MAX_NODES = 2_000

    def __init__(self, model: keras.Model, train: tuple, validation: Optional[tuple]):
        import torch

        self.torch, self.model = torch, model
        convert = keras.ops.convert_to_tensor
        self.train = keras.tree.map_structure(convert, train)
        self.validation = (
            None if validation is None else keras.tree.map_structure(convert, validation)
        )
        self.device = keras.tree.flatten(self.train)[0].device
        self.graphs: dict[int, dict] = {}  # batch size -> its captured graphs
        self.graph_failure: Optional[str] = None
        self.use_graphs = self.device.type == "cuda"
        # Traced steps take the arrays as inputs, so the next `fit` of this compiled
        # model reuses them, as Keras reuses its `train_function`.
        self.traced: dict = _programs(model, dict)
        self.compile_due = False

    def _rows(self, rows: np.ndarray):
        return self.torch.as_tensor(rows, device=self.device, dtype=self.torch.long)

    def _eager_steps(self, rows) -> None:
        for batch_rows in rows:
            self.model.train_step(_gather(self.train, batch_rows))

    def _steps(self, rows: np.ndarray) -> None:
        batch_size = rows.shape[1]
        if self.use_graphs and batch_size not in self.graphs and self.graph_failure is None:
            self._capture(batch_size, (self.GRAPH_STEPS, 1) if len(rows) > 1 else (1,))
        if batch_size in self.graphs:
            self._replay(self.graphs[batch_size], rows)
        elif self.use_graphs:  # the capture failed
            self._eager_steps(self._rows(rows))
        else:
            self._traced_steps(batch_size, self._rows(rows))

    def train_epoch(self, full: np.ndarray, rest: np.ndarray, following=None) -> dict:
        self.model.reset_metrics()
        self.model.train()
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.compile_due = iterations >= self.COMPILE_AFTER_STEPS
        for rows in (full, rest):
            if rows.size:
                self._steps(rows)
        return self.model.get_metrics_result()

    def evaluate(self, full, rest) -> dict:
        self.model.reset_metrics()
        self.model.eval()
        with self.torch.no_grad():
            for rows in (full, rest):
                for batch_rows in self._rows(rows) if rows.size else ():
                    self.model.test_step(_gather(self.validation, batch_rows))
        return self.model.get_metrics_result()

    def _state(self) -> list:
        model = self.model
        return [
            v.value
            for v in (*model.variables, *model.optimizer.variables, *model.metrics_variables)
        ]

    def _snapshot(self) -> list:
        return [t.detach().clone() for t in self._state()]

    def _restore(self, snapshot: list) -> None:
        with self.torch.no_grad():
            for tensor, value in zip(self._state(), snapshot):
                tensor.copy_(value)

    # Traced steps -------------------------------------------------------------------------
    def _traced_steps(self, batch_size: int, rows) -> None:
        arrays = keras.tree.flatten(self.train)
        key = (batch_size, tuple((tuple(a.shape[1:]), a.dtype) for a in arrays))
        entry = self.traced.setdefault(
            key, {"eager_steps": 0, "graph": None, "compiled": None, "failure": None}
        )
        ready = self.model.jit_compile or entry["eager_steps"] >= self.TRACE_AFTER_STEPS
        if entry["graph"] is None and entry["failure"] is None and ready:
            self._trace(entry, rows, arrays)
        if entry["graph"] is None:
            self._eager_steps(rows)
            entry["eager_steps"] += len(rows)
            return
        with self.torch.no_grad():
            step, start = entry["graph"], 0
            if self._compiles(entry):
                step, start = self._compiled(entry, rows[0], arrays), 1
            for batch_rows in rows[start:]:
                step(batch_rows, *arrays)

    def _trace(self, entry: dict, rows, arrays: list) -> None:
        """Records the ATen operations of one training step as a replayable graph.

        The graph reads and updates the variables' own tensors (Keras assigns in
        place) and takes a batch's row indices and the arrays as its inputs. It is
        traced on the epoch's first batch and kept only if, on its second batch, it
        gives bit for bit the state an eager step gives: what the trace froze (a
        shape that depends on the data, say) would show there. These steps run
        for real, so the model, optimizer, metric and random-number states are
        put back after each.
        """
        torch = self.torch
        refusals: list[str] = []

        def step(batch_rows, *tensors):
            batch = keras.tree.pack_sequence_as(
                self.train, [tensor.index_select(0, batch_rows) for tensor in tensors]
            )
            with _traceable_step(torch, refusals):
                self.model.train_step(batch)

        saved = self._snapshot()
        random_state = torch.random.get_rng_state()

        def restore() -> None:
            self._restore(saved)
            torch.random.set_rng_state(random_state)

        def run_and_restore(run) -> list:
            try:
                run()
                return self._snapshot()
            finally:
                restore()

        try:
            graph = _traced_graph(step, rows[0], *arrays)
            graph.graph.eliminate_dead_code()  # the step's logs: nothing reads them
            graph.recompile()
        except Exception as error:  # noqa: BLE001 - an untraceable step runs eagerly
            where = f"{type(error).__name__}: {_first_line(error)}"
            entry["failure"] = f"{refusals[0]}; {where}" if refusals else where
        finally:
            restore()
        if entry["failure"] is None:
            check = rows[min(1, len(rows) - 1)]
            eager = run_and_restore(lambda: self.model.train_step(_gather(self.train, check)))
            try:
                with torch.no_grad():
                    replayed = run_and_restore(lambda: graph(check, *arrays))
            except Exception as error:  # noqa: BLE001 - same as a wrong number
                replayed, entry["failure"] = [], f"{type(error).__name__}: {_first_line(error)}"
            if entry["failure"] is None and not all(map(torch.equal, eager, replayed)):
                entry["failure"] = "the traced step gives other numbers than the eager one"
        if entry["failure"] is None:
            entry["graph"] = graph
        else:
            logger.info(
                "fused engine (torch): cannot trace the training step (%s); running it eagerly",
                entry["failure"],
            )

    def _compiles(self, entry: dict) -> bool:
        if entry["failure"] is not None:
            return False
        if self.model.jit_compile:
            return True
        # Compile time grows with the graph (an unrolled recurrent step has thousands
        # of nodes); those compile only when asked to, with `jit_compile=True`.
        return self.compile_due and len(entry["graph"].graph.nodes) <= self.COMPILE_MAX_NODES

    def _compiled(self, entry: dict, first_rows, arrays: list):
        """Runs the first batch with the compiled step and returns that step.

        `torch.compile` compiles on the first call, before it runs anything, so a
        compile error leaves the state as it was: that batch, and the ones after
        it, run the traced graph instead.
        """
        if entry["compiled"] is None:
            compiled = self.torch.compile(entry["graph"], dynamic=False)
            try:
                compiled(first_rows, *arrays)
            except Exception as error:  # noqa: BLE001 - no compiler here: keep the traced graph
                entry["failure"] = f"{type(error).__name__}: {_first_line(error)}"
                logger.info(
                    "fused engine (torch): torch.compile failed (%s); replaying the traced step",
                    entry["failure"],
                )
                entry["graph"](first_rows, *arrays)
                return entry["graph"]
            entry["compiled"] = compiled
            return compiled
        entry["compiled"](first_rows, *arrays)
        return entry["compiled"]

    # CUDA graphs ---------------------------------------------------------------------------
    def _capture(self, batch_size: int, counts: tuple[int, ...]) -> None:
        """Captures graphs of `counts` consecutive steps on batches of `batch_size` rows."""
        torch = self.torch
        rows = torch.zeros((max(counts), batch_size), dtype=torch.long, device=self.device)
        index = torch.zeros((), dtype=torch.long, device=self.device)
        saved = self._snapshot()

        def step():
            batch_rows = rows.index_select(0, index.reshape(1)).reshape(-1)
            batch = keras.tree.map_structure(lambda a: a.index_select(0, batch_rows), self.train)
            self.model.train_step(batch)
            index.add_(1)

        constants: dict = {}
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with _device_constants(torch, constants):
                with torch.cuda.stream(stream):
                    for _ in range(3):  # warm-up outside capture, as CUDA graphs require
                        index.zero_()
                        step()
                torch.cuda.current_stream().wait_stream(stream)
                graphs = {}
                for n in counts:
                    graph = torch.cuda.CUDAGraph()
                    # thread_local: CUDA calls of other threads (a data loader, JAX in the
                    # same process) neither fail nor spoil this capture.
                    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                        for _ in range(n):
                            step()
                    graphs[n] = graph
            self.graphs[batch_size] = {
                "rows": rows,
                "index": index,
                "constants": constants,
                "graphs": graphs,
            }
        except Exception as error:  # noqa: BLE001 - any capture failure falls back to eager
            self.graph_failure = f"{type(error).__name__}: {_first_line(error)}"
            logger.info(
                "fused engine (torch): CUDA graph capture failed (%s); running eagerly",
                self.graph_failure,
            )
            torch.cuda.synchronize()
        finally:
            self._restore(saved)

    def _replay(self, captured: dict, rows: np.ndarray) -> None:
        graphs, longest = captured["graphs"], max(captured["graphs"])
        rows_all = self._rows(rows)
        start = 0
        while start < len(rows_all):
            n = longest if len(rows_all) - start >= longest else 1
            captured["rows"][:n].copy_(rows_all[start : start + n])
            captured["index"].zero_()
            graphs[n].replay()
            start += n


def _traced_graph(step: Callable, *args):
    """`make_fx(step)(*args)`: the ATen operations `step` runs on `args`, as a graph.

    `make_fx` records each operation's output metadata as a fake tensor, and for a
    real tensor it makes a new `FakeTensorMode` each time (about 40 % of tracing a
    64-member population step); one mode for the whole trace, through the tracing
    context it looks in first, gives the same graph.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    try:
        from torch._guards import TracingContext, tracing
        from torch._subclasses.fake_tensor import FakeTensorMode

        context = tracing(TracingContext(FakeTensorMode(allow_fallback_kernels=True)))
    except (ImportError, AttributeError, TypeError):  # torch moved them: a slower trace
        context = contextlib.nullcontext()
    with context:
        return make_fx(step)(*args)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def _data_dependent_shape(torch, func, args) -> bool:
    """Whether an ATen operation's output shape depends on tensor values.

    Torch tags such operations (`nonzero`, `masked_select`, ...), but also
    indexing with integer tensors, whose shape does not; and packing padded
    sequences (Keras' LSTM with a mask) reads the lengths inside its kernel.
    """
    if func is torch.ops.aten._pack_padded_sequence.default:
        return True
    if torch.Tag.dynamic_output_shape not in func.tags:
        return False
    if func is torch.ops.aten.index.Tensor:
        indices = args[1] if len(args) > 1 else ()
        return any(
            index is not None and index.dtype in (torch.bool, torch.uint8) for index in indices
        )
    return True


@contextlib.contextmanager
def _traceable_step(torch, refusals: list, tracing: bool = True):
    """What a traced step needs: no Python reads of tensor values, `cond` as a select.

    A traced step replays its operations, not the Python around them: a branch
    taken on a tensor's value (`if tensor:`, `int(tensor)`) would be frozen at the
    value it had while tracing, so any such read fails the trace (Keras' gradient
    accumulation branches on the step count this way; a seeded dropout seeds its
    generator with `int(seed)`; those steps run eagerly). Keras' torch `ops.cond`
    is such a branch; while tracing, a `cond` whose branches only compute (a
    learning-rate warm-up) computes both and selects with `torch.where`, the value
    the taken branch gives; one whose branches write to a tensor fails the trace.
    Each refusal's reason is appended to `refusals` (Keras rewraps the errors
    raised inside a layer). With `tracing` false only `cond` is changed: a step run
    eagerly under `vmap` needs the select, not the refusals, whose Python hook on
    every operation costs more than a small step's arithmetic.
    """
    from keras.src.backend.torch import core as torch_core
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    host_reads = {aten._local_scalar_dense.default, aten.item.default, aten.equal.default}

    class Refusing(TorchDispatchMode):
        def __init__(self, writes: bool = False):
            super().__init__()
            self.writes = writes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in host_reads:
                refusals.append(f"the step reads a tensor's value in Python ({func})")
            elif _data_dependent_shape(torch, func, args):
                refusals.append(f"an output's shape depends on the data ({func})")
            elif self.writes and func._schema.is_mutable:
                refusals.append(f"a branch of ops.cond writes to a tensor ({func})")
            else:
                return func(*args, **(kwargs or {}))
            raise RuntimeError(refusals[-1])

    eager_cond = torch_core.cond

    def cond(pred, true_fn, false_fn):
        if not isinstance(pred, torch.Tensor):
            return eager_cond(pred, true_fn, false_fn)
        with Refusing(writes=True):
            if_true, if_false = true_fn(), false_fn()
        return keras.tree.map_structure(
            lambda a, b: torch.where(pred, torch.as_tensor(a), torch.as_tensor(b)),
            if_true,
            if_false,
        )

    torch_core.cond = cond
    try:
        with Refusing() if tracing else contextlib.nullcontext():
            yield
    finally:
        torch_core.cond = eager_cond


@contextlib.contextmanager
def _device_constants(torch, cache: dict):
    """Makes `torch.as_tensor`/`torch.tensor` of host constants return cached device tensors.

    Keras' torch ops turn Python and NumPy numbers (an optimizer's beta, a
    metric's count, a loss's divisor) into device tensors with a host-to-device
    copy on every step, which
    CUDA graph capture forbids. The warm-up steps fill `cache`; the captured
    steps then reuse those tensors, whose values never change.
    """
    originals = torch.as_tensor, torch.tensor

    def constant_key(data):
        if isinstance(data, (bool, int, float)):
            return (type(data), data)
        # A shape (`torch.Size`, a tuple): the loss reduction converts the batch's shape.
        if (
            isinstance(data, (tuple, list))
            and len(data) <= 64
            and all(type(v) in (bool, int, float) for v in data)
        ):
            return (type(data).__name__, tuple(data))
        if isinstance(data, (np.ndarray, np.generic)) and np.size(data) <= 64:
            return (np.asarray(data).dtype.str, np.shape(data), np.asarray(data).tobytes())
        return None

    def cached(original):
        def convert(data, *args, **kwargs):
            key = None if args else constant_key(data)
            device = kwargs.get("device")
            if key is not None and device is not None and torch.device(device).type == "cuda":
                key = (original.__name__, *key, kwargs.get("dtype"), str(device))
                if key not in cache:
                    cache[key] = original(data, **kwargs)
                return cache[key]
            return original(data, *args, **kwargs)

        return convert

    torch.as_tensor, torch.tensor = cached(originals[0]), cached(originals[1])
    try:
        yield
    finally:
        torch.as_tensor, torch.tensor = originals


_LOOPS = {"jax": _JaxLoop, "tensorflow": _TensorFlowLoop, "torch": _TorchLoop}


def _pythonify(logs: dict) -> dict:
    return {
        name: float(np.asarray(keras.ops.convert_to_numpy(value))) for name, value in logs.items()
    }


def fused_fit(
    model: keras.Model,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    validation_data: Optional[tuple] = None,
    batch_size: int,
    epochs: int,
    initial_epoch: int = 0,
    shuffle: bool = True,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> keras.callbacks.History:
    """Trains a compiled `model` like `model.fit`, one compiled call per epoch.

    The arguments mean what they mean for `keras.Model.fit`; the batches of
    epoch `e` are the ones `ShuffledArrays` (or the TensorFlow feed) gives with
    the same `seed`. Use it through `keras_trainer.core.training.fit.fit` with
    `training.engine: "fused"` (or "auto"), which adds the callbacks.
    """
    backend = keras.backend.backend()
    train = (x, y) if sample_weight is None else (x, y, sample_weight)
    validation = None
    if validation_data is not None:
        validation = tuple(part for part in validation_data if part is not None)
    size = len(keras.tree.flatten(x)[0])
    steps = math.ceil(size / batch_size)
    first = keras.tree.map_structure(lambda a: np.asarray(a)[:batch_size], train)
    model._symbolic_build(data_batch=first)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    loop = _LOOPS[backend](model, train, validation)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    if validation is not None:
        n_val = len(keras.tree.flatten(validation[0])[0])
        val_rows = _split_rows(np.arange(n_val), validation_batch_size(batch_size, n_val))

    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict = {}
    order = tf_epoch_order if backend == "tensorflow" else epoch_order
    rows = _split_rows(order(size, seed, initial_epoch, shuffle), batch_size)
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        callback_list.on_train_batch_begin(0)
        following = None
        if epoch + 1 < epochs:  # JAX starts that epoch before this one's callbacks run
            following = _split_rows(order(size, seed, epoch + 1, shuffle), batch_size)
        logs = loop.train_epoch(*rows, following=following)
        rows = following
        logs = _pythonify(logs)
        callback_list.on_train_batch_end(steps - 1, logs)
        epoch_logs = dict(logs)
        if validation is not None:
            callback_list.on_test_begin()
            val_logs = _pythonify(loop.evaluate(*val_rows))
            callback_list.on_test_end(val_logs)
            epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        logs = epoch_logs
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer):
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=logs)
    return model.history
