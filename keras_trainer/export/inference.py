"""A compiled inference layer: load once, warm up, predict fast, watch latency.

`CompiledInferenceLayer` serves an exported `.onnx` model through ONNX Runtime
(`InferenceBackend.ONNX`), a `.keras`/`.h5` model through a compiled call of
the active Keras backend (`InferenceBackend.KERAS`, see `compiled_call`), or a
`torch.export` program (`InferenceBackend.TORCH`, see `torch_inference`). All
check inputs before running (shape, dtype, NaN, empty batch) and raise the
library's errors, and both record the latency of every call.
"""

import dataclasses
import enum
import logging
import os
import time
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.errors import ConfigError, DataError, InferenceError
from keras_trainer.export.input_checks import (
    InputSpec,
    check_input,
    onnx_input_dtype,
    warm_up_input,
)
from keras_trainer.export.latency import LatencyRecorder
from keras_trainer.export.metadata import decode_metadata_props
from keras_trainer.export.runtime import ort_session

logger = logging.getLogger(__name__)

_DEVICES = ("cpu", "cuda", "auto")
_SMALL_MODEL_BYTES = 4 * 1024 * 1024


class InferenceBackend(enum.Enum):
    """Which engine `CompiledInferenceLayer` runs a model with."""

    ONNX = "onnx"
    KERAS = "keras"
    TORCH = "torch"


@dataclasses.dataclass(frozen=True, slots=True)
class InferenceResult:
    """The output of one inference.

    Attributes:
        prediction: the model output as a NumPy array, or a dict output name
            -> array for a model with several outputs.
        latency_ms: wall time of the call that produced it (input checks,
            the run and output conversion), in milliseconds. For
            `batch_predict`, the time of the whole batch it was part of.
        backend: the `InferenceBackend` that ran it.
    """

    prediction: Union[np.ndarray, dict[str, np.ndarray]]
    latency_ms: float
    backend: InferenceBackend


