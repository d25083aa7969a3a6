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

import dataclasses
import os
import time
from typing import Any

import numpy as np

from keras_trainer.core.evaluating import predictions
from keras_trainer.errors import DataError, InferenceError, LimitError
from keras_trainer.export.input_checks import check_input
from keras_trainer.serving.config import ServingConfig
from keras_trainer.serving.inputs import request_arrays, short, short_list, too_many_rows
from keras_trainer.version import __version__

NETWORK = "network"
ASSISTANT = "assistant"
_ASSISTANT_KEYS = {"query", "queries", "method", "max_length", "beam_width"}
_NETWORK_KEYS = {"inputs", "ids"}


@dataclasses.dataclass
class PreparedRequest:
    """A checked network request: one array per model input, and how to answer it.

    `unseen` (typed tables): column -> {value: rows} of category values unseen in
    training, read as out-of-vocabulary; empty otherwise.
    """

    arrays: list[np.ndarray]
    single: bool
    ids: list | None
    rows: int
    unseen: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class QueryRequest:
    """A checked assistant request: its queries and generation settings."""

    queries: list[str]
    settings: dict[str, Any]
    single: bool


def _resolve_store_reference(path: str) -> tuple[str, int | None]:
    """A model store reference (`STORE@production`, `STORE@3`, a store folder) as its
    file (checksum verified) and version number; any other path as is, with None."""
    if os.path.isfile(path) or (os.path.isdir(path) and _is_assistant_folder(path)):
        return path, None
    from keras_trainer.export.store import DEFAULT_ALIAS, ModelStore, resolve_model_path

    root, _, reference = path.rpartition("@") if "@" in path else (path, "", DEFAULT_ALIAS)
    if root and ModelStore(root).exists():
        return resolve_model_path(path), ModelStore(root).get(reference or DEFAULT_ALIAS).version
    return path, None


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
        limits: The request limits (rows, queries, lengths); `ServingConfig()`'s
            defaults when left out.

    Raises:
        InferenceError: the path is missing or not a model this class can serve.
    """

    def __init__(
        self, path: str | os.PathLike, device: str = "cpu", limits: ServingConfig | None = None
    ):
        started = time.perf_counter()
        self.limits = limits or ServingConfig()
        self.path, self.store_version = _resolve_store_reference(os.fspath(path))
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
            from keras_trainer.core.saving.persistence import read_metadata

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
        self.load_seconds = time.perf_counter() - started

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
            "store_version": self.store_version,
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
            `keras_trainer.core.evaluating.predictions.describe` writes them), with
            `"unseen": {column: {value: rows}}` when a typed table's rows hold
            category values unseen in training (read as out-of-vocabulary); for an
            assistant, `{"response": text}` or `{"responses": [texts]}`. Each
            with `latency_ms`.

        Raises:
            DataError: the request is malformed or its inputs do not fit the model.
            LimitError: the request is over one of `limits` (rows, queries, lengths).
            InferenceError: the model fails to run.
        """
        start = time.perf_counter()
        if self.kind == ASSISTANT:
            answer = self.generate(self.check_queries(request))
        else:
            prepared = self.prepare(request)
            answer = self.describe(prepared, self.run(prepared.arrays))
        answer["latency_ms"] = round((time.perf_counter() - start) * 1e3, 3)
        return answer

    def prepare(self, request: Any) -> PreparedRequest:
        """A network request checked and converted, ready for `run` (alone or batched)."""
        if not isinstance(request, dict):
            raise DataError(f"request: expected a JSON object, got {type(request).__name__}")
        unknown = sorted(set(request) - _NETWORK_KEYS)
        if unknown:
            raise DataError(
                f"request: unknown key(s) {short_list(unknown)}; "
                "a network takes 'inputs' and optional 'ids'"
            )
        if "inputs" not in request:
            raise DataError(
                "request: missing 'inputs' (one row, a list of rows, or {feature name: value})"
            )
        if self.metadata.get("preprocessing"):
            # A typed table: raw rows with text and blanks, encoded as in training.
            from keras_trainer.tabular.table_model import encode_request

            table, single, report = encode_request(self.metadata, request["inputs"])
            if len(table) > self.limits.max_rows:
                too_many_rows(len(table), "request.inputs", self.limits.max_rows)
            arrays, unseen = [table], report.unseen
        else:
            unseen = {}
            arrays, single = request_arrays(
                request["inputs"], self.layer._inputs, self.feature_names, self.limits.max_rows
            )
        # The library's shape, dtype and range checks, as every inference call runs them.
        arrays = [check_input(array, spec) for array, spec in zip(arrays, self.layer._inputs)]
        rows = len(arrays[0])
        ids = request.get("ids")
        if ids is not None:
            if single:
                ids = [ids]
            if not isinstance(ids, list) or len(ids) != rows:
                raise DataError(f"request.ids: expected a list of {rows} ids, one per row")
        return PreparedRequest(arrays, single, ids, rows, unseen)

    def run(self, arrays: list[np.ndarray]) -> np.ndarray:
        """The model's (first) output for checked input arrays: one model call."""
        outputs = self.layer.predict(arrays if len(arrays) > 1 else arrays[0]).prediction
        if isinstance(outputs, dict):  # several outputs: describe the first, as the head is
            outputs = next(iter(outputs.values()))
        return outputs

    def warm_up(self, max_batch_size: int) -> None:
        """Runs a network once at every batch size dynamic batching uses (powers of two up
        to `max_batch_size`), or an assistant once on one query, so a compiled model (jax,
        XLA) traces them before the first request instead of during one."""
        if self.kind == ASSISTANT:  # one query, default settings: what most requests are
            self.answer_queries(["warm up"], {})
            return
        if self.kind != NETWORK:
            return
        size = 1
        while True:
            self.run([_zeros(spec, size) for spec in self.layer._inputs])
            if size >= max_batch_size:
                break
            size = min(size * 2, max_batch_size)
        self.layer.reset_stats()

    def describe(self, prepared: PreparedRequest, outputs: np.ndarray) -> dict[str, Any]:
        """The answer to `prepared` from its rows of the model's output."""
        records = predictions.describe(outputs, self.head, self.class_names, prepared.ids)
        answer = {"prediction": records[0]} if prepared.single else {"predictions": records}
        if prepared.unseen:  # typed tables: values that went to the out-of-vocabulary slot
            answer["unseen"] = prepared.unseen
        return answer

    def predict_records(self, inputs: Any, ids: list | None = None) -> list[dict[str, Any]]:
        """Labelled records for a batch of inputs (rows, feature dicts, or input-name dicts)."""
        prepared = self.prepare(
            {"inputs": inputs} if ids is None else {"inputs": inputs, "ids": ids}
        )
        return predictions.describe(
            self.run(prepared.arrays), self.head, self.class_names, prepared.ids
        )

    def check_queries(self, request: Any) -> QueryRequest:
        """An assistant request checked against the model and `limits`, ready for `generate`."""
        if not isinstance(request, dict):
            raise DataError(f"request: expected a JSON object, got {type(request).__name__}")
        unknown = sorted(set(request) - _ASSISTANT_KEYS)
        if unknown:
            raise DataError(
                f"request: unknown key(s) {short_list(unknown)}; "
                "an assistant takes 'query' or 'queries'"
            )
        if ("query" in request) == ("queries" in request):
            raise DataError(
                "request: send exactly one of 'query' (text) or 'queries' (list of texts)"
            )
        limits = self.limits
        settings = {
            "max_length": _bounded_int(
                request, "max_length", self.assistant.tokenizer.max_length, limits.max_length
            )
        }
        method = request.get("method", "greedy")
        if method not in ("greedy", "beam"):
            raise DataError(f"request.method: expected 'greedy' or 'beam', got {short(method)}")
        if self.engine == "keras":
            settings["method"] = method
            if method == "beam":
                settings["beam_width"] = _bounded_int(
                    request, "beam_width", min(4, limits.max_beam_width), limits.max_beam_width
                )
        elif method != "greedy":
            raise DataError(
                "request.method: an ONNX assistant answers greedily; serve the .keras file for beam search"
            )
        single = "query" in request
        queries = [request["query"]] if single else request["queries"]
        if not isinstance(queries, list) or not queries:
            raise DataError("request.queries: expected a non-empty list of texts")
        if len(queries) > limits.max_queries:
            raise LimitError(
                f"request.queries: {len(queries)} queries; this server takes at most "
                f"{limits.max_queries} per request (serving option max_queries, --max-queries)"
            )
        from keras_trainer.assistant.generation import check_query

        for index, query in enumerate(queries):
            check_query(query, None if single else index)
            if len(query) > limits.max_query_chars:
                raise LimitError(
                    f"request.{'query' if single else f'queries[{index}]'}: {len(query)} "
                    f"characters; this server takes at most {limits.max_query_chars} "
                    "(serving option max_query_chars, --max-query-chars)"
                )
        return QueryRequest(queries, settings, single)

    def generate(self, checked: QueryRequest) -> dict[str, Any]:
        """The assistant's answer to a checked request."""
        return self.describe_answers(
            checked, self.answer_queries(checked.queries, checked.settings)
        )

    def answer_queries(
        self, queries: list[str], settings: dict[str, Any], batch_size: int | None = None
    ) -> list[str]:
        """The assistant's answers to checked queries (one decoding loop of `batch_size`)."""
        if self.engine == "onnx":  # ONNX Runtime takes any batch: padding would only cost
            return self.assistant.generate_batch(queries, **settings)
        return self.assistant.generate_batch(queries, batch_size=batch_size, **settings)

    def describe_answers(self, checked: QueryRequest, responses: list[str]) -> dict[str, Any]:
        """The answer to `checked` from its queries' responses."""
        return {"response": responses[0]} if checked.single else {"responses": responses}

    def count_tokens(self, answer: dict[str, Any]) -> int:
        """Tokens an assistant's answer holds (for the tokens-generated metric)."""
        texts = [answer["response"]] if "response" in answer else answer.get("responses", [])
        return sum(len(self.assistant.tokenizer.tokenize(text)) for text in texts)


def _bounded_int(request: dict, key: str, default: int, largest: int) -> int:
    value = request.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(
            f"request.{key}: expected an integer from 1 to {largest}, got {short(value)}"
        )
    if value > largest:
        raise LimitError(
            f"request.{key}: {value}; this server takes at most {largest} "
            f"(serving option {key}, --{key.replace('_', '-')})"
        )
    return value


def _zeros(spec, rows: int = 1) -> np.ndarray:
    shape = [rows] + [8 if d is None else d for d in spec.shape[1:]]
    return np.zeros(shape, dtype=spec.dtype)
