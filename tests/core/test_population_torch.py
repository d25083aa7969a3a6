"""torch populations: all members in one `torch.func.vmap` step, each equal to its solo run."""

import logging

import keras
import pytest

from keras_trainer.config import ModelConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training import fused, population_torch
from keras_trainer.core.training.population import fit_population
from keras_trainer.core.training.population_members import _sequential
from tests.core.test_population import (
    _builder,
    _configs,
    assert_members_equal_solo_runs,
    toy_data,
)

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch population")


def _refuse_sequential(*args, **kwargs):
    raise AssertionError("the population was trained one member after another")


@pytest.mark.parametrize(("schedule", "batch_norm"), [("warmup_cosine", False), ("none", True)])
def test_members_train_batched_and_equal_solo_runs(rng, monkeypatch, schedule, batch_norm):
    # Dropout layers of rate 0 draw nothing, so they take the batched path. Under
    # "warmup_cosine" each member's peak learning rate is a batched scalar of the
    # schedule, whose warm-up `ops.cond` runs as a select; batch normalization's moving
    # statistics are per-member non-trainable state.
    monkeypatch.setattr(population_torch, "_sequential", _refuse_sequential)
    # Each batch shape's first step runs eagerly (the trace's check), the rest traced:
    # both give each member its solo run.
    monkeypatch.setattr(population_torch.TorchPopulationRun, "TRACE_AFTER_STEPS", 3)

    def builder(index):
        return build_model(ModelConfig(output_dim=5, dropout=0.0, batch_norm=batch_norm), (12,))

    x, y = toy_data(rng)
    configs = [
        c.replace(lr_schedule=c.lr_schedule.replace(name=schedule, warmup_steps=8))
        for c in _configs()
    ]
    members = fit_population(builder, x, y, configs)
    # Batch normalization's batch moments reduce in another order under vmap than alone:
    # after 5 epochs at learning rates up to 0.1 a weight may differ by about 2e-5.
    assert_members_equal_solo_runs(
        members, builder, x, y, configs, weights_atol=1e-4 if batch_norm else 1e-5
    )


def test_dropout_trains_one_after_another_and_says_why(rng, monkeypatch, caplog):
    calls = []

    def sequential(*args, **kwargs):
        calls.append(len(args[3]))
        return _sequential(*args, **kwargs)

    monkeypatch.setattr(population_torch, "_sequential", sequential)
    x, y = toy_data(rng)
    configs = [config.replace(epochs=1) for config in _configs()]
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        members = fit_population(_builder, x[:64], y[:64], configs)
    assert calls == [3] and len(members) == 3
    reasons = [r.getMessage() for r in caplog.records if "one after another" in r.getMessage()]
    assert len(reasons) == 1 and "Dropout" in reasons[0] and "draws random numbers" in reasons[0]


class _SignBranch(keras.layers.Layer):
    """Branches in Python on a tensor's value, which torch.func.vmap refuses."""

    def call(self, inputs):
        return inputs if bool(keras.ops.sum(inputs) > 0) else -inputs


def test_a_step_vmap_refuses_trains_one_after_another_and_says_why(rng, monkeypatch, caplog):
    calls = []

    def sequential(*args, **kwargs):
        calls.append(len(args[3]))
        return _sequential(*args, **kwargs)

    def builder(index):
        inputs = keras.Input((12,))
        return keras.Model(inputs, keras.layers.Dense(5)(_SignBranch()(inputs)))

    monkeypatch.setattr(population_torch, "_sequential", sequential)
    x, y = toy_data(rng)
    configs = [config.replace(epochs=1) for config in _configs()]
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        members = fit_population(builder, x[:64], y[:64], configs)
    assert calls == [3] and [len(m.history.history["loss"]) for m in members] == [1, 1, 1]
    reasons = [r.getMessage() for r in caplog.records if "one after another" in r.getMessage()]
    assert len(reasons) == 1 and "torch.func cannot batch the training step" in reasons[0]


def test_the_batched_step_is_traced_once_per_batch_shape(rng, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(population_torch.TorchPopulationRun, "TRACE_AFTER_STEPS", 2)
    # 48 training rows at batch 32, 2 epochs: one full batch and a last one of 16 rows
    # per epoch, 2 steps of each shape planned; each is traced at its first step (in
    # the first epoch), checked against that step run eagerly.
    x, y = toy_data(rng)
    configs = [c.replace(epochs=2, validation_split=0.0) for c in _configs()]
    run = population_torch.TorchPopulationRun(
        lambda index: build_model(ModelConfig(output_dim=5, dropout=0.0), (12,)),
        x[:48],
        y[:48],
        configs,
        None,
        None,
        None,
    )
    assert run.unbatched_reason() is None
    eager = []  # the batch sizes of steps run eagerly, not traced
    original = run._eager_step

    def counted(*args, tracing=False):
        if not tracing:
            eager.append(args[1][0].shape[1])
        return original(*args, tracing=tracing)

    run._eager_step = counted
    run.run()
    assert sorted(key[0][:2] for key in run.steps) == [(3, 16), (3, 32)]
    assert all(isinstance(step, torch.fx.GraphModule) for step in run.steps.values())
    # One eager step per shape, the trace's check, which is that step: no other.
    assert sorted(eager) == [16, 32]


def test_eager_batched_steps_run_without_the_refusal_hook(rng, monkeypatch):
    # The hook that refuses what a trace cannot replay runs Python on every operation;
    # steps that are not traced need only `cond` as a select.
    checked = []
    original = fused._data_dependent_shape
    monkeypatch.setattr(
        fused, "_data_dependent_shape", lambda *args: checked.append(args[1]) or original(*args)
    )
    x, y = toy_data(rng)
    configs = [c.replace(epochs=1) for c in _configs()]
    builder = lambda index: build_model(ModelConfig(output_dim=5, dropout=0.0), (12,))  # noqa: E731
    run = population_torch.TorchPopulationRun(builder, x[:48], y[:48], configs, None, None, None)
    run.run()
    assert sum(run.eager_steps.values()) == 2 and not run.steps and checked == []
    monkeypatch.setattr(population_torch.TorchPopulationRun, "TRACE_AFTER_STEPS", 1)
    traced = population_torch.TorchPopulationRun(builder, x, y, configs, None, None, None)
    traced.run()
    assert traced.steps and checked  # the trace still refuses what it cannot replay


def test_a_traced_step_that_fails_to_replay_runs_eagerly_still_batched(rng, monkeypatch, caplog):
    # A failure of the trace's check is the trace's, not the batched step's: the members
    # still train together, the step eagerly, and a log line says why.
    monkeypatch.setattr(population_torch, "_sequential", _refuse_sequential)
    monkeypatch.setattr(population_torch.TorchPopulationRun, "TRACE_AFTER_STEPS", 1)

    def unreplayable(step, *args):
        def graph(*args):
            raise RuntimeError("this graph cannot replay")

        return graph

    monkeypatch.setattr(population_torch, "_traced_graph", unreplayable)
    x, y = toy_data(rng)
    configs = [c.replace(epochs=1, validation_split=0.0) for c in _configs()]
    builder = lambda index: build_model(ModelConfig(output_dim=5, dropout=0.0), (12,))  # noqa: E731
    run = population_torch.TorchPopulationRun(builder, x[:48], y[:48], configs, None, None, None)
    with caplog.at_level(logging.INFO, logger="keras_trainer.fit"):
        members = run.run()
    assert [len(m.history.history["loss"]) for m in members] == [1, 1, 1]
    assert run.steps and all(step == run._eager_step for step in run.steps.values())
    assert any("this graph cannot replay" in r.getMessage() for r in caplog.records)
