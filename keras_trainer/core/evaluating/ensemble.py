"""Ensembles: several trained models of a family as one model that averages them.

`build_ensemble(members)` returns a functional Keras model whose inputs are the
members' inputs and whose every output is the (optionally weighted) mean of
the members' corresponding outputs: averaged class probabilities for
classifiers, averaged values for regressors. It is an ordinary Keras model:
it saves and loads with `keras_trainer.save_model` / `load_model` (safe mode;
the averaging layer is a registered class), exports to ONNX and serves
through `CompiledInferenceLayer` like any model. `save_ensemble` builds one
from saved files and keeps the members' shared metadata (class names,
feature names, feature configuration), so an ensemble of JIT strategy models
drives `AdaptiveJIT` as one model does.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import keras

from keras_trainer.errors import ModelError

# Metadata that must agree between members; the ensemble carries it on.
_SHARED_METADATA = ("task", "class_names", "feature_names", "feature_config")


@keras.saving.register_keras_serializable(package="keras_trainer")
class EnsembleAverage(keras.layers.Layer):
    """Weighted mean of same-shaped tensors (the members' outputs).

    Args:
        member_weights: one non-negative weight per input, normalized to sum
            to 1. Defaults to `None`: equal weights.

    Example:

    >>> average = EnsembleAverage([2.0, 1.0])
    >>> average([keras.ops.ones((1, 3)), keras.ops.zeros((1, 3))])  # 2/3 everywhere
    """

    def __init__(self, member_weights: Sequence[float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if member_weights is not None:
            given = list(member_weights)
            bad = [w for w in given if isinstance(w, bool) or not isinstance(w, numbers.Real)]
            if bad:
                raise ModelError(f"member_weights must be numbers, got {bad[0]!r:.40}")
            member_weights = [float(w) for w in given]
            if not all(math.isfinite(w) for w in member_weights):
                raise ModelError(f"member_weights must be finite, got {member_weights}")
            if not member_weights or min(member_weights) < 0 or sum(member_weights) <= 0:
                raise ModelError(
                    f"member_weights must be non-negative with a positive sum, got {member_weights}"
                )
        self.member_weights = member_weights

    def call(self, inputs):
        inputs = list(inputs)
        if self.member_weights is None:
            weights = [1.0 / len(inputs)] * len(inputs)
        else:
            total = sum(self.member_weights)
            weights = [w / total for w in self.member_weights]
        result = inputs[0] * weights[0]
        for tensor, weight in zip(inputs[1:], weights[1:], strict=True):
            result = result + tensor * weight
        return result

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "member_weights": self.member_weights}


def build_ensemble(
    members: Sequence[keras.Model],
    member_weights: Sequence[float] | None = None,
    name: str = "ensemble",
) -> keras.Model:
    """One model that averages the outputs of several trained models.

    Args:
        members: at least two built Keras models with the same inputs
            (shapes and dtypes) and the same outputs (shapes); e.g. the top
            trials of a search or the members of a population.
        member_weights: one weight per member (e.g. validation scores);
            defaults to equal weights.
        name: the ensemble model's name.

    Returns:
        A functional `keras.Model` with the first member's input names; one
        output per member output, named like the first member's outputs.

    Raises:
        ModelError: fewer than two members, a member without defined
            inputs, or members whose inputs or outputs differ (naming the
            member and the shapes).

    Example:

    >>> ensemble = build_ensemble([model_a, model_b])
    >>> keras_trainer.save_model(ensemble, "ensemble.keras")  # doctest: +SKIP
    """
    members = list(members)
    if len(members) < 2:
        raise ModelError(f"an ensemble needs at least two members, got {len(members)}")
    if len({id(m) for m in members}) != len(members):
        raise ModelError("the same model object is given twice as an ensemble member")
    if member_weights is not None and len(member_weights) != len(members):
        raise ModelError(
            f"member_weights has {len(member_weights)} entries for {len(members)} members"
        )
    first = members[0]
    reference_inputs = _input_specs(first, 0)
    reference_outputs = _output_shapes(first)
    for index, member in enumerate(members[1:], start=1):
        specs = _input_specs(member, index)
        if [s[1:] for s in specs] != [s[1:] for s in reference_inputs]:
            raise ModelError(
                f"ensemble member {index} takes inputs {[s[1:] for s in specs]} "
                f"(shape, dtype); member 0 takes {[s[1:] for s in reference_inputs]}"
            )
        shapes = _output_shapes(member)
        if shapes != reference_outputs:
            raise ModelError(
                f"ensemble member {index} has outputs of shapes {shapes}; member 0 has "
                f"{reference_outputs}"
            )
    inputs = [
        keras.Input(shape=shape[1:], dtype=dtype, name=input_name)
        for input_name, shape, dtype in reference_inputs
    ]
    structure = first.input
    packed = keras.tree.pack_sequence_as(structure, inputs) if len(inputs) > 1 else inputs[0]
    per_member = []
    for index, member in enumerate(members):
        wrapped = keras.Model(member.inputs, member.outputs, name=f"member_{index}")
        per_member.append(keras.tree.flatten(wrapped(packed)))
    output_names = list(getattr(first, "output_names", None) or [])
    if len(output_names) != len(reference_outputs):
        output_names = [f"output_{i}" for i in range(len(reference_outputs))]
    outputs = [
        EnsembleAverage(member_weights, name=output_names[k])([outs[k] for outs in per_member])
        for k in range(len(reference_outputs))
    ]
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=name)


def save_ensemble(
    members: Sequence[str | os.PathLike | keras.Model],
    path: str | os.PathLike,
    member_weights: Sequence[float] | None = None,
    metadata: dict | None = None,
) -> str:
    """Builds an ensemble from saved models (or model objects) and saves it, atomically.

    Members given as files keep their metadata: the entries every member
    shares (task, class names, feature names, feature configuration) are
    copied to the ensemble, and `ensemble` records the member count, weights
    and files.

    Args:
        members: `.keras`/`.h5` files or Keras models.
        path: the `.keras` (or `.h5`) file to write.
        member_weights: one weight per member; defaults to equal weights.
        metadata: extra metadata stored in the file.

    Returns:
        The path written.

    Raises:
        ModelError: members that do not fit together, or whose class names
            or feature names differ.
        CheckpointError: a member file is missing or corrupt.
    """
    from keras_trainer.core.saving.persistence import load_model, save_model

    models, metadatas, sources = [], [], []
    for member in members:
        if isinstance(member, (str, os.PathLike)):
            model, member_metadata = load_model(member)
            sources.append(os.path.basename(os.fspath(member)))
        else:
            model, member_metadata = member, {}
            sources.append(getattr(member, "name", "model"))
        models.append(model)
        metadatas.append(member_metadata)
    shared = {}
    for key in _SHARED_METADATA:
        values = [m[key] for m in metadatas if key in m]
        if not values:
            continue
        for index, m in enumerate(metadatas):
            if key in m and m[key] != values[0]:
                raise ModelError(
                    f"ensemble member {index} ({sources[index]}) has {key} {m[key]!r}; "
                    f"member 0 has {values[0]!r}"
                )
        shared[key] = values[0]
    ensemble = build_ensemble(models, member_weights)
    full = {
        **shared,
        "ensemble": {
            "members": len(models),
            "member_weights": None
            if member_weights is None
            else [float(w) for w in member_weights],
            "member_sources": sources,
        },
        **(metadata or {}),
    }
    return save_model(ensemble, path, full)


def _input_specs(model: keras.Model, index: int) -> list[tuple[str, tuple, str]]:
    if not getattr(model, "inputs", None):
        raise ModelError(
            f"ensemble member {index} has no defined inputs (a subclassed model?); "
            "use functional or sequential models"
        )
    return [
        (tensor.name, tuple(tensor.shape), str(tensor.dtype))
        for tensor in keras.tree.flatten(model.input)
    ]


def _output_shapes(model: keras.Model) -> list[tuple]:
    return [tuple(t.shape[1:]) for t in keras.tree.flatten(model.output)]
