"""Checks of the arrays an inference call receives, against the model's inputs.

They run on every call, so the common case (a C-contiguous array of the right
dtype) takes a fast path; anything else is converted or refused with a
`DataError` that names the input and what is wrong (shape, dtype, NaN, no rows).
"""

import dataclasses
import math
from typing import Any

import numpy as np

from keras_trainer.errors import DataError, InferenceError

# The training rule (`keras_trainer.core.inputs.data.MAX_FEATURE_MAGNITUDE`, repeated here so
# that ONNX serving needs no Keras): features beyond it overflow float32 arithmetic,
# so a model never saw them and its answer would mean nothing.
MAX_FEATURE_MAGNITUDE = 1e18

# Stand-in length for dynamic non-batch dimensions (e.g. sequence length) in warm-up.
_WARM_UP_DYNAMIC_DIM = 8


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (None where dynamic, the batch included), dtype."""

    name: str
    shape: tuple  # None for dynamic dimensions, the batch included.
    dtype: np.dtype


def check_input(value: Any, spec: InputSpec) -> np.ndarray:
    """`value` as a C-contiguous array of the input's dtype, or a `DataError` naming the input."""
    # Fast path first: this runs on every call, where microseconds matter.
    if type(value) is np.ndarray and value.dtype == spec.dtype:
        array = value
    else:
        array = convert_input(value, spec)
    if array.ndim == len(spec.shape) - 1 and len(spec.shape) == 2:
        array = array[np.newaxis]  # One row given without its batch axis.
    shape = array.shape
    if len(shape) != len(spec.shape) or (
        shape[1:] != spec.shape[1:]
        and any(d is not None and d != a for d, a in zip(spec.shape[1:], shape[1:]))
    ):
        expected = ", ".join(
            "batch" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(spec.shape)
        )
        raise DataError(f"input {spec.name!r} has shape {shape}; the model expects ({expected})")
    if shape[0] == 0:
        raise DataError(f"input {spec.name!r} has no rows (shape {shape})")
    # A sum is NaN or infinite whenever an element is; only then look closer
    # (a huge finite sum may overflow, so the full check decides).
    if spec.dtype.kind == "f" and not math.isfinite(array.sum()):
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            what = "NaN" if np.isnan(array).any() else "infinite"
            raise DataError(
                f"input {spec.name!r} has {int(bad.sum())} NaN or infinite value(s) "
                f"({what} first in row {row})"
            )
    if spec.dtype.kind == "f" and (
        array.max() > MAX_FEATURE_MAGNITUDE or array.min() < -MAX_FEATURE_MAGNITUDE
    ):
        position = tuple(int(i) for i in np.argwhere(np.abs(array) > MAX_FEATURE_MAGNITUDE)[0])
        raise DataError(
            f"input {spec.name!r}: row {position[0]}, position {list(position[1:])}: "
            f"{float(array[position]):.3g} is "
            f"beyond +-{MAX_FEATURE_MAGNITUDE:.0e}, the range training accepts; rescale it "
            "as the training data was"
        )
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array


def convert_input(value: Any, spec: InputSpec) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise DataError(f"input {spec.name!r} is not an array: {error}") from error
    kind = array.dtype.kind
    expected = spec.dtype
    if expected.kind == "f":
        if kind not in "fiu":
            raise DataError(
                f"input {spec.name!r} has dtype {array.dtype}; expected numbers ({expected})"
            )
    elif expected.kind in "iu":
        if kind not in "iu":
            raise DataError(
                f"input {spec.name!r} has dtype {array.dtype}; expected integers ({expected})"
            )
    elif kind != expected.kind:
        raise DataError(f"input {spec.name!r} has dtype {array.dtype}; expected {expected}")
    return array.astype(expected, copy=False)


_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def onnx_input_dtype(onnx_type: str, path: str) -> np.dtype:
    if onnx_type not in _ONNX_TYPES:
        raise InferenceError(f"{path!r} has an input of unsupported type {onnx_type}")
    return np.dtype(_ONNX_TYPES[onnx_type])


def warm_up_input(spec: InputSpec, batch_size: int) -> np.ndarray:
    shape = [batch_size] + [_WARM_UP_DYNAMIC_DIM if d is None else d for d in spec.shape[1:]]
    if spec.dtype.kind == "f":
        return np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)
    return np.zeros(shape, dtype=spec.dtype)
