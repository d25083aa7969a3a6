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
  every step.

The batches are exactly the Keras engine's: the order of epoch `e` comes from
`keras_trainer.core.data.epoch_order` (host) or the same `tf.data` shuffle
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
from collections.abc import Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.data import epoch_order, tf_epoch_order

logger = logging.getLogger("keras_trainer.fit")

ENGINES = ("auto", "keras", "fused")
# At most this share of the free device memory may hold the training arrays.
DEVICE_MEMORY_SHARE = 0.5
# Validation batches: large ones (rows do not interact in inference mode).
EVAL_BATCH_SIZE = 4096

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
        return json.dumps(
            [type(model).__qualname__, model.get_config(), compile_config, remat], sort_keys=True
        )
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

    def train_epoch(self, full: np.ndarray, rest: np.ndarray) -> dict:
        model = self.model
        groups = (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
        state = tuple([v.value for v in group] for group in groups[:3]) + (self.fresh_metrics,)
        state, logs = self._train(state, self.train, full, rest)
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

    from keras_trainer.core.determinism import determinism_enabled

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


class _TensorFlowLoop:
    """Epochs as one `tf.function` running a `tf.while_loop` of `train_step`."""

    def __init__(self, model: keras.Model, train: tuple, validation: Optional[tuple]):
        import tensorflow as tf

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
                        str(error).strip().splitlines()[0][:200],
                    )
                    current.update(program=program(False), xla=False)
                    return current["program"](*args)

            return call

        self._train, self._test = _programs(
            model, lambda: (make(model.train_step), make(model.test_step))
        )

    def train_epoch(self, full, rest) -> dict:
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
    """Epochs of Keras' torch `train_step` on device tensors; CUDA graphs on a GPU.

    On a CUDA device the steps are captured once per batch size into CUDA graphs
    (`GRAPH_STEPS` steps, and one step for the remainder), which are replayed with
    the epoch's rows copied into their input buffer: no Python or kernel launch
    per step. If capture fails, the steps run eagerly and a log line says why.
    """

    GRAPH_STEPS = 16

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
        else:
            self._eager_steps(self._rows(rows))

    def train_epoch(self, full: np.ndarray, rest: np.ndarray) -> dict:
        self.model.reset_metrics()
        self.model.train()
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

    # CUDA graphs ---------------------------------------------------------------------------
    def _state(self) -> list:
        model = self.model
        return [
            v.value
            for v in (*model.variables, *model.optimizer.variables, *model.metrics_variables)
        ]

    def _capture(self, batch_size: int, counts: tuple[int, ...]) -> None:
        """Captures graphs of `counts` consecutive steps on batches of `batch_size` rows."""
        torch = self.torch
        rows = torch.zeros((max(counts), batch_size), dtype=torch.long, device=self.device)
        index = torch.zeros((), dtype=torch.long, device=self.device)
        saved = [t.detach().clone() for t in self._state()]

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
            self.graph_failure = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            logger.info(
                "fused engine (torch): CUDA graph capture failed (%s); running eagerly",
                self.graph_failure,
            )
            torch.cuda.synchronize()
        finally:
            with torch.no_grad():
                for tensor, value in zip(self._state(), saved):
                    tensor.copy_(value)

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
    the same `seed`. Use it through `keras_trainer.core.fit.fit` with
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
        val_rows = _split_rows(np.arange(n_val), max(batch_size, min(n_val, EVAL_BATCH_SIZE)))

    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict = {}
    order = tf_epoch_order if backend == "tensorflow" else epoch_order
    rows = _split_rows(order(size, seed, initial_epoch, shuffle), batch_size)
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        callback_list.on_train_batch_begin(0)
        logs = loop.train_epoch(*rows)
        if epoch + 1 < epochs:  # while the device works (JAX dispatches asynchronously)
            rows = _split_rows(order(size, seed, epoch + 1, shuffle), batch_size)
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
