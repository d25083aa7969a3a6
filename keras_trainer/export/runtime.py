"""Opening ONNX Runtime sessions: the one loader every part of keras_trainer uses.

Example:

>>> session = ort_session("model.onnx")
>>> session.get_providers()
['CPUExecutionProvider']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras_trainer.errors import InferenceError


def ort_session(
    path: str,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    intra_op_num_threads: int = 1,
    sequential: bool = False,
) -> Any:
    """Opens `path` in an `onnxruntime.InferenceSession` with all graph optimizations.

    Args:
        path: The `.onnx` file.
        providers: Execution providers in order of preference.
        intra_op_num_threads: Threads per operator; 1 suits small models (no spin-waiting
            on shared cores), 0 lets ONNX Runtime choose.
        sequential: Run operators one after another (`ORT_SEQUENTIAL`).

    Raises:
        InferenceError: the file is missing, corrupt or not an ONNX model.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if sequential:
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT's own warnings would flood the logs.
    try:
        return ort.InferenceSession(path, options, providers=list(providers))
    except Exception as error:  # ORT raises its own Fail/InvalidProtobuf types.
        text = str(error).strip()
        message = text.splitlines()[0] if text else type(error).__name__
        raise InferenceError(
            f"cannot load {path!r} with ONNX Runtime (corrupt or not an ONNX model): {message}"
        ) from None


__all__ = ["ort_session"]
