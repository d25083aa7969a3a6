"""`ServedModel`: any saved keras_trainer model behind one JSON-in, JSON-out call.

What it loads, by path:

- a `.keras` or `.h5` network (JIT strategy, feed-forward, LSTM, CNN+LSTM, any
  Keras functional model) through `CompiledInferenceLayer(backend="keras")`;
- an `.onnx` network through `CompiledInferenceLayer(backend="onnx")` (ONNX
  Runtime; no Keras needed);
- an assistant `.keras` file (`Assistant.save`) through `load_assistant`, or an
  assistant ONNX folder (`export_assistant_onnx`) through `OnnxAssistant`.

Requests are plain dicts (the decoded JSON body). A network takes
`{"inputs": ...}`: one row (a list of numbers, or a window of rows for a
sequence model), a list of rows, a dict feature name -> value, a list of such
dicts, or, for a model with several inputs, a dict input name -> array;
`"ids"` may name the rows. An assistant takes `{"query": "..."}` or
`{"queries": [...]}` with optional `method`, `max_length` and `beam_width`.
Bad requests raise the library's `DataError` naming the problem, before the model runs.

Example:

>>> served = ServedModel("models/jit_optimizer.keras")
>>> served.predict({"inputs": [[12, 3, 40, 1, 2, 0, 8, 1, 1, 0.5, 1000, 3]]})
{'predictions': [{'label': 'O2', 'probabilities': {...}}], 'latency_ms': 0.4}
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from keras_trainer.core import predictions
from keras_trainer.errors import DataError, InferenceError
from keras_trainer.version import __version__

NETWORK = "network"
ASSISTANT = "assistant"
_ASSISTANT_KEYS = {"query", "queries", "method", "max_length", "beam_width"}
_NETWORK_KEYS = {"inputs", "ids"}


def _resolve_store_reference(path: str) -> str:
    """A model store reference (`STORE@production`, `STORE@3`, a store folder) as its file."""
    if os.path.isfile(path) or (os.path.isdir(path) and _is_assistant_folder(path)):
        return path
    from keras_trainer.export.store import ModelStore, resolve_model_path

    root = path.rpartition("@")[0] if "@" in path else path
    if root and ModelStore(root).exists():
        return resolve_model_path(path)
    return path


def _is_assistant_folder(path: str) -> bool:
    from keras_trainer.assistant.onnx import DECODER_STEP_FILE, ENCODER_FILE

    return os.path.isfile(os.path.join(path, ENCODER_FILE)) and os.path.isfile(
        os.path.join(path, DECODER_STEP_FILE)
    )


class ServedModel:
    """A saved model, loaded once, answering prediction requests given as dicts.

    Args:
        path: A `.keras`, `.h5` or `.onnx` file, or an assistant ONNX folder.
        device: `"cpu"`, `"cuda"` or `"auto"`, as `CompiledInferenceLayer` takes it.

    Raises:
        InferenceError: the path is missing or not a model this class can serve.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu"):
        self.path = _resolve_store_reference(os.fspath(path))
        self.kind = NETWORK
        self.assistant = None
        self.layer = None
        if os.path.isdir(self.path):
            if not _is_assistant_folder(self.path):
                raise InferenceError(
                    f"{self.path} is a folder without encoder.onnx and decoder_step.onnx; "
                    "serve a .keras, .h5 or .onnx file, or an assistant ONNX folder"
                )
            from keras_trainer.assistant.onnx import OnnxAssistant

            self.kind, self.engine = ASSISTANT, "onnx"
            self.assistant = OnnxAssistant.load(self.path)
            self.metadata = dict(self.assistant.metadata)
        elif not os.path.isfile(self.path):
            raise InferenceError(f"model not found: {self.path}")
        elif self.path.lower().endswith(".onnx"):
            self.engine = "onnx"
            self._load_network(device)
        elif self.path.lower().endswith((".keras", ".h5")):
            from keras_trainer.core.persistence import read_metadata

            self.engine = "keras"
            if read_metadata(self.path).get("task") == "assistant":
                from keras_trainer.assistant import load_assistant

                self.kind = ASSISTANT
                self.assistant = load_assistant(self.path)
                self.metadata = self.assistant.metadata()
            else:
                self._load_network(device)
        else:
            raise InferenceError(
                f"{self.path}: serve a .keras, .h5 or .onnx file, or an assistant ONNX folder"
            )
        if self.kind == NETWORK:
            self._describe_head()

    def _load_network(self, device: str) -> None:
        from keras_trainer.export.inference import CompiledInferenceLayer

        self.layer = CompiledInferenceLayer(backend=self.engine, device=device)
        self.layer.load_model(self.path)
        self.metadata = dict(self.layer.metadata)

    def _describe_head(self) -> None:
        specs = self.layer._inputs
        zeros = [_zeros(spec) for spec in specs]
        probe = self.layer.predict(zeros[0] if len(zeros) == 1 else zeros).prediction
        self.layer.reset_stats()
        if isinstance(probe, dict):
            probe = list(probe.values())
        else:
            probe = [probe]
        self.output_width = int(np.prod(probe[0].shape[1:])) if probe[0].ndim > 1 else 1
        self.head = predictions.head_kind(
            self.metadata, self.output_width, getattr(self.layer, "model", None)
        )
        self.class_names = predictions.class_names_for(self.metadata, self.head, self.output_width)
        self.feature_names = list(self.metadata.get("feature_names") or [])

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """What `GET /metadata` answers: the model's kind, inputs, head and saved metadata."""
        info: dict[str, Any] = {
            "model": os.path.basename(self.path.rstrip(os.sep)),
            "kind": self.kind,
            "engine": self.engine,
            "task": self.metadata.get("task"),
            "library_version": __version__,
            "trained_with": {
                k: self.metadata.get(k) for k in ("library_version", "keras_version", "backend")
            },
        }
        if self.engine == "keras":
            import keras

            info["keras_backend"] = keras.backend.backend()
        if self.kind == ASSISTANT:
            info["vocabulary_size"] = self.assistant.tokenizer.vocab_size
            info["methods"] = ["greedy"] if self.engine == "onnx" else ["greedy", "beam"]
            info["request"] = {"query": "text"}
            return info
        info["inputs"] = [
            {
                "name": s.name,
                "shape": ["batch" if i == 0 else d for i, d in enumerate(s.shape)],
                "dtype": str(s.dtype),
            }
            for s in self.layer._inputs
        ]
        info["head"] = self.head
        info["output_width"] = self.output_width
        info["class_names"] = self.class_names
        info["feature_names"] = self.feature_names
        info["request"] = {"inputs": "one row, a list of rows, or {feature name: value}"}
        for key in ("normalization", "preprocessing", "hyperparameters", "test_metrics", "data"):
            if key in self.metadata:
                info[key] = self.metadata[key]
        return info

    # --------------------------------------------------------------- predict
    def predict(self, request: Any) -> dict[str, Any]:
        """Answers one request dict; see the module docstring for its shape.

        Returns:
            For a network, `{"prediction": record}` for one row or
            `{"predictions": [records]}` for a batch (records as
            `keras_trainer.core.predictions.describe` writes them); for an
            assistant, `{"response": text}` or `{"responses": [texts]}`. Each
            with `latency_ms`.

        Raises:
            DataError: the request is malformed or its inputs do not fit the model.
            InferenceError: the model fails to run.
        """
        start = time.perf_counter()
        if not isinstance(request, dict):
            raise DataError(f"request: expected a JSON object, got {type(request).__name__}")
        answer = self._answer(request) if self.kind == ASSISTANT else self._predict_rows(request)
        answer["latency_ms"] = round((time.perf_counter() - start) * 1e3, 3)
        return answer

    def predict_records(self, inputs: Any, ids: list | None = None) -> list[dict[str, Any]]:
        """Labelled records for a batch of inputs (rows, feature dicts, or input-name dicts)."""
        arrays, _single = self._arrays(inputs)
        outputs = self.layer.predict(arrays).prediction
        if isinstance(outputs, dict):  # several outputs: describe the first, as the head is
            outputs = next(iter(outputs.values()))
        return predictions.describe(outputs, self.head, self.class_names, ids)

    def _predict_rows(self, request: dict) -> dict[str, Any]:
        unknown = sorted(set(request) - _NETWORK_KEYS)
        if unknown:
            raise DataError(
                f"request: unknown key(s) {unknown}; a network takes 'inputs' and optional 'ids'"
            )
        if "inputs" not in request:
            raise DataError(
                "request: missing 'inputs' (one row, a list of rows, or {feature name: value})"
            )
        arrays, single = self._arrays(request["inputs"])
        rows = len(next(iter(arrays.values())) if isinstance(arrays, dict) else arrays)
        ids = request.get("ids")
        if ids is not None:
            if single:
                ids = [ids]
            if not isinstance(ids, list) or len(ids) != rows:
                raise DataError(f"request.ids: expected a list of {rows} ids, one per row")
        outputs = self.layer.predict(arrays).prediction
        if isinstance(outputs, dict):
            outputs = next(iter(outputs.values()))
        records = predictions.describe(outputs, self.head, self.class_names, ids)
        return {"prediction": records[0]} if single else {"predictions": records}

    def _arrays(self, inputs: Any):
        """The request's inputs as arrays, and whether it was one row."""
        specs = self.layer._inputs
        if len(specs) > 1:
            if not isinstance(inputs, dict):
                raise DataError(
                    f"request.inputs: the model has {len(specs)} inputs {[s.name for s in specs]}; "
                    "send a dict input name -> array"
                )
            arrays = {name: np.asarray(value) for name, value in inputs.items()}
            first = arrays.get(specs[0].name)
            single = first is not None and first.ndim == len(specs[0].shape) - 1
            if single:
                arrays = {name: value[None] for name, value in arrays.items()}
            return arrays, single
        spec = specs[0]
        if self.metadata.get("preprocessing"):
            # A typed table: raw rows with text and blanks, encoded as in training.
            from keras_trainer.tabular.table_model import encode_request

            return encode_request(self.metadata, inputs)
        if isinstance(inputs, dict) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], dict)
        ):
            single = isinstance(inputs, dict)
            return self._rows_from_named(inputs if not single else [inputs]), single
        try:
            array = np.asarray(inputs, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise DataError(
                f"request.inputs: not a numeric array of the model's shape "
                f"{['batch' if i == 0 else d for i, d in enumerate(spec.shape)]} ({error})"
            ) from None
        single = array.ndim == len(spec.shape) - 1
        if single:
            array = array[None]
        return array, single

    def _rows_from_named(self, rows: list) -> np.ndarray:
        names = self.feature_names
        if not names:
            raise DataError(
                "request.inputs: this model has no feature names; send rows as lists of numbers"
            )
        table = np.empty((len(rows), len(names)), dtype=self.layer._inputs[0].dtype)
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DataError(
                    f"request.inputs[{index}]: expected an object feature name -> value"
                )
            missing = [name for name in names if name not in row]
            extra = sorted(set(row) - set(names))
            if missing or extra:
                raise DataError(
                    f"request.inputs[{index}]: missing feature(s) {missing}, unknown feature(s) {extra}"
                )
            try:
                table[index] = [float(row[name]) for name in names]
            except (TypeError, ValueError):
                bad = next(n for n in names if not isinstance(row[n], (int, float)))
                raise DataError(
                    f"request.inputs[{index}].{bad}: expected a number, got {row[bad]!r}"
                ) from None
        return table

    def _answer(self, request: dict) -> dict[str, Any]:
        unknown = sorted(set(request) - _ASSISTANT_KEYS)
        if unknown:
            raise DataError(
                f"request: unknown key(s) {unknown}; an assistant takes 'query' or 'queries'"
            )
        if ("query" in request) == ("queries" in request):
            raise DataError(
                "request: send exactly one of 'query' (text) or 'queries' (list of texts)"
            )
        settings = {"max_length": request.get("max_length", self.assistant.tokenizer.max_length)}
        if (
            not isinstance(settings["max_length"], int)
            or isinstance(settings["max_length"], bool)
            or not 1 <= settings["max_length"] <= 1024
        ):
            raise DataError(
                f"request.max_length: expected an integer from 1 to 1024, got {settings['max_length']!r}"
            )
        method = request.get("method", "greedy")
        if method not in ("greedy", "beam"):
            raise DataError(f"request.method: expected 'greedy' or 'beam', got {method!r}")
        if self.engine == "keras":
            settings["method"] = method
            if method == "beam":
                width = request.get("beam_width", 4)
                if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 64:
                    raise DataError(
                        f"request.beam_width: expected an integer from 1 to 64, got {width!r}"
                    )
                settings["beam_width"] = width
        elif method != "greedy":
            raise DataError(
                "request.method: an ONNX assistant answers greedily; serve the .keras file for beam search"
            )
        if "query" in request:
            from keras_trainer.assistant.generation import check_query

            check_query(request["query"])
            return {"response": self.assistant.generate_batch([request["query"]], **settings)[0]}
        queries = request["queries"]
        if not isinstance(queries, list) or not queries:
            raise DataError("request.queries: expected a non-empty list of texts")
        return {"responses": self.assistant.generate_batch(queries, **settings)}


def _zeros(spec) -> np.ndarray:
    shape = [1] + [8 if d is None else d for d in spec.shape[1:]]
    return np.zeros(shape, dtype=spec.dtype)
