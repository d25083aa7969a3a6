"""PyTorch-native serving: a Keras model as a `torch.export` program.

`export_torch(model_or_path, "model.pt2")` loads the model under Keras' torch
backend and captures it with `torch.export.export` (batch dimension dynamic),
then saves the `ExportedProgram` with the model's metadata inside. When the
caller's `KERAS_BACKEND` is not torch, the capture runs in a subprocess with
`KERAS_BACKEND=torch` (as the ONNX export runs in a TensorFlow subprocess), so
it works whatever backend trained the model or runs the caller.

`CompiledInferenceLayer(backend=InferenceBackend.TORCH)` serves `.pt2` files
(or `.keras`/`.h5` files, exported on load) through `load_torch_program`: the
program's graph runs directly (no Keras in the call, and the no-op dtype
casts and metadata assertions Keras' tensor conversion leaves in the graph
are removed), optionally through `torch.compile`.

TorchScript is not used as a fallback: tracing a Keras recurrent layer bakes
the traced sequence length into the graph, which would give wrong results
for other lengths without an error. A model that `torch.export` cannot
capture with a dynamic non-batch dimension gets an `ExportError` that says to
pass a fixed `input_signature` (or to serve it through ONNX).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from keras_trainer.errors import BackendNotSupportedError, ExportError, InferenceError

TORCH_SUFFIX = ".pt2"
METADATA_FILE = "keras_trainer.json"
_KERAS_SUFFIXES = (".keras", ".h5")


def require_torch():
    """Imports torch, or raises `BackendNotSupportedError` saying how to get it."""
    try:
        import torch
    except ImportError as error:
        raise BackendNotSupportedError(
            "InferenceBackend.TORCH needs PyTorch, which is not installed: "
            "pip install 'keras-trainer[torch]'; or serve the model with InferenceBackend.ONNX "
            "or InferenceBackend.KERAS"
        ) from error
    return torch


def export_torch(
    model_or_path: Any,
    path: str | os.PathLike,
    *,
    input_signature: Sequence[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    custom_modules: Sequence[str] = (),
    timeout: float = 900.0,
) -> str:
    """Exports a Keras model to a `torch.export` program file (`.pt2`).

    Works for models trained under any backend and from a caller under any
    `KERAS_BACKEND` (the capture runs under the torch backend, in a
    subprocess when the caller's backend is another). The file holds the
    graph, the weights, and the model's metadata (read back by
    `load_torch_program`).

    Args:
        model_or_path: a Keras model, or a `.keras`/`.h5` file.
        path: the `.pt2` file to write (atomically).
        input_signature: optional list of `(shape, dtype)` or
            `(name, shape, dtype)`, one per model input; `None` in a shape is
            dynamic. Defaults to the model's inputs with a dynamic batch.
        metadata: extra JSON metadata stored in the file.
        custom_modules: modules to import before loading, where custom
            layers are registered (found from the layers of a model object).
        timeout: seconds the subprocess may run.

    Returns:
        The path written.

    Raises:
        BackendNotSupportedError: torch is not installed.
        ExportError: the model file is missing, or `torch.export` cannot
            capture the model (the message says what to change).

    Example:

    >>> export_torch("models/jit_optimizer.keras", "models/jit_optimizer.pt2")  # doctest: +SKIP
    'models/jit_optimizer.pt2'
    """
    from keras_trainer.export.onnx_export import ExportRequest

    request = ExportRequest(
        model_or_path,
        path,
        input_signature=input_signature,
        metadata=metadata,
        custom_modules=custom_modules,
    )
    return export_torch_many([request], timeout=timeout)[0]


def export_torch_many(requests: Sequence[Any], *, timeout: float = 900.0) -> list[str]:
    """Exports several models to `.pt2` files in one torch-backend process.

    Args:
        requests: `ExportRequest`s (their `quantize` fields must be unset).
        timeout: seconds the subprocess may run.

    Returns:
        The paths written, in order.

    Raises:
        ExportError: naming the first model that failed.
    """
    require_torch()
    import keras

    from keras_trainer.export.onnx_export import _custom_modules_of, _normalize_signature

    in_process = keras.backend.backend() == "torch"
    with tempfile.TemporaryDirectory(prefix="keras_trainer_torch_") as workdir:
        jobs = []
        for index, request in enumerate(requests):
            if getattr(request, "quantize", None):
                raise ExportError("torch programs are not quantized; export to ONNX to quantize")
            path = os.path.abspath(os.fspath(request.path))
            if not path.endswith(TORCH_SUFFIX):
                raise ExportError(f"torch program files end in {TORCH_SUFFIX!r}; got {path!r}")
            if not os.path.isdir(os.path.dirname(path)):
                raise ExportError(f"output directory of {path!r} does not exist")
            job = {
                "output": path,
                "signature": _normalize_signature(request.input_signature),
                "metadata": dict(request.metadata or {}),
                "custom_modules": list(request.custom_modules),
            }
            source = request.model_or_path
            if isinstance(source, (str, os.PathLike)):
                source = os.path.abspath(os.fspath(source))
                if not os.path.isfile(source):
                    raise ExportError(f"model file not found: {source!r}")
                if not source.endswith(_KERAS_SUFFIXES):
                    raise ExportError(
                        f"cannot export {source!r}: expected a `.keras` or `.h5` model file"
                    )
            elif not hasattr(source, "save"):
                raise ExportError(
                    f"expected a Keras model or a model file path; got {type(source).__name__}"
                )
            elif in_process:
                _capture(source, {}, path, job["signature"], job["metadata"])
                continue
            else:
                model = source
                source = os.path.join(workdir, f"model_{index}.keras")
                model.save(source)
                job["custom_modules"] += _custom_modules_of(model)
                job["metadata"].setdefault("source_backend", keras.backend.backend())
            job["source"] = source
            jobs.append(job)
        if jobs and in_process:
            for job in jobs:
                _export_job(job)
        elif jobs:
            _run_worker(workdir, jobs, timeout)
    return [os.path.abspath(os.fspath(r.path)) for r in requests]


def _export_job(job: dict) -> None:

    from keras_trainer.core.saving.persistence import load_model, registered_objects_of

    # Modules the caller named explicitly (never ones the file names); their
    # registered classes are allowed besides keras_trainer's own.
    allowed = registered_objects_of(job.get("custom_modules") or ())
    try:
        model, metadata = load_model(job["source"], custom_objects=allowed)
    except Exception as error:
        raise ExportError(f"cannot load {job['source']!r} for torch export: {error}") from error
    _capture(model, metadata, job["output"], job["signature"], job["metadata"])


def _run_worker(workdir: str, jobs: list, timeout: float) -> None:
    job_path = os.path.join(workdir, "jobs.json")
    with open(job_path, "w") as handle:
        json.dump(jobs, handle)
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch"
    env["CUDA_VISIBLE_DEVICES"] = ""  # capture needs no GPU
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
    command = [sys.executable, "-m", "keras_trainer.export.torch_inference", job_path]
    try:
        process = subprocess.run(
            command, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise ExportError(f"torch export did not finish within {timeout:.0f} s") from error
    if process.returncode != 0:
        lines = (process.stderr or process.stdout or "").strip().splitlines()
        message = next(
            (line for line in reversed(lines) if "Error" in line), lines[-1] if lines else ""
        )
        raise ExportError(f"torch export failed: {message.split('Error: ', 1)[-1]}")


def _capture(model, metadata: dict, path: str, signature, extra: dict) -> None:
    """`torch.export` of `model` (torch backend active) saved to `path`."""
    import keras
    import torch

    from keras_trainer.core.saving.atomic import atomic_path

    if keras.backend.backend() != "torch":  # pragma: no cover - guarded by callers
        raise BackendNotSupportedError("torch capture needs KERAS_BACKEND=torch")
    if signature is None:
        if not getattr(model, "inputs", None):
            raise ExportError(
                "the model has no defined inputs (a subclassed model?); pass "
                "`input_signature=[(shape, dtype), ...]`"
            )
        signature = [
            {"name": t.name, "shape": [None, *t.shape[1:]], "dtype": str(t.dtype)}
            for t in keras.tree.flatten(model.input)
        ]
    structure = model.input if getattr(model, "inputs", None) else None

    class Serving(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            if structure is not None and len(inputs) > 1:
                packed = keras.tree.pack_sequence_as(structure, list(inputs))
            else:
                packed = inputs[0]
            return tuple(keras.tree.flatten(self.model(packed, training=False)))

    serving = Serving(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    examples, dynamic = [], []
    for spec in signature:
        dims = {}
        for axis, size in enumerate(spec["shape"]):
            if size is None:
                dims[axis] = (
                    batch if axis == 0 else torch.export.Dim(f"{spec['name']}_{axis}", min=1)
                )
        dynamic.append(dims)
        shape = [2 if axis == 0 else 3 if d is None else d for axis, d in enumerate(spec["shape"])]
        examples.append(torch.zeros(shape, dtype=getattr(torch, spec["dtype"])))
    try:
        with torch.no_grad():
            program = torch.export.export(
                serving, tuple(examples), dynamic_shapes=(tuple(dynamic),)
            )
    except Exception as error:
        dynamic_dims = [
            f"{s['name']}[{axis}]"
            for s in signature
            for axis, d in enumerate(s["shape"])
            if axis and d is None
        ]
        hint = (
            f"; the dynamic dimension(s) {dynamic_dims} cannot stay dynamic (a recurrent layer "
            "unrolls over them): pass input_signature with fixed sizes, or serve through ONNX"
            if dynamic_dims
            else ""
        )
        raise ExportError(
            f"torch.export cannot capture the model{hint}: {type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        ) from error
    with torch.no_grad():
        probe = serving(*examples)
    output_names = list(getattr(model, "output_names", None) or [])
    if len(output_names) != len(probe):
        output_names = [f"output_{i}" for i in range(len(probe))]
    from keras_trainer.version import __version__

    info = {
        **{k: v for k, v in metadata.items()},
        **extra,
        "inputs": signature,
        "output_names": output_names,
        "library_version": metadata.get("library_version") or __version__,
        "exporter": f"torch.export, torch {torch.__version__}, keras {keras.__version__}",
    }
    info.setdefault("source_backend", metadata.get("backend", "torch"))
    try:
        text = json.dumps(info)
    except (TypeError, ValueError) as error:
        raise ExportError(f"metadata is not JSON-serializable: {error}") from error
    with atomic_path(path) as temp:
        torch.export.save(program, temp, extra_files={METADATA_FILE: text})


class TorchProgram:
    """A loaded `.pt2` program, ready to run on NumPy arrays.

    Attributes:
        inputs: list of `{"name", "shape", "dtype"}` (None = dynamic).
        output_names: names of the outputs, in order.
        metadata: the model's metadata stored by `export_torch`.
        device: "cpu" or "cuda".
        compiled: whether `torch.compile` wraps the graph.
    """

    def __init__(self, run: Callable, inputs, output_names, metadata, device, compiled):
        self._run = run
        self.inputs = inputs
        self.output_names = output_names
        self.metadata = metadata
        self.device = device
        self.compiled = compiled

    def __call__(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._run(arrays)


def load_torch_program(
    path: str | os.PathLike, device: str = "cpu", compile: bool | None = None
) -> TorchProgram:
    """Loads a `.pt2` file written by `export_torch` for inference.

    The file is checked first: every serialized object in it must load with
    `torch.load(weights_only=True)` (tensors only), so loading never
    unpickles code.

    Args:
        path: the `.pt2` file.
        device: "cpu" or "cuda".
        compile: wrap the graph in `torch.compile`. Defaults to None: only on
            CUDA (on CPU, compiling the small models of this library took
            tens of seconds and did not make calls faster; see
            docs/benchmarks.md).

    Returns:
        A `TorchProgram`.

    Raises:
        BackendNotSupportedError: torch is not installed.
        InferenceError: the file is missing, not a torch program, or holds
            pickled objects other than tensors.
    """
    torch = require_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InferenceError(f"model file not found: {path!r}")
    _check_archive(path, torch)
    extra = {METADATA_FILE: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except Exception as error:
        raise InferenceError(f"cannot load torch program {path!r}: {error}") from error
    try:
        info = json.loads(extra[METADATA_FILE] or "{}")
    except ValueError as error:
        raise InferenceError(f"{path!r}: unreadable {METADATA_FILE}: {error}") from error
    if "inputs" not in info:
        raise InferenceError(f"{path!r} was not written by export_torch (no input description)")
    target = torch.device("cuda" if device == "cuda" else "cpu")
    graph_module = program.graph_module
    _drop_no_op_nodes(graph_module, torch)
    state = {**program.state_dict, **program.constants}
    lifted, user_inputs = [], 0
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            user_inputs += 1
        else:
            lifted.append(state[spec.target].to(target))
    graph_module.to(target)
    if compile is None:
        compile = device == "cuda"
    forward = torch.compile(graph_module, dynamic=True) if compile else graph_module
    dtypes = [np.dtype(spec["dtype"]) for spec in info["inputs"]]

    def run(arrays):
        with torch.inference_mode():
            tensors = [
                torch.from_numpy(np.ascontiguousarray(a, dtype=d)).to(target)
                for a, d in zip(arrays, dtypes, strict=True)
            ]
            outputs = forward(*lifted, *tensors)
            return [out.detach().cpu().numpy() for out in outputs]

    metadata = {k: v for k, v in info.items() if k not in ("inputs", "output_names")}
    return TorchProgram(
        run, info["inputs"], list(info["output_names"]), metadata, target.type, bool(compile)
    )


def _check_archive(path: str, torch) -> None:
    """Refuses a `.pt2` whose pickled entries are more than tensors and containers."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise InferenceError(f"{path!r} is not a torch program file (not a zip archive)") from error
    with archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name.endswith(".pt") or data[:2] in (b"\x80\x02", b"\x80\x04", b"\x80\x05", b"PK"):
                try:
                    torch.load(io.BytesIO(data), weights_only=True)
                except Exception as error:
                    raise InferenceError(
                        f"{path!r}: entry {name!r} holds pickled objects other than tensors; "
                        "refusing to load it (it could run code)"
                    ) from error


def _drop_no_op_nodes(graph_module, torch) -> None:
    """Removes metadata assertions, same-dtype casts and fresh copies of constants.

    Keras' tensor conversion leaves an `aten.to` (with an assertion) around
    every operation; in inference they change nothing and cost a dispatch each.
    """
    aten = torch.ops.aten
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target is aten._assert_tensor_metadata.default and not node.users:
            graph.erase_node(node)
        elif node.target in (aten.to.dtype, aten.to.dtype_layout, aten.lift_fresh_copy.default):
            source = node.args[0]
            before = getattr(source, "meta", {}).get("val")
            after = node.meta.get("val")
            if before is None or after is None:
                continue
            same = (
                before.dtype == after.dtype
                and before.device == after.device
                and node.kwargs.get("memory_format") is None
            )
            if same:
                node.replace_all_uses_with(source)
                graph.erase_node(node)
    graph.eliminate_dead_code()
    graph_module.recompile()


def main(argv: Sequence[str]) -> int:
    """The torch-backend subprocess of `export_torch`: `python -m ... JOB.json`."""
    with open(argv[1]) as handle:
        jobs = json.load(handle)
    for job in jobs:
        _export_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