class CompiledInferenceLayer:
    """Serves a trained model with low latency and records its latencies.

    Args:
        backend: `InferenceBackend.ONNX` (an `.onnx` file through ONNX Runtime),
            `InferenceBackend.KERAS` (a `.keras`/`.h5` file through a
            compiled call of the active Keras backend) or
            `InferenceBackend.TORCH` (a `.pt2` `torch.export` program, or a
            `.keras`/`.h5` file exported to one on load, under any
            `KERAS_BACKEND`; needs PyTorch). Strings "onnx", "keras" and
            "torch" are accepted. Default ONNX.
        device: "cpu", "cuda" or "auto" (CUDA when available). When "cuda"
            is asked for but not available, a warning says so and the CPU is
            used. Default "cpu".
        intra_op_num_threads: ONNX Runtime threads per operator. Default
            `None`: 1 for models under 4 MB (thread hand-offs cost more than
            they save on tiny matrices), else ONNX Runtime's default.
        max_latency_samples: how many recent latencies the statistics keep.
        torch_compile: for the TORCH backend, whether to wrap the program in
            `torch.compile`. Default `None`: on CUDA only (see
            `load_torch_program`).

    Example:

    >>> layer = CompiledInferenceLayer(backend=InferenceBackend.ONNX)
    >>> layer.load_model("model.onnx")  # doctest: +SKIP
    >>> layer.warm_up(num_iterations=10, batch_size=1)  # doctest: +SKIP
    >>> result = layer.predict(np.zeros((1, 12), "float32"))  # doctest: +SKIP
    >>> layer.get_latency_stats()["p95_ms"]  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: Union[InferenceBackend, str] = InferenceBackend.ONNX,
        device: str = "cpu",
        intra_op_num_threads: Optional[int] = None,
        max_latency_samples: int = 100_000,
        torch_compile: Optional[bool] = None,
    ):
        try:
            self.backend = InferenceBackend(
                backend.value if isinstance(backend, InferenceBackend) else str(backend).lower()
            )
        except ValueError:
            raise ConfigError(
                f"backend must be one of {[b.value for b in InferenceBackend]}; got {backend!r}"
            ) from None
        if device not in _DEVICES:
            raise ConfigError(f"device must be one of {list(_DEVICES)}; got {device!r}")
        if intra_op_num_threads is not None and intra_op_num_threads < 0:
            raise ConfigError(f"intra_op_num_threads must be >= 0; got {intra_op_num_threads}")
        self.device = device
        self.intra_op_num_threads = intra_op_num_threads
        self.max_latency_samples = max_latency_samples
        self.torch_compile = torch_compile
        self.active_device: Optional[str] = None
        self.metadata: dict[str, Any] = {}
        self.model_path: Optional[str] = None
        self._latencies = LatencyRecorder(max_latency_samples)
        self._inputs: list[InputSpec] = []
        self._output_names: list[str] = []
        self._run = None

    def get_config(self) -> dict[str, Any]:
        return {
            "backend": self.backend.value,
            "device": self.device,
            "intra_op_num_threads": self.intra_op_num_threads,
            "max_latency_samples": self.max_latency_samples,
            "torch_compile": self.torch_compile,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CompiledInferenceLayer":
        return cls(**config)

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self._inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    # Loading.

    def load_model(
        self, path: Union[str, os.PathLike], custom_objects: Optional[dict[str, Any]] = None
    ) -> "CompiledInferenceLayer":
        """Loads a model file and compiles it for inference.

        Args:
            path: an `.onnx` file for the ONNX backend; a `.keras` or `.h5`
                file for the KERAS backend; a `.pt2`, `.keras` or `.h5` file
                for the TORCH backend. Or a model store reference such as
                `"models/store@production"` (see `keras_trainer.export.store`).
            custom_objects: your own layers and functions a `.keras`/`.h5`
                file names, as for `keras.saving.load_model`; the file may name
                no other class outside Keras and keras_trainer.

        Returns:
            self.

        Raises:
            InferenceError: the file is missing, of the wrong kind, or corrupt.
            BackendNotSupportedError: TORCH without PyTorch installed.
        """
        path = os.fspath(path)
        if not os.path.isfile(path) and ("@" in path or os.path.isdir(path)):
            from keras_trainer.export.store import resolve_model_path

            path = resolve_model_path(
                path, kind="onnx" if self.backend is InferenceBackend.ONNX else "keras"
            )
        if not os.path.isfile(path):
            raise InferenceError(f"model file not found: {path!r}")
        suffixes = {
            InferenceBackend.ONNX: (".onnx",),
            InferenceBackend.KERAS: (".keras", ".h5"),
            InferenceBackend.TORCH: (".pt2", ".keras", ".h5"),
        }[self.backend]
        if not path.lower().endswith(suffixes):
            raise InferenceError(
                f"the {self.backend.value} backend loads {' or '.join(suffixes)} files; "
                f"got {path!r}"
            )
        if self.backend is InferenceBackend.ONNX:
            self._load_onnx(path)
        elif self.backend is InferenceBackend.TORCH:
            self._load_torch(path, custom_objects)
        else:
            self._load_keras(path, custom_objects)
        self.model_path = path
        self.reset_stats()
        return self

    def _load_onnx(self, path: str) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if self.device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        threads = self.intra_op_num_threads
        if threads is None:
            threads = 1 if os.path.getsize(path) < _SMALL_MODEL_BYTES else 0
        session = ort_session(path, providers, intra_op_num_threads=threads, sequential=True)
        self.active_device = (
            "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        )
        if self.device == "cuda" and self.active_device != "cuda":
            logger.warning(
                "device='cuda' was requested but ONNX Runtime's CUDAExecutionProvider is not "
                "available (providers: %s; install the `onnxruntime-gpu` extra); "
                "falling back to CPU.",
                ", ".join(available),
            )
        self._inputs = [
            InputSpec(
                i.name,
                tuple(d if isinstance(d, int) and d > 0 else None for d in i.shape),
                onnx_input_dtype(i.type, path),
            )
            for i in session.get_inputs()
        ]
        self._output_names = [o.name for o in session.get_outputs()]
        self.metadata = decode_metadata_props(dict(session.get_modelmeta().custom_metadata_map))
        output_names = self._output_names
        input_names = [spec.name for spec in self._inputs]

        def run(arrays):
            return session.run(output_names, dict(zip(input_names, arrays)))

        self._session = session
        self._run = run

    def _load_torch(self, path: str, custom_objects: Optional[dict[str, Any]]) -> None:
        import tempfile

        from keras_trainer.export.torch_inference import (
            export_torch,
            load_torch_program,
            require_torch,
        )

        torch = require_torch()
        cuda = torch.cuda.is_available()
        self.active_device = "cuda" if self.device != "cpu" and cuda else "cpu"
        if self.device == "cuda" and not cuda:
            logger.warning("device='cuda' was requested but torch sees no CUDA device; using CPU.")
        if path.lower().endswith(".pt2"):
            program = load_torch_program(path, self.active_device, self.torch_compile)
        else:
            with tempfile.TemporaryDirectory(prefix="keras_trainer_torch_") as workdir:
                # The export subprocess imports the modules that register them.
                modules = sorted({obj.__module__ for obj in (custom_objects or {}).values()})
                exported = export_torch(
                    path, os.path.join(workdir, "model.pt2"), custom_modules=modules
                )
                program = load_torch_program(exported, self.active_device, self.torch_compile)
        self.metadata = program.metadata
        self._inputs = [
            InputSpec(spec["name"], tuple(spec["shape"]), np.dtype(spec["dtype"]))
            for spec in program.inputs
        ]
        self._output_names = program.output_names
        self._program = program
        self._run = program

    def _load_keras(self, path: str, custom_objects: Optional[dict[str, Any]]) -> None:
        import keras

        from keras_trainer.core.saving.persistence import load_model
        from keras_trainer.errors import KerasTrainerError
        from keras_trainer.export.compiled_call import compiled_call

        try:
            # safe_mode=True: runs no code the file names.
            model, self.metadata = load_model(path, custom_objects)
        except (KerasTrainerError, ValueError, OSError) as error:
            raise InferenceError(
                f"cannot load Keras model {path!r}: {_first_line(error)}"
            ) from error
        if not getattr(model, "inputs", None):
            raise InferenceError(
                f"{path!r} holds a model without defined inputs; the KERAS backend "
                "serves functional or sequential models"
            )
        self.active_device = "cuda" if self.device != "cpu" and _keras_has_cuda() else "cpu"
        if self.device == "cuda" and self.active_device != "cuda":
            logger.warning(
                "device='cuda' was requested but the %s backend sees no CUDA device; "
                "falling back to CPU.",
                keras.backend.backend(),
            )
        self._inputs = [
            InputSpec(t.name, tuple(t.shape), np.dtype(str(t.dtype)))
            for t in keras.tree.flatten(model.input)
        ]
        self._output_names = list(getattr(model, "output_names", None) or [])
        self.model = model
        self._run = compiled_call(model, self.active_device)
        probe = self._run([warm_up_input(spec, 1) for spec in self._inputs])
        if len(self._output_names) != len(probe):
            self._output_names = [f"output_{i}" for i in range(len(probe))]

    # Inference.

    def warm_up(self, num_iterations: int = 10, batch_size: int = 1) -> None:
        """Runs the model on dummy inputs so compilation and caches are done.

        Warm-up calls are not counted in the latency statistics.

        Args:
            num_iterations: how many calls. Default 10.
            batch_size: rows per call. Default 1.
        """
        self._require_model()
        if num_iterations < 0 or batch_size < 1:
            raise DataError(
                f"warm_up needs num_iterations >= 0 and batch_size >= 1; got "
                f"{num_iterations} and {batch_size}"
            )
        arrays = [warm_up_input(spec, batch_size) for spec in self._inputs]
        for _ in range(num_iterations):
            self._execute(arrays)

    def predict(self, features: Any) -> InferenceResult:
        """Runs the model on one batch of features.

        Args:
            features: an array `(batch, ...)` for a model with one input (a
                single row `(width,)` is taken as a batch of one), or a list
                or dict name -> array for a model with several inputs. Float
                inputs accept any float or integer array (cast to the model's
                dtype); integer inputs (token ids) need integers.

        Returns:
            An `InferenceResult`.

        Raises:
            DataError: wrong shape or dtype, NaN or infinite values, or no rows.
            InferenceError: no model is loaded, or the run fails.
        """
        start = time.perf_counter_ns()
        if self._run is None:
            self._require_model()
        arrays = self._prepare(features)
        outputs = self._execute(arrays)
        prediction = self._package(outputs)
        elapsed = time.perf_counter_ns() - start
        self._latencies.record(elapsed)
        return InferenceResult(prediction, elapsed / 1e6, self.backend)

    def batch_predict(
        self, features_list: Sequence[Any], batch_size: int = 32
    ) -> list[InferenceResult]:
        """Runs many inputs, `batch_size` of them per model call.

        Args:
            features_list: a list of inputs, each as `predict` takes them.
            batch_size: how many inputs are concatenated into one call.

        Returns:
            One `InferenceResult` per input, in order; each carries the
            latency of the call its input was part of.
        """
        self._require_model()
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1; got {batch_size}")
        results: list[InferenceResult] = []
        for begin in range(0, len(features_list), batch_size):
            start = time.perf_counter_ns()
            chunk = []
            for offset, features in enumerate(features_list[begin : begin + batch_size]):
                try:
                    chunk.append(self._prepare(features))
                except DataError as error:
                    raise DataError(f"features_list[{begin + offset}]: {error}") from error
            rows = [arrays[0].shape[0] for arrays in chunk]
            merged = [np.concatenate(parts, axis=0) for parts in zip(*chunk)]
            outputs = self._execute(merged)
            bounds = np.cumsum([0] + rows)
            pieces = [
                self._package([out[bounds[k] : bounds[k + 1]] for out in outputs])
                for k in range(len(chunk))
            ]
            elapsed = time.perf_counter_ns() - start
            self._latencies.record(elapsed)
            results.extend(InferenceResult(p, elapsed / 1e6, self.backend) for p in pieces)
        return results

    def get_latency_stats(self) -> dict[str, float]:
        """Statistics of the recorded latencies (one per `predict` call or
        `batch_predict` batch): count, mean_ms, median_ms, p95_ms, p99_ms,
        min_ms, max_ms."""
        return self._latencies.stats()

    def reset_stats(self) -> None:
        """Forgets the recorded latencies."""
        self._latencies.reset()

    # Helpers.

    def _require_model(self) -> None:
        if self._run is None:
            raise InferenceError("no model is loaded; call `load_model(path)` first")

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        try:
            return self._run(arrays)
        except Exception as error:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise InferenceError(
                f"the {self.backend.value} backend failed on inputs of shape {shapes}: "
                f"{_first_line(error)}"
            ) from error

    def _package(self, outputs):
        if len(outputs) == 1:
            return outputs[0]
        return dict(zip(self._output_names, outputs))

    def _prepare(self, features: Any) -> list[np.ndarray]:
        specs = self._inputs
        if len(specs) == 1 and type(features) is np.ndarray:
            return [check_input(features, specs[0])]  # The common case, kept short.
        if len(specs) == 1:
            if isinstance(features, dict):
                if set(features) != {specs[0].name}:
                    raise DataError(
                        f"features dict has keys {sorted(features)}; the model's input is "
                        f"{specs[0].name!r}"
                    )
                features = features[specs[0].name]
            items = [features]
        elif isinstance(features, dict):
            missing = [s.name for s in specs if s.name not in features]
            extra = sorted(set(features) - {s.name for s in specs})
            if missing or extra:
                raise DataError(
                    f"features dict must have exactly the keys {[s.name for s in specs]}; "
                    f"missing {missing}, unexpected {extra}"
                )
            items = [features[s.name] for s in specs]
        elif isinstance(features, (list, tuple)) and len(features) == len(specs):
            items = list(features)
        else:
            raise DataError(
                f"the model has {len(specs)} inputs {[s.name for s in specs]}; pass a list "
                "or a dict of that many arrays"
            )
        arrays = [check_input(item, spec) for item, spec in zip(items, specs)]
        batch = arrays[0].shape[0]
        if len(arrays) > 1 and any(a.shape[0] != batch for a in arrays):
            raise DataError(f"inputs have different batch sizes: {[a.shape[0] for a in arrays]}")
        return arrays


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _keras_has_cuda() -> bool:
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False
