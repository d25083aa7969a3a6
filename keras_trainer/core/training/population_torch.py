"""torch populations: every member's training step in one `torch.func.vmap` call.

The members' states (trainable, non-trainable, optimizer and metric variables)
are stacked along a leading member axis, and one step of all members runs as
`torch.func.vmap` over a functional step built from Keras' stateless API:
`model.stateless_call` and `stateless_compute_loss` under
`torch.func.grad_and_value`, the metrics in a `StatelessScope`, and
`optimizer.stateless_apply`. Each member gathers its own batch (its own seed's
`epoch_order`), so every member is the run `fit` would make alone; per-member
values (weight decay, label smoothing, loss weights, a schedule's peak learning
rate) are fed as batched scalars by the shared `_Population._patched`, and a
plain learning rate is an optimizer variable, stacked like the others.

Running that step eagerly costs Keras' Python code and vmap's batching rules for
every operation, far more than the arithmetic of small members; so, as the fused
engine does for a solo run, a batch shape's step is traced into a graph of ATen
operations (`make_fx`) at its first step, where the run will take at least
`TRACE_AFTER_STEPS` steps of that shape, and replayed, if the replay gives bit
for bit what the eager step gives (else it runs eagerly, and a log line says
why). On a CUDA device the traced step, with
the gather of the members' batches, is then captured into a CUDA graph and
replayed for the rest of the epoch's batches of that shape: the traced step still
launches each of its few hundred operations from Python. The graph is kept if one
replay gives bit for bit the traced step's result; a failed capture runs the traced
step, and a log line says why. Keras'
torch `ops.cond`, a Python branch that vmap refuses on a member's value, runs as
a select where its branches only compute (a learning-rate warm-up), as in the
fused engine's traced steps.

Keras' torch optimizers update their variables in place with `torch._foreach_*`
operations, which a stateless step cannot use; during the population the template
optimizer runs Keras' generic per-variable update (`BaseOptimizer`'s), the same
arithmetic written as assignments, which `StatelessScope` records.

Where the step cannot be batched, the population is trained one member after
another (as `fit` would, so the results are the same) and one info log line of
the `keras_trainer.fit` logger names the reason; no option asks for the batched
path explicitly, so there is nothing to refuse. The reasons:

* a layer draws random numbers in training (dropout with a rate above 0,
  Gaussian noise): `torch.func.vmap`'s randomness is one stream for the whole
  batch of members, so no member could get the dropout masks of its solo run.
  Dropout layers with rate 0 draw nothing and take the batched path;
* mixed-precision loss scaling and gradient accumulation, whose Keras
  implementations branch on a variable's value into branches that assign;
* anything else the batched steps raise in the first epoch (`torch.func`
  refuses, for example, data-dependent Python control flow in a custom layer):
  that epoch is dropped and its error is the reason.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.config import TrainingConfig
from keras_trainer.core.training.fused import _traceable_step, _traced_graph
from keras_trainer.core.training.population_members import (
    PopulationMember,
    _Population,
    _sequential,
)

logger = logging.getLogger("keras_trainer.fit")


def fit_torch_population(
    model_builder: Callable[[int], keras.Model],
    x: Any,
    y: Any,
    configs: Sequence[TrainingConfig],
    validation_data: Optional[tuple],
    loss: Any,
    metrics: Optional[Sequence[Any]],
) -> list[PopulationMember]:
    """`fit_population` on torch: batched through `torch.func`, else one after another."""
    run = TorchPopulationRun(model_builder, x, y, configs, validation_data, loss, metrics)
    reason = run.unbatched_reason()
    if reason is None:
        try:
            return run.run()
        except _Unbatchable as error:
            reason = str(error)
    logger.info(
        "fit_population (torch): training the %d members one after another: %s",
        len(configs),
        reason,
    )
    return _sequential(model_builder, x, y, configs, validation_data, loss, metrics)


class _Unbatchable(Exception):
    """The batched step failed in the first epoch; the message says why."""


def _random_layer(model: keras.Model) -> Optional[keras.layers.Layer]:
    """The first layer that draws random numbers in training, if any."""
    for layer in model._flatten_layers(include_self=False):
        if not any(isinstance(v, keras.random.SeedGenerator) for v in vars(layer).values()):
            continue
        # Dropout(0) and GaussianNoise(0) return their inputs without drawing.
        if getattr(layer, "rate", None) == 0 or getattr(layer, "stddev", None) == 0:
            continue
        return layer
    return None


def _one_line(error: BaseException, limit: int = 300) -> str:
    """`error` for one log line: Keras' layer errors span lines, with terminal colours and
    the call's arguments."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split("Arguments received")[0]
    text = f"{type(error).__name__}: {' '.join(text.split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _generic_updates(optimizer: keras.optimizers.Optimizer) -> Iterator[None]:
    """Inside, `optimizer` updates with `BaseOptimizer`'s per-variable assignments.

    Keras' torch optimizers update with in-place `torch._foreach_*` operations on
    the variables' tensors; inside a `StatelessScope` under `vmap` those would
    write into the stacked inputs instead of recording new values.
    """
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    names = ("_backend_update_step", "_apply_weight_decay")
    for name in names:
        object.__setattr__(optimizer, name, getattr(BaseOptimizer, name).__get__(optimizer))
    try:
        yield
    finally:
        for name in names:
            object.__delattr__(optimizer, name)


class TorchPopulationRun(_Population):
    """The torch population: stacked states, one `vmap`ped step per batch."""

    # Steps of a batch shape a run must plan for its step to be traced. Tracing costs
    # about 25 eager steps (64 seed-MLP members on the 2-core CPU: eager 9 ms a step,
    # the trace 0.21 s; on a GPU the traced step becomes a CUDA graph replayed in well
    # under a millisecond), so short runs never pay for it; longer ones trace at the
    # shape's first step, whose eager run is the trace's check, not after waiting 32
    # steps (1 s of eager steps for 64 members on an H100).
    TRACE_AFTER_STEPS = 32

    def __init__(self, model_builder, x, y, configs, validation_data, loss, metrics):
        import torch

        self.torch = torch
        super().__init__(model_builder, x, y, configs, validation_data, loss, metrics)
        self.device_train = keras.tree.map_structure(keras.ops.convert_to_tensor, self.train)
        self.device_validation = (
            None
            if self.validation is None
            else keras.tree.map_structure(keras.ops.convert_to_tensor, self.validation)
        )
        self.device = keras.tree.flatten(self.device_train)[0].device
        self._batched_step = torch.func.vmap(self._member_step)
        self.steps: dict[tuple, Callable] = {}  # batch shapes -> the traced (or eager) step
        self.graphs: dict[tuple, Optional[dict]] = {}  # (members, rows) -> its CUDA graph
        self.graph_failure: Optional[str] = None
        # batch shapes -> eager steps before the shape's step was kept (a trace's check too)
        self.eager_steps: collections.Counter = collections.Counter()
        self._test_step = torch.func.vmap(self._member_test, in_dims=(0, 0, 0, None, 0))
        self._results = torch.func.vmap(self._member_results)

    # Why the population cannot be batched ----------------------------------------------------
    def unbatched_reason(self) -> Optional[str]:
        """Why the members must train one after another, or `None` to batch them."""
        for model in filter(None, self.models):  # all members' models where one has dropout
            layer = _random_layer(model)
            if layer is not None:
                return (
                    f"layer {layer.name!r} ({type(layer).__name__}) draws random numbers in "
                    "training, and torch.func.vmap cannot give each member the draws of its "
                    "solo run (a dropout rate of 0 takes the batched path)"
                )
        optimizer = self.template.optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return "mixed-precision loss scaling branches on the gradients' values"
        if self.configs[0].gradient_accumulation_steps > 1:
            return "gradient accumulation branches on the step count into assignments"
        return None  # what else torch.func refuses shows in the first epoch (`run`)

    # The member step, batched by vmap --------------------------------------------------------
    def _forward(self, trainable, non_trainable, metrics_values, x, y, training: bool):
        """Keras' torch `train_step`/`test_step` up to the gradients, without side effects."""
        template = self.template
        kwargs = {"training": training} if template._call_has_training_arg else {}
        y_pred, non_trainable, losses = template.stateless_call(
            trainable, non_trainable, x, return_losses=True, **kwargs
        )
        # The forward pass's own losses (activity regularizers) reach the loss this way,
        # as on Keras' JAX backend.
        template._losses_override = list(losses)
        try:
            loss, (_, non_trainable, metrics_values) = template.stateless_compute_loss(
                trainable,
                non_trainable,
                metrics_values,
                x=x,
                y=y,
                y_pred=y_pred,
                training=training,
            )
        finally:
            template._losses_override = []
        mapping = list(zip(template.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            batch = next(t for t in keras.tree.flatten(x) if t is not None).shape[0]
            template._loss_tracker.update_state(loss, sample_weight=batch)
            template.compute_metrics(x, y, y_pred)
        metrics_values = [scope.get_current_value(v) for v in template.metrics_variables]
        return loss, (non_trainable, metrics_values)

    def _member_step(self, state: list, batch: tuple, hyper: dict, active) -> list:
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y = batch

        def loss_of(trainable):
            return self._forward(trainable, non_trainable, metrics_values, x, y, True)

        with self._patched(hyper):
            grads, (_, (new_non_trainable, new_metrics)) = self.torch.func.grad_and_value(
                loss_of, has_aux=True
            )(trainable)
            new_trainable, new_optimizer = self.template.optimizer.stateless_apply(
                optimizer_values, grads, trainable
            )
        new = [new_trainable, new_non_trainable, new_optimizer, new_metrics]
        # A member that stopped early keeps its state while the others go on.
        return [
            [self.torch.where(active, n, o) for n, o in zip(group_new, group_old)]
            for group_new, group_old in zip(new, state)
        ]

    def _member_test(self, trainable, non_trainable, metrics_values, batch: tuple, hyper: dict):
        with self._patched(hyper):
            return self._forward(trainable, non_trainable, metrics_values, *batch, False)[1][1]

    # Hooks of `_Population.run` --------------------------------------------------------------
    def _start(self) -> list:
        torch, template = self.torch, self.template
        template.reset_metrics()
        count = len(self.configs)
        self.fresh_metrics = [
            v.value.detach().expand((count,) + tuple(v.shape)).clone()
            for v in template.metrics_variables
        ]
        self.hyper_values = {
            k: torch.as_tensor(v, device=self.device) for k, v in self.hyper.items()
        }
        # Stacked on the host, then one transfer per variable.
        return [
            [torch.as_tensor(v, device=self.device) for v in group]
            for group in self._stacked_start()
        ] + [self.fresh_metrics]

    def _gather(self, arrays: Any, rows) -> Any:
        return keras.tree.map_structure(lambda a: a[rows], arrays)

    def _train_epoch(self, state: list, rows: list, active: np.ndarray) -> list:
        torch = self.torch
        state = state[:3] + [self.fresh_metrics]
        mask = torch.as_tensor(active, device=self.device)
        with torch.no_grad():
            for part in rows:
                if not part.size:
                    continue
                part = torch.as_tensor(part, dtype=torch.long, device=self.device)
                planned = part.shape[1] * self.configs[0].epochs  # steps of this shape
                step = 0
                while step < part.shape[1]:
                    captured = self._captured(part[:, step], state, mask)
                    if captured is not None:  # the rest of this part: graph replays
                        state = self._replay(captured, part[:, step:], state, mask)
                        break
                    batch = self._gather(self.device_train, part[:, step])
                    state = self._step((state, batch, self.hyper_values, mask), planned)
                    step += 1
        return state

    # CUDA graphs of the traced step ----------------------------------------------------------
    def _captured(self, batch_rows, state: list, mask) -> Optional[dict]:
        """The CUDA graph of one step on batches of these rows' shape, captured once that
        shape's step is traced; `None` off CUDA, before the trace, or if capture failed.

        A traced step still launches each of its few hundred operations from Python
        (about 5 ms a step for 64 seed-MLP members on an H100, 1,000 times the
        arithmetic); a replayed graph launches them all at once, as the fused engine's
        graphs do for a solo run.
        """
        if self.device.type != "cuda" or self.graph_failure is not None:
            return None
        shape = tuple(batch_rows.shape)
        if shape not in self.graphs:
            # The shapes `_step` keys its steps by: the gathered batch's.
            key = tuple(shape + tuple(a.shape[1:]) for a in keras.tree.flatten(self.device_train))
            step = self.steps.get(key)
            if step is None or step == self._eager_step:
                return None
            self.graphs[shape] = self._capture(step, batch_rows, state, mask)
        return self.graphs[shape]

    def _capture(self, step: Callable, batch_rows, state: list, mask) -> Optional[dict]:
        torch = self.torch
        rows = batch_rows.clone()
        static = {"rows": rows, "state": keras.tree.map_structure(torch.clone, state)}
        static["mask"] = mask.clone()
        flat_state = keras.tree.flatten(static["state"])

        def run():
            batch = self._gather(self.device_train, rows)
            new = step(static["state"], batch, self.hyper_values, static["mask"])
            for target, value in zip(flat_state, keras.tree.flatten(new)):
                target.copy_(value)

        expected = keras.tree.flatten(
            step(state, self._gather(self.device_train, rows), self.hyper_values, mask)
        )
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm-up outside capture, as CUDA graphs require
                    run()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                run()
            static["graph"] = graph
            self._load(static, state, mask)
            graph.replay()
            if not all(map(torch.equal, flat_state, expected)):
                raise RuntimeError("the replayed graph gives other numbers than the traced step")
        except Exception as error:  # noqa: BLE001 - a failed capture runs the traced step
            self.graph_failure = _one_line(error)
            logger.info(
                "fit_population (torch): CUDA graph capture failed (%s); running the traced step",
                self.graph_failure,
            )
            torch.cuda.synchronize()
            return None
        return static

    def _load(self, captured: dict, state: list, mask) -> None:
        for target, value in zip(keras.tree.flatten(captured["state"]), keras.tree.flatten(state)):
            target.copy_(value)
        captured["mask"].copy_(mask)

    def _replay(self, captured: dict, part, state: list, mask) -> list:
        """Steps of `part` (members, steps, batch rows) from `state`, as graph replays."""
        self._load(captured, state, mask)
        for step in range(part.shape[1]):
            captured["rows"].copy_(part[:, step])
            captured["graph"].replay()
        # Copies: the graph's buffers change with its next replay; the caller keeps states.
        return keras.tree.map_structure(self.torch.clone, captured["state"])

    def _eager_step(self, *args, tracing: bool = False) -> list:
        # Keras' torch `ops.cond` branches in Python, which vmap refuses on a member's
        # value; inside, a cond that only computes (a warm-up schedule) is a select.
        with _traceable_step(self.torch, [], tracing):
            return self._batched_step(*args)

    def _step(self, args: tuple, planned: int) -> list:
        """One batched step on these batch shapes: eager, or where the run plans at least
        `TRACE_AFTER_STEPS` steps of them, traced at the first into a graph of ATen
        operations and replayed from then on.

        The batched step runs Keras' Python layer, loss, metric and optimizer code
        and vmap's batching rules for every operation, which costs far more than the
        arithmetic of small members (the fused engine traces its steps for the same
        reason). `make_fx` records the operations once per batch shape; the graph is
        kept only if it gives bit for bit what the eager step gives, whose result is
        this step's.
        """
        key = tuple(tuple(t.shape) for t in keras.tree.flatten(args[1]))
        step = self.steps.get(key)
        if step is not None:
            return step(*args)
        self.eager_steps[key] += 1
        if planned < self.TRACE_AFTER_STEPS:
            return self._eager_step(*args)
        self.steps[key] = self._eager_step  # unless the trace below is kept
        new = self._eager_step(*args)
        try:
            graph = _traced_graph(functools.partial(self._eager_step, tracing=True), *args)
            replayed = graph(*args)
        except Exception as error:  # noqa: BLE001 - an untraceable step runs eagerly
            reason = f"cannot trace the batched step ({_one_line(error)})"
        else:
            if all(map(self.torch.equal, keras.tree.flatten(new), keras.tree.flatten(replayed))):
                self.steps[key] = graph
                return new
            reason = "the traced step gives other numbers than the eager one"
        logger.info("fit_population (torch): %s; running it eagerly", reason)
        return new

    def _member_results(self, metrics_values: list, optimizer_values: list, hyper: dict) -> dict:
        with self._patched(hyper):
            return self._results_of(metrics_values, optimizer_values)

    def _epoch_logs(self, state: list) -> dict:
        torch = self.torch
        # A warm-up schedule's cond, as in `_eager_step`.
        with torch.no_grad(), _traceable_step(torch, [], tracing=False):
            logs = self._results(state[3], state[2], self.hyper_values)
            if self.device_validation is not None:
                metrics_values = self.fresh_metrics
                for part in self.val_rows:
                    if not part.size:
                        continue
                    for batch_rows in torch.as_tensor(part, dtype=torch.long, device=self.device):
                        batch = self._gather(self.device_validation, batch_rows)
                        metrics_values = self._test_step(
                            state[0], state[1], metrics_values, batch, self.hyper_values
                        )
                val_logs = self._results(metrics_values, state[2], self.hyper_values)
                logs.update({f"val_{k}": v for k, v in val_logs.items() if k != "learning_rate"})
        self.epochs_done += 1
        return {k: v.cpu().numpy() for k, v in logs.items()}

    def _select(self, mask: np.ndarray, new: Any, old: Any) -> Any:
        torch = self.torch
        mask = torch.as_tensor(mask, device=self.device)
        return keras.tree.map_structure(
            lambda n, o: torch.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old
        )

    def run(self) -> list[PopulationMember]:
        """`_Population.run`; an error of the first epoch's batched steps raises
        `_Unbatchable` (the members then train one after another from the start)."""
        self.epochs_done = 0
        with _generic_updates(self.template.optimizer):
            try:
                return super().run()
            except (RuntimeError, ValueError, TypeError, NotImplementedError) as error:
                if self.epochs_done:
                    raise
                raise _Unbatchable(
                    f"torch.func cannot batch the training step ({_one_line(error)})"
                ) from error
